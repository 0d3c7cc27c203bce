"""Tenant isolation over HTTP: two API keys in two organizations, A and B, and every route of
``api.app.ENDPOINTS`` driven as B against A's resources.

A builds a spread of resources through the API: agents with tags and blocks, a shared block
attached to both, conversations with turns (a memory edit, a search), a fork, a compacted one,
one waiting for a client tool's approval, the agents' own contexts, runs (finished, a finished
background one, and one held running by ``Holding``). B builds the same for itself, with the
same tag, labels and common words. Then each Hypothesis example makes every call of ``CATALOG``
(route -> how B calls it) once, in a random order, on A's resources chosen at random, with
random filters, and with A's ids as list cursors. For each of B's requests (``World.attack``):

- nothing of A's is in the answer: none of A's ids (every UUID in A's view of its own
  resources: ids, otids, its organization and key) and none of A's marker strings (in names,
  tags, block values, summaries, messages), apart from those B itself sent;
- the answer is the one B gets for ids never issued (the *twin* request, A's ids and markers
  swapped for fresh ones): the same status and, for errors and reads, the same body with the
  ids swapped back. So not even the status tells B that A's resource exists;
- the status is the one the catalog expects: 404 for every route that takes a path id, except
  where the catalog documents another (always the status of an unknown id);
- for a read, A gets 200 for the same request: the target really exists.

After each example A's view of its resources (``view``: every retrieve and list, messages and
events included) must equal the one taken before B started.

A new route fails ``test_every_route_is_in_the_catalog`` until it is added to ``CATALOG``.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from uuid import uuid4

import anyio
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from api.app import ENDPOINTS, create_app
from api.config import EdgeConfig
from domain import ids
from domain.api_key import organization_id
from runtime.bootstrap import build, build_model
from runtime.settings import Settings
from service.actor import operator
from service.model import ChatModel, ModelRequest, StreamItem

BUILTIN = "convlog/builtin"
COMMON = "pelican"  # a word in both tenants' names, summaries, blocks and messages
SHARED_TAG = "team"  # a tag both tenants use
SHARED_LABEL = "project"  # the label of both tenants' shared block
HOLD = "hold on"  # a turn whose input starts so waits until the module is done (see Holding)
# B's requests may not take longer: a request that streams one of A's runs would never end.
REQUEST_SECONDS = 10.0

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
SECRET = re.compile(f"{UUID}|[ab]mark[0-9a-f]{{10}}")  # an id's UUID, or a tenant's marker
GLOBAL = frozenset(
    SECRET.findall(f"{ids.DEFAULT_USER_ID} {ids.DEFAULT_ORG_ID}")
)  # every request acts as the default user; tool ids are added from /v1/tools/

Route = tuple[str, str]
T = TypeVar("T")


# -- the server, with one of A's runs held active ------------------------------------------


class Holding:
    """The configured models, except that a turn whose latest user message starts with HOLD
    waits until ``release`` is set: a run of A's stays active while B tries to cancel,
    delete or resume it.
    """

    def __init__(self, inner: ChatModel, release: threading.Event) -> None:
        self.inner = inner
        self.release = release

    def check(self, handle: str) -> None:
        self.inner.check(handle)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamItem]:
        said = [m.content for m in request.messages if m.role == "user"]
        if said and said[-1].startswith(HOLD):
            while not self.release.is_set():
                await asyncio.sleep(0.02)
        async for item in self.inner.stream(request):
            yield item

    def payload(self, request: ModelRequest) -> dict[str, Any]:
        return self.inner.payload(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Bounded:
    """Fails a request that takes longer than ``seconds`` instead of hanging the module."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with anyio.fail_after(self.seconds):
            await self.app(scope, receive, send)


# -- requests -------------------------------------------------------------------------------


