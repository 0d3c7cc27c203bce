"""Time travel over HTTP (``as_of_version`` / ``as_of`` on a conversation, its messages and an
agent; docs/time-travel.md): which version a time picks, the errors and their bodies, cursors
and order on a past list, agents' blocks as they were, tenants, the cache, the document.
(Equality with the live views at every version is tests/integration/test_time_travel_properties.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from starlette.testclient import TestClient

from api.app import ENDPOINTS, VERSION, create_app
from api.config import EdgeConfig
from api.openapi import document
from domain import ids
from domain.api_key import organization_id
from domain.block import Block
from domain.errors import NotFound
from projections.timefmt import from_micros, to_micros
from runtime.bootstrap import build
from runtime.settings import Settings
from service.actor import operator
from service.services import Services
from service.time_travel import AsOf
from tests.scripted_model import ScriptedModel
from tests.unit.seed import ACTOR, OTHER_ORG, append, listing, new_agent, new_conversation

AS_OF = "x-as-of-version"


@pytest.fixture
def services() -> Iterator[Services]:
    built = build(Settings(database_url="memory://"), model=ScriptedModel())
    yield built
    built.close()


@pytest.fixture
def http(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), base_url="http://localhost") as client:
        yield client


def stamps(services: Services, stream: str) -> list[Any]:
    """Each version's event time, as the log has it (index 0 is version 1)."""
    events: list[Any] = list(services.ctx.app.events.get(UUID(stream)))
    return [e.timestamp for e in events]


def version_of(services: Services, stream: str) -> int:
    return int(services.ctx.app.repository.get(UUID(stream)).version)


def ids_of(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()]


@pytest.fixture
def grown(services: Services) -> tuple[str, str, int, list[str], list[str]]:
    """A conversation of 10 messages at version ``then``, 5 more after it: (conv id, uuid,
    then, the ids listed then in order, the later ids).
    """
    agent = new_agent(services)
    row = new_conversation(services, agent.id)
    for i in range(5):
        append(services, row.id, f"q{i}")
        append(services, row.id, f"a{i}", role="assistant")
    then = version_of(services, row.id)
    listed_then = [item["id"] for item in listing(services, row.conversation_id)]
    later = [*append(services, row.id, "later 0", "later 1"), *append(services, row.id, "x")]
    services.conversations.update(ACTOR, row.conversation_id, {"summary": "renamed"})
    later += append(services, row.id, "y", "z", role="assistant")
    return row.conversation_id, row.id, then, listed_then, later


# -- which version -----------------------------------------------------------------------------


def test_as_of_picks_the_last_version_at_or_before_the_time(
    services: Services, http: TestClient, grown: tuple[str, str, int, list[str], list[str]]
) -> None:
    conv_id, uuid, then, _, _ = grown
    times = stamps(services, uuid)
    path = f"/v1/conversations/{conv_id}"
    for version in (1, 2, then, len(times)):
        moment = times[version - 1]
        exactly = http.get(path, params={"as_of": moment.isoformat()})
        assert exactly.status_code == 200, exactly.text
        assert exactly.headers[AS_OF] == str(version)
        by_version = http.get(path, params={"as_of_version": version})
        assert exactly.json() == by_version.json()
        if version < len(times):  # just before the next event: still this version
            gap = (times[version] - moment) / 2
            between = http.get(path, params={"as_of": (moment + gap).isoformat()})
            assert between.headers[AS_OF] == str(version)
    # A time without an offset is UTC; one after the last event is the latest version.
    naive = times[then - 1].replace(tzinfo=None).isoformat()
    assert http.get(path, params={"as_of": naive}).headers[AS_OF] == str(then)
    future = (times[-1] + timedelta(days=365)).isoformat()
    latest = http.get(path, params={"as_of": future})
    assert latest.headers[AS_OF] == str(len(times))
    live = http.get(path).json()
    assert latest.json() == live and live["summary"] == "renamed"
    # The times the API shows (microseconds, as the views keep them) pick their own version.
    created = http.get(path, params={"as_of": live["created_at"]})
    assert created.status_code == 200 and created.headers[AS_OF] == "1"
    assert created.json()["in_context_message_ids"] == []  # the system message is version 2
    messages = f"{path}/messages"
    at_time = http.get(messages, params={"as_of": times[then - 1].isoformat(), "order": "asc"})
    assert at_time.headers[AS_OF] == str(then)


