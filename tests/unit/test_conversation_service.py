"""Conversation use cases on the in-memory services."""

from __future__ import annotations

import pytest

from domain import ids
from domain.conversation import Conversation
from domain.errors import DomainError, InvalidArgument, NotFound
from service.services import Services
from tests.unit.seed import (
    ACTOR,
    OTHER_ORG,
    append,
    finish_run,
    head,
    listed_ids,
    listing,
    load,
    new_agent,
    new_conversation,
)


def list_ids(services: Services, **kwargs: object) -> list[str]:
    args: dict[str, object] = {
        "agent_id": None,
        "summary_search": None,
        "order_by": "created_at",
        "ascending": True,
        "after": None,
        "limit": 100,
    }
    args.update(kwargs)
    rows = services.conversations.list(ACTOR, **args)  # type: ignore[arg-type]
    return [row.conversation_id for row in rows]


def refused_without_writing(services: Services, error: type[DomainError], call: object) -> None:
    before = head(services)
    with pytest.raises(error):
        call()  # type: ignore[operator]
    assert head(services) == before


# -- create / get ------------------------------------------------------------------------------


def test_create_returns_the_row_and_opens_with_a_system_message(services: Services) -> None:
    agent = new_agent(services)
    row = new_conversation(
        services, agent.id, summary="s", model="openai/gpt-4o", model_settings={"temperature": 0.2}
    )
    assert ids.is_valid(ids.CONVERSATION, row.conversation_id)
    assert (row.agent_id, row.summary, row.model) == (agent.id, "s", "openai/gpt-4o")
    assert row.model_settings == {"temperature": 0.2}
    assert row.isolated_block_ids == []
    assert (row.created_by_id, row.last_updated_by_id) == (ACTOR.user_id, ACTOR.user_id)
    assert row.message_count == 1
    assert row.last_message_at is None
    assert services.conversations.get(ACTOR, row.conversation_id) == row
    (system,) = listing(services, row.conversation_id)
    assert (system["message_type"], system["role"]) == ("system_message", "system")
    assert "The user is Ann." in system["content"]
    assert services.conversations.in_context_ids([row]) == {row.id: [system["id"]]}


def test_create_for_a_missing_or_malformed_agent_is_not_found(services: Services) -> None:
    refused_without_writing(
        services, NotFound, lambda: new_conversation(services, ids.new(ids.AGENT))
    )
    refused_without_writing(services, NotFound, lambda: new_conversation(services, "agent-1"))


def test_create_with_a_malformed_model_handle_is_invalid(services: Services) -> None:
    agent = new_agent(services)
    refused_without_writing(
        services, InvalidArgument, lambda: new_conversation(services, agent.id, model="gpt-4o")
    )


def test_conversations_are_scoped_to_the_organization(services: Services) -> None:
    agent = new_agent(services)
    row = new_conversation(services, agent.id)
    with pytest.raises(NotFound):
        services.conversations.get(OTHER_ORG, row.conversation_id)
    with pytest.raises(NotFound):
        services.conversations.update(OTHER_ORG, row.conversation_id, {"summary": "x"})
    with pytest.raises(NotFound):
        services.conversations.delete(OTHER_ORG, row.conversation_id)
    with pytest.raises(NotFound):
        new_conversation(services, agent.id, actor=OTHER_ORG)
    assert (
        services.conversations.list(
            OTHER_ORG,
            agent_id=None,
            summary_search=None,
            order_by="created_at",
            ascending=True,
            after=None,
            limit=10,
        )
        == []
    )
    assert services.conversations.get(ACTOR, row.conversation_id) == row


@pytest.mark.parametrize(
    "conversation_id", [f"conv-{ids.to_uuid(ids.new(ids.CONVERSATION))}", "message-1", "conv"]
)
def test_get_unknown_or_foreign_ids_is_not_found(services: Services, conversation_id: str) -> None:
    with pytest.raises(NotFound):
        services.conversations.get(ACTOR, conversation_id)


