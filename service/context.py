"""What every use case needs: the application, the projector, the views, the caller."""

from __future__ import annotations

from dataclasses import dataclass

from domain import ids
from projections.agents import AgentQueries
from projections.conversations import ConversationQueries
from projections.messages import MessageQueries
from projections.projector import Projector
from projections.store import ViewStore
from service.application import ConvlogApplication
from service.event_log import EventLog


@dataclass(frozen=True)
class Actor:
    """Who is calling. Every read and write is scoped to the actor's organization."""

    organization_id: str = ids.DEFAULT_ORG_ID
    user_id: str = ids.DEFAULT_USER_ID


DEFAULT_ACTOR = Actor()


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

    def settle(self, position: int) -> None:
        """Bring the views up to a write just made, so the caller reads it at once."""
        self.projector.catch_up(until=position)