def test_the_past_conversation_shows_the_fields_of_then(
    services: Services, http: TestClient, grown: tuple[str, str, int, list[str], list[str]]
) -> None:
    conv_id, uuid, then, listed_then, _ = grown
    past = http.get(f"/v1/conversations/{conv_id}", params={"as_of_version": then}).json()
    live = http.get(f"/v1/conversations/{conv_id}").json()
    assert past["summary"] is None and live["summary"] == "renamed"
    assert past["in_context_message_ids"] == listed_then
    assert past["created_at"] == live["created_at"]
    assert past["updated_at"] == past["created_at"] != live["updated_at"]
    last_then = from_micros(to_micros(stamps(services, uuid)[then - 1]))
    assert past["last_message_at"] == last_then.isoformat().replace("+00:00", "Z")


# -- errors ------------------------------------------------------------------------------------


ROUTES = ("/v1/conversations/{conv}", "/v1/conversations/{conv}/messages", "/v1/agents/{agent}")


@pytest.mark.parametrize("route", ROUTES)
def test_bad_points_are_400_with_letta_bodies(
    services: Services, http: TestClient, route: str
) -> None:
    agent = new_agent(services)
    row = new_conversation(services, agent.id)
    path = route.format(conv=row.conversation_id, agent=agent.id)
    what = f"agent {agent.id}" if "agents" in route else f"conversation {row.conversation_id}"
    stream = str(ids.to_uuid(agent.id)) if "agents" in route else row.id
    end = version_of(services, stream)
    created = stamps(services, stream)[0]
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"as_of_version": 1, "as_of": created.isoformat()},
            "Give as_of_version or as_of, not both",
        ),
        ({"as_of_version": 0}, "as_of_version=0 is not a version: versions start at 1"),
        ({"as_of_version": -3}, "as_of_version=-3 is not a version: versions start at 1"),
        (
            {"as_of_version": end + 1},
            f"as_of_version={end + 1} is past the end of {what}: its latest version is {end}",
        ),
        (
            {"as_of_version": 10**30},
            f"as_of_version={10**30} is past the end of {what}: its latest version is {end}",
        ),
    ]
    # Times are kept as the views keep them (whole microseconds, possibly one below the
    # event's own): two microseconds before it is before it either way.
    before = created - timedelta(microseconds=2)
    shown = from_micros(to_micros(created)).isoformat()
    cases.append(
        (
            {"as_of": before.isoformat()},
            f"as_of={before.isoformat()} is before {what} was created ({shown})",
        )
    )
    for params, message in cases:
        response = http.get(path, params=params)
        assert response.status_code == 400, (params, response.text)
        assert response.json() == {"detail": f"INVALID_ARGUMENT: {message}"}, params
    for far in ("0001-01-01T00:00:00+10:00", "1900-01-01T00:00:00Z"):
        response = http.get(path, params={"as_of": far})
        assert response.status_code == 400 and "was created" in response.json()["detail"]
    assert http.get(path, params={"as_of": "9999-12-31T23:59:59-10:00"}).status_code == 200
    # Unparseable values are query validation errors, as for every other query field.
    for params in ({"as_of": "yesterday"}, {"as_of_version": "two"}):
        response = http.get(path, params=params)
        assert response.status_code == 422, response.text
        assert set(response.json()) == {"trace_id", "detail"}
        assert str(next(iter(params))) in response.json()["detail"]