def test_an_agents_own_context_is_not_a_listed_conversation(services: Services) -> None:
    agent = new_agent(services)
    own = ids.format_id(ids.CONVERSATION, ids.default_conversation_id(ids.to_uuid(agent.id)))
    with pytest.raises(NotFound):
        services.conversations.get(ACTOR, own)
    assert list_ids(services) == []
    # ...but its messages are listed through the agent id (agent-direct mode).
    assert [m["message_type"] for m in listing(services, agent.id)] == ["system_message"]


# -- isolated blocks ---------------------------------------------------------------------------


def test_isolated_blocks_are_copies_with_new_ids(services: Services) -> None:
    agent = new_agent(services)
    agent_blocks = {b["label"]: b for b in agent.state["blocks"]}
    row = new_conversation(services, agent.id, isolated_block_labels=["human"])
    (copy_id,) = row.isolated_block_ids
    assert ids.is_valid(ids.BLOCK, copy_id)
    assert copy_id != agent_blocks["human"]["id"]
    (copy,) = load(services, row.id).isolated_blocks
    assert copy["id"] == copy_id
    assert {k: v for k, v in copy.items() if k != "id"} == {
        k: v for k, v in agent_blocks["human"].items() if k != "id"
    }
    other = new_conversation(services, agent.id, isolated_block_labels=["human"])
    assert other.isolated_block_ids != row.isolated_block_ids


def test_isolated_copy_is_not_changed_by_a_block_update(services: Services) -> None:
    agent = new_agent(services)
    row = new_conversation(services, agent.id, isolated_block_labels=["human"])
    services.agents.update_block(ACTOR, agent.id, "human", {"value": "The user is Zed."})
    assert load(services, row.id).isolated_blocks[0]["value"] == "The user is Ann."
    (system,) = listing(services, row.conversation_id)
    assert "The user is Ann." in system["content"]
    later = new_conversation(services, agent.id)
    assert "The user is Zed." in listing(services, later.conversation_id)[0]["content"]


def test_isolated_block_with_an_unknown_label_is_invalid(services: Services) -> None:
    agent = new_agent(services)
    refused_without_writing(
        services,
        InvalidArgument,
        lambda: new_conversation(services, agent.id, isolated_block_labels=["human", "nope"]),
    )
    assert list_ids(services) == []


# -- update / delete ---------------------------------------------------------------------------


def test_update_changes_only_the_given_fields(services: Services) -> None:
    agent = new_agent(services)
    row = new_conversation(services, agent.id, summary="old", model="openai/a")
    updated = services.conversations.update(
        ACTOR, row.conversation_id, {"summary": "new", "model_settings": {"max_tokens": 5}}
    )
    assert (updated.summary, updated.model) == ("new", "openai/a")
    assert updated.model_settings == {"max_tokens": 5}
    assert updated.updated_at >= row.updated_at
    assert updated.created_at == row.created_at
    again = services.conversations.update(ACTOR, row.conversation_id, {"summary": None})
    assert again.summary == "new"  # null does not clear
    assert services.conversations.get(ACTOR, row.conversation_id) == again


def test_update_with_a_malformed_handle_is_invalid(services: Services) -> None:
    row = new_conversation(services, new_agent(services).id)
    refused_without_writing(
        services,
        InvalidArgument,
        lambda: services.conversations.update(ACTOR, row.conversation_id, {"model": "x"}),
    )


def test_delete_hides_the_conversation_everywhere(services: Services) -> None:
    agent = new_agent(services)
    row = new_conversation(services, agent.id)
    kept = new_conversation(services, agent.id)
    services.conversations.delete(ACTOR, row.conversation_id)
    assert load(services, row.id).deleted
    with pytest.raises(NotFound):
        services.conversations.get(ACTOR, row.conversation_id)
    assert list_ids(services) == [kept.conversation_id]
    for call in (
        lambda: services.conversations.delete(ACTOR, row.conversation_id),
        lambda: services.conversations.update(ACTOR, row.conversation_id, {"summary": "x"}),
        lambda: listing(services, row.conversation_id),
    ):
        refused_without_writing(services, NotFound, call)


