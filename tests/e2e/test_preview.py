"""``POST …/messages/preview-raw-payload`` against the running server wired to the fake
OpenAI server: the preview is byte for byte the body the following send makes the provider
receive, with request-scoped skills or system prompt, and it writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import MODEL, start_server
from tests.e2e.turns_support import env_for
from tests.fake_openai import FakeOpenAI

pytestmark = pytest.mark.e2e

SKILL = {"name": "pdf", "description": "Read PDFs.\nMore.", "location": "skills/pdf/SKILL.md"}


@pytest.fixture(scope="module")
def preview_url(
    fake_openai_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    root = tmp_path_factory.mktemp("convlog-preview")
    env = env_for(fake_openai_server.base_url, CONVLOG_DATA_DIR=str(root / "data"))
    with start_server(env, root) as url:
        yield url


@pytest.fixture
def http(preview_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=preview_url, timeout=30.0) as c:
        yield c


def conversation(http: httpx.Client) -> str:
    agent = http.post(
        "/v1/agents/",
        json={"model": MODEL, "memory_blocks": [{"label": "human", "value": "Ada"}]},
    )
    assert agent.status_code == 200, agent.text
    made = http.post("/v1/conversations/", params={"agent_id": agent.json()["id"]}, json={})
    return str(made.json()["id"])


def preview(http: httpx.Client, conversation_id: str, **body: Any) -> dict[str, Any]:
    response = http.post(
        f"/v1/conversations/{conversation_id}/messages/preview-raw-payload", json=body
    )
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload


def test_the_preview_is_what_the_send_sends(http: httpx.Client, fake_openai: FakeOpenAI) -> None:
    conv = conversation(http)
    body = {"input": "hello there", "client_skills": [SKILL]}
    before = http.get(f"/v1/conversations/{conv}/messages").json()
    shown = preview(http, conv, **body)
    assert http.get(f"/v1/conversations/{conv}/messages").json() == before
    assert fake_openai.requests == []  # nothing reached the provider
    sent = http.post(f"/v1/conversations/{conv}/messages", json={**body, "streaming": False})
    assert sent.status_code == 200, sent.text
    assert [r.body for r in fake_openai.requests] == [shown]
    system = shown["messages"][0]["content"]
    assert system.endswith(
        "<available_skills>\nskills\n└── pdf/\n    └── SKILL.md (Read PDFs.)\n</available_skills>"
    )
    stored = http.get(f"/v1/conversations/{conv}/messages", params={"order": "asc"}).json()[0]
    assert "<available_skills>" not in stored["content"]  # for that request only


def test_override_system_is_sent_as_given_without_skills(http: httpx.Client) -> None:
    conv = conversation(http)
    shown = preview(http, conv, input="hi", override_system="Be brief.", client_skills=[SKILL])
    assert shown["messages"][0] == {"role": "system", "content": "Be brief."}
    assert shown["messages"][-1] == {"role": "user", "content": "hi"}


def test_bad_previews(http: httpx.Client) -> None:
    conv = conversation(http)
    path = f"/v1/conversations/{conv}/messages/preview-raw-payload"
    assert http.post(path, json={"messages": []}).status_code == 422
    missing = "/v1/conversations/conv-00000000-0000-4000-8000-000000000000"
    assert (
        http.post(f"{missing}/messages/preview-raw-payload", json={"input": "x"}).status_code == 404
    )
    no_skill_name = http.post(path, json={"input": "x", "client_skills": [{"description": "d"}]})
    assert no_skill_name.status_code == 422


def test_images_reach_the_model_now_and_on_later_turns(
    http: httpx.Client, fake_openai: FakeOpenAI
) -> None:
    conv = conversation(http)
    parts = [
        {"type": "text", "text": "what is this?"},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
    ]
    sent = http.post(
        f"/v1/conversations/{conv}/messages",
        json={"messages": [{"role": "user", "content": parts}], "streaming": False},
    )
    assert sent.status_code == 200, sent.text
    wanted = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
    ]
    assert fake_openai.requests[-1].body["messages"][-1] == {"role": "user", "content": wanted}
    later = preview(http, conv, input="and now?")
    assert {"role": "user", "content": wanted} in later["messages"]  # read back from the views
    letta_file = {"type": "image", "source": {"type": "letta", "file_id": "file-1"}}
    refused = http.post(
        f"/v1/conversations/{conv}/messages",
        json={"input": [letta_file], "streaming": False},
    )
    assert refused.status_code == 422