@pytest.mark.parametrize("route", ROUTES)
def test_unknown_and_deleted_ids_are_404_as_live(
    services: Services, http: TestClient, route: str
) -> None:
    agent = new_agent(services)
    row = new_conversation(services, agent.id)
    unknown = route.format(conv=ids.new(ids.CONVERSATION), agent=ids.new(ids.AGENT))
    live = http.get(unknown)
    past = http.get(unknown, params={"as_of_version": 1})
    assert past.status_code == live.status_code == 404
    assert past.json() == live.json()
    path = route.format(conv=row.conversation_id, agent=agent.id)
    if "agents" in route:
        http.delete(f"/v1/agents/{agent.id}")
    else:
        http.delete(f"/v1/conversations/{row.conversation_id}")
    live, past = http.get(path), http.get(path, params={"as_of_version": 1})
    assert past.status_code == live.status_code == 404 and past.json() == live.json()


def test_another_tenant_gets_over_http_what_it_gets_for_an_unknown_id(
    services: Services,
) -> None:
    keys = {
        name: services.keys.issue(operator(organization_id(name)), name, "time travel").key
        for name in ("tenant-a", "tenant-b")
    }
    app = create_app(services, EdgeConfig(auth_required=True))
    with TestClient(app, base_url="http://localhost") as http:

        def get(tenant: str, path: str, params: dict[str, Any]) -> Any:
            headers = {"authorization": f"Bearer {keys[tenant]}"}
            return http.get(path, params=params, headers=headers)

        headers = {"authorization": f"Bearer {keys['tenant-a']}"}
        made = http.post("/v1/agents/", json={"name": "a"}, headers=headers).json()
        conv = http.post(
            "/v1/conversations/", params={"agent_id": made["id"]}, json={}, headers=headers
        ).json()
        for route in ROUTES:
            path = route.format(conv=conv["id"], agent=made["id"])
            twin = route.format(conv=ids.new(ids.CONVERSATION), agent=ids.new(ids.AGENT))
            for params in ({"as_of_version": 1}, {"as_of": "9999-01-01T00:00:00Z"}):
                assert get("tenant-a", path, params).status_code == 200, (path, params)
                theirs, unknown = get("tenant-b", path, params), get("tenant-b", twin, params)
                assert theirs.status_code == unknown.status_code == 404
                swapped = unknown.text.replace(twin.split("/")[3], path.split("/")[3])
                assert theirs.text == swapped


def test_another_organization_gets_404_as_on_the_live_routes(services: Services) -> None:
    agent = new_agent(services)
    row = new_conversation(services, agent.id)
    travel, point = services.time_travel, AsOf(version=1)
    for live, past in (
        (
            lambda: services.conversations.get(OTHER_ORG, row.conversation_id),
            lambda: travel.conversation(OTHER_ORG, row.conversation_id, point),
        ),
        (
            lambda: services.conversations.messages(
                OTHER_ORG, row.conversation_id, before=None, after=None, limit=5, ascending=True
            ),
            lambda: travel.messages(
                OTHER_ORG,
                row.conversation_id,
                point,
                before=None,
                after=None,
                limit=5,
                ascending=True,
            ),
        ),
        (
            lambda: services.conversations.messages(
                OTHER_ORG, agent.id, before=None, after=None, limit=5, ascending=True
            ),
            lambda: travel.messages(
                OTHER_ORG, agent.id, point, before=None, after=None, limit=5, ascending=True
            ),
        ),
        (
            lambda: services.agents.get(OTHER_ORG, agent.id),
            lambda: travel.agent(OTHER_ORG, agent.id, point),
        ),
    ):
        with pytest.raises(NotFound) as live_error:
            live()
        with pytest.raises(NotFound) as past_error:
            past()
        assert str(past_error.value) == str(live_error.value)
    assert travel.cache.reads == 0  # refused before the log was read


# -- the past message list ---------------------------------------------------------------------


