"""What the model sees: the conversation's in-context messages, cached per process.

Messages never change once appended, so a turn reads only those appended since the previous
turn this process served; a changed context (a recompiled system message, later a compaction)
bumps the conversation's epoch and the cache starts over.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from threading import Lock

from projections.messages import Window, context_rows
from projections.store import ViewStore
from service.model import ChatMessage

# The summary reaches the model as a user message, as in Letta.
MODEL_ROLES = ("system", "user", "assistant", "summary")


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

    def messages(self, window: Window, epoch: int) -> list[ChatMessage]:
        stream_id = window.conversation_id
        with self._lock:
            entry = self._entries.get(stream_id)
        # Read outside the lock; a racing turn on the same conversation cannot exist (the claim).
        if entry is None or (entry.context_from, entry.epoch) != (window.context_from, epoch):
            fresh = context_rows(self.store, window)
            entry = _Entry(window.context_from, epoch, 0)
        else:
            fresh = context_rows(self.store, window, after=entry.last_position)
        messages = entry.messages + [
            ChatMessage("user" if role == "summary" else role, text)  # type: ignore[arg-type]
            for _, role, text in fresh
            if role in MODEL_ROLES
        ]
        last = max([entry.last_position] + [position for position, _, _ in fresh])
        updated = _Entry(window.context_from, epoch, last, messages)
        with self._lock:
            self._entries[stream_id] = updated
            self._entries.move_to_end(stream_id)
            while len(self._entries) > self.max_conversations:
                self._entries.popitem(last=False)
        return list(messages)
