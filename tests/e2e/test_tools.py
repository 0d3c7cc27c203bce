"""Agents that act, end to end: the server as a subprocess, the fake OpenAI model scripted to
call tools over real HTTP, and the real ``letta-client==1.7.10`` SDK (or raw HTTP + SSE).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import pytest
from letta_client import BadRequestError, ConflictError, Letta, NotFoundError
from letta_client.types import ToolReturnMessage
from letta_client.types.agents import (
    ApprovalRequestMessage,
    ApprovalReturnParam,
    LettaStreamingResponse,
    Message,
    ToolCall,
    ToolCallMessage,
    ToolReturnParam,
)
from letta_client.types.agents.letta_streaming_response import (
    LettaStopReason,
    LettaUsageStatistics,
)
from letta_client.types.conversations.message_create_params import ClientTool

from tests.e2e.conftest import EMBEDDING, MODEL, sdk, start_server, text_content
from tests.e2e.turns_support import env_for, iter_frames
from tests.fake_openai import FakeOpenAI, Reply

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tools_url(
    fake_openai_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    root = tmp_path_factory.mktemp("convlog-tools")
    env = env_for(fake_openai_server.base_url, CONVLOG_DATA_DIR=str(root / "data"))
    with start_server(env, root) as url:
        yield url


@pytest.fixture
def client(tools_url: str) -> Iterator[Letta]:
    with sdk(tools_url) as c:
        yield c


@pytest.fixture
def http(tools_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tools_url, timeout=30.0) as c:
        yield c


@pytest.fixture
def fake(fake_openai: FakeOpenAI) -> FakeOpenAI:
    return fake_openai


def new_agent(client: Letta, **fields: Any) -> str:
    agent = client.agents.create(
        name=f"e2e-tools-{uuid.uuid4().hex[:8]}",
        model=MODEL,
        embedding=EMBEDDING,
        memory_blocks=[{"label": "human", "value": "Name: Ada"}],
        **fields,
    )
    return agent.id


def payloads(response: httpx.Response) -> list[dict[str, Any]]:
    """The JSON data of a whole (already read) SSE response body, ``[DONE]`` left out."""
    found = []
    for line in response.text.splitlines():
        if line.startswith("data: {"):
            found.append(json.loads(line.removeprefix("data: ")))
    return found


def insert(text: str) -> tuple[str, str]:
    return ("memory_insert", json.dumps({"label": "human", "new_string": text}))


def kind(item: LettaStreamingResponse | Message) -> str | None:
    """The ``message_type`` of any streamed chunk or listed message."""
    return item.message_type


def kinds(items: Iterable[LettaStreamingResponse | Message]) -> list[str | None]:
    return [kind(item) for item in items]


def tool_call(chunk: LettaStreamingResponse) -> ToolCall:
    """The whole tool call of a tool call or approval request chunk (not a token delta)."""
    assert isinstance(chunk, (ToolCallMessage, ApprovalRequestMessage)), chunk
    assert isinstance(chunk.tool_call, ToolCall), chunk.tool_call
    return chunk.tool_call


def tool_return(chunk: LettaStreamingResponse) -> ToolReturnMessage:
    assert isinstance(chunk, ToolReturnMessage), chunk
    return chunk


def stop_reason(chunk: LettaStreamingResponse) -> str:
    assert isinstance(chunk, LettaStopReason), chunk
    return chunk.stop_reason


def step_count(chunk: LettaStreamingResponse) -> int | None:
    assert isinstance(chunk, LettaUsageStatistics), chunk
    return chunk.step_count


def test_a_memory_edit_streams_and_changes_the_block(client: Letta, fake: FakeOpenAI) -> None:
    agent_id = new_agent(client)
    conversation = client.conversations.create(agent_id=agent_id).id
    fake.script = [Reply(tool_calls=[insert("Likes tea")]), Reply(content="I'll remember.")]
    stream = client.conversations.messages.create(
        conversation, messages=[{"role": "user", "content": "I like tea"}]
    )
    chunks = list(stream)
    assert kinds(chunks) == [
        "tool_call_message",
        "tool_return_message",
        "assistant_message",
        "stop_reason",
        "usage_statistics",
    ]
    call, result = tool_call(chunks[0]), tool_return(chunks[1])
    assert call.name == "memory_insert"
    assert result.tool_call_id == call.tool_call_id and result.status == "success"
    assert step_count(chunks[4]) == 2
    block = client.agents.blocks.retrieve("human", agent_id=agent_id)
    assert block.value == "Name: Ada\nLikes tea"
    # The second model call carried the tool call and its result in OpenAI's shape.
    sent = fake.requests[-1].body
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "tool"]
    assert sent["messages"][2]["tool_calls"][0]["function"]["name"] == "memory_insert"
    assert "Likes tea" in sent["messages"][0]["content"]
    assert {t["function"]["name"] for t in sent["tools"]} == {
        "memory_insert",
        "memory_replace",
        "conversation_search",
    }
    # A new conversation's system message shows the edited block.
    fresh = client.conversations.create(agent_id=agent_id).id
    system = next(iter(client.conversations.messages.list(fresh, order="asc")))
    assert "Likes tea" in text_content(system)
    # The listing has the tool messages in order, with working cursors.
    listed = list(client.conversations.messages.list(conversation, order="asc", limit=2))
    assert kinds(listed) == [
        "system_message",
        "user_message",
        "tool_call_message",
        "tool_return_message",
        "assistant_message",
    ]


def test_stream_tokens_sends_argument_deltas(http: httpx.Client, fake: FakeOpenAI) -> None:
    agent_id = http.post(
        "/v1/agents/", json={"model": MODEL, "memory_blocks": [{"label": "human", "value": "A"}]}
    ).json()["id"]
    conversation = http.post(f"/v1/conversations/?agent_id={agent_id}", json={}).json()["id"]
    fake.script = [Reply(tool_calls=[insert("a fairly long fact to split")]), Reply(content="ok")]
    body = {"input": "remember", "stream_tokens": True}
    with http.stream("POST", f"/v1/conversations/{conversation}/messages", json=body) as response:
        frames = [f for f in iter_frames(response) if not f.done]
    deltas = [f.payload for f in frames if f.kind == "tool_call_message"]
    assert len(deltas) > 2  # id and name first, then argument fragments
    assert deltas[0]["tool_call"]["name"] == "memory_insert"
    arguments = "".join(d["tool_call"]["arguments"] or "" for d in deltas)
    assert json.loads(arguments)["new_string"] == "a fairly long fact to split"
    assert len({d["id"] for d in deltas}) == 1
    order = [f.kind for f in frames]
    assert order.index("tool_return_message") > order.index("tool_call_message")
    assert order[-2:] == ["stop_reason", "usage_statistics"]


def test_a_client_tool_round_trip(client: Letta, fake: FakeOpenAI) -> None:
    conversation = client.conversations.create(agent_id=new_agent(client)).id
    weather: ClientTool = {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    fake.script = [Reply(tool_calls=[("get_weather", '{"city": "Oslo"}')])]
    first = list(
        client.conversations.messages.create(
            conversation, messages=[{"role": "user", "content": "weather?"}], client_tools=[weather]
        )
    )
    assert kinds(first) == ["approval_request_message", "stop_reason", "usage_statistics"]
    assert stop_reason(first[1]) == "requires_approval"
    call_id = tool_call(first[0]).tool_call_id
    assert "get_weather" in {t["function"]["name"] for t in fake.requests[-1].body["tools"]}
    # A plain message while the call waits is Letta's 409.
    with pytest.raises(ConflictError, match="waiting for approval"):
        list(
            client.conversations.messages.create(
                conversation, messages=[{"role": "user", "content": "hello?"}]
            )
        )
    fake.script = [Reply(content="It is sunny in Oslo.")]
    answer: ToolReturnParam = {
        "type": "tool",
        "tool_call_id": call_id,
        "tool_return": "sunny",
        "status": "success",
    }
    second = list(
        client.conversations.messages.create(
            conversation,
            messages=[{"type": "approval", "approvals": [answer]}],
            client_tools=[weather],
        )
    )
    assert kinds(second) == [
        "approval_response_message",
        "tool_return_message",
        "assistant_message",
        "stop_reason",
        "usage_statistics",
    ]
    assert tool_return(second[1]).tool_return == "sunny"
    roles = [m["role"] for m in fake.requests[-1].body["messages"]]
    assert roles[-2:] == ["assistant", "tool"]


def test_approve_and_deny(client: Letta, fake: FakeOpenAI) -> None:
    agent_id = new_agent(client)
    client.agents.tools.update_approval(
        "memory_insert", agent_id=agent_id, body_requires_approval=True
    )
    rules = client.agents.retrieve(agent_id).tool_rules or []
    assert [(r.type, r.tool_name) for r in rules] == [("requires_approval", "memory_insert")]
    conversation = client.conversations.create(agent_id=agent_id).id

    def ask() -> str:
        fake.script = [Reply(tool_calls=[insert("secret")])]
        chunks = list(
            client.conversations.messages.create(
                conversation, messages=[{"role": "user", "content": "save it"}]
            )
        )
        assert chunks[0].message_type == "approval_request_message"
        return tool_call(chunks[0]).tool_call_id

    call_id = ask()
    with pytest.raises(BadRequestError, match="Invalid tool call IDs"):
        list(
            client.conversations.messages.create(
                conversation,
                messages=[
                    {
                        "type": "approval",
                        "approvals": [
                            {"type": "approval", "tool_call_id": "call_unknown", "approve": True}
                        ],
                    }
                ],
            )
        )
    fake.script = [Reply(content="Not saved.")]
    denied = list(
        client.conversations.messages.create(
            conversation,
            messages=[
                {
                    "type": "approval",
                    "approvals": [
                        {
                            "type": "approval",
                            "tool_call_id": call_id,
                            "approve": False,
                            "reason": "private",
                        }
                    ],
                }
            ],
        )
    )
    refused = tool_return(denied[1])
    assert refused.status == "error"
    assert refused.tool_return == "Error: request to call tool denied. User reason: private"
    assert client.agents.blocks.retrieve("human", agent_id=agent_id).value == "Name: Ada"

    call_id = ask()
    fake.script = [Reply(content="Saved.")]
    approval: ApprovalReturnParam = {"type": "approval", "tool_call_id": call_id, "approve": True}
    approved = list(
        client.conversations.messages.create(
            conversation, messages=[{"type": "approval", "approvals": [approval]}]
        )
    )
    assert tool_return(approved[1]).status == "success"
    assert client.agents.blocks.retrieve("human", agent_id=agent_id).value.endswith("secret")
    # Answering twice runs nothing twice.
    again = list(
        client.conversations.messages.create(
            conversation, messages=[{"type": "approval", "approvals": [approval]}]
        )
    )
    assert tool_return(again[0]).id == tool_return(approved[1]).id
    assert client.agents.blocks.retrieve("human", agent_id=agent_id).value.count("secret") == 1


def test_max_steps_stops_a_looping_model(client: Letta, fake: FakeOpenAI) -> None:
    conversation = client.conversations.create(agent_id=new_agent(client)).id
    fake.script = [Reply(tool_calls=[insert(f"fact {i}")]) for i in range(5)]
    chunks = list(
        client.conversations.messages.create(
            conversation, messages=[{"role": "user", "content": "loop"}], max_steps=2
        )
    )
    assert stop_reason(chunks[-2]) == "max_steps"
    assert step_count(chunks[-1]) == 2


def test_the_agent_messaging_api(client: Letta, fake: FakeOpenAI) -> None:
    agent_id = new_agent(client)
    fake.script = [Reply(tool_calls=[insert("from the agents API")]), Reply(content="done")]
    response = client.agents.messages.create(
        agent_id, messages=[{"role": "user", "content": "remember this"}]
    )
    assert [m.message_type for m in response.messages] == [
        "tool_call_message",
        "tool_return_message",
        "assistant_message",
    ]
    assert response.stop_reason.stop_reason == "end_turn"
    listed = list(client.agents.messages.list(agent_id, order="asc"))
    assert [m.message_type for m in listed][-4:] == [
        "user_message",
        "tool_call_message",
        "tool_return_message",
        "assistant_message",
    ]
    run = client.agents.messages.create_async(
        agent_id, messages=[{"role": "user", "content": "in the background"}]
    )
    assert run.id.startswith("run-") and run.background
    deadline = time.monotonic() + 10
    while client.runs.retrieve(run.id).status == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.runs.retrieve(run.id).status == "completed"
    client.agents.messages.reset(agent_id, add_default_initial_messages=False)
    after = list(client.agents.messages.list(agent_id, order="asc"))
    assert len(after) >= len(listed)  # history stays listed; the context starts over


def test_tools_endpoints(client: Letta, http: httpx.Client) -> None:
    listed = {t.name: t for t in client.tools.list()}
    assert {"memory_insert", "memory_replace", "conversation_search", "memory_rethink"} <= set(
        listed
    )
    search = client.tools.retrieve(listed["conversation_search"].id)
    assert search.json_schema is not None and search.json_schema["name"] == "conversation_search"
    agent_id = new_agent(client, include_base_tools=False)
    assert list(client.agents.tools.list(agent_id)) == []
    client.agents.tools.attach(listed["memory_rethink"].id, agent_id=agent_id)
    assert [t.name for t in client.agents.tools.list(agent_id)] == ["memory_rethink"]
    client.agents.tools.detach(listed["memory_rethink"].id, agent_id=agent_id)
    assert list(client.agents.tools.list(agent_id)) == []
    with pytest.raises(NotFoundError):
        client.agents.tools.attach(f"tool-{uuid.uuid4()}", agent_id=agent_id)
    custom = http.post("/v1/tools/", json={"source_code": "def f(): pass"})
    assert custom.status_code == 400 and "client_tools" in custom.json()["detail"]


def test_bad_tool_input_is_refused_and_writes_nothing(http: httpx.Client) -> None:
    bad_rule = http.post(
        "/v1/agents/",
        json={"model": MODEL, "tool_rules": [{"type": "constrain_child_tools", "tool_name": "x"}]},
    )
    assert bad_rule.status_code == 422 and "tool_rules" in bad_rule.json()["detail"]
    unknown = http.post("/v1/agents/", json={"model": MODEL, "tool_ids": [f"tool-{uuid.uuid4()}"]})
    assert unknown.status_code == 404
    assert http.get("/v1/agents/", params={"limit": 1000}).json() == [] or all(
        a.get("tool_rules") != [{"type": "constrain_child_tools", "tool_name": "x"}]
        for a in http.get("/v1/agents/", params={"limit": 1000}).json()
    )
    agent_id = http.post("/v1/agents/", json={"model": MODEL}).json()["id"]
    conversation = http.post(f"/v1/conversations/?agent_id={agent_id}", json={}).json()["id"]
    bad_tool = http.post(
        f"/v1/conversations/{conversation}/messages",
        json={"input": "x", "client_tools": [{"name": "has space"}]},
    )
    assert bad_tool.status_code == 422 and "client_tools" in bad_tool.json()["detail"]
    for tools in (
        [{"name": "t", "parameters": {"type": "string"}}],
        [{"name": "t"}, {"name": "t"}],
    ):
        refused = http.post(
            f"/v1/conversations/{conversation}/messages", json={"input": "x", "client_tools": tools}
        )
        assert refused.status_code == 422 and "client_tools" in refused.json()["detail"]
    listed = http.get(f"/v1/conversations/{conversation}/messages").json()
    assert [m["message_type"] for m in listed] == ["system_message"]


def test_models_lists_the_configured_handles(client: Letta) -> None:
    handles = [m.handle for m in client.models.list()]
    assert handles == ["convlog/builtin", "openai/gpt-fake", "openai/gpt-fake-mini"]
    assert client.models.embeddings.list() == []


def test_a_runs_steps_messages_usage_metrics_and_deletion(
    client: Letta, http: httpx.Client, fake: FakeOpenAI
) -> None:
    agent_id = new_agent(client)
    conversation = client.conversations.create(agent_id=agent_id).id
    fake.script = [Reply(tool_calls=[insert("runs")]), Reply(content="ok")]
    chunks = list(
        client.conversations.messages.create(
            conversation, messages=[{"role": "user", "content": "go"}]
        )
    )
    run_id = getattr(chunks[0], "run_id", None)
    assert isinstance(run_id, str)
    steps = list(client.runs.steps.list(run_id))
    assert len(steps) == 2
    step_ids = [getattr(c, "step_id", None) for c in chunks]
    assert [s.id for s in steps] == list(dict.fromkeys(i for i in step_ids if i))
    assert all((s.prompt_tokens or 0) > 0 for s in steps)
    listed = list(client.runs.messages.list(run_id))
    assert kinds(listed) == [
        "user_message",
        "tool_call_message",
        "tool_return_message",
        "assistant_message",
    ]
    usage = client.runs.usage.retrieve(run_id)
    assert usage.total_tokens and getattr(usage, "step_count", None) == 2
    metrics = http.get(f"/v1/runs/{run_id}/metrics").json()
    assert (metrics["num_steps"], metrics["tools_used"]) == (2, ["memory_insert"])
    found = list(client.runs.list(agent_ids=[agent_id], stop_reason="end_turn"))
    assert [r.id for r in found] == [run_id]
    assert http.get("/v1/runs/active", params={"agent_id": agent_id}).json() == []
    assert http.delete(f"/v1/runs/{run_id}").json() is None
    with pytest.raises(NotFoundError):
        client.runs.retrieve(run_id)
    assert http.delete(f"/v1/runs/{run_id}").status_code == 404


def test_a_background_run_streams_by_its_id(client: Letta, http: httpx.Client) -> None:
    agent_id = new_agent(client)
    conversation = client.conversations.create(agent_id=agent_id).id
    first = http.post(
        f"/v1/conversations/{conversation}/messages",
        json={"input": "hello", "background": True},
    )
    run_id = next(p["run_id"] for p in payloads(first) if p.get("run_id"))
    replay = list(client.runs.messages.stream(run_id, starting_after=0))
    assert kinds(replay)[-2:] == ["stop_reason", "usage_statistics"]
    assert http.post(f"/v1/runs/run-{uuid.uuid4()}/stream", json={}).status_code == 404
    plain = http.post(f"/v1/conversations/{conversation}/messages", json={"input": "again"})
    plain_run = next(p["run_id"] for p in payloads(plain) if p.get("run_id"))
    assert http.post(f"/v1/runs/{plain_run}/stream", json={}).status_code == 400
