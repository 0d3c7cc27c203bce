"""What the model sees: the conversation's in-context messages, cached per process.

Messages never change once appended, so a turn reads only those appended since the previous
turn this process served; a compaction or a reset bumps the conversation's context epoch and
the cache starts over, and a recompiled system message (after a memory edit) bumps its system
epoch and the cache re-reads that one message.

Rows become OpenAI-shaped messages here, in one place for the cache and the step loop: an
assistant's text and the tool calls of the same step are one assistant message, each tool
result is a ``tool`` message naming its call, an approval request is the assistant's tool
calls, and the summary is a user message (as in Letta). Reasoning and approval answers are
not sent back to the model.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from threading import Lock

from projections.message_reads import Window, model_rows, system_row
from projections.messages import ContextRow
from projections.store import ViewStore
from service.model import ChatMessage, ToolCall

SKIPPED_TYPES = ("reasoning_message", "hidden_reasoning_message", "approval_response_message")


def to_chat(rows: Sequence[ContextRow]) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    last_step: str | None = None
    for row in rows:
        if row.message_type in SKIPPED_TYPES:
            continue
        if row.calls:
            calls = tuple(ToolCall(c["tool_call_id"], c["name"], c["arguments"]) for c in row.calls)
            previous = messages[-1] if messages else None
            if (
                previous is not None
                and previous.role == "assistant"
                and not previous.tool_calls
                and last_step is not None
                and last_step == row.step_id
            ):
                messages[-1] = ChatMessage("assistant", previous.content, calls)
            else:
                messages.append(ChatMessage("assistant", "", calls))
        elif row.role == "tool":
            messages.append(ChatMessage("tool", row.text, tool_call_id=row.tool_call_id))
        elif row.role == "summary":
            messages.append(ChatMessage("user", row.text))
        elif row.role in ("system", "user", "assistant"):
            messages.append(ChatMessage(row.role, row.text, images=row.images))  # type: ignore[arg-type]
        last_step = row.step_id
    return messages


@dataclass
class _Entry:
    context_from: int
    version: tuple[int, int]  # (context epoch, system epoch)
    last_position: int
    rows: list[ContextRow] = field(default_factory=list)
    # ``to_chat(rows)``, kept so a turn converts only what is new (a step never joins an
    # earlier step's messages, so converting the new rows alone gives the same result).
    chat: list[ChatMessage] = field(default_factory=list)


class ContextCache:
    def __init__(self, store: ViewStore, max_conversations: int = 512) -> None:
        self.store = store
        self.max_conversations = max_conversations
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = Lock()

    def messages(self, window: Window, version: tuple[int, int]) -> list[ChatMessage]:
        return list(self._entry(window, version).chat)

    def rows(self, window: Window, version: tuple[int, int]) -> list[ContextRow]:
        return list(self._entry(window, version).rows)

    def _entry(self, window: Window, version: tuple[int, int]) -> _Entry:
        stream_id = window.conversation_id
        with self._lock:
            entry = self._entries.get(stream_id)
        # Read outside the lock; a racing turn on the same conversation cannot exist (the claim).
        if (
            entry is None
            or entry.context_from != window.context_from
            or entry.version[0] != version[0]
        ):
            fresh = model_rows(self.store, window)
            rows, chat, last = fresh, to_chat(fresh), 0
        else:
            rows, chat, last = entry.rows, entry.chat, entry.last_position
            if entry.version[1] != version[1]:
                system = system_row(self.store, window)
                rows = [*system, *rows[1:]]
                chat = [*to_chat(system), *chat[1:]]
            fresh = model_rows(self.store, window, after=last)
            rows, chat = rows + fresh, chat + to_chat(fresh)
        last = max([last] + [row.position for row in fresh])
        updated = _Entry(window.context_from, version, last, rows, chat)
        with self._lock:
            self._entries[stream_id] = updated
            self._entries.move_to_end(stream_id)
            while len(self._entries) > self.max_conversations:
                self._entries.popitem(last=False)
        return updated
