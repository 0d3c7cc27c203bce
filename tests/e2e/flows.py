"""SDK flows shared by the SQLite- and the PostgreSQL-backed server tests.

Each flow creates its own agent(s), so flows can share one server.
"""

from __future__ import annotations

import re
import uuid
from typing import Literal

import pytest
from letta_client import Letta, NotFoundError, Omit, omit
from letta_client.types.agents import SystemMessage

from tests.e2e.conftest import EMBEDDING, new_agent

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
BUILTIN_MODEL = "convlog/builtin"  # the built-in offline model: always served, no network


Order = Literal["asc", "desc"]


def every_conversation_id(client: Letta, summary_search: str | Omit = omit) -> set[str]:
    """Every conversation id the caller can see, a page of 1000 (the largest) at a time."""
    found: set[str] = set()
    after: str | Omit = omit
    while True:
        page = client.conversations.list(limit=1000, after=after, summary_search=summary_search)
        found |= {c.id for c in page}
        if len(page) < 1000:
            return found
        after = page[-1].id


def only_system_message(client: Letta, conversation_id: str) -> SystemMessage:
    items = list(client.conversations.messages.list(conversation_id))
    assert [m.message_type for m in items] == ["system_message"]
    message = items[0]
    assert isinstance(message, SystemMessage)
    return message


def conversation_lifecycle(client: Letta) -> None:
    agent_id = new_agent(client)
    created = client.conversations.create(agent_id=agent_id, summary="first")
    assert re.fullmatch(f"conv-{UUID}", created.id)
    assert created.agent_id == agent_id
    assert created.summary == "first"
    # decisions §7: every body carries the real in-context ids (the system message).
    assert created.in_context_message_ids is not None
    assert len(created.in_context_message_ids) == 1
    assert re.fullmatch(f"message-{UUID}", created.in_context_message_ids[0])

    retrieved = client.conversations.retrieve(created.id)
    assert retrieved.id == created.id
    assert retrieved.agent_id == agent_id
    assert retrieved.summary == "first"
    assert retrieved.in_context_message_ids == created.in_context_message_ids

    updated = client.conversations.update(created.id, summary="renamed")
    assert updated.id == created.id
    assert updated.summary == "renamed"
    assert updated.in_context_message_ids == created.in_context_message_ids
    assert client.conversations.retrieve(created.id).summary == "renamed"

    listed = client.conversations.list(agent_id=agent_id)
    assert [c.id for c in listed] == [created.id]
    assert listed[0].summary == "renamed"
    assert listed[0].in_context_message_ids == created.in_context_message_ids

    assert client.conversations.delete(created.id) is None
    with pytest.raises(NotFoundError):
        client.conversations.retrieve(created.id)
    with pytest.raises(NotFoundError):
        client.conversations.update(created.id, summary="ghost")
    with pytest.raises(NotFoundError):
        client.conversations.delete(created.id)
    # decisions §8: a deleted conversation is 404 everywhere, message listing included.
    with pytest.raises(NotFoundError):
        list(client.conversations.messages.list(created.id))
    assert client.conversations.list(agent_id=agent_id) == []
    assert created.id not in every_conversation_id(client)


def system_message_snapshots_memory(client: Letta) -> None:
    """A conversation's system message holds the blocks as they were when it was created."""
    agent_id = new_agent(client, human="Name: Ada Lovelace", persona="I am Sam the helper.")
    old = client.conversations.create(agent_id=agent_id)
    message = only_system_message(client, old.id)
    assert old.in_context_message_ids is not None
    assert message.id == old.in_context_message_ids[0]
    assert isinstance(message.content, str)
    assert "Name: Ada Lovelace" in message.content
    assert "I am Sam the helper." in message.content

    block = client.agents.blocks.update("human", agent_id=agent_id, value="Name: Grace Hopper")
    assert block.value == "Name: Grace Hopper"
    assert block.label == "human"
    assert client.agents.blocks.retrieve("human", agent_id=agent_id).value == "Name: Grace Hopper"
    persona = client.agents.blocks.retrieve("persona", agent_id=agent_id)
    assert persona.value == "I am Sam the helper."

    new = client.conversations.create(agent_id=agent_id)
    new_system = only_system_message(client, new.id)
    assert new_system.id != message.id
    assert "Name: Grace Hopper" in new_system.content
    assert "Name: Ada Lovelace" not in new_system.content
    assert "I am Sam the helper." in new_system.content

    old_system = only_system_message(client, old.id)
    assert old_system.id == message.id
    assert old_system.content == message.content
    retrieved = client.conversations.retrieve(old.id)
    assert retrieved.in_context_message_ids == old.in_context_message_ids


