"""Stored events decoded for the export: each event's state once, with orjson when it holds
nothing but JSON and its timestamp (nearly always), else by the application's own mapper, into
its time, who caused it, its fields as JSON text and, when asked for, the typed domain event."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import JSONTranscoder, StoredEvent
from eventsourcing.utils import resolve_topic

from service.application import ConvlogApplication

TRANSCODED = b'"_type_"'
# orjson reads an integer beyond 64 bits as a float: a state with 19 digits in a row (such an
# integer, or a longer one, or digits in a text) goes the mapper's way. Digits become zeros
# first, so that one search finds any of them.
DIGITS = bytes.maketrans(b"123456789", b"000000000")
LONG_NUMBER = b"0" * 19


def quick_json(state: bytes) -> bool:
    """Whether orjson reads ``state`` as the mapper would, its timestamp the only transcoded
    value in it."""
    zeroed = state.translate(DIGITS)
    return zeroed.count(TRANSCODED) == 1 and LONG_NUMBER not in zeroed


_NOT_FIELDS = ("originator_id", "originator_version", "timestamp")


def payload_json(fields: dict[str, Any]) -> str:
    """An event's fields as compact JSON text (times in ISO 8601, UUIDs hyphenated)."""
    try:
        return orjson.dumps(fields).decode()
    except TypeError:  # an integer beyond 64 bits, or a type orjson does not know
        return json.dumps(fields, separators=(",", ":"), ensure_ascii=False, default=_plain)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


Decoded = tuple[str, dict[str, Any] | None, str, Any]  # time (ISO 8601), by, payload, event


class EventDecoder:
    """Stored events as the application's mapper would decode them (upcasters included): the
    time, who caused it, the fields as JSON text, and the typed event when asked for.

    The quick way parses the stored JSON with orjson, when it is plain JSON whose only
    transcoded value is the timestamp (no other times or UUIDs inside): nearly every event.
    Anything else goes the mapper's way."""

    def __init__(self, app: ConvlogApplication) -> None:
        self._app = app
        mapper = app.mapper
        self._raw = (
            mapper.cipher is None
            and mapper.compressor is None
            and type(mapper.transcoder) is JSONTranscoder
        )
        self._classes: dict[str, tuple[type[Any], int]] = {}
        self._uuids: dict[str, UUID] = {}
        # Topics the quick way takes as they are: plain JSON, a class never upcast.
        self.quick_topics: dict[str, bool] = {}

    def event_class(self, topic: str) -> tuple[type[Any], int]:
        """The class of a topic, and its class version."""
        found = self._classes.get(topic)
        if found is None:
            cls = resolve_topic(topic)
            found = self._classes[topic] = (cls, getattr(cls, "class_version", 1))
        return found

    def quick_topic(self, topic: str) -> bool:
        """Whether the quick way may take this topic's events without upcasting them."""
        found = self.quick_topics[topic] = self._raw and self.event_class(topic)[1] == 1
        return found

    def typed(
        self, topic: str, fields: dict[str, Any], stream_id: str, version: int, at: str
    ) -> Any:
        """The domain event of quickly decoded ``fields`` (which it takes over)."""
        return self._typed(self.event_class(topic)[0], fields, stream_id, version, at)

    def uuid(self, stream_id: str) -> UUID:
        found = self._uuids.get(stream_id)
        if found is None:
            if len(self._uuids) > 100_000:
                self._uuids.clear()
            found = self._uuids[stream_id] = UUID(stream_id)
        return found

    def _quick(self, state: bytes) -> dict[str, Any] | None:
        """The stored JSON parsed, if the quick way may take it (its timestamp still
        transcoded, ``by`` and the class version still in): else None."""
        if not self._raw or not quick_json(state):
            return None
        try:
            fields = orjson.loads(state)
        except orjson.JSONDecodeError:  # e.g. an integer beyond 64 bits: the slow way
            return None
        stamp = fields.get("timestamp") if isinstance(fields, dict) else None
        if not isinstance(stamp, dict) or stamp.get("_type_") != "datetime_iso":
            return None
        found: dict[str, Any] = fields
        return found

    @staticmethod
    def _upcast(cls: type[Any], latest: int, fields: dict[str, Any]) -> None:
        stored = fields.pop("class_version", 1)
        while stored < latest:
            getattr(cls, f"upcast_v{stored}_v{stored + 1}")(fields)
            stored += 1

    def _typed(
        self, cls: type[Any], fields: dict[str, Any], stream_id: str, version: int, at: str
    ) -> Any:
        """The domain event of quickly decoded ``fields`` (which it takes over), as the
        mapper makes it."""
        fields["originator_id"] = self.uuid(stream_id)
        fields["originator_version"] = version
        fields["timestamp"] = datetime.fromisoformat(at)
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", fields)
        return event

    def _slow(self, stream_id: str, version: int, topic: str, state: bytes) -> Decoded:
        """The mapper's way."""
        event, by = self._app.decode(StoredEvent(self.uuid(stream_id), version, topic, state))
        fields = {k: v for k, v in vars(event).items() if k not in _NOT_FIELDS}
        at: datetime = vars(event)["timestamp"]
        return at.isoformat(), by, payload_json(fields), event

    def read(self, stream_id: str, version: int, topic: str, state: bytes, typed: bool) -> Decoded:
        """One stored event; its typed event only if ``typed`` (else None)."""
        fields = self._quick(state)
        if fields is None:
            return self._slow(stream_id, version, topic, state)
        at: str = fields.pop("timestamp")["_data_"]
        by = fields.pop("by", None)
        cls, latest = self.event_class(topic)
        if "class_version" in fields or latest > 1:
            self._upcast(cls, latest, fields)
        payload = payload_json(fields)
        return at, by, payload, self._typed(cls, fields, stream_id, version, at) if typed else None