class Answer(Protocol):
    """What the tests read of a response (the test client's httpx flavour may vary)."""

    @property
    def status_code(self) -> int: ...

    @property
    def text(self) -> str: ...

    def json(self, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None  # None: no body

    def text(self) -> str:
        return json.dumps([self.method, self.path, self.params, self.body])

    def __str__(self) -> str:
        return f"{self.method} {self.path} params={self.params} body={self.body}"


@dataclass(frozen=True)
class Api:
    http: TestClient
    key: str

    def send(self, request: Request) -> Answer:
        return self.http.request(
            request.method,
            request.path,
            params=request.params or None,
            json=request.body,
            headers={"authorization": f"Bearer {self.key}"},
        )

    def ok(
        self, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None
    ) -> Any:
        response = self.send(Request(method, path, params or {}, body))
        assert response.status_code == 200, f"{method} {path}: {response.text}"
        return response.json()


@dataclass
class Marks:
    """Unique strings a tenant puts in what it creates, so a leak of them can be spotted."""

    prefix: str  # "amark" or "bmark"
    issued: list[str] = field(default_factory=list)

    def new(self) -> str:
        mark = f"{self.prefix}{uuid4().hex[:10]}"
        self.issued.append(mark)
        return mark


# -- a tenant's resources --------------------------------------------------------------------


@dataclass
class Tenant:
    api: Api
    marks: Marks
    agents: list[str]
    own_contexts: list[str]  # the agents' own contexts by their conv- id (never listed)
    conversations: list[str]  # listed ones: a fork, a compacted one, the pending one
    pending: tuple[str, str]  # a conversation waiting for approval, and the pending call's id
    blocks: list[str]  # shared ones and the agents' own
    shared_blocks: list[str]
    labels: dict[str, list[str]]  # agent -> its block labels
    runs: list[str]  # every run, the active one included
    background_runs: list[str]  # finished, and resumable
    active_run: str | None
    messages: list[str]
    steps: list[str]
    otids: list[str]  # the otids its turns sent
    tags: list[str]
    names: list[str]
    summaries: list[str]
    tools: dict[str, str]  # the server's tools, name -> id (the same for every tenant)

    @property
    def streams(self) -> list[str]:
        """Where it can start a turn: its conversations (not the pending one) and agents."""
        return [c for c in self.conversations if c != self.pending[0]] + self.agents


def new_agent(api: Api, marks: Marks, name: str, tags: list[str], labels: list[str]) -> str:
    body = {
        "name": name,
        "model": BUILTIN,
        "tags": tags,
        "description": f"{COMMON} {marks.new()}",
        "metadata": {"note": marks.new()},
        "memory_blocks": [
            {"label": label, "value": f"{COMMON} {marks.new()}", "description": marks.new()}
            for label in labels
        ],
    }
    agent: str = api.ok("POST", "/v1/agents/", body=body)["id"]
    return agent


def new_conversation(api: Api, agent: str, summary: str, isolated: list[str] | None = None) -> str:
    body = {"summary": summary, "isolated_block_labels": isolated}
    conversation: str = api.ok("POST", "/v1/conversations/", {"agent_id": agent}, body)["id"]
    return conversation


def turn(api: Api, path_id: str, text: str, otid: str | None = None, **extra: Any) -> Any:
    message: dict[str, Any] = {"role": "user", "content": text}
    if otid is not None:
        message["otid"] = otid
    body = {"messages": [message], "streaming": False, **extra}
    return api.ok("POST", f"/v1/conversations/{path_id}/messages", body=body)


def wait_for(api: Api, run: str, status: str) -> None:
    deadline = time.monotonic() + 10
    while api.ok("GET", f"/v1/runs/{run}")["status"] != status:
        assert time.monotonic() < deadline, f"run {run} is not {status}"
        time.sleep(0.01)


def own_context(agent: str) -> str:
    return ids.format_id(ids.CONVERSATION, ids.default_conversation_id(ids.to_uuid(agent)))


def populate(api: Api, marks: Marks, *, hold: bool) -> Tenant:
    """One tenant's spread of resources, all made through the API."""
    tools = {t["name"]: t["id"] for t in api.ok("GET", "/v1/tools/", {"limit": 1000})}
    tags = [SHARED_TAG, marks.new(), marks.new()]
    names = [f"{COMMON} agent {marks.new()}", f"{COMMON} helper {marks.new()}"]
    labels = [["human", "persona"], ["human", marks.new()]]
    agents = [
        new_agent(api, marks, names[0], tags[:2], labels[0]),
        new_agent(api, marks, names[1], [SHARED_TAG, tags[2]], labels[1]),
    ]
    shared = api.ok(
        "POST",
        "/v1/blocks/",
        body={
            "label": SHARED_LABEL,
            "value": f"{COMMON} {marks.new()}",
            "description": marks.new(),
            "metadata": {"note": marks.new()},
        },
    )["id"]
    for agent in agents:
        api.ok("PATCH", f"/v1/agents/{agent}/core-memory/blocks/attach/{shared}")
    api.ok("PATCH", f"/v1/agents/{agents[1]}/tools/attach/{tools['memory_rethink']}")
    summaries = [f"{COMMON} summary {marks.new()}" for _ in range(3)]
    otids = [marks.new(), marks.new()]

    talk = new_conversation(api, agents[0], summaries[0], isolated=["human"])
    turn(api, talk, f"{COMMON} hello {marks.new()}", otid=otids[0])
    turn(api, talk, f"remember {marks.new()}")
    turn(api, talk, f"search {COMMON}")
    fork: str = api.ok("POST", f"/v1/conversations/{talk}/fork")["id"]
    turn(api, fork, f"{COMMON} on the fork {marks.new()}", otid=otids[1])
    compacted = new_conversation(api, agents[1], summaries[1])
    turn(api, compacted, f"{COMMON} first {marks.new()}")
    turn(api, compacted, f"{COMMON} second {marks.new()}")
    api.ok(
        "POST",
        f"/v1/conversations/{compacted}/compact",
        body={"compaction_settings": {"mode": "all"}},
    )
    pending = new_conversation(api, agents[0], summaries[2])
    asked = turn(api, pending, "call lookup {}", client_tools=[{"name": "lookup"}])
    assert asked["stop_reason"]["stop_reason"] == "requires_approval", asked
    call_id = asked["messages"][-1]["tool_call"]["tool_call_id"]

    turn(api, agents[0], f"{COMMON} directly {marks.new()}")
    later = api.ok(
        "POST", f"/v1/agents/{agents[0]}/messages/async", body={"input": f"later {marks.new()}"}
    )["id"]
    wait_for(api, later, "completed")
    active = None
    if hold:
        body = {"input": f"{HOLD} {marks.new()}"}
        active = api.ok("POST", f"/v1/agents/{agents[1]}/messages/async", body=body)["id"]
        wait_for(api, active, "running")

    conversations = [talk, fork, compacted, pending]
    runs = api.ok("GET", "/v1/runs/", {"limit": 1000})
    assert active is None or active in {r["id"] for r in runs}
    return Tenant(
        api=api,
        marks=marks,
        agents=agents,
        own_contexts=[own_context(agent) for agent in agents],
        conversations=conversations,
        pending=(pending, call_id),
        blocks=[b["id"] for b in api.ok("GET", "/v1/blocks/", {"limit": 1000})],
        shared_blocks=[shared],
        labels={agent: [*own, SHARED_LABEL] for agent, own in zip(agents, labels, strict=True)},
        runs=[r["id"] for r in runs],
        background_runs=[r["id"] for r in runs if r["background"] and r["id"] != active],
        active_run=active,
        messages=[
            m["id"]
            for stream in conversations + agents
            for m in api.ok("GET", f"/v1/conversations/{stream}/messages", {"limit": 1000})
        ],
        steps=[s["id"] for r in runs for s in api.ok("GET", f"/v1/runs/{r['id']}/steps")],
        otids=otids,
        tags=tags,
        names=names,
        summaries=summaries,
        tools=tools,
    )


def view(tenant: Tenant) -> dict[str, Any]:
    """Everything the tenant reads of its own resources, by request."""
    every = {"limit": 1000}
    reads: list[tuple[str, dict[str, Any]]] = [
        ("/v1/agents/", every),
        ("/v1/agents/count", {}),
        ("/v1/conversations/", every),
        ("/v1/runs/", every),
        ("/v1/runs/active", {}),
        ("/v1/blocks/", every),
    ]
    for agent in tenant.agents:
        reads += [
            (f"/v1/agents/{agent}", {}),
            (f"/v1/agents/{agent}/core-memory/blocks", {}),
            (f"/v1/agents/{agent}/tools", {}),
            (f"/v1/agents/{agent}/messages", every),
            (f"/v1/conversations/{agent}/events", every),
        ]
    for conversation in tenant.conversations:
        reads += [
            (f"/v1/conversations/{conversation}", {}),
            (f"/v1/conversations/{conversation}/messages", every),
            (f"/v1/conversations/{conversation}/events", every),
            (f"/v1/conversations/{conversation}/audit", {}),
        ]
    for block in tenant.blocks:
        reads += [(f"/v1/blocks/{block}", {}), (f"/v1/blocks/{block}/agents", {})]
    for run in tenant.runs:
        reads += [
            (f"/v1/runs/{run}{part}", {})
            for part in ("", "/messages", "/steps", "/usage", "/metrics")
        ]
    return {f"{path} {params}": tenant.api.ok("GET", path, params) for path, params in reads}


def secrets_in(text: str) -> set[str]:
    return set(SECRET.findall(text))


# -- one attempt of B's, and what must hold of its answer ------------------------------------


@dataclass(frozen=True)
class Attempt:
    request: Request
    expect: int | None = 404  # B's status (None: whatever an unknown id gets, see the twin)
    a_sees: bool = False  # A gets 200 for the same request (a read): the target exists
    empty_or_error: bool = False  # a list with one of A's ids as a cursor
    check: Callable[[Answer, Api], None] | None = None  # anything else to hold


@dataclass
class World:
    a: Tenant
    b: Tenant
    a_view: dict[str, Any]
    secrets: frozenset[str]  # A's ids and markers
    # A's markers that B wrote into its own resources (an agent named as A's, A's otid on a
    # message of B's): B's as much as A's from then on.
    echoed: set[str] = field(default_factory=set)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How Hypothesis shows this argument of a failing test: briefly."""
        printer.text(f"World(A: {len(self.a_view)} reads, {len(self.secrets)} ids and markers)")

    def leaks(self, text: str, sent: str) -> set[str]:
        """A's ids and markers in ``text``, apart from those B sent or wrote before."""
        return {s for s in secrets_in(text) & self.secrets if s not in sent} - self.echoed

    def addresses_a(self, request: Request) -> bool:
        """Whether the request's path names one of A's resources (``default`` + A's agent)."""
        named = request.path
        if "/conversations/default/" in request.path:
            named = json.dumps([request.params, request.body])
        return bool(secrets_in(named) & self.secrets)

    def twin(self, request: Request) -> tuple[Request, dict[str, str]]:
        """The same request with each of A's ids and markers swapped for a never-issued one."""
        text = request.text()
        swap = {
            s: str(uuid4()) if re.fullmatch(UUID, s) else f"zmark{uuid4().hex[:10]}"
            for s in secrets_in(text) & self.secrets - self.echoed
        }
        for old, new in swap.items():
            text = text.replace(old, new)
        method, path, params, body = json.loads(text)
        return Request(method, path, params, body), swap

    def attack(self, attempt: Attempt) -> None:
        request = attempt.request
        answer = self.b.api.send(request)
        sent = request.text()
        leaked = self.leaks(answer.text, sent)
        assert not leaked, f"B got A's {sorted(leaked)} from {request}: {answer.text[:2000]}"
        if attempt.expect is not None:
            assert answer.status_code == attempt.expect, f"{request}: {answer.text[:2000]}"
        if attempt.check is not None:
            attempt.check(answer, self.b.api)
        if request.method != "GET" and attempt.expect == 200:
            self.echoed |= {s for s in secrets_in(sent) & self.secrets if s.startswith("amark")}
        names_a = bool(secrets_in(sent) & self.secrets - self.echoed)
        if not names_a:
            return
        if attempt.empty_or_error:
            assert answer.status_code >= 400 or answer.json() == [], f"{request}: {answer.text}"
        unknown_request, swap = self.twin(request)
        unknown = self.b.api.send(unknown_request)
        assert unknown.status_code == answer.status_code, (
            f"{request} is {answer.status_code} for A's ids but {unknown.status_code} for ids "
            f"never issued: {answer.text[:1000]} / {unknown.text[:1000]}"
        )
        if answer.status_code >= 400 or request.method == "GET":
            text = unknown.text
            for old, new in swap.items():
                text = text.replace(new, old)
            assert text == answer.text, f"{request}: {answer.text} / for unknown ids: {text}"
        if attempt.a_sees:
            mine = self.a.api.send(request)
            assert mine.status_code == 200, f"A's own {request}: {mine.text[:1000]}"


# -- choosing targets and filters ------------------------------------------------------------


class Pick:
    """Hypothesis's choices, in the terms of the two tenants' resources."""

    def __init__(self, data: st.DataObject, world: World) -> None:
        self.data = data
        self.a = world.a
        self.b = world.b

    def draw(self, strategy: st.SearchStrategy[T]) -> T:
        return self.data.draw(strategy)

    def one(self, items: Sequence[T]) -> T:
        return self.data.draw(st.sampled_from(items))

    def flag(self) -> bool:
        return self.data.draw(st.booleans())

    def a_stream(self) -> str:
        """One of A's conversations, agents (their own context) or own contexts by conv id."""
        return self.one([*self.a.conversations, *self.a.agents, *self.a.own_contexts])

    def a_stream_or_default(self) -> tuple[str, dict[str, str]]:
        """As ``a_stream``, or ``default`` with ``agent_id`` (to send in the query or body)."""
        if self.flag():
            return "default", {"agent_id": self.one(self.a.agents)}
        return self.a_stream(), {}

    def page(self) -> dict[str, Any]:
        return self.draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "order": st.sampled_from(["asc", "desc"]),
                    "limit": st.integers(1, 100),
                },
            )
        )

    def text(self, *known: str) -> str:
        """A filter value: one of ``known``, a common word, or a few random characters."""
        words = st.sampled_from([*known, COMMON, "agent", "a", "%", "_"])
        return self.draw(st.one_of(words, st.text("abmrk0123456789 %_-", min_size=1, max_size=6)))

    def cursor(self, a_ids: Sequence[str], b_ids: Sequence[str]) -> tuple[dict[str, str], bool]:
        """``after`` or ``before`` one of A's ids or of B's: (the params, whether it is A's)."""
        a_cursor = self.flag()
        key = self.one(["after", "before"])
        return {key: self.one(a_ids if a_cursor else b_ids)}, a_cursor

    def turn_body(self, **extra: Any) -> dict[str, Any]:
        text = f"{COMMON} {self.text()}"
        if self.flag():
            return {"input": text, **extra}
        return {"messages": [{"role": "user", "content": text}], **extra}