def test_cursors_order_limit_and_filters_work_on_the_past_list(
    services: Services, http: TestClient, grown: tuple[str, str, int, list[str], list[str]]
) -> None:
    conv_id, _, then, listed_then, later = grown
    path = f"/v1/conversations/{conv_id}/messages"

    def past(**params: Any) -> Any:
        return http.get(path, params={"as_of_version": then, **params})

    assert ids_of(past(order="asc", limit=1000)) == listed_then
    assert ids_of(past()) == listed_then[::-1]  # Letta's default: newest first, 100
    assert ids_of(past(limit=3)) == listed_then[::-1][:3]
    assert ids_of(past(limit=0)) == []
    mid = listed_then[5]
    assert ids_of(past(order="asc", after=mid, limit=2)) == listed_then[6:8]
    assert ids_of(past(order="asc", before=mid, limit=2)) == listed_then[3:5]
    assert ids_of(past(order="desc", after=mid, limit=2)) == listed_then[4:2:-1]
    assert ids_of(past(order="desc", before=mid)) == listed_then[:5:-1]
    assert (
        ids_of(past(order="asc", after=listed_then[1], before=listed_then[4])) == (listed_then[2:4])
    )
    # Walking the past list page by page visits each message once, as the live list does.
    walked, cursor = [], None
    while True:
        page = ids_of(past(order="asc", limit=4, **({"after": cursor} if cursor else {})))
        if not page:
            break
        walked += page
        cursor = page[-1]
    assert walked == listed_then
    users = past(order="asc", include_return_message_types=["user_message"])
    assert [m["content"] for m in users.json()] == [f"q{i}" for i in range(5)]
    assert ids_of(past(order="asc", include_return_message_types=["tool_return_message"])) == []
    # A message from after that version is not a message of the list then.
    for name in ("after", "before"):
        response = past(**{name: later[0]})
        assert response.status_code == 400
        assert response.json() == {
            "detail": f"INVALID_ARGUMENT: Cursor {name}={later[0]} is not a message of {conv_id}"
        }
    assert ids_of(http.get(path, params={"order": "asc", "after": later[0], "limit": 1})) == [
        later[1]
    ]
    # The live list is unchanged and longer; the default conversation route works alike.
    assert ids_of(http.get(path, params={"order": "asc"})) == [*listed_then, *later]


def test_the_agents_own_context_travels_by_its_own_versions(
    services: Services, http: TestClient
) -> None:
    agent = new_agent(services)
    own = str(ids.default_conversation_id(ids.to_uuid(agent.id)))
    first = append(services, own, "hello", "again")
    then = version_of(services, own)
    append(services, own, "later")
    services.agents.reset_messages(ACTOR, agent.id)
    path = f"/v1/conversations/{agent.id}/messages"
    page = http.get(path, params={"as_of_version": then, "order": "asc"})
    assert ids_of(page)[1:] == first
    assert page.headers[AS_OF] == str(then)
    default = http.get(
        "/v1/conversations/default/messages",
        params={"agent_id": agent.id, "as_of_version": then, "order": "asc"},
    )
    assert ids_of(default) == ids_of(page)


def test_a_fork_of_a_compacted_conversation_travels_with_its_parent(
    services: Services, http: TestClient
) -> None:
    agent = new_agent(services)
    parent = new_conversation(services, agent.id)
    for i in range(4):
        append(services, parent.id, f"q{i}")
        append(services, parent.id, f"a{i}", role="assistant")
    request = {"compaction_settings": {"mode": "sliding_window"}}
    asyncio.run(services.compaction.compact(ACTOR, parent.conversation_id, request))
    fork = services.conversations.fork(ACTOR, parent.conversation_id)
    seen = []
    for i in range(3):
        seen.append(
            (
                version_of(services, fork.id),
                http.get(f"/v1/conversations/{fork.conversation_id}").json(),
                http.get(f"/v1/conversations/{fork.conversation_id}/messages").json(),
            )
        )
        append(services, fork.id, f"own {i}")
        append(services, parent.id, f"parent {i}")  # never in the fork
    for version, conversation, messages in seen:
        params = {"as_of_version": version}
        path = f"/v1/conversations/{fork.conversation_id}"
        assert http.get(path, params=params).json() == conversation
        assert http.get(f"{path}/messages", params=params).json() == messages
    assert any(m["role"] == "summary" for m in seen[0][2])


# -- agents and their blocks -------------------------------------------------------------------


