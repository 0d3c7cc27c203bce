"""Conversation use cases: create, read, list, update, delete, list messages and events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from domain import ids
from domain.conversation import Conversation
from domain.errors import Conflict, InvalidArgument, NotFound
from domain.handles import validate_handle
from domain.memory import with_isolated
from domain.model_settings import BUILTIN, check_model_settings
from projections.conversations import ConversationRow
from service.actor import Actor
from service.agents import AgentService
from service.audit import Report, verify_stream
from service.context import Context
from service.event_log import EventRecord
from service.prompts import label_of, system_message


def not_found(conversation_id: str) -> NotFound:
    return NotFound(f"Conversation not found with id='{conversation_id}'")


class ConversationService:
    def __init__(self, ctx: Context, agents: AgentService) -> None:
        self.ctx = ctx
        self.agents = agents

    def create(
        self,
        actor: Actor,
        agent_id: str,
        *,
        summary: str | None = None,
        model: str | None = None,
        model_settings: dict[str, Any] | None = None,
        isolated_block_labels: list[str] | None = None,
    ) -> ConversationRow:
        if not ids.is_valid(ids.AGENT, agent_id):
            raise NotFound("Agent not found")
        validate_handle(model)
        check_model_settings(model_settings)
        labels = isolated_block_labels or []
        if len(set(labels)) != len(labels):
            raise Conflict("Each isolated block label may be given once")
        created: list[Conversation] = []

        def command() -> list[Any]:
            agent = self.agents.load(actor, agent_id)
            check_model_settings(model_settings, model or agent.model or BUILTIN)
            isolated = []
            for label in labels:
                block = next((b for b in agent.blocks if b["label"] == label), None)
                if block is None:
                    raise InvalidArgument(
                        f"Block with label '{label}' not found on agent '{agent_id}'"
                    )
                isolated.append({**block, "id": ids.new(ids.BLOCK)})
            blocks = with_isolated(agent.blocks, isolated)
            conversation = Conversation(
                organization_id=actor.organization_id,
                agent_id=agent_id,
                summary=summary,
                model=model,
                model_settings=model_settings,
                isolated_blocks=isolated,
                is_default=False,
                created_by_id=actor.user_id,
            )
            previous = self.ctx.conversations.message_count_of_agent(
                actor.organization_id, agent_id
            )
            conversation.append_message(
                message_id=ids.new(ids.MESSAGE),
                role="system",
                message_type="system_message",
                content=system_message(agent, label_of(conversation), blocks, previous),
            )
            agent.open_conversation(ids.format_id(ids.CONVERSATION, conversation.id))
            created[:] = [conversation]
            return [conversation, agent]

        self.ctx.settle(self.ctx.app.save_retrying(actor, command))
        conversation = created[0]
        return self.get(actor, ids.format_id(ids.CONVERSATION, conversation.id))

    def fork(self, actor: Actor, path_id: str) -> ConversationRow:
        """A new conversation of the same agent that lists the parent's messages up to now,
        then its own; nothing is copied (see ``Conversation.fork_from``). Like Letta's fork it
        gets a new system message compiled from the agent's current blocks and the parent's
        model settings, and no isolated blocks of its own.
        """
        created: list[Conversation] = []

        def command() -> list[Any]:
            parent, agent = self.ctx.load_stream(actor, path_id)
            summary_key = None
            if parent.summary_message_id is not None:
                summary_key = self._key_of(str(parent.id), parent.summary_message_id)
            fork = Conversation(
                organization_id=actor.organization_id,
                agent_id=parent.agent_id,
                summary=None,
                model=parent.model,
                model_settings=parent.model_settings,
                isolated_blocks=[],
                is_default=False,
                created_by_id=actor.user_id,
            )
            count = self.ctx.conversations.message_count_of_agent(
                actor.organization_id, parent.agent_id
            )
            fork.append_message(
                message_id=ids.new(ids.MESSAGE),
                role="system",
                message_type="system_message",
                content=system_message(agent, label_of(fork), agent.blocks, count),
            )
            fork.fork_from(parent, summary_key)
            agent.open_conversation(ids.format_id(ids.CONVERSATION, fork.id))
            created[:] = [fork]
            return [fork, agent]

        self.ctx.settle(self.ctx.app.save_retrying(actor, command))
        return self.get(actor, ids.format_id(ids.CONVERSATION, created[0].id))

    def _key_of(self, stream: str, message_id: str) -> int:
        """A message's listing key; a compaction by another process may not be projected."""
        key = self.ctx.messages.position_of(stream, message_id)
        if key is None:
            self.ctx.projector.catch_up()
            key = self.ctx.messages.position_of(stream, message_id)
        assert key is not None, message_id
        return key

    def get(self, actor: Actor, conversation_id: str) -> ConversationRow:
        if not conversation_id.startswith(f"{ids.CONVERSATION}-"):
            raise not_found(conversation_id)
        row = self.ctx.conversations.get(actor.organization_id, str(ids.to_uuid(conversation_id)))
        if row is None:
            raise not_found(conversation_id)
        return row

    def in_context_ids(self, rows: list[ConversationRow]) -> dict[str, list[str]]:
        return self.ctx.messages.in_context_ids([r.window for r in rows])

    def update(
        self, actor: Actor, conversation_id: str, changes: dict[str, Any]
    ) -> ConversationRow:
        validate_handle(changes.get("model"))
        check_model_settings(changes.get("model_settings"))
        self.get(actor, conversation_id)

        def command() -> list[Any]:
            conversation = self._load(actor, conversation_id)
            agent = self.agents.load(actor, conversation.agent_id)
            handle = changes.get("model") or conversation.model or agent.model or BUILTIN
            given = changes.get("model_settings", conversation.model_settings)
            check_model_settings(given, handle)
            conversation.update(changes, actor.user_id)
            return [conversation]

        self.ctx.settle(self.ctx.app.save_retrying(actor, command))
        return self.get(actor, conversation_id)

    def delete(self, actor: Actor, conversation_id: str) -> None:
        self.get(actor, conversation_id)

        def command() -> list[Any]:
            conversation = self._load(actor, conversation_id)
            conversation.delete()
            return [conversation]

        self.ctx.settle(self.ctx.app.save_retrying(actor, command))

    def _load(self, actor: Actor, conversation_id: str) -> Conversation:
        conversation = self.ctx.app.get(Conversation, ids.to_uuid(conversation_id))
        if (
            conversation is None
            or conversation.deleted
            or conversation.is_default
            or conversation.organization_id != actor.organization_id
        ):
            raise not_found(conversation_id)
        return conversation

    def recompile(self, actor: Actor, path_id: str, *, dry_run: bool) -> str:
        """The system message compiled from the current blocks (the conversation's isolated
        copies over the agent's); recorded in place unless ``dry_run``.
        """

        def command() -> tuple[list[Any], str]:
            conversation, agent = self.ctx.load_stream(actor, path_id)
            blocks = with_isolated(agent.blocks, conversation.isolated_blocks)
            count = self.ctx.conversations.message_count_of_agent(
                actor.organization_id, conversation.agent_id
            )
            content = system_message(agent, label_of(conversation), blocks, count)
            if dry_run:
                return [], content
            conversation.recompile_system_message(content)
            return [conversation], content

        content, position = self.ctx.app.save_with_result(actor, command)
        if not dry_run:
            self.ctx.settle(position)
        return content

    def resolve(self, actor: Actor, conversation_id: str) -> UUID:
        """The stream behind a path id: a conversation, or an agent's own context."""
        if conversation_id.startswith(f"{ids.AGENT}-"):
            agent = self.agents.get(actor, conversation_id)
            return ids.default_conversation_id(ids.to_uuid(agent.id))
        return UUID(self.get(actor, conversation_id).id)

    def message(self, actor: Actor, message_id: str) -> list[str]:
        """A message by its id, wherever the caller's organization holds it (Letta answers a
        list: one stored message can be several items; here each item is one message)."""
        found = self.ctx.messages.by_id(message_id)
        if found is None or not self.ctx.conversations.readable_by(actor.organization_id, found[0]):
            raise NotFound(f"Message with id {message_id} not found.")
        return [found[1]]

    def messages(
        self,
        actor: Actor,
        conversation_id: str,
        *,
        before: str | None,
        after: str | None,
        limit: int | None,
        ascending: bool,
        types: Sequence[str] | None = None,
    ) -> list[str]:
        # Agents' own contexts are never forks; a conversation's row says whether it is one.
        if conversation_id.startswith(f"{ids.AGENT}-"):
            stream, forked = str(self.resolve(actor, conversation_id)), False
        else:
            row = self.get(actor, conversation_id)
            stream, forked = row.id, row.forked
        positions: dict[str, int | None] = {}
        for key, message_id in (("before", before), ("after", after)):
            if message_id is None:
                positions[key] = None
                continue
            position = self.ctx.messages.position_of(stream, message_id, forked)
            if position is None:
                raise InvalidArgument(
                    f"Cursor {key}={message_id} is not a message of {conversation_id}"
                )
            positions[key] = position
        return self.ctx.messages.page(
            stream,
            ascending=ascending,
            after=positions["after"],
            before=positions["before"],
            limit=limit,
            types=list(types) if types is not None else None,
            forked=forked,
        )

    def events(
        self, actor: Actor, conversation_id: str, *, after: int, limit: int
    ) -> list[EventRecord]:
        stream = self.resolve(actor, conversation_id)
        return self.ctx.log.history(stream, after, limit)

    def audit(self, actor: Actor, conversation_id: str) -> Report:
        """The conversation's stream checked against its hash chain."""
        return verify_stream(self.ctx.log.chain, self.resolve(actor, conversation_id))

    def list(
        self,
        actor: Actor,
        *,
        agent_id: str | None,
        summary_search: str | None,
        order_by: str,
        ascending: bool,
        after: str | None,
        limit: int,
    ) -> list[ConversationRow]:
        cursor = None
        if after is not None:
            found = (
                self.ctx.conversations.get_any(str(ids.to_uuid(after)))
                if ids.is_valid(ids.CONVERSATION, after)
                else None
            )
            if found is None or found.organization_id != actor.organization_id:
                raise InvalidArgument(f"Cursor after={after} is not a conversation")
            cursor = found
        return self.ctx.conversations.list(
            actor.organization_id,
            agent_id=agent_id,
            summary_search=summary_search,
            order_by=order_by,
            ascending=ascending,
            after=cursor,
            limit=limit,
        )