Build = Callable[[Pick], Attempt]


def request(
    method: str, path: str, params: dict[str, Any] | None = None, body: Any = None
) -> Request:
    return Request(method, path, params or {}, body)


# Routes that take A's conversation (or agent) as the path: B must get 404 for every one.


def retrieve_conversation(p: Pick) -> Attempt:
    target = p.a_stream()
    return Attempt(
        request("GET", f"/v1/conversations/{target}"), a_sees=target in p.a.conversations
    )


def update_conversation(p: Pick) -> Attempt:
    body = {"summary": f"B's now {p.text()}"}
    return Attempt(request("PATCH", f"/v1/conversations/{p.a_stream()}", body=body))


def delete_conversation(p: Pick) -> Attempt:
    return Attempt(request("DELETE", f"/v1/conversations/{p.a_stream()}"))


def list_a_messages(p: Pick) -> Attempt:
    target, extra = p.a_stream_or_default()
    params = {**p.page(), **extra}
    if p.flag():
        params["include_return_message_types"] = ["user_message", "assistant_message"]
    return Attempt(
        request("GET", f"/v1/conversations/{target}/messages", params),
        a_sees=target not in p.a.own_contexts,
    )


def list_b_messages_after_a_message(p: Pick) -> Attempt:
    """B's own conversation with A's message as the cursor: as an unknown message (400)."""
    cursor = {p.one(["after", "before"]): p.one(p.a.messages)}
    path = f"/v1/conversations/{p.one(p.b.streams)}/messages"
    return Attempt(request("GET", path, cursor), expect=400, empty_or_error=True)


