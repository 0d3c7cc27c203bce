"""The Conversation aggregate.

State stays light (counts, ids, settings): message bodies live only in the events and in the
message-list projection, so loading a conversation costs the same at 10 or 10,000 messages.
A message's position in the conversation is the version of its MessageAppended event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from domain import ids
from domain.errors import (
    BUSY,
    NOTHING_TO_COMPACT,
    PENDING_APPROVAL,
    BadRequest,
    Busy,
    Conflict,
    InvalidArgument,
    NotFound,
)
from domain.tools import ToolCause

UPDATABLE_FIELDS = ("summary", "model", "model_settings")


class Conversation(Aggregate):
    TOPIC = "convlog.Conversation"
    # Snapshot state version: 2 added pending_approval; 3 added forked_from and key_shift;
    # 4 added active_holder.
    class_version = 4

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["pending_approval"] = None

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        state["forked_from"] = None
        state["key_shift"] = 0

    @staticmethod
    def upcast_v3_v4(state: dict[str, Any]) -> None:
        state["active_holder"] = None

    @staticmethod
    def create_id(agent_id: str, is_default: bool) -> UUID:
        """An agent's own context has a derived id, found without a lookup."""
        return ids.default_conversation_id(ids.to_uuid(agent_id)) if is_default else uuid4()

    class Created(Aggregate.Created):
        TOPIC = "convlog.Conversation.Created"
        organization_id: str
        agent_id: str
        summary: str | None
        model: str | None
        model_settings: dict[str, Any] | None
        isolated_blocks: list[dict[str, Any]]
        is_default: bool
        created_by_id: str

    @event(Created)
    def __init__(
        self,
        organization_id: str,
        agent_id: str,
        summary: str | None,
        model: str | None,
        model_settings: dict[str, Any] | None,
        isolated_blocks: list[dict[str, Any]],
        is_default: bool,
        created_by_id: str,
    ) -> None:
        self.organization_id = organization_id
        self.agent_id = agent_id
        self.summary = summary
        self.model = model
        self.model_settings = model_settings
        self.isolated_blocks = isolated_blocks
        # The agent's own context for agent-direct mode; never listed as a conversation.
        self.is_default = is_default
        self.created_by_id = created_by_id
        self.last_updated_by_id = created_by_id
        self.deleted = False
        self.message_count = 0
        self.system_message_id: str | None = None
        # One active run at a time (decisions §3): the claim, and when it lapses if never renewed.
        self.active_run_id: str | None = None
        self.lease_until: datetime | None = None
        # The server process running it: when that process is gone, the claim lapses at once.
        self.active_holder: str | None = None
        # The in-context window after the latest compaction: the summary, then the messages
        # from ``context_from`` on (the system message is always first).
        self.summary_message_id: str | None = None
        self.context_from: int | None = None
        # The approval request the next input must answer: {message_id, run_id, tool_calls}.
        self.pending_approval: dict[str, Any] | None = None
        # A fork lists its parent's messages up to a point, then its own (see ``fork_from``):
        # its own message at version p has the listing key p + key_shift. Plain: shift 0.
        self.forked_from: dict[str, Any] | None = None
        self.key_shift = 0

    def next_key(self) -> int:
        """The listing key the next event of this conversation gets."""
        return self.version + 1 + self.key_shift

    # -- messages --------------------------------------------------------------------------

    class MessageAppended(Aggregate.Event):
        """One listed message: its position in the conversation is this event's version."""

        TOPIC = "convlog.Conversation.MessageAppended"
        message_id: str
        role: str
        message_type: str
        content: Any
        run_id: str | None
        step_id: str | None
        otid: str | None
        extra: dict[str, Any]

    def append_message(
        self,
        message_id: str,
        role: str,
        message_type: str,
        content: Any,
        run_id: str | None = None,
        step_id: str | None = None,
        otid: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self._check_alive()
        self._append_message(
            message_id=message_id,
            role=role,
            message_type=message_type,
            content=content,
            run_id=run_id,
            step_id=step_id,
            otid=otid,
            extra=extra or {},
        )

    @event(MessageAppended)
    def _append_message(
        self,
        message_id: str,
        role: str,
        message_type: str,
        content: Any,
        run_id: str | None,
        step_id: str | None,
        otid: str | None,
        extra: dict[str, Any],
    ) -> None:
        self.message_count += 1
        if role == "system" and self.system_message_id is None:
            self.system_message_id = message_id
        if message_type == "approval_request_message":
            self.pending_approval = {
                "message_id": message_id,
                "run_id": run_id,
                "tool_calls": extra.get("tool_calls") or [],
            }
        elif message_type == "approval_response_message":
            self.pending_approval = None

    def check_no_pending_approval(self) -> None:
        if self.pending_approval is not None:
            raise Conflict(PENDING_APPROVAL)

    class Updated(Aggregate.Event):
        TOPIC = "convlog.Conversation.Updated"
        changes: dict[str, Any]
        updated_by_id: str

    def update(self, changes: dict[str, Any], updated_by_id: str) -> None:
        """Apply only the fields present; ``null`` cannot clear a field (Letta semantics)."""
        self._check_alive()
        present = {k: v for k, v in changes.items() if k in UPDATABLE_FIELDS and v is not None}
        self._update(changes=present, updated_by_id=updated_by_id)

    @event(Updated)
    def _update(self, changes: dict[str, Any], updated_by_id: str) -> None:
        for key, value in changes.items():
            setattr(self, key, value)
        self.last_updated_by_id = updated_by_id

    class SystemMessageRecompiled(Aggregate.Event):
        TOPIC = "convlog.Conversation.SystemMessageRecompiled"
        message_id: str
        content: str

    def recompile_system_message(self, content: str) -> None:
        """Replace the system message in place (same id): after a block changed."""
        self._check_alive()
        if self.system_message_id is None:
            raise InvalidArgument("This conversation has no system message to recompile")
        self._recompile_system_message(message_id=self.system_message_id, content=content)

    @event(SystemMessageRecompiled)
    def _recompile_system_message(self, message_id: str, content: str) -> None:
        pass

    # -- forks -----------------------------------------------------------------------------

    class Forked(Aggregate.Event):
        """This conversation continues ``parent_id`` as it was at ``parent_version``.

        Nothing is copied: the fork lists the parent's messages with listing keys up to
        ``key_until`` (after its own system message), then its own from ``key_until + 1``,
        and takes the parent's context window (summary, where it starts) in those keys.
        """

        TOPIC = "convlog.Conversation.Forked"
        parent_id: str
        parent_version: int
        key_until: int
        key_shift: int
        summary_message_id: str | None
        summary_key: int | None
        context_from: int | None
        pending_approval: dict[str, Any] | None

    def fork_from(self, parent: Conversation, summary_key: int | None) -> None:
        """Record, right after this conversation's own system message, what it shares."""
        self._check_alive()
        parent._check_alive()
        if self.forked_from is not None or self.message_count != 1:
            raise InvalidArgument("A fork starts from its own system message only")
        key_until = parent.version + parent.key_shift
        self._fork_from(
            parent_id=str(parent.id),
            parent_version=parent.version,
            key_until=key_until,
            key_shift=key_until - (self.version + 1),  # later own events: key_until + 1, …
            summary_message_id=parent.summary_message_id,
            summary_key=summary_key,
            context_from=parent.context_from,
            pending_approval=parent.pending_approval,
        )

    @event(Forked)
    def _fork_from(
        self,
        parent_id: str,
        parent_version: int,
        key_until: int,
        key_shift: int,
        summary_message_id: str | None,
        summary_key: int | None,
        context_from: int | None,
        pending_approval: dict[str, Any] | None,
    ) -> None:
        self.forked_from = {"conversation_id": parent_id, "version": parent_version}
        self.key_shift = key_shift
        self.summary_message_id = summary_message_id
        self.context_from = context_from
        self.pending_approval = pending_approval

    # -- isolated blocks -------------------------------------------------------------------

    class IsolatedBlockEdited(Aggregate.Event):
        """A memory tool changed this conversation's own copy of a block, during a run."""

        TOPIC = "convlog.Conversation.IsolatedBlockEdited"
        label: str
        before: str
        after: str
        tool_name: str
        run_id: str
        step_id: str
        tool_call_id: str

    def isolated_block(self, label: str) -> dict[str, Any] | None:
        return next((b for b in self.isolated_blocks if b["label"] == label), None)

    def edit_isolated_block(self, label: str, after: str, cause: ToolCause) -> None:
        self._check_alive()
        block = self.isolated_block(label)
        if block is None:
            raise NotFound(f"Block with label '{label}' is not isolated in this conversation")
        self._edit_isolated_block(
            label=label,
            before=block["value"],
            after=after,
            tool_name=cause.tool_name,
            run_id=cause.run_id,
            step_id=cause.step_id,
            tool_call_id=cause.tool_call_id,
        )

    @event(IsolatedBlockEdited)
    def _edit_isolated_block(
        self,
        label: str,
        before: str,
        after: str,
        tool_name: str,
        run_id: str,
        step_id: str,
        tool_call_id: str,
    ) -> None:
        self.isolated_blocks = [
            {**b, "value": after} if b["label"] == label else b for b in self.isolated_blocks
        ]

    # -- runs ------------------------------------------------------------------------------

    class RunClaimed(Aggregate.Event):
        TOPIC = "convlog.Conversation.RunClaimed"
        # 2 added holder (claims made before 0.4.0 lapse with their lease only).
        class_version = 2
        run_id: str
        lease_until: datetime
        lapsed_run_id: str | None
        holder: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["holder"] = None

    class RunLeaseRenewed(Aggregate.Event):
        TOPIC = "convlog.Conversation.RunLeaseRenewed"
        run_id: str
        lease_until: datetime

    class RunReleased(Aggregate.Event):
        TOPIC = "convlog.Conversation.RunReleased"
        run_id: str
        status: str

    def claim_run(
        self,
        run_id: str,
        now: datetime,
        lease_until: datetime,
        holder: str,
        *,
        holder_gone: bool = False,
    ) -> str | None:
        """Make ``run_id`` the active run, run by the process ``holder``. Returns a lapsed
        run's id that the caller must record as failed in the same save; raises Conflict while
        another run holds the claim. A claim lapses when its lease ran out or when the caller
        found its holder process gone (``holder_gone``).
        """
        self._check_alive()
        lapsed = None
        if self.active_run_id is not None:
            if not self.claim_lapsed(now, holder_gone=holder_gone):
                raise Busy(BUSY, self.active_run_id)
            lapsed = self.active_run_id
        self._claim_run(run_id=run_id, lease_until=lease_until, lapsed_run_id=lapsed, holder=holder)
        return lapsed

    def claim_lapsed(self, now: datetime, *, holder_gone: bool) -> bool:
        if self.active_run_id is None:
            return False
        if holder_gone and self.active_holder is not None:
            return True
        return self.lease_until is None or self.lease_until <= now

    @event(RunClaimed)
    def _claim_run(
        self, run_id: str, lease_until: datetime, lapsed_run_id: str | None, holder: str | None
    ) -> None:
        self.active_run_id = run_id
        self.lease_until = lease_until
        self.active_holder = holder

    def renew_lease(self, run_id: str, lease_until: datetime) -> None:
        if self.active_run_id != run_id:
            raise Conflict(f"Run {run_id} no longer holds this conversation")
        self._renew_lease(run_id=run_id, lease_until=lease_until)

    @event(RunLeaseRenewed)
    def _renew_lease(self, run_id: str, lease_until: datetime) -> None:
        self.lease_until = lease_until

    def release_run(self, run_id: str, status: str) -> None:
        """Free the conversation; a no-op when ``run_id`` no longer holds it."""
        if self.active_run_id == run_id:
            self._release_run(run_id=run_id, status=status)

    @event(RunReleased)
    def _release_run(self, run_id: str, status: str) -> None:
        self.active_run_id = None
        self.lease_until = None
        self.active_holder = None

    # -- compaction ------------------------------------------------------------------------

    class Compacted(Aggregate.Event):
        """The checkpoint: the summary, and where the kept suffix of the context starts."""

        TOPIC = "convlog.Conversation.Compacted"
        summary_message_id: str
        summary: str
        content: str
        keep_from: int
        num_messages_before: int
        num_messages_after: int
        settings: dict[str, Any]
        model: str
        trigger: str
        run_id: str | None

    def compact(
        self,
        *,
        summary_message_id: str,
        summary: str,
        content: str,
        keep_from: int,
        num_messages_before: int,
        num_messages_after: int,
        settings: dict[str, Any],
        model: str,
        trigger: str,
        run_id: str | None = None,
    ) -> None:
        """Record a checkpoint: history stays; the context becomes system + summary + the
        messages from ``keep_from`` on. Refused while another run holds the conversation
        (its appends would race the new window); ``run_id`` is the run compacting mid-turn.
        """
        self._check_alive()
        if self.active_run_id is not None and self.active_run_id != run_id:
            raise Conflict(
                "Cannot compact the conversation while a run is active; cancel it or wait"
            )
        if num_messages_after >= num_messages_before:
            raise BadRequest(NOTHING_TO_COMPACT)
        self._compact(
            summary_message_id=summary_message_id,
            summary=summary,
            content=content,
            keep_from=keep_from,
            num_messages_before=num_messages_before,
            num_messages_after=num_messages_after,
            settings=settings,
            model=model,
            trigger=trigger,
            run_id=run_id,
        )

    @event(Compacted)
    def _compact(
        self,
        summary_message_id: str,
        summary: str,
        content: str,
        keep_from: int,
        num_messages_before: int,
        num_messages_after: int,
        settings: dict[str, Any],
        model: str,
        trigger: str,
        run_id: str | None,
    ) -> None:
        self.message_count += 1  # the summary message is listed where it was made
        self.summary_message_id = summary_message_id
        self.context_from = keep_from

    class ContextReset(Aggregate.Event):
        """The context starts over after the system message; history stays listed."""

        TOPIC = "convlog.Conversation.ContextReset"
        keep_from: int

    def reset_context(self) -> None:
        self._check_alive()
        if self.active_run_id is not None:
            raise Conflict("Cannot reset the messages while a run is active; cancel it or wait")
        self._reset_context(keep_from=self.next_key())

    @event(ContextReset)
    def _reset_context(self, keep_from: int) -> None:
        self.context_from = keep_from
        self.summary_message_id = None
        self.pending_approval = None

    class Deleted(Aggregate.Event):
        TOPIC = "convlog.Conversation.Deleted"

    def delete(self) -> None:
        self._check_alive()
        self._delete()

    @event(Deleted)
    def _delete(self) -> None:
        self.deleted = True

    def _check_alive(self) -> None:
        if self.deleted:
            raise NotFound("Conversation not found")