def agent_delete_cascades(client: Letta) -> None:
    agent_id = new_agent(client)
    other_agent = new_agent(client)
    first = client.conversations.create(agent_id=agent_id)
    second = client.conversations.create(agent_id=agent_id)
    survivor = client.conversations.create(agent_id=other_agent)

    client.agents.delete(agent_id)

    for conversation in (first, second):
        with pytest.raises(NotFoundError):
            client.conversations.retrieve(conversation.id)
        with pytest.raises(NotFoundError):
            list(client.conversations.messages.list(conversation.id))
    assert client.conversations.list(agent_id=agent_id) == []
    all_ids = every_conversation_id(client)
    assert first.id not in all_ids and second.id not in all_ids
    assert survivor.id in all_ids
    with pytest.raises(NotFoundError):
        client.agents.retrieve(agent_id)
    with pytest.raises(NotFoundError):
        client.conversations.create(agent_id=agent_id)
    with pytest.raises(NotFoundError):
        client.agents.delete(agent_id)
    with pytest.raises(NotFoundError):
        client.agents.blocks.retrieve("human", agent_id=agent_id)
    with pytest.raises(NotFoundError):
        list(client.conversations.messages.list(agent_id))
    # The other agent is untouched.
    assert client.conversations.retrieve(survivor.id).agent_id == other_agent
    assert len(only_system_message(client, survivor.id).content) > 0


def list_paging(client: Letta) -> None:
    """``limit``, ``after`` and ``order`` on the conversation listing; walking pages by cursor
    yields every conversation once, in order, for both orders."""
    agent_id = new_agent(client)
    created = [client.conversations.create(agent_id=agent_id, summary=f"c{i}").id for i in range(4)]

    asc = [c.id for c in client.conversations.list(agent_id=agent_id, order="asc")]
    desc = [c.id for c in client.conversations.list(agent_id=agent_id, order="desc")]
    assert asc == created
    assert desc == created[::-1]
    assert [c.id for c in client.conversations.list(agent_id=agent_id)] == desc  # default desc

    assert [c.id for c in client.conversations.list(agent_id=agent_id, limit=2)] == desc[:2]
    limited_asc = client.conversations.list(agent_id=agent_id, limit=2, order="asc")
    assert [c.id for c in limited_asc] == asc[:2]
    assert client.conversations.list(agent_id=agent_id, limit=0) == []

    after_asc = client.conversations.list(agent_id=agent_id, order="asc", after=created[1])
    assert [c.id for c in after_asc] == created[2:]
    after_desc = client.conversations.list(agent_id=agent_id, order="desc", after=created[2])
    assert [c.id for c in after_desc] == [created[1], created[0]]
    assert client.conversations.list(agent_id=agent_id, order="asc", after=created[-1]) == []
    assert client.conversations.list(agent_id=agent_id, order="desc", after=created[0]) == []

    walks: tuple[tuple[Order, list[str]], ...] = (("asc", asc), ("desc", desc))
    for order_by in ("created_at", "last_run_completion"):
        for order, expected in walks:
            walked: list[str] = []
            cursor: str | None = None
            while True:
                page = client.conversations.list(
                    agent_id=agent_id,
                    order=order,
                    order_by=order_by,
                    limit=1,
                    after=cursor if cursor else omit,
                )
                assert len(page) <= 1
                if not page:
                    break
                walked += [c.id for c in page]
                cursor = page[-1].id
                assert len(walked) <= len(expected), "paging does not terminate"
            if order_by == "created_at":
                assert walked == expected
            else:  # no runs yet: every key is null; each conversation still comes once
                assert sorted(walked) == sorted(expected)

    # A deleted conversation is not listed, but still a valid cursor (as Letta).
    client.conversations.delete(created[1])
    assert [c.id for c in client.conversations.list(agent_id=agent_id, order="asc")] == [
        created[0],
        created[2],
        created[3],
    ]
    after_deleted = client.conversations.list(agent_id=agent_id, order="asc", after=created[1])
    assert [c.id for c in after_deleted] == created[2:]


