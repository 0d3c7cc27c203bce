"""What the model sees: the conversation's in-context messages, cached per process.

Messages never change once appended, so a turn reads only those appended since the previous
turn this process served; a changed context (a recompiled system message, later a compaction)
bumps the conversation's epoch and the cache starts over.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from threading import Lock
from typing import Any

from projections.messages import context_rows
from projections.store import ViewStore
from service.model import ChatMessage

MODEL_ROLES = ("system", "user", "assistant")


@dataclass
class _Entry:
    context_from: int
    epoch: int
    last_position: int
    messages: list[ChatMessage] = field(default_factory=list)


class ContextCache:
    def __init__(self, store: ViewStore, max_conversations: int = 512) -> None:
        self.store = store
        self.max_conversations = max_conversations
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = Lock()

    def messages(self, stream_id: str, context_from: int, epoch: int) -> list[ChatMessage]:
        with self._lock:
            entry = self._entries.get(stream_id)
            if entry is None or (entry.context_from, entry.epoch) != (context_from, epoch):
                entry = _Entry(context_from, epoch, context_from - 1)
        # Read outside the lock; a racing turn on the same conversation cannot exist (the claim).
        fresh = context_rows(self.store, stream_id, entry.last_position)
        messages = entry.messages + [
            ChatMessage(role, plain_text(content))  # type: ignore[arg-type]
            for _, role, content in fresh
            if role in MODEL_ROLES
        ]
        updated = _Entry(
            context_from, epoch, fresh[-1][0] if fresh else entry.last_position, messages
        )
        with self._lock:
            self._entries[stream_id] = updated
            self._entries.move_to_end(stream_id)
            while len(self._entries) > self.max_conversations:
                self._entries.popitem(last=False)
        return list(messages)


def plain_text(content: Any) -> str:
    """Plain text of a message's content (a string, or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""
