"""What every use case needs: the application, the projector, the views, the caller."""

from __future__ import annotations

import logging

from domain import ids
from domain.agent import Agent
from domain.conversation import Conversation
from domain.errors import NotFound
from projections.agents import AgentQueries
from projections.conversations import ConversationQueries
from projections.message_reads import MessageQueries
from projections.projector import Projector
from projections.store import ViewStore
from service.actor import Actor
from service.application import ConvlogApplication
from service.event_log import EventLog

log = logging.getLogger("convlog")


class Context:
    def __init__(
        self, app: ConvlogApplication, store: ViewStore, projector: Projector, log: EventLog
    ) -> None:
        self.app = app
        self.store = store
        self.projector = projector
        self.log = log
        self.agents = AgentQueries(store)
        self.conversations = ConversationQueries(store)
        self.messages = MessageQueries(store)

    def load_agent(self, actor: Actor, agent_id: str) -> Agent:
        """The live agent behind an ``agent-…`` id, in the actor's organization (else 404)."""
        agent = self.app.get(Agent, ids.to_uuid(agent_id))
        if agent is None or agent.deleted or agent.organization_id != actor.organization_id:
            raise NotFound("Agent not found")
        return agent

    def load_stream(self, actor: Actor, path_id: str) -> tuple[Conversation, Agent]:
        """The conversation behind a path id, with its agent: a ``conv-…`` id, or an
        ``agent-…`` id for the agent's own context (agent-direct mode). 404 otherwise.
        """
        if path_id.startswith(f"{ids.AGENT}-"):
            agent = self.load_agent(actor, path_id)
            own = self.app.get(Conversation, ids.default_conversation_id(agent.id))
            if own is None:
                raise NotFound(f"Conversation not found with id='{path_id}'")
            return own, agent
        conversation = None
        if path_id.startswith(f"{ids.CONVERSATION}-"):
            conversation = self.app.get(Conversation, ids.to_uuid(path_id))
        if (
            conversation is None
            or conversation.deleted
            or conversation.is_default
            or conversation.organization_id != actor.organization_id
        ):
            raise NotFound(f"Conversation not found with id='{path_id}'")
        return conversation, self.load_agent(actor, conversation.agent_id)

    def settle(self, position: int) -> None:
        """Bring the views up to a write just made, so the caller reads it at once.

        Best effort: the write is saved whatever happens here, and saying otherwise would
        make a client retry it. If the views cannot catch up now, the poller does it later.
        """
        try:
            self.projector.catch_up(until=position)
        except Exception:
            log.warning("views not brought up to position %d yet", position, exc_info=True)