# -- messages ----------------------------------------------------------------------------------


def test_messages_are_listed_in_order_with_cursors(services: Services) -> None:
    row = new_conversation(services, new_agent(services).id)
    system = listed_ids(services, row.conversation_id)
    sent = append(services, row.id, "a", "b", "c", "d")
    everything = system + sent
    assert listed_ids(services, row.conversation_id) == everything
    assert listed_ids(services, row.conversation_id, ascending=False) == everything[::-1]
    assert listed_ids(services, row.conversation_id, after=sent[0], limit=2) == sent[1:3]
    assert (
        listed_ids(services, row.conversation_id, after=sent[1], ascending=False)
        == (everything[:2][::-1])
    )
    assert listed_ids(services, row.conversation_id, before=sent[3], limit=2) == sent[1:3]
    assert (
        listed_ids(services, row.conversation_id, before=sent[1], ascending=False)
        == (sent[2:][::-1])
    )
    assert listed_ids(services, row.conversation_id, after=sent[0], before=sent[3]) == sent[1:3]
    assert listed_ids(services, row.conversation_id, limit=0) == []
    item = listing(services, row.conversation_id)[2]
    assert (item["content"], item["role"], item["message_type"]) == ("b", "user", "user_message")
    assert services.conversations.get(ACTOR, row.conversation_id).message_count == 5


def test_unknown_message_cursor_is_invalid(services: Services) -> None:
    agent = new_agent(services)
    row = new_conversation(services, agent.id)
    other = new_conversation(services, agent.id)
    (foreign,) = append(services, other.id, "x")
    for cursor in (ids.new(ids.MESSAGE), foreign):
        with pytest.raises(InvalidArgument):
            listing(services, row.conversation_id, after=cursor)
        with pytest.raises(InvalidArgument):
            listing(services, row.conversation_id, before=cursor)


# -- listing -----------------------------------------------------------------------------------


def test_list_filters_by_agent(services: Services) -> None:
    a, b = new_agent(services, "a"), new_agent(services, "b")
    in_a = [new_conversation(services, a.id).conversation_id for _ in range(2)]
    in_b = new_conversation(services, b.id).conversation_id
    assert sorted(list_ids(services, agent_id=a.id)) == sorted(in_a)
    assert list_ids(services, agent_id=b.id) == [in_b]
    assert sorted(list_ids(services)) == sorted([*in_a, in_b])
    assert list_ids(services, agent_id=ids.new(ids.AGENT)) == []


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("%", ["100% sure"]),
        ("0%", ["100% sure"]),
        ("_", ["a_b"]),
        ("a_b", ["a_b"]),
        ("sure", ["100% sure", "1000 sure"]),
        ("abc", []),  # case-sensitive
        ("ABC", ["ABC"]),
        ("%%", []),
    ],
)
def test_summary_search_is_a_literal_substring(
    services: Services, search: str, expected: list[str]
) -> None:
    agent = new_agent(services)
    by_id = {}
    for summary in ("100% sure", "1000 sure", "a_b", "axb", "ABC", None):
        row = new_conversation(services, agent.id, summary=summary)
        by_id[row.conversation_id] = summary
    found = [by_id[c] for c in list_ids(services, summary_search=search)]
    assert sorted(found) == sorted(expected)  # type: ignore[type-var]


def test_empty_summary_search_does_not_filter(services: Services) -> None:
    agent = new_agent(services)
    new_conversation(services, agent.id, summary=None)
    new_conversation(services, agent.id, summary="x")
    assert len(list_ids(services, summary_search="")) == 2


def expected_order(services: Services, order_by: str, ascending: bool) -> list[str]:
    """The listing order computed from the rows: key (NULLs last either way), then id."""
    rows = services.conversations.list(
        ACTOR,
        agent_id=None,
        summary_search=None,
        order_by="created_at",
        ascending=True,
        after=None,
        limit=1000,
    )
    present = [r for r in rows if getattr(r, order_by) is not None]
    missing = [r for r in rows if getattr(r, order_by) is None]
    present.sort(key=lambda r: (getattr(r, order_by), r.id), reverse=not ascending)
    missing.sort(key=lambda r: r.id, reverse=not ascending)
    return [r.conversation_id for r in present + missing]


