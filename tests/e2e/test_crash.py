"""A server killed mid-turn (kill -9) and started again on the same SQLite files: the
conversation takes a new turn within seconds of the restart, not a lease later, and the dead
turn is recorded failed with nothing of it in the context."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.e2e.turns_support import (
    create_agent,
    create_conversation,
    env_for,
    list_runs,
    messages,
    open_stream,
    spawn_server,
)
from tests.fake_openai import FakeOpenAI


def test_a_restarted_server_takes_the_conversation_back_at_once(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    env = env_for(fake_openai.base_url, CONVLOG_DATA_DIR=str(tmp_path / "data"))
    fake_openai.first_token_delay = 30.0  # the turn is in its model call when it dies
    with (
        spawn_server(env, tmp_path / "first") as (url, first),
        httpx.Client(base_url=url, timeout=30.0) as http,
    ):
        conversation = create_conversation(http, create_agent(http))
        path = f"/v1/conversations/{conversation}/messages"
        with open_stream(http, path, {"input": "lost with its process"}) as (response, _):
            assert response.status_code == 200
            first.kill()
            first.wait(timeout=10)
    fake_openai.first_token_delay = 0.0
    with spawn_server(env, tmp_path / "second") as (url, _):
        restarted = time.monotonic()
        with httpx.Client(base_url=url, timeout=30.0) as http:
            body = {"input": "after the crash", "streaming": False}
            while (sent := http.post(path, json=body)).status_code == 409:
                assert time.monotonic() - restarted < 8, "the dead turn still holds it"
                time.sleep(0.1)
            assert sent.status_code == 200, sent.text
            runs = list_runs(http, conversation_id=conversation, order="asc")
            texts = [str(m.get("content")) for m in messages(http, conversation)]
    assert [r["status"] for r in runs] == ["failed", "completed"]
    assert runs[0]["metadata"]["error"]["detail"] == "process gone"
    assert not any("lost with" in text for text in texts)
    assert any("after the crash" in text for text in texts)