def test_an_agent_as_of_a_past_time_shows_its_blocks_then(
    services: Services, http: TestClient
) -> None:
    agent = new_agent(services, blocks={"human": "Ann", "persona": "a bot"})
    agent_uuid = str(ids.to_uuid(agent.id))
    created = http.get(f"/v1/agents/{agent.id}").json()
    shared = http.post("/v1/blocks/", json={"label": "project", "value": "v1"}).json()
    attach = f"/v1/agents/{agent.id}/core-memory/blocks/attach/{shared['id']}"
    assert http.patch(attach).status_code == 200
    times = {"attached": stamps(services, agent_uuid)[-1]}
    human = f"/v1/agents/{agent.id}/core-memory/blocks/human"
    assert http.patch(human, json={"value": "Ann, who likes tea"}).status_code == 200
    times["human edited"] = stamps(services, agent_uuid)[-1]
    assert http.patch(f"/v1/blocks/{shared['id']}", json={"value": "v2"}).status_code == 200
    times["shared edited"] = stamps(services, agent_uuid)[-1]
    assert http.patch(f"/v1/agents/{agent.id}", json={"name": "renamed"}).status_code == 200

    def blocks(params: dict[str, Any]) -> dict[str, str]:
        response = http.get(f"/v1/agents/{agent.id}", params=params)
        assert response.status_code == 200, response.text
        found = response.json()
        assert found["blocks"] == found["memory"]["blocks"]
        return {b["label"]: b["value"] for b in found["blocks"]}

    at = {name: {"as_of": moment.isoformat()} for name, moment in times.items()}
    assert blocks({"as_of_version": 1}) == {"human": "Ann", "persona": "a bot"}
    assert blocks(at["attached"]) == {"human": "Ann", "persona": "a bot", "project": "v1"}
    assert blocks(at["human edited"])["human"] == "Ann, who likes tea"
    assert blocks(at["human edited"])["project"] == "v1"
    assert blocks(at["shared edited"])["project"] == "v2"
    # The agent as created: its fields, its own context's system message; the live one moved on.
    first = http.get(f"/v1/agents/{agent.id}", params={"as_of_version": 1}).json()
    assert first == created
    live = http.get(f"/v1/agents/{agent.id}").json()
    assert live["name"] == "renamed" and first["name"] == agent.name
    assert live["updated_at"] != first["updated_at"] == first["created_at"]
    # A shared block's own history agrees with the agent's copy at each of those times.
    block_uuid = ids.to_uuid(shared["id"])
    block_times = stamps(services, str(block_uuid))
    for name, moment in times.items():
        version = max(v for v, t in enumerate(block_times, start=1) if t <= moment)
        block: Any = services.ctx.app.repository.get(block_uuid, version=version)
        assert isinstance(block, Block)
        assert blocks(at[name])["project"] == block.value, name


def test_an_agent_at_every_version_is_the_live_agent_then_across_snapshots(
    services: Services, http: TestClient
) -> None:
    """More than 20 events, so versions past the agent's first snapshot are read from it."""
    agent = new_agent(services)
    agent_uuid = str(ids.to_uuid(agent.id))
    own = str(ids.default_conversation_id(ids.to_uuid(agent.id)))
    path = f"/v1/agents/{agent.id}"
    seen = {1: http.get(path).json()}
    for i in range(24):
        if i % 5 == 0:
            http.patch(path, json={"name": f"name {i}", "tags": [f"t{i}"]})
        elif i % 5 == 1:
            http.patch(f"{path}/core-memory/blocks/human", json={"value": f"human {i}"})
        elif i % 5 == 2:
            append(services, own, f"said {i}")
            http.patch(path, json={"description": f"after {i}"})
        else:
            new_conversation(services, agent.id)  # the agent records ConversationOpened
        seen[version_of(services, agent_uuid)] = http.get(path).json()
    assert max(seen) > 20
    for version, then in seen.items():
        past = http.get(path, params={"as_of_version": version})
        assert past.headers[AS_OF] == str(version)
        assert past.json() == then, version