def retrieve_a_message(p: Pick) -> Attempt:
    return Attempt(request("GET", f"/v1/messages/{p.one(p.a.messages)}"), a_sees=True)


def search_messages_for_a_words(p: Pick) -> Attempt:
    """B's organization-wide search, for what A said, maybe within A's agent or conversation:
    only B's own messages, or none."""
    body: dict[str, Any] = {"query": p.one([COMMON, *p.a.marks.issued])}
    if p.flag():
        body["agent_id"] = p.one(p.a.agents)
    elif p.flag():
        body["conversation_id"] = p.one(p.a.conversations)
    return Attempt(request("POST", "/v1/messages/search", body=body), expect=200)


def recompile_conversation(p: Pick) -> Attempt:
    target, extra = p.a_stream_or_default()
    dry_run = p.flag()
    path = f"/v1/conversations/{target}/recompile"
    return Attempt(
        request("POST", path, {"dry_run": dry_run}, extra),
        a_sees=dry_run and target not in p.a.own_contexts,
    )


def fork_conversation(p: Pick) -> Attempt:
    target, extra = p.a_stream_or_default()
    return Attempt(request("POST", f"/v1/conversations/{target}/fork", extra))


def list_events(p: Pick) -> Attempt:
    target = p.a_stream()
    params = p.draw(
        st.fixed_dictionaries(
            {}, optional={"after": st.integers(0, 5), "limit": st.integers(1, 100)}
        )
    )
    return Attempt(
        request("GET", f"/v1/conversations/{target}/events", params),
        a_sees=target not in p.a.own_contexts,
    )


def audit_a(p: Pick) -> Attempt:
    target = p.a_stream()
    return Attempt(
        request("GET", f"/v1/conversations/{target}/audit"),
        a_sees=target not in p.a.own_contexts,
    )


def send_to_a(p: Pick) -> Attempt:
    """A plain message, or an answer to A's pending approval: 404, never 409 or 400."""
    target, extra = p.a_stream_or_default()
    body = p.turn_body(streaming=p.flag(), **extra)
    if p.flag():
        conversation, call_id = p.a.pending
        target, body = (
            conversation,
            {
                "messages": [
                    {
                        "type": "approval",
                        "approvals": [
                            {"type": "approval", "tool_call_id": call_id, "approve": True}
                        ],
                    }
                ],
                "streaming": False,
            },
        )
    return Attempt(request("POST", f"/v1/conversations/{target}/messages", body=body))


def send_in_b_with_a_words(p: Pick) -> Attempt:
    """B's own turn: searching for what A said, or reusing one of A's otids (a retry is
    matched by otid). B's search finds only B's messages; the otid starts a turn of B's (in
    its second agent's own context, so that B's conversations never took A's otids).
    """
    if p.flag():
        message = {"role": "user", "content": f"{COMMON} again", "otid": p.one(p.a.otids)}
        target = p.b.agents[1]
    else:
        text = f"search {p.one([COMMON, *p.a.marks.issued])}"
        message = {"role": "user", "content": text}
        target = p.one(p.b.streams)
    body = {"messages": [message], "streaming": False}
    return Attempt(request("POST", f"/v1/conversations/{target}/messages", body=body), expect=200)


def preview_a(p: Pick) -> Attempt:
    target, extra = p.a_stream_or_default()
    path = f"/v1/conversations/{target}/messages/preview-raw-payload"
    return Attempt(
        request("POST", path, body=p.turn_body(**extra)),
        a_sees=target not in (*p.a.own_contexts, p.a.pending[0]),
    )


def resume_a_stream(p: Pick) -> Attempt:
    """With no run named, a ``conv-`` path with no active run of the caller's is a 400 ("No
    active runs found") whether or not the conversation exists: A's conversations (and the own
    context holding A's active run, by its conv- id) answer B exactly as an unknown id does.
    An agent path (or default + agent_id), or a run named by id or otid, is 404.
    """
    target, extra = p.a_stream_or_default()
    body: dict[str, Any] = dict(extra)
    choice = p.draw(st.sampled_from(["active", "run_id", "otid"]))
    if choice == "run_id":
        body["run_id"] = p.one(p.a.runs)
    elif choice == "otid":
        body["otid"] = p.one(p.a.otids)
    no_run_named = choice == "active" and target.startswith(f"{ids.CONVERSATION}-")
    path = f"/v1/conversations/{target}/stream"
    return Attempt(request("POST", path, body=body), expect=400 if no_run_named else 404)


def resume_b_stream_with_a_run(p: Pick) -> Attempt:
    """B's own conversation, resumed at A's run (by id, or by the otid it took): 404."""
    body = {"run_id": p.one(p.a.runs)} if p.flag() else {"otid": p.one(p.a.otids)}
    conversations = [c for c in p.b.conversations if c != p.b.pending[0]]
    path = f"/v1/conversations/{p.one(conversations)}/stream"
    return Attempt(request("POST", path, body=body))


def cancel_a(p: Pick) -> Attempt:
    target, extra = p.a_stream_or_default()
    return Attempt(request("POST", f"/v1/conversations/{target}/cancel", extra))


def compact_a(p: Pick) -> Attempt:
    target, extra = p.a_stream_or_default()
    body: dict[str, Any] = dict(extra)
    if p.flag():
        body["compaction_settings"] = {"mode": p.one(["all", "sliding_window"])}
    return Attempt(request("POST", f"/v1/conversations/{target}/compact", body=body))


def create_conversation_for_a_agent(p: Pick) -> Attempt:
    body: dict[str, Any] = {"summary": p.text()}
    if p.flag():
        body["isolated_block_labels"] = ["human"]
    params = {"agent_id": p.one(p.a.agents)}
    return Attempt(request("POST", "/v1/conversations/", params, body))