def list_filters_by_agent(client: Letta) -> None:
    a, b = new_agent(client), new_agent(client)
    a_ids = {client.conversations.create(agent_id=a).id for _ in range(2)}
    b_ids = {client.conversations.create(agent_id=b).id for _ in range(3)}
    assert {c.id for c in client.conversations.list(agent_id=a)} == a_ids
    assert {c.id for c in client.conversations.list(agent_id=b)} == b_ids
    assert all(c.agent_id == a for c in client.conversations.list(agent_id=a))
    assert client.conversations.list(agent_id=f"agent-{uuid.uuid4()}") == []
    everything = every_conversation_id(client)
    assert a_ids | b_ids <= everything


def summary_search_is_literal(client: Letta) -> None:
    agent_id = new_agent(client)
    tag = uuid.uuid4().hex[:8]
    summaries = {
        "percent": f"{tag} 50% off",
        "digits": f"{tag} 500 off",
        "underscore": f"{tag} a_c",
        "letter": f"{tag} abc",
        "backslash": f"{tag} x\\y",
        "upper": f"{tag} ABC",
        "unicode": f"{tag} café ☕",
        "none": None,
    }
    ids = {}
    for key, summary in summaries.items():
        ids[key] = client.conversations.create(
            agent_id=agent_id, summary=omit if summary is None else summary
        ).id

    def search(text: str) -> set[str]:
        found = client.conversations.list(agent_id=agent_id, summary_search=text, limit=100)
        return {c.id for c in found}

    def some(*keys: str) -> set[str]:
        return {ids[k] for k in keys}

    assert search("0%") == some("percent")  # as LIKE '%0%%' it would also match "500 off"
    assert search("%") == some("percent")
    assert search("a_c") == some("underscore")  # as LIKE, "_" would also match "abc"
    assert search("_") == some("underscore")
    assert search("\\") == some("backslash")
    assert search("x\\y") == some("backslash")
    assert search("abc") == some("letter")  # literal: case-sensitive
    assert search("ABC") == some("upper")
    assert search("café ☕") == some("unicode")
    assert search(" off") == some("percent", "digits")
    assert search(tag) == {v for k, v in ids.items() if k != "none"}
    assert search("no such text") == set()
    # Without the agent filter the search still finds exactly these.
    assert every_conversation_id(client, f"{tag} 50%") == some("percent")


def messages_auto_pagination(client: Letta) -> None:
    """SDK auto-pagination (``list(page)``) terminates and yields each item once."""
    agent_id = new_agent(client, human="Name: Ada")
    conversation = client.conversations.create(agent_id=agent_id)
    orders: tuple[Order | Omit, ...] = (omit, "asc", "desc")
    for any_order in orders:
        items = list(client.conversations.messages.list(conversation.id, limit=1, order=any_order))
        assert [m.id for m in items] == conversation.in_context_message_ids
        assert items[0].message_type == "system_message"

    # Agent-direct: the agent's own context, which starts with its own system message.
    for order in ("asc", "desc"):
        own = list(client.conversations.messages.list(agent_id, limit=1, order=order))
        assert [m.message_type for m in own] == ["system_message"]
        assert isinstance(own[0], SystemMessage)
        assert "Name: Ada" in own[0].content
        assert conversation.in_context_message_ids is not None
        assert own[0].id not in conversation.in_context_message_ids


