"""Helpers for the turn tests: reading Server-Sent Events frame by frame over raw httpx, and
the few HTTP calls every turn test makes (agent, conversation, send, run, listing).

Frames are kept exactly as they arrived (``raw``) so tests can check the wire byte for byte,
with the monotonic time each one arrived (the fake model runs in this process, so its
``token_sent_at`` times are on the same clock).
"""

from __future__ import annotations

import codecs
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from tests.e2e.conftest import EMBEDDING, MODEL, spawn_server

__all__ = ["spawn_server"]  # re-exported for the cluster tests

DONE = "[DONE]"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
BUSY = (
    "CONFLICT: Cannot send a new message: Another request is currently being processed for "
    "this conversation. Please wait for the current request to complete."
)
NO_ACTIVE_RUNS = "INVALID_ARGUMENT: No active runs found for this conversation."
NOT_BACKGROUND = (
    "INVALID_ARGUMENT: Run was not created in background mode, so it cannot be retrieved."
)


def env_for(fake_base_url: str, **extra: str) -> dict[str, str]:
    """Server settings that route ``openai/…`` handles to the fake model."""
    return {"OPENAI_BASE_URL": fake_base_url, "OPENAI_API_KEY": "test", **extra}


@dataclass(frozen=True)
class Frame:
    raw: str  # the exact text of the event, blank line included
    event: str | None
    data: str
    at: float  # time.monotonic() when the frame was complete

    @property
    def done(self) -> bool:
        return self.event is None and self.data == DONE

    @property
    def payload(self) -> dict[str, Any]:
        loaded = json.loads(self.data)
        assert isinstance(loaded, dict), self.data
        return loaded

    @property
    def kind(self) -> str:
        """``[DONE]``, ``error`` for an ``event: error`` frame, else the message_type."""
        if self.done:
            return DONE
        if self.event is not None:
            return self.event
        return str(self.payload["message_type"])


def _parse(raw: str, at: float) -> Frame:
    event: str | None = None
    data: list[str] = []
    for line in raw[:-2].split("\n"):
        if line.startswith("event: "):
            assert event is None, f"two event lines in {raw!r}"
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data.append(line.removeprefix("data: "))
        else:
            raise AssertionError(f"unexpected SSE line {line!r} in {raw!r}")
    assert data, f"an SSE event without data: {raw!r}"
    return Frame(raw, event, "\n".join(data), at)


def iter_frames(response: httpx.Response) -> Iterator[Frame]:
    """The response's SSE frames as they arrive; the body must end on a frame boundary."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    buffer = ""
    for chunk in response.iter_raw():
        buffer += decoder.decode(chunk)
        while "\n\n" in buffer:
            raw, buffer = buffer.split("\n\n", 1)
            yield _parse(raw + "\n\n", time.monotonic())
    buffer += decoder.decode(b"", final=True)
    assert buffer == "", f"the stream ended inside an event: {buffer!r}"


@contextmanager
def open_stream(
    http: httpx.Client, path: str, body: dict[str, Any]
) -> Iterator[tuple[httpx.Response, Iterator[Frame]]]:
    """POST ``body`` and hand back the response (headers read) and its frames, lazily.

    Leaving the block closes the connection, whatever was read: that is how a test drops a
    client mid-stream.
    """
    with http.stream("POST", path, json=body) as response:
        yield response, iter_frames(response)


@dataclass(frozen=True)
class Sent:
    status: int
    headers: httpx.Headers
    frames: list[Frame]
    body: Any  # the JSON body when the answer is not a stream

    @property
    def kinds(self) -> list[str]:
        return [f.kind for f in self.frames]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [f.payload for f in self.frames if f.kind == kind]

    @property
    def run_id(self) -> str:
        for frame in self.frames:
            if not frame.done and "run_id" in frame.payload and frame.payload["run_id"]:
                return str(frame.payload["run_id"])
        raise AssertionError(f"no run_id in {self.kinds}")

    @property
    def answer(self) -> str:
        return "".join(m["content"] for m in self.of("assistant_message"))


def send(http: httpx.Client, conversation_id: str, body: dict[str, Any]) -> Sent:
    """One ``POST …/messages``, read to the end."""
    with open_stream(http, f"/v1/conversations/{conversation_id}/messages", body) as (
        response,
        frames,
    ):
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            assert response.status_code == 200
            return Sent(response.status_code, response.headers, list(frames), None)
        response.read()
        return Sent(response.status_code, response.headers, [], response.json())


def say(http: httpx.Client, conversation_id: str, text: str, **options: Any) -> Sent:
    """Send one user message (streaming unless told) and insist that the turn succeeded."""
    sent = send(http, conversation_id, {"messages": [{"role": "user", "content": text}], **options})
    if options.get("streaming", True):
        assert sent.kinds[-3:] == ["stop_reason", "usage_statistics", DONE], sent.frames
        assert sent.of("stop_reason") == [
            {"message_type": "stop_reason", "stop_reason": "end_turn"}
        ]
    else:
        assert sent.status == 200, sent.body
    return sent


def create_agent(http: httpx.Client) -> str:
    response = http.post(
        "/v1/agents/",
        json={
            "name": f"e2e-turns-{uuid.uuid4().hex[:8]}",
            "model": MODEL,
            "embedding": EMBEDDING,
            "memory_blocks": [
                {"label": "human", "value": "Name: Ada"},
                {"label": "persona", "value": "I am Sam."},
            ],
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def create_conversation(http: httpx.Client, agent_id: str) -> str:
    response = http.post("/v1/conversations/", params={"agent_id": agent_id}, json={})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def get_run(http: httpx.Client, run_id: str) -> dict[str, Any]:
    response = http.get(f"/v1/runs/{run_id}")
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


def list_runs(http: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = http.get("/v1/runs/", params=params)
    assert response.status_code == 200, response.text
    runs: list[dict[str, Any]] = response.json()
    return runs


def messages(http: httpx.Client, conversation_id: str, **params: Any) -> list[dict[str, Any]]:
    params.setdefault("order", "asc")
    params.setdefault("limit", 1000)
    response = http.get(f"/v1/conversations/{conversation_id}/messages", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def events(http: httpx.Client, conversation_id: str) -> list[dict[str, Any]]:
    response = http.get(f"/v1/conversations/{conversation_id}/events", params={"limit": 1000})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def cancel(http: httpx.Client, conversation_id: str) -> httpx.Response:
    return http.post(f"/v1/conversations/{conversation_id}/cancel")


def prompt_texts(body: dict[str, Any]) -> list[str]:
    """The message contents of a request the fake model received."""
    return [str(m.get("content", "")) for m in body.get("messages") or []]


def busy_body(body: object) -> bool:
    """Letta's busy 409 body, naming the run that holds the conversation once its claim is in
    the log (a request that meets only the fast lock, an instant before, has no run to name).
    """
    if not isinstance(body, dict) or body.get("detail") != BUSY:
        return False
    extra = set(body) - {"detail"}
    return extra == set() or (extra == {"run_id"} and str(body["run_id"]).startswith("run-"))