def list_conversations(p: Pick) -> Attempt:
    """One filter at a time (an agent's, a summary's words) so each is tried often."""
    filters = p.draw(
        st.one_of(
            st.fixed_dictionaries({"agent_id": st.sampled_from([*p.a.agents, *p.b.agents])}),
            st.just({"summary_search": p.text(*p.a.summaries, *p.a.marks.issued)}),
            st.just({}),
        )
    )
    order_by = st.sampled_from(["created_at", "last_run_completion", "last_message_at"])
    params = {
        **filters,
        **p.page(),
        **p.draw(st.fixed_dictionaries({}, optional={"order_by": order_by})),
    }
    return Attempt(request("GET", "/v1/conversations/", params), expect=200)


def list_conversations_after(p: Pick) -> Attempt:
    """After A's conversation: as after an unknown one (400). After B's: B's page."""
    a_cursor = p.flag()
    after = p.one(p.a.conversations if a_cursor else p.b.conversations)
    return Attempt(
        request("GET", "/v1/conversations/", {"after": after, **p.page()}),
        expect=400 if a_cursor else 200,
        empty_or_error=a_cursor,
    )


# Agents.


def a_agent_path(p: Pick, tail: str = "") -> str:
    return f"/v1/agents/{p.one(p.a.agents)}{tail}"


def recompile_agent(tail: str) -> Build:
    def attempt(p: Pick) -> Attempt:
        dry_run = p.flag()
        return Attempt(request("POST", a_agent_path(p, tail), {"dry_run": dry_run}), a_sees=dry_run)

    return attempt


def create_agent_like_a(p: Pick) -> Attempt:
    """B may name and tag its agent as A did: its own, and nothing of A's comes with it."""
    body = {
        "name": p.one(p.a.names),
        "model": BUILTIN,
        "tags": p.draw(st.lists(st.sampled_from(p.a.tags), max_size=2)),
        "memory_blocks": [{"label": p.one(p.a.labels[p.a.agents[1]]), "value": p.text()}],
    }
    return Attempt(request("POST", "/v1/agents/", body=body), expect=200)


def list_agents(p: Pick) -> Attempt:
    """One filter at a time (tags, a name's words, a name) so each is tried often. Both
    tenants tag with SHARED_TAG and name agents with COMMON: B's matches must be B's only.
    """
    tags = st.lists(st.sampled_from([*p.a.tags, *p.b.tags, "nobody"]), min_size=1, max_size=3)
    filters = p.draw(
        st.one_of(
            st.fixed_dictionaries({"tags": tags}, optional={"match_all_tags": st.booleans()}),
            st.just({"query_text": p.text(*p.a.names, *p.a.marks.issued)}),
            st.fixed_dictionaries({"name": st.sampled_from([*p.a.names, *p.b.names])}),
            st.just({}),
        )
    )
    return Attempt(request("GET", "/v1/agents/", {**filters, **p.page()}), expect=200)


def list_agents_from(p: Pick) -> Attempt:
    """After or before A's agent: as an unknown one (400). B's: B's page."""
    cursor, a_cursor = p.cursor(p.a.agents, p.b.agents)
    return Attempt(
        request("GET", "/v1/agents/", {**cursor, **p.page()}),
        expect=400 if a_cursor else 200,
        empty_or_error=a_cursor,
    )


def counts_only_b(answer: Answer, b: Api) -> None:
    assert answer.json() == len(b.ok("GET", "/v1/agents/", {"limit": 1000}))


def count_agents(p: Pick) -> Attempt:
    return Attempt(request("GET", "/v1/agents/count"), expect=200, check=counts_only_b)


def list_a_agent_blocks(p: Pick) -> Attempt:
    return Attempt(request("GET", a_agent_path(p, "/core-memory/blocks"), p.page()), a_sees=True)


def list_b_agent_blocks_after_a_block(p: Pick) -> Attempt:
    cursor = {p.one(["after", "before"]): p.one(p.a.blocks)}
    path = f"/v1/agents/{p.one(p.b.agents)}/core-memory/blocks"
    return Attempt(request("GET", path, cursor), expect=400, empty_or_error=True)


def retrieve_agent(p: Pick) -> Attempt:
    return Attempt(request("GET", a_agent_path(p)), a_sees=True)


def modify_agent(p: Pick) -> Attempt:
    body = p.draw(
        st.fixed_dictionaries(
            {"metadata": st.just({"owner": "B"})},
            optional={
                "name": st.just(f"B's now {p.text()}"),
                "tags": st.lists(st.sampled_from([*p.b.tags, "b-owned"]), max_size=2),
                "description": st.just("B's"),
                "system": st.just("You work for B."),
                "tool_ids": st.just(list(p.a.tools.values())[:1]),
            },
        )
    )
    return Attempt(request("PATCH", a_agent_path(p), body=body))


def delete_agent(p: Pick) -> Attempt:
    return Attempt(request("DELETE", a_agent_path(p)))


def a_agent_and_label(p: Pick) -> tuple[str, str, bool]:
    """One of A's agents, and one of its block labels (or of another agent's): whether A has it."""
    agent = p.one(p.a.agents)
    label = p.one(sorted({label for labels in p.a.labels.values() for label in labels}))
    return agent, label, label in p.a.labels[agent]


def retrieve_a_block_by_label(p: Pick) -> Attempt:
    agent, label, has = a_agent_and_label(p)
    path = f"/v1/agents/{agent}/core-memory/blocks/{label}"
    return Attempt(request("GET", path), a_sees=has)


def modify_a_block_by_label(p: Pick) -> Attempt:
    agent, label, _ = a_agent_and_label(p)
    path = f"/v1/agents/{agent}/core-memory/blocks/{label}"
    return Attempt(request("PATCH", path, body={"value": f"B wrote this {p.text()}"}))


# Blocks.


def create_block_like_a(p: Pick) -> Attempt:
    labels = sorted({label for labels in p.a.labels.values() for label in labels})
    body = {"label": p.one(labels), "value": p.text(*p.a.marks.issued)}
    return Attempt(request("POST", "/v1/blocks/", body=body), expect=200)


def list_blocks(p: Pick) -> Attempt:
    """By label: both tenants have human, persona and project blocks."""
    labels = sorted({label for labels in p.a.labels.values() for label in labels})
    filters = p.draw(st.fixed_dictionaries({}, optional={"label": st.sampled_from(labels)}))
    return Attempt(request("GET", "/v1/blocks/", {**filters, **p.page()}), expect=200)


def list_blocks_from(p: Pick) -> Attempt:
    """A cursor block is looked up as any block is: A's is a 404, as an unknown one is."""
    cursor, a_cursor = p.cursor(p.a.blocks, p.b.blocks)
    return Attempt(
        request("GET", "/v1/blocks/", {**cursor, **p.page()}),
        expect=404 if a_cursor else 200,
        empty_or_error=a_cursor,
    )