def turns_then_walk_history(client: Letta) -> None:
    """Two turns (system, user, assistant, user, assistant), then ``limit=1`` pages walk every
    item exactly once in the requested order (decisions §4, §5)."""
    agent = client.agents.create(
        name=f"e2e-turns-{uuid.uuid4().hex[:8]}",
        model=BUILTIN_MODEL,
        embedding=EMBEDDING,
        memory_blocks=[{"label": "human", "value": "Name: Ada"}],
    )
    conversation = client.conversations.create(agent_id=agent.id)
    for text in ("hello one", "hello two"):
        chunks = list(
            client.conversations.messages.create(
                conversation.id, messages=[{"role": "user", "content": text}]
            )
        )
        kinds = [c.message_type for c in chunks]
        assert "assistant_message" in kinds
        assert kinds[-2:] == ["stop_reason", "usage_statistics"]

    ascending = list(client.conversations.messages.list(conversation.id, limit=1, order="asc"))
    assert [m.message_type for m in ascending] == [
        "system_message",
        "user_message",
        "assistant_message",
        "user_message",
        "assistant_message",
    ]
    assert len({m.id for m in ascending}) == 5
    users = [m.content for m in ascending if m.message_type == "user_message"]
    assert users == ["hello one", "hello two"]
    descending = list(client.conversations.messages.list(conversation.id, limit=1, order="desc"))
    assert [m.id for m in descending] == [m.id for m in reversed(ascending)]
    # The default order is desc; bigger pages give the same walk.
    for limit in (2, 3, 100):
        walked = list(client.conversations.messages.list(conversation.id, limit=limit))
        assert [m.id for m in walked] == [m.id for m in descending]
    # One page honours before/after in the requested order.
    middle = ascending[2].id
    before = client.conversations.messages.list(conversation.id, order="asc", before=middle)
    assert [m.id for m in before.items] == [m.id for m in ascending[:2]]
    after = client.conversations.messages.list(conversation.id, order="asc", after=middle)
    assert [m.id for m in after.items] == [m.id for m in ascending[3:]]
    older = client.conversations.messages.list(conversation.id, order="desc", after=middle)
    assert [m.id for m in older.items] == [m.id for m in reversed(ascending[:2])]
    # Walking backwards with before= also terminates and yields each item once.
    back = list(
        client.conversations.messages.list(
            conversation.id, order="asc", before=ascending[-1].id, limit=1
        )
    )
    assert back, "before= found nothing"
    assert {m.id for m in back} <= {m.id for m in ascending[:-1]}
    assert len(back) == len({m.id for m in back})
    # The conversation's context grew; the agent's own context did not.
    retrieved = client.conversations.retrieve(conversation.id)
    assert retrieved.in_context_message_ids == [m.id for m in ascending]
    own = list(client.conversations.messages.list(agent.id))
    assert [m.message_type for m in own] == ["system_message"]


def last_run_completion_ordering(client: Letta) -> None:
    """``order_by=last_run_completion``: by when the last run finished, never-run ones last in
    both directions; cursor pages walk that order once."""
    agent = client.agents.create(
        name=f"e2e-runs-{uuid.uuid4().hex[:8]}",
        model=BUILTIN_MODEL,
        embedding=EMBEDDING,
        memory_blocks=[{"label": "human", "value": "Name: Ada"}],
    )
    ids = [client.conversations.create(agent_id=agent.id).id for _ in range(4)]
    for index in (2, 0):  # conversation 2 finishes a run first, then conversation 0
        chunks = list(
            client.conversations.messages.create(
                ids[index], messages=[{"role": "user", "content": f"run {index}"}]
            )
        )
        assert chunks[-2].message_type == "stop_reason"

    expected: dict[Order, list[str]] = {
        "desc": [ids[0], ids[2], ids[3], ids[1]],  # nulls last, ties by id: order among 1/3
        "asc": [ids[2], ids[0], ids[1], ids[3]],
    }
    for order, want in expected.items():
        got = [
            c.id
            for c in client.conversations.list(
                agent_id=agent.id, order_by="last_run_completion", order=order
            )
        ]
        assert got[:2] == want[:2], order
        assert sorted(got[2:]) == sorted(want[2:]), order
        walked: list[str] = []
        cursor: str | None = None
        while True:
            page = client.conversations.list(
                agent_id=agent.id,
                order_by="last_run_completion",
                order=order,
                limit=1,
                after=cursor if cursor else omit,
            )
            if not page:
                break
            walked.append(page[0].id)
            cursor = page[0].id
            assert len(walked) <= len(ids), "paging does not terminate"
        assert walked == got, order
