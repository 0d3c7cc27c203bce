"""Searching an organization's messages (``POST /v1/messages/search``), on every backend: the
words of user and assistant messages, newest first, within the caller's organization, narrowed
to an agent or a conversation or a time range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.testclient import TestClient

from api.app import create_app
from domain import ids
from domain.api_key import organization_id
from domain.conversation import Conversation
from service.actor import Actor, operator
from service.agents import AgentSpec
from service.message_search import MessageSearch
from service.services import Services
from tests.actors import DEFAULT_ACTOR


def said(services: Services, actor: Actor, path_id: str, *texts: tuple[str, str]) -> None:
    stream = services.conversations.resolve(actor, path_id)
    conversation = services.ctx.app.get(Conversation, stream)
    assert conversation is not None
    for role, text in texts:
        conversation.append_message(
            message_id=ids.new(ids.MESSAGE), role=role, message_type=f"{role}_message", content=text
        )
    services.ctx.app.save(conversation)
    services.projector.catch_up()


def test_search_finds_words_across_conversations_newest_first(any_services: Services) -> None:
    s, me = any_services, DEFAULT_ACTOR
    agent = s.agents.create(me, AgentSpec(name="s", model="openai/x"))
    other = s.agents.create(me, AgentSpec(name="t", model="openai/x"))
    chat = s.conversations.create(me, agent.id).conversation_id
    said(s, me, chat, ("user", "the pelican flies"), ("assistant", "a Pelican indeed"))
    said(s, me, agent.id, ("user", "pelican in the agent's own context"))
    said(s, me, other.id, ("user", "no birds here"), ("assistant", "pelican of the other"))

    found = s.message_search.search(me, MessageSearch("pelican"))
    assert [f["content"] for f in found] == [
        "pelican of the other",
        "pelican in the agent's own context",
        "a Pelican indeed",
        "the pelican flies",
    ]
    assert [f["message_type"] for f in found][-2:] == ["assistant_message", "user_message"]
    assert found[1]["conversation_id"] is None  # the agent's own context
    assert found[2]["conversation_id"] == chat and found[2]["agent_id"] == agent.id
    listed = s.conversations.messages(me, chat, before=None, after=None, limit=10, ascending=True)
    assert found[3]["message_id"] in "".join(listed)

    by_agent = s.message_search.search(me, MessageSearch("pelican", agent_id=agent.id))
    assert len(by_agent) == 3
    in_chat = s.message_search.search(me, MessageSearch("pelican", conversation_id=chat))
    assert [f["content"] for f in in_chat] == ["a Pelican indeed", "the pelican flies"]
    assert s.message_search.search(me, MessageSearch("pelican", limit=1))[0]["content"] == (
        "pelican of the other"
    )
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert s.message_search.search(me, MessageSearch("pelican", start_date=later)) == []
    assert len(s.message_search.search(me, MessageSearch("pelican", end_date=later))) == 4


def test_another_organization_finds_nothing_of_it(any_services: Services) -> None:
    s = any_services
    agent = s.agents.create(DEFAULT_ACTOR, AgentSpec(name="s", model="openai/x"))
    said(s, DEFAULT_ACTOR, agent.id, ("user", "secret pelican"))
    stranger = operator(organization_id("someone-else"))
    assert s.message_search.search(stranger, MessageSearch("pelican")) == []
    assert s.message_search.search(stranger, MessageSearch("pelican", agent_id=agent.id)) == []


def test_the_route_refuses_vector_search_and_bad_filters(services: Services) -> None:
    with TestClient(create_app(services), base_url="http://localhost") as http:
        vector = http.post("/v1/messages/search", json={"query": "x", "search_mode": "vector"})
        assert vector.status_code == 400 and "embeddings" in vector.json()["detail"]
        assert http.post("/v1/messages/search", json={"query": ""}).status_code == 422
        bad_agent = {"query": "x", "agent_id": "conv-1"}
        assert http.post("/v1/messages/search", json=bad_agent).status_code == 422
        ok = http.post("/v1/messages/search", json={"query": "x", "search_mode": "hybrid"})
        assert (ok.status_code, ok.json()) == (200, [])
