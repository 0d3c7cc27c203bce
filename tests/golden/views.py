"""What a golden log's views look like through the API: agents, conversations, messages, runs.

Rendered with the release's own ``api.render`` functions, so the comparison is of what clients
read, not of table layouts (which a release may change and rebuild).
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

from service.message_search import MessageSearch
from service.services import Services
from tests.actors import DEFAULT_ACTOR


def _messages(services: Services, path_id: str) -> list[Any]:
    items = services.conversations.messages(
        DEFAULT_ACTOR, path_id, before=None, after=None, limit=None, ascending=True
    )
    return [json.loads(item) for item in items]


def expected_views(services: Services, render: ModuleType) -> dict[str, Any]:
    actor = DEFAULT_ACTOR
    agents = services.agents.list(
        actor, name=None, ascending=True, after=None, before=None, limit=1000, show_hidden=True
    )
    conversations = services.conversations.list(
        actor,
        agent_id=None,
        summary_search=None,
        order_by="created_at",
        ascending=True,
        after=None,
        limit=1000,
    )
    in_context = services.conversations.in_context_ids(conversations)
    message_ids = (
        services.agents.message_ids(agents)
        if hasattr(services.agents, "message_ids")
        else {a.id: [] for a in agents}
    )
    runs = services.runs.list_runs(
        actor,
        agent_id=None,
        conversation_id=None,
        statuses=None,
        background=None,
        ascending=True,
        limit=1000,
    )
    return {
        "agents": [render.agent(row, message_ids[row.id]) for row in agents],
        "agent_messages": {row.id: _messages(services, row.id) for row in agents},
        "conversations": [render.conversation(row, in_context[row.id]) for row in conversations],
        "messages": {
            row.conversation_id: _messages(services, row.conversation_id) for row in conversations
        },
        "runs": [render.run(row) for row in runs],
        # Since 0.5.0: the organization-wide search (POST /v1/messages/search).
        "message_search": services.message_search.search(actor, MessageSearch("hello")),
    }