def test_an_agents_message_ids_are_its_own_context_then(
    services: Services, http: TestClient
) -> None:
    agent = new_agent(services)
    own = str(ids.default_conversation_id(ids.to_uuid(agent.id)))
    created = http.get(f"/v1/agents/{agent.id}").json()
    assert len(created["message_ids"]) == 1  # the system message, made with the agent
    said = append(services, own, "hello")
    assert http.patch(f"/v1/agents/{agent.id}", json={"description": "d"}).status_code == 200
    after = http.get(f"/v1/agents/{agent.id}", params={"as_of_version": 2}).json()
    assert after["message_ids"] == [*created["message_ids"], *said]
    assert after["description"] == "d"
    first = http.get(f"/v1/agents/{agent.id}", params={"as_of_version": 1}).json()
    assert first["message_ids"] == created["message_ids"] and first["description"] is None


# -- the cache ---------------------------------------------------------------------------------


def test_the_past_is_read_from_the_log_once(
    services: Services, http: TestClient, grown: tuple[str, str, int, list[str], list[str]]
) -> None:
    conv_id, uuid, then, listed_then, _ = grown
    cache = services.time_travel.cache
    path = f"/v1/conversations/{conv_id}/messages"
    assert ids_of(http.get(path, params={"as_of_version": then, "order": "asc"})) == listed_then
    reads = cache.reads
    for version in range(then, 0, -1):  # older versions: answered from the fold in memory
        http.get(path, params={"as_of_version": version})
        http.get(f"/v1/conversations/{conv_id}", params={"as_of_version": version})
    assert cache.reads == reads
    end = version_of(services, uuid)
    append(services, uuid, "newer")
    newest = http.get(path, params={"as_of_version": end + 1, "limit": 1})
    assert [m["content"] for m in newest.json()] == ["newer"]
    assert cache.reads == reads + 1  # only the newer events


def test_the_cache_drops_the_least_recently_used_streams(services: Services) -> None:
    agent = new_agent(services)
    rows = [new_conversation(services, agent.id) for _ in range(3)]
    travel, cache = services.time_travel, services.time_travel.cache
    travel.conversation(ACTOR, rows[0].conversation_id, AsOf(version=2))
    cache.capacity = int(2.5 * cache.past(rows[0].id).weight)  # two of them fit
    for row in rows[1:]:
        travel.conversation(ACTOR, row.conversation_id, AsOf(version=2))
    assert list(cache._pasts) == [rows[1].id, rows[2].id]
    travel.conversation(ACTOR, rows[1].conversation_id, AsOf(version=2))  # used: kept
    travel.conversation(ACTOR, rows[0].conversation_id, AsOf(version=2))
    assert list(cache._pasts) == [rows[1].id, rows[0].id]


# -- the document ------------------------------------------------------------------------------


def test_the_openapi_document_lists_the_points_and_the_400() -> None:
    paths = document(ENDPOINTS, VERSION)["paths"]
    for path in (
        "/v1/conversations/{conversation_id}",
        "/v1/conversations/{conversation_id}/messages",
        "/v1/agents/{agent_id}",
    ):
        operation = paths[path]["get"]
        params = {p["name"]: p for p in operation["parameters"]}
        assert params["as_of_version"]["in"] == "query"
        assert {"type": "integer"} in params["as_of_version"]["schema"]["anyOf"]
        assert params["as_of_version"]["schema"]["minimum"] == 1
        assert {"type": "string", "format": "date-time"} in params["as_of"]["schema"]["anyOf"]
        assert "400" in operation["responses"]
        assert "INVALID_ARGUMENT" in operation["responses"]["400"]["description"]
    # The agent's own messages route keeps its live query only.
    agent_messages = paths["/v1/agents/{agent_id}/messages"]["get"]
    assert "as_of_version" not in {p["name"] for p in agent_messages["parameters"]}


def test_the_list_is_json_of_the_stored_items(
    services: Services, http: TestClient, grown: tuple[str, str, int, list[str], list[str]]
) -> None:
    conv_id, _, then, _, _ = grown
    past = http.get(f"/v1/conversations/{conv_id}/messages", params={"as_of_version": then})
    assert past.headers["content-type"] == "application/json"
    assert json.loads(past.text) == past.json()