def retrieve_block(p: Pick) -> Attempt:
    return Attempt(request("GET", f"/v1/blocks/{p.one(p.a.blocks)}"), a_sees=True)


def list_a_block_agents(p: Pick) -> Attempt:
    path = f"/v1/blocks/{p.one(p.a.blocks)}/agents"
    return Attempt(request("GET", path, p.page()), a_sees=True)


def list_b_block_agents_after_a_agent(p: Pick) -> Attempt:
    cursor = {p.one(["after", "before"]): p.one(p.a.agents)}
    path = f"/v1/blocks/{p.one(p.b.shared_blocks)}/agents"
    return Attempt(request("GET", path, cursor), expect=400, empty_or_error=True)


def modify_block(p: Pick) -> Attempt:
    body = p.draw(
        st.fixed_dictionaries(
            {"description": st.just("B's")},
            optional={
                "value": st.just(f"B wrote this {p.text()}"),
                "limit": st.integers(1000, 5000),
                "read_only": st.booleans(),
            },
        )
    )
    return Attempt(request("PATCH", f"/v1/blocks/{p.one(p.a.blocks)}", body=body))


def delete_block(p: Pick) -> Attempt:
    """A's own agents' blocks too: 404 for B, not the 400 that A would get."""
    return Attempt(request("DELETE", f"/v1/blocks/{p.one(p.a.blocks)}"))


def agent_and_block(p: Pick) -> tuple[str, str]:
    """A's agent with B's block, B's agent with A's block, or both A's."""
    mix = p.draw(st.sampled_from(["a-agent", "a-block", "both"]))
    agent = p.one(p.b.agents if mix == "a-block" else p.a.agents)
    block = p.one(p.b.shared_blocks if mix == "a-agent" else p.a.blocks)
    return agent, block


def attach_block(p: Pick) -> Attempt:
    agent, block = agent_and_block(p)
    return Attempt(request("PATCH", f"/v1/agents/{agent}/core-memory/blocks/attach/{block}"))


def detach_block(p: Pick) -> Attempt:
    agent, block = agent_and_block(p)
    return Attempt(request("PATCH", f"/v1/agents/{agent}/core-memory/blocks/detach/{block}"))


# Tools: the server's built-in tools belong to no tenant; an agent's tools are the agent's.


def list_tools(p: Pick) -> Attempt:
    filters = p.draw(
        st.fixed_dictionaries({}, optional={"name": st.sampled_from(sorted(p.a.tools))})
    )
    return Attempt(request("GET", "/v1/tools/", {**filters, **p.page()}), expect=200)


def create_tool(p: Pick) -> Attempt:
    """Refused for everyone (custom tools run on the client)."""
    body = {"source_code": "def f() -> str:\n    return 'x'\n"}
    return Attempt(request("POST", "/v1/tools/", body=body), expect=400)


def retrieve_tool(p: Pick) -> Attempt:
    """A built-in tool, the same for every tenant: 200, with nothing of A's in it."""
    return Attempt(request("GET", f"/v1/tools/{p.one(list(p.a.tools.values()))}"), expect=200)


def list_a_agent_tools(p: Pick) -> Attempt:
    return Attempt(request("GET", a_agent_path(p, "/tools"), p.page()), a_sees=True)


def attach_tool(p: Pick) -> Attempt:
    tool = p.a.tools[p.one(["memory_rethink", "core_memory_append", "send_message"])]
    return Attempt(request("PATCH", a_agent_path(p, f"/tools/attach/{tool}")))


def detach_tool(p: Pick) -> Attempt:
    tool = p.a.tools[p.one(["memory_rethink", "memory_insert", "conversation_search"])]
    return Attempt(request("PATCH", a_agent_path(p, f"/tools/detach/{tool}")))


def set_tool_approval(p: Pick) -> Attempt:
    name = p.one(["memory_insert", "conversation_search", "memory_rethink"])
    path = a_agent_path(p, f"/tools/approval/{name}")
    if p.flag():
        return Attempt(request("PATCH", path, {"requires_approval": p.flag()}))
    return Attempt(request("PATCH", path, body={"requires_approval": p.flag()}))


# The agent messaging API.


def send_to_a_agent(tail: str) -> Build:
    def attempt(p: Pick) -> Attempt:
        return Attempt(request("POST", a_agent_path(p, tail), body=p.turn_body()))

    return attempt


def list_a_agent_messages(p: Pick) -> Attempt:
    return Attempt(request("GET", a_agent_path(p, "/messages"), p.page()), a_sees=True)


def list_b_agent_messages_after_a_message(p: Pick) -> Attempt:
    cursor = {p.one(["after", "before"]): p.one(p.a.messages)}
    path = f"/v1/agents/{p.one(p.b.agents)}/messages"
    return Attempt(request("GET", path, cursor), expect=400, empty_or_error=True)


def cancel_a_agent(p: Pick) -> Attempt:
    body = {"run_ids": [p.one(p.a.runs)]} if p.flag() else {}
    return Attempt(request("POST", a_agent_path(p, "/messages/cancel"), body=body))


def cancel_a_run_through_b_agent(p: Pick) -> Attempt:
    """B's agent, with A's run (the active one, or any) in ``run_ids``: B's agent has no active
    run, so 409 "No active runs" — the same as for an unknown run id, so it says nothing of A.
    """
    body = {"run_ids": [p.one(p.a.runs)]}
    path = f"/v1/agents/{p.one(p.b.agents)}/messages/cancel"
    return Attempt(request("POST", path, body=body), expect=409)


def reset_a_agent(p: Pick) -> Attempt:
    body = {"add_default_initial_messages": p.flag()}
    return Attempt(request("PATCH", a_agent_path(p, "/reset-messages"), body=body))


# Models: the server's, no tenant's.


def list_models(p: Pick) -> Attempt:
    return Attempt(request("GET", "/v1/models/"), expect=200)


def list_embedding_models(p: Pick) -> Attempt:
    return Attempt(request("GET", "/v1/models/embedding"), expect=200)


# Admin: the server's projections (names, positions, times), no tenant's.


def projection_status(p: Pick) -> Attempt:
    return Attempt(request("GET", "/v1/admin/projections"), expect=200)


# Runs.


def a_run(p: Pick) -> str:
    """One of A's runs: finished ones (in the foreground and the background), the active one."""
    return p.one(p.a.runs)