@pytest.fixture
def four(services: Services) -> list[str]:
    """Four conversations: #2 then #0 got messages, #3 finished a run; #1 has neither."""
    agent = new_agent(services)
    rows = [new_conversation(services, agent.id) for _ in range(4)]
    append(services, rows[2].id, "first")
    append(services, rows[0].id, "second")
    finish_run(services, rows[3].id)
    return [r.conversation_id for r in rows]


@pytest.mark.parametrize("ascending", [True, False])
def test_order_by_created_at(services: Services, four: list[str], ascending: bool) -> None:
    listed = list_ids(services, order_by="created_at", ascending=ascending)
    assert listed == expected_order(services, "created_at", ascending)
    assert listed == (four if ascending else four[::-1])


@pytest.mark.parametrize("ascending", [True, False])
def test_order_by_last_message_at_puts_nulls_last(
    services: Services, four: list[str], ascending: bool
) -> None:
    listed = list_ids(services, order_by="last_message_at", ascending=ascending)
    assert listed == expected_order(services, "last_message_at", ascending)
    with_messages = [four[2], four[0]] if ascending else [four[0], four[2]]
    assert listed[:2] == with_messages
    assert set(listed[2:]) == {four[1], four[3]}


@pytest.mark.parametrize("ascending", [True, False])
def test_order_by_last_run_completion_puts_nulls_last(
    services: Services, four: list[str], ascending: bool
) -> None:
    listed = list_ids(services, order_by="last_run_completion", ascending=ascending)
    assert listed == expected_order(services, "last_run_completion", ascending)
    assert listed[0] == four[3]


@pytest.mark.parametrize("order_by", ["created_at", "last_message_at", "last_run_completion"])
@pytest.mark.parametrize("ascending", [True, False])
@pytest.mark.parametrize("limit", [1, 2, 3])
def test_after_cursor_walks_every_conversation_once(
    services: Services, four: list[str], order_by: str, ascending: bool, limit: int
) -> None:
    walked: list[str] = []
    after = None
    while True:
        page = list_ids(services, order_by=order_by, ascending=ascending, after=after, limit=limit)
        assert len(page) <= limit
        if not page:
            break
        walked += page
        after = page[-1]
    assert walked == expected_order(services, order_by, ascending)


def test_a_deleted_conversation_still_works_as_a_cursor(
    services: Services, four: list[str]
) -> None:
    services.conversations.delete(ACTOR, four[1])
    assert list_ids(services, after=four[1]) == four[2:]
    assert list_ids(services, after=four[1], ascending=False) == [four[0]]


@pytest.mark.parametrize(
    "cursor", [ids.new(ids.CONVERSATION), "conv-1", "nope", ids.new(ids.AGENT)]
)
def test_unknown_conversation_cursor_is_invalid(services: Services, cursor: str) -> None:
    new_conversation(services, new_agent(services).id)
    with pytest.raises(InvalidArgument):
        list_ids(services, after=cursor)


def test_a_cursor_from_another_organization_is_invalid(services: Services) -> None:
    mine = new_conversation(services, new_agent(services).id)
    theirs = new_conversation(services, new_agent(services, actor=OTHER_ORG).id, actor=OTHER_ORG)
    with pytest.raises(InvalidArgument):
        list_ids(services, after=theirs.conversation_id)
    assert list_ids(services) == [mine.conversation_id]


def test_message_count_and_last_message_at_follow_appends(services: Services) -> None:
    row = new_conversation(services, new_agent(services).id)
    append(services, row.id, "a", "b")
    append(services, row.id, "c", role="assistant")
    after = services.conversations.get(ACTOR, row.conversation_id)
    assert after.message_count == 4
    assert after.last_message_at is not None
    assert after.last_message_at >= after.created_at
    assert load(services, row.id).message_count == 4
    assert isinstance(load(services, row.id), Conversation)
