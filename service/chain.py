"""The hash chain that makes the log tamper-evident (docs/adr-005-tamper-evidence.md).

Every stored event has two hashes, written in the transaction that stores it:

- its **stream hash**, over the previous event of its stream's stream hash and its own stored
  bytes (stream id, version, topic, state): a conversation's events can be checked alone;
- its **log hash**, over the previous event in the log's order's log hash, its position and its
  stream hash: one value, the head, stands for the whole log up to it.

Changing, removing, inserting or reordering any event breaks a link after it. Anyone who can
write the database can also recompute every hash after a change, so an auditor keeps the head
(``convlog audit head``) somewhere else, and later checks that the log still leads to it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from uuid import UUID

GENESIS = bytes(32)  # the "previous hash" of a stream's first event, and of the log's first


def stream_link(previous: bytes, stream_id: UUID, version: int, topic: str, state: bytes) -> bytes:
    """An event's stream hash. Lengths are fixed or prefixed, so no two inputs run together."""
    topic_bytes = topic.encode("utf-8")
    return hashlib.sha256(
        b"".join(
            (
                previous,
                stream_id.bytes,
                version.to_bytes(8, "big"),
                len(topic_bytes).to_bytes(4, "big"),
                topic_bytes,
                state,
            )
        )
    ).digest()


def log_link(previous: bytes, position: int, stream_hash: bytes) -> bytes:
    """An event's log hash."""
    return hashlib.sha256(previous + position.to_bytes(8, "big") + stream_hash).digest()


@dataclass(frozen=True)
class NewEvent:
    """An event being stored, with the position the store gave it."""

    position: int
    stream_id: UUID
    version: int
    topic: str
    state: bytes


@dataclass(frozen=True)
class Link:
    position: int
    stream_id: UUID
    version: int
    stream_hash: bytes
    log_hash: bytes


def extend(
    head: bytes, previous_in_stream: Mapping[UUID, bytes], events: Iterable[NewEvent]
) -> list[Link]:
    """The links of events appended after ``head``, in log order. ``previous_in_stream`` has
    the stream hash of the event before each stream's first one here (absent: a new stream).
    """
    last = dict(previous_in_stream)
    links = []
    for e in events:
        stream_hash = stream_link(
            last.get(e.stream_id, GENESIS), e.stream_id, e.version, e.topic, e.state
        )
        head = log_link(head, e.position, stream_hash)
        last[e.stream_id] = stream_hash
        links.append(Link(e.position, e.stream_id, e.version, stream_hash, head))
    return links