def list_active_runs(p: Pick) -> Attempt:
    filters = p.draw(
        st.fixed_dictionaries(
            {},
            optional={
                "agent_id": st.sampled_from([*p.a.agents, *p.b.agents]),
                "background": st.booleans(),
            },
        )
    )
    return Attempt(request("GET", "/v1/runs/active", filters), expect=200)


def list_runs(p: Pick) -> Attempt:
    """One filter at a time: A's or B's agents and conversations, statuses, stop reasons."""
    agents = st.sampled_from([*p.a.agents, *p.b.agents])
    statuses = st.sampled_from(["created", "running", "completed", "failed", "cancelled"])
    stop_reasons = st.sampled_from(["end_turn", "requires_approval", "cancelled"])
    conversations = st.sampled_from([*p.a.conversations, *p.b.conversations])
    filters = p.draw(
        st.one_of(
            st.fixed_dictionaries({"agent_id": agents}),
            st.fixed_dictionaries({"agent_ids": st.lists(agents, min_size=1, max_size=3)}),
            st.fixed_dictionaries({"conversation_id": conversations}),
            st.fixed_dictionaries({"statuses": st.lists(statuses, min_size=1, max_size=2)}),
            st.fixed_dictionaries({"stop_reason": stop_reasons}),
            st.fixed_dictionaries({"active": st.booleans()}),
            st.fixed_dictionaries({"background": st.booleans()}),
            st.just({}),
        )
    )
    return Attempt(request("GET", "/v1/runs/", {**filters, **p.page()}), expect=200)


def list_runs_from(p: Pick) -> Attempt:
    """After or before A's run: as an unknown one (400). B's: B's page."""
    cursor, a_cursor = p.cursor(p.a.runs, p.b.runs)
    return Attempt(
        request("GET", "/v1/runs/", {**cursor, **p.page()}),
        expect=400 if a_cursor else 200,
        empty_or_error=a_cursor,
    )


def run_read(tail: str) -> Build:
    def attempt(p: Pick) -> Attempt:
        params = p.page() if tail in ("/messages", "/steps") else {}
        return Attempt(request("GET", f"/v1/runs/{a_run(p)}{tail}", params), a_sees=True)

    return attempt


def delete_run(p: Pick) -> Attempt:
    """A's active run too: 404 for B, not the 409 that A would get."""
    return Attempt(request("DELETE", f"/v1/runs/{a_run(p)}"))


def list_b_run_items_after_a_item(tail: str) -> Build:
    def attempt(p: Pick) -> Attempt:
        theirs = p.a.steps if tail == "/steps" else p.a.messages
        cursor = {p.one(["after", "before"]): p.one(theirs)}
        path = f"/v1/runs/{p.one(p.b.runs)}{tail}"
        return Attempt(request("GET", path, cursor), expect=400, empty_or_error=True)

    return attempt


def resume_a_run(p: Pick) -> Attempt:
    """A's finished background run (A gets its stream again), a foreground run, the active one."""
    run = a_run(p)
    return Attempt(
        request("POST", f"/v1/runs/{run}/stream", body={}), a_sees=run in p.a.background_runs
    )


# -- the catalog: every route, and how B attacks it -----------------------------------------

# Served without a key, and about the server only (health, readiness and the metrics): no
# isolation check, but the metrics are checked to show nothing of A's (below).
PUBLIC = ("/v1/health/", "/v1/health/ready", "/metrics")

CONVERSATION = "/v1/conversations/{conversation_id}"
AGENT = "/v1/agents/{agent_id}"
RUN = "/v1/runs/{run_id}"
CATALOG: dict[Route, tuple[Build, ...]] = {
    # conversations
    ("POST", "/v1/conversations/"): (create_conversation_for_a_agent,),
    ("GET", "/v1/conversations/"): (list_conversations, list_conversations_after),
    ("GET", CONVERSATION): (retrieve_conversation,),
    ("PATCH", CONVERSATION): (update_conversation,),
    ("DELETE", CONVERSATION): (delete_conversation,),
    ("GET", f"{CONVERSATION}/messages"): (list_a_messages, list_b_messages_after_a_message),
    ("POST", f"{CONVERSATION}/recompile"): (recompile_conversation,),
    ("POST", f"{CONVERSATION}/fork"): (fork_conversation,),
    ("GET", f"{CONVERSATION}/events"): (list_events,),
    ("GET", f"{CONVERSATION}/audit"): (audit_a,),
    ("GET", "/v1/messages/{message_id}"): (retrieve_a_message,),
    ("POST", "/v1/messages/search"): (search_messages_for_a_words,),
    # turns
    ("POST", f"{CONVERSATION}/messages"): (send_to_a, send_in_b_with_a_words),
    ("POST", f"{CONVERSATION}/messages/preview-raw-payload"): (preview_a,),
    ("POST", f"{CONVERSATION}/stream"): (resume_a_stream, resume_b_stream_with_a_run),
    ("POST", f"{CONVERSATION}/cancel"): (cancel_a,),
    ("POST", f"{CONVERSATION}/compact"): (compact_a,),
    # agents
    ("POST", f"{AGENT}/recompile"): (recompile_agent("/recompile"),),
    ("POST", f"{AGENT}/system-prompt/recompile"): (recompile_agent("/system-prompt/recompile"),),
    ("POST", "/v1/agents/"): (create_agent_like_a,),
    ("GET", "/v1/agents/"): (list_agents, list_agents_from),
    ("GET", "/v1/agents/count"): (count_agents,),
    ("GET", f"{AGENT}/core-memory/blocks"): (
        list_a_agent_blocks,
        list_b_agent_blocks_after_a_block,
    ),
    ("GET", AGENT): (retrieve_agent,),
    ("PATCH", AGENT): (modify_agent,),
    ("DELETE", AGENT): (delete_agent,),
    ("GET", f"{AGENT}/core-memory/blocks/{{block_label}}"): (retrieve_a_block_by_label,),
    ("PATCH", f"{AGENT}/core-memory/blocks/{{block_label}}"): (modify_a_block_by_label,),
    # blocks
    ("POST", "/v1/blocks/"): (create_block_like_a,),
    ("GET", "/v1/blocks/"): (list_blocks, list_blocks_from),
    ("GET", "/v1/blocks/{block_id}"): (retrieve_block,),
    ("GET", "/v1/blocks/{block_id}/agents"): (
        list_a_block_agents,
        list_b_block_agents_after_a_agent,
    ),
    ("PATCH", "/v1/blocks/{block_id}"): (modify_block,),
    ("DELETE", "/v1/blocks/{block_id}"): (delete_block,),
    ("PATCH", f"{AGENT}/core-memory/blocks/attach/{{block_id}}"): (attach_block,),
    ("PATCH", f"{AGENT}/core-memory/blocks/detach/{{block_id}}"): (detach_block,),
    # tools
    ("GET", "/v1/tools/"): (list_tools,),
    ("POST", "/v1/tools/"): (create_tool,),
    ("GET", "/v1/tools/{tool_id}"): (retrieve_tool,),
    ("GET", f"{AGENT}/tools"): (list_a_agent_tools,),
    ("PATCH", f"{AGENT}/tools/attach/{{tool_id}}"): (attach_tool,),
    ("PATCH", f"{AGENT}/tools/detach/{{tool_id}}"): (detach_tool,),
    ("PATCH", f"{AGENT}/tools/approval/{{tool_name}}"): (set_tool_approval,),
    # the agent messaging API
    ("POST", f"{AGENT}/messages"): (send_to_a_agent("/messages"),),
    ("POST", f"{AGENT}/messages/stream"): (send_to_a_agent("/messages/stream"),),
    ("POST", f"{AGENT}/messages/async"): (send_to_a_agent("/messages/async"),),
    ("GET", f"{AGENT}/messages"): (list_a_agent_messages, list_b_agent_messages_after_a_message),
    ("POST", f"{AGENT}/messages/cancel"): (cancel_a_agent, cancel_a_run_through_b_agent),
    ("PATCH", f"{AGENT}/reset-messages"): (reset_a_agent,),
    # models
    ("GET", "/v1/models/"): (list_models,),
    ("GET", "/v1/models/embedding"): (list_embedding_models,),
    # admin
    ("GET", "/v1/admin/projections"): (projection_status,),
    # runs
    ("GET", "/v1/runs/active"): (list_active_runs,),
    ("GET", "/v1/runs/"): (list_runs, list_runs_from),
    ("GET", RUN): (run_read(""),),
    ("DELETE", RUN): (delete_run,),
    ("GET", f"{RUN}/messages"): (run_read("/messages"), list_b_run_items_after_a_item("/messages")),
    ("GET", f"{RUN}/steps"): (run_read("/steps"), list_b_run_items_after_a_item("/steps")),
    ("GET", f"{RUN}/usage"): (run_read("/usage"),),
    ("GET", f"{RUN}/metrics"): (run_read("/metrics"),),
    ("POST", f"{RUN}/stream"): (resume_a_run,),
}
# Routes with path ids that name no tenant's resource.
GLOBAL_ROUTES: frozenset[Route] = frozenset({("GET", "/v1/tools/{tool_id}")})


