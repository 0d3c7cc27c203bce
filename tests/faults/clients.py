"""Clients that keep sending turns through faults, retrying as a careful client would:

- an answer that ended with ``[DONE]`` and ``end_turn`` confirms the message;
- a run that failed (an error frame), a 503 or a 5xx: the message did not enter; send it
  again with a new otid;
- no answer (the connection dropped, or nothing for ``read_timeout``): the outcome is unknown;
  send it again with the same otid, so that a turn saved after all is not run twice;
- 409 (busy): the same otid again, after a moment.

A request with no answer within ``read_timeout`` counts as never answered: the server must
always answer, an error included.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

ANSWERED, FAILED, UNKNOWN, BUSY = "answered", "failed", "unknown", "busy"


@dataclass
class Tally:
    confirmed: list[str] = field(default_factory=list)
    requests: int = 0
    unanswered: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    longest_request_seconds: float = 0.0
    successes: list[float] = field(default_factory=list)  # monotonic times of good turns


class Writer(threading.Thread):
    """Sends ``<prefix> <n>`` to one conversation, one message at a time, until stopped."""

    def __init__(
        self,
        target: Callable[[], str],
        conversation: str,
        prefix: str,
        read_timeout: float = 30.0,
    ) -> None:
        super().__init__(daemon=True, name=f"writer {prefix}")
        self.target = target  # the base URL to use now (a load balancer's choice)
        self.conversation = conversation
        self.prefix = prefix
        self.read_timeout = read_timeout
        self.tally = Tally()
        self.stopping = threading.Event()

    def run(self) -> None:
        number = 0
        while not self.stopping.is_set():
            text = f"{self.prefix} {number}"
            otid = str(uuid.uuid4())
            while not self.stopping.is_set():
                outcome = self.send(text, otid)
                if outcome == ANSWERED:
                    self.tally.confirmed.append(text)
                    self.tally.successes.append(time.monotonic())
                    number += 1
                    break
                if outcome == FAILED:
                    otid = str(uuid.uuid4())
                time.sleep(0.1)

    def send(self, text: str, otid: str) -> str:
        body = {"messages": [{"role": "user", "content": text, "otid": otid}]}
        path = f"/v1/conversations/{self.conversation}/messages"
        timeout = httpx.Timeout(10.0, read=self.read_timeout)
        started = time.monotonic()
        self.tally.requests += 1
        try:
            with (
                httpx.Client(base_url=self.target(), timeout=timeout) as http,
                http.stream("POST", path, json=body) as response,
            ):
                if response.status_code != 200:
                    response.read()
                    self.tally.statuses[str(response.status_code)] += 1
                    return BUSY if response.status_code == 409 else FAILED
                frames = [line for line in response.iter_lines() if line.startswith("data: ")]
        except httpx.ReadTimeout:
            self.tally.unanswered += 1
            self.tally.statuses["no answer"] += 1
            return UNKNOWN
        except httpx.TransportError:
            self.tally.statuses["connection"] += 1
            return UNKNOWN
        finally:
            elapsed = time.monotonic() - started
            self.tally.longest_request_seconds = max(self.tally.longest_request_seconds, elapsed)
        if not frames or frames[-1] != "data: [DONE]":
            self.tally.statuses["cut short"] += 1
            return UNKNOWN
        if any('"stop_reason":"end_turn"' in frame for frame in frames):
            self.tally.statuses["200"] += 1
            return ANSWERED
        self.tally.statuses["run failed"] += 1
        return FAILED


def user_texts(base_url: str, conversation: str) -> list[str]:
    """Every user message of the conversation, in order (pages of 1000)."""
    found: list[str] = []
    after: str | None = None
    with httpx.Client(base_url=base_url, timeout=30.0) as http:
        while True:
            params: dict[str, str | int] = {"order": "asc", "limit": 1000}
            if after is not None:
                params["after"] = after
            page = http.get(f"/v1/conversations/{conversation}/messages", params=params)
            page.raise_for_status()
            items = page.json()
            found += [m["content"] for m in items if m["message_type"] == "user_message"]
            if len(items) < 1000:
                return found
            after = items[-1]["id"]


def losses(confirmed: list[str], listed: list[str]) -> tuple[int, int]:
    """(confirmed messages missing from the listing, messages listed more than once)."""
    counts = Counter(listed)
    lost = sum(1 for text in confirmed if counts[text] == 0)
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    return lost, duplicated
