"""A page's rows: its ``events`` and ``messages`` rows, made from the stored rows in one pass
(the export's hot loop), whether in the export's own process or in a worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from service.export.decoding import DIGITS, LONG_NUMBER, TRANSCODED, EventDecoder
from service.export.messages import (
    COMPACTED,
    MESSAGE_APPENDED,
    MESSAGE_TOPICS,
    Owner,
    message_row,
    needs_context_row,
    plain_message_row,
    summary_row,
)
from service.export.ports import LogRow
from service.export.tables import EVENTS, Columns, columns_of


def page_rows(
    decoder: EventDecoder, rows: list[LogRow], owners: dict[str, Owner]
) -> tuple[Columns, list[tuple[Any, ...]]]:
    """A page's ``events`` (as columns) and ``messages`` rows; ``owners`` has each message's
    conversation. The export's hot loop: ``EventDecoder.read``'s quick way, inline, and rows
    of plain messages made from the fields without a typed event (``plain_message_row``)."""
    if not rows:
        return columns_of("events", []), []
    positions, streams, versions, topics, states, hashes, log_hashes = zip(*rows, strict=True)
    stamps: list[str] = []
    actors: list[dict[str, Any] | None] = []
    payloads: list[str] = []
    messages: list[tuple[Any, ...]] = []
    loads, dumps, quick = orjson.loads, orjson.dumps, decoder.quick_topics
    digits, marker, long_number = DIGITS, TRANSCODED, LONG_NUMBER
    for position, stream, version, topic, state in zip(
        positions, streams, versions, topics, states, strict=True
    ):
        fields = None
        zeroed = state.translate(digits)  # quick_json, inline
        if (
            zeroed.count(marker) == 1
            and long_number not in zeroed
            and (quick.get(topic) or decoder.quick_topic(topic))
        ):
            try:
                fields = loads(state)
                stamp = fields.pop("timestamp")
                at = stamp["_data_"] if stamp["_type_"] == "datetime_iso" else None
            except (orjson.JSONDecodeError, KeyError, TypeError):  # the mapper's way, below
                fields = None
        if fields is not None and at is not None:
            by = fields.pop("by", None)
            payload = dumps(fields).decode()
            if topic == MESSAGE_APPENDED:
                if needs_context_row(fields["message_type"], fields["extra"]):
                    event = decoder.typed(topic, fields, stream, version, at)
                    messages.append(message_row(event, position, owners[stream], at))
                else:
                    messages.append(plain_message_row(fields, position, owners[stream], at))
            elif topic == COMPACTED:
                event = decoder.typed(topic, fields, stream, version, at)
                messages.append(summary_row(event, position, owners[stream], at))
        else:
            wanted = topic in MESSAGE_TOPICS
            at, by, payload, event = decoder.read(stream, version, topic, state, wanted)
            if topic == MESSAGE_APPENDED:
                messages.append(message_row(event, position, owners[stream], at))
            elif topic == COMPACTED:
                messages.append(summary_row(event, position, owners[stream], at))
        stamps.append(at)
        actors.append(by)
        payloads.append(payload)
    events = [
        list(positions),
        list(streams),
        list(versions),
        list(topics),
        stamps,
        actors,
        payloads,
        [None if h is None else h.hex() for h in hashes],
        [None if h is None else h.hex() for h in log_hashes],
    ]
    return dict(zip([c.name for c in EVENTS], events, strict=True)), messages


@dataclass(frozen=True)
class Made:
    """A page's rows: columns, or a file of the sink's bytes a worker wrote; and, from a
    worker, the page's rows that the export's own process folds (the runs')."""

    data: dict[str, Columns | Path]
    counts: dict[str, int]
    last_position: int
    folded: list[LogRow] = field(default_factory=list)


def make(decoder: EventDecoder, rows: list[LogRow], owners: dict[str, Owner]) -> Made:
    """A page's rows as ``Made``, with a table only if the page has rows of it."""
    events, messages = page_rows(decoder, rows, owners)
    data: dict[str, Columns | Path] = {}
    if rows:
        data["events"] = events
    if messages:
        data["messages"] = columns_of("messages", messages)
    return Made(data, {"events": len(rows), "messages": len(messages)}, rows[-1][0] if rows else 0)