# -- the world and the tests -----------------------------------------------------------------


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    release = threading.Event()
    config = Settings(database_url="memory://", run_lease_seconds=3600)
    services = build(config, model=Holding(build_model(config), release))
    keys = {
        name: services.keys.issue(operator(organization_id(name)), name, "isolation").key
        for name in ("tenant-a", "tenant-b")
    }
    app = Bounded(create_app(services, EdgeConfig(auth_required=True)), REQUEST_SECONDS)
    try:
        with TestClient(app, base_url="http://localhost") as http:
            try:
                a = populate(Api(http, keys["tenant-a"]), Marks("amark"), hold=True)
                b = populate(Api(http, keys["tenant-b"]), Marks("bmark"), hold=False)
                a_view = view(a)
                shared = secrets_in(json.dumps(a.tools)) | GLOBAL
                found = secrets_in(json.dumps(a_view)) | secrets_in(" ".join(a.own_contexts))
                yield World(a, b, a_view, frozenset(found - shared))
                release.set()
                assert a.active_run is not None
                wait_for(a.api, a.active_run, "completed")
            finally:
                release.set()  # before the client stops: the held turn must not outlive it
    finally:
        services.close()


def test_every_route_is_in_the_catalog() -> None:
    served = {(e.method, e.path) for e in ENDPOINTS}
    public = {(e.method, e.path) for e in ENDPOINTS if e.public}
    assert all(path in PUBLIC for _, path in public), (
        f"a new public route: make sure it shows nothing of any tenant's: {sorted(public)}"
    )
    missing = served - public - CATALOG.keys()
    assert not missing, f"routes with no isolation check: add them to CATALOG: {sorted(missing)}"
    assert not CATALOG.keys() - served, (
        f"CATALOG names routes that are gone: {CATALOG.keys() - served}"
    )


def test_the_metrics_show_nothing_of_any_tenant(world: World) -> None:
    answer = world.b.api.send(Request("GET", "/metrics", {}, None))
    assert answer.status_code == 200
    assert "convlog_turns_total" in answer.text  # the tenants' turns are counted…
    assert not secrets_in(answer.text) & world.secrets  # …but none of A's ids or words shows
    assert "amark" not in answer.text and "bmark" not in answer.text


def test_the_tenants_start_apart(world: World) -> None:
    a, b = world.a, world.b
    assert a.api.ok("GET", "/v1/agents/count") == b.api.ok("GET", "/v1/agents/count") == 2
    assert len(world.secrets) > 100  # A's ids and markers were found
    b_view = view(b)
    seen = {read: secrets_in(json.dumps(found)) & world.secrets for read, found in b_view.items()}
    assert not {read: found for read, found in seen.items() if found}, "B's view shows A's"
    assert "amark" not in json.dumps(b_view) and "bmark" not in json.dumps(world.a_view)
    assert a.active_run in {r["id"] for r in a.api.ok("GET", "/v1/runs/active")}
    # Without a key nothing is served.
    assert a.api.http.get("/v1/agents/").status_code == 401


# The world is shared by every example and B's attempts write (B's own turns, agents, blocks):
# an example cannot be replayed on the world it ran on, so failures are reported as found,
# not shrunk, and not saved for the next run (whose ids are all new).
@settings(
    max_examples=25,
    deadline=None,
    phases=[Phase.generate],
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_b_can_neither_see_nor_change_anything_of_a(world: World, data: st.DataObject) -> None:
    pick = Pick(data, world)
    attempts = [(route, build(pick)) for route, builds in CATALOG.items() for build in builds]
    path_ids = {(e.method, e.path) for e in ENDPOINTS if e.path_ids} - GLOBAL_ROUTES
    attacked = {route for route, attempt in attempts if world.addresses_a(attempt.request)}
    assert path_ids <= attacked, f"routes never called on A's ids: {path_ids - attacked}"
    for _, attempt in data.draw(st.permutations(attempts)):
        world.attack(attempt)
    after = view(world.a)
    changed = sorted(key for key in world.a_view if after.get(key) != world.a_view[key])
    assert not changed, f"B's attempts changed what A sees at {changed}"
