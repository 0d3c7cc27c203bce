"""An agent on Anthropic, end to end: the server as a subprocess configured with
ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY pointing at the fake Messages API (real HTTP, in this
process, scripted), driven with the real ``letta-client`` SDK.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from letta_client import Letta
from letta_client.types import ToolReturnMessage
from letta_client.types.agents import ToolCall, ToolCallMessage

from tests.e2e.conftest import EMBEDDING, sdk, start_server, text_content
from tests.fake_anthropic import FakeAnthropic, Reply

pytestmark = pytest.mark.e2e

MODEL = "anthropic/claude-x"
KEY = "sk-ant-e2e"


@pytest.fixture(scope="module")
def anthropic_url(
    fake_anthropic_server: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    root = tmp_path_factory.mktemp("convlog-anthropic")
    env = {
        "ANTHROPIC_BASE_URL": fake_anthropic_server.base_url,
        "ANTHROPIC_API_KEY": KEY,
        "CONVLOG_DATA_DIR": str(root / "data"),
    }
    with start_server(env, root) as url:
        yield url


@pytest.fixture
def client(anthropic_url: str) -> Iterator[Letta]:
    with sdk(anthropic_url) as c:
        yield c


@pytest.fixture
def fake(fake_anthropic: FakeAnthropic) -> FakeAnthropic:
    fake_anthropic.api_key = KEY  # any other key is refused
    return fake_anthropic


def blocks(message: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [b for b in message["content"] if b["type"] == kind]


def test_a_memory_tool_turn_on_anthropic(client: Letta, fake: FakeAnthropic) -> None:
    agent_id = client.agents.create(
        name=f"e2e-anthropic-{uuid.uuid4().hex[:8]}",
        model=MODEL,
        embedding=EMBEDDING,
        memory_blocks=[{"label": "human", "value": "Name: Ada"}],
    ).id
    conversation = client.conversations.create(agent_id=agent_id).id
    arguments = json.dumps({"label": "human", "new_string": "Likes tea"})
    fake.script = [Reply(tool_calls=[("memory_insert", arguments)]), Reply(text="Noted.")]
    chunks = list(
        client.conversations.messages.create(
            conversation, messages=[{"role": "user", "content": "I like tea"}]
        )
    )
    assert [c.message_type for c in chunks] == [
        "tool_call_message",
        "tool_return_message",
        "assistant_message",
        "stop_reason",
        "usage_statistics",
    ]
    call_message, result = chunks[0], chunks[1]
    assert isinstance(call_message, ToolCallMessage) and isinstance(result, ToolReturnMessage)
    assert isinstance(call_message.tool_call, ToolCall)
    assert call_message.tool_call.name == "memory_insert" and result.status == "success"
    assert text_content(chunks[2]) == "Noted."
    block = client.agents.blocks.retrieve("human", agent_id=agent_id)
    assert block.value == "Name: Ada\nLikes tea"

    first, second = fake.requests
    assert first.api_key == KEY and first.body["model"] == "claude-x"
    assert "Name: Ada" in first.body["system"]
    assert "memory_insert" in {t["name"] for t in first.body["tools"]}
    assert all("input_schema" in t for t in first.body["tools"])
    # The second request carries the call as tool_use and its result as tool_result.
    assert [m["role"] for m in second.body["messages"]] == ["user", "assistant", "user"]
    (use,) = blocks(second.body["messages"][1], "tool_use")
    assert use["name"] == "memory_insert" and use["input"] == json.loads(arguments)
    assert use["id"] == call_message.tool_call.tool_call_id == result.tool_call_id
    (returned,) = blocks(second.body["messages"][2], "tool_result")
    assert returned["tool_use_id"] == use["id"]
    assert "Likes tea" in second.body["system"]  # the edited block is in the next system prompt


def test_models_lists_anthropics_models(client: Letta, fake: FakeAnthropic) -> None:
    listed = {m.handle: m.provider_type for m in client.models.list()}
    assert listed == {
        "convlog/builtin": "convlog",
        "anthropic/claude-fake": "anthropic",
        "anthropic/claude-fake-mini": "anthropic",
    }
