"""Schemathesis against the real server: every operation in ``/openapi.json`` is driven with
generated requests, valid and invalid (its coverage and fuzzing phases). None may answer a 5xx
or a status the document does not list for the operation, and each JSON answer must match
the schema the document gives for its status.

The operations are collected from the document the server serves (``api.openapi.document``,
checked against the running server's ``/openapi.json``): schemathesis' lazy loader
(``schemathesis.pytest.from_fixture``) does not work with this pytest. Most cases are aimed
at real resources (``World``), so they reach the handlers instead of stopping at a 404.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import ENDPOINTS, VERSION
from api.openapi import document
from domain import ids
from tests.e2e.conftest import start_server
from tests.e2e.flows import BUILTIN_MODEL

pytestmark = pytest.mark.e2e

# Generated cases per operation in the fuzzing phase; the coverage phase adds its own (the
# boundaries and violations of each parameter's schema). About 70 s for all of them on 2 cores.
MAX_EXAMPLES = 50

CONFIG: dict[str, Any] = {
    "generation": {"mode": "all", "database": "none"},
    # A turn with the built-in model answers in milliseconds; nothing may hang a case.
    "request-timeout": 15,
    "phases": {
        "examples": {"enabled": False},  # the document has no examples
        "stateful": {"enabled": False},  # no links between operations to follow
    },
}

schema = schemathesis.openapi.from_dict(
    document(ENDPOINTS, VERSION), config=schemathesis.Config.from_dict(CONFIG)
)

# Ids that are not generated from a pattern: every case names a real one.
NAMED = ("block_label", "tool_name")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("convlog-schemathesis")
    with start_server({"CONVLOG_DATA_DIR": str(root / "data")}, root) as url:
        served = httpx.get(f"{url}/openapi.json", timeout=10).json()
        assert served == document(ENDPOINTS, VERSION)  # what the cases were generated from
        yield url


@dataclass
class World:
    """Real resources for one operation's cases (path parameter or query name → id)."""

    ids: dict[str, str]
    cases: int = 0

    def aim(self, case: schemathesis.Case[Any]) -> None:
        """Three cases in four name these resources wherever the generated id is a valid one
        (invalid ids stay, for the 422s); the fourth keeps its unknown ids, for the 404s.
        """
        self.cases += 1
        if self.cases % 4 == 0:
            return
        for name, value in case.path_parameters.items():
            real = self._real(name, value)
            if real is not None:
                case.path_parameters[name] = real
        for name in ("agent_id", "conversation_id"):
            real = self._real(name, (case.query or {}).get(name))
            if real is not None:
                case.query[name] = real

    def _real(self, name: str, value: object) -> str | None:
        if name in NAMED:
            return self.ids[name]
        real = self.ids.get(name)
        if real is None or not isinstance(value, str):
            return None
        if ids.is_valid(real.split("-", 1)[0], value):
            return real
        if name == "conversation_id" and ids.is_valid(ids.AGENT, value):
            return self.ids["agent_id"]  # the agent's own context
        return None


@pytest.fixture
def world(base_url: str) -> World:
    """A fresh agent (with a shared block attached), a conversation of it and a background
    run, for each operation: the operation before may have deleted what it was given.
    """
    with httpx.Client(base_url=base_url, timeout=30) as http:

        def made(response: httpx.Response) -> str:
            assert response.status_code == 200, response.text
            made_id: str = response.json()["id"]
            return made_id

        agent = made(
            http.post(
                "/v1/agents/",
                json={
                    "name": "schemathesis",
                    "model": BUILTIN_MODEL,
                    "memory_blocks": [{"label": "human", "value": "Ada"}],
                },
            )
        )
        conversation = made(http.post("/v1/conversations/", params={"agent_id": agent}, json={}))
        block = made(http.post("/v1/blocks/", json={"label": "shared", "value": "x"}))
        attached = http.patch(f"/v1/agents/{agent}/core-memory/blocks/attach/{block}")
        assert attached.status_code == 200, attached.text
        run = made(http.post(f"/v1/agents/{agent}/messages/async", json={"input": "hi"}))
        tool = http.get("/v1/tools/").json()[0]["id"]
    return World(
        {
            "agent_id": agent,
            "conversation_id": conversation,
            "block_id": block,
            "run_id": run,
            "tool_id": tool,
            "block_label": "human",
            "tool_name": "memory_insert",
        }
    )


@schema.parametrize()
# One ``world`` per operation on purpose: its cases share it (see World.aim).
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_no_server_errors_and_only_documented_statuses(
    case: schemathesis.Case[Any], base_url: str, world: World
) -> None:
    world.aim(case)
    response = case.call(base_url=base_url)
    checks = [not_a_server_error, status_code_conformance]
    # The streaming routes answer a 200 as Server-Sent Events, which the document (JSON
    # bodies only) does not describe: their status is checked, not their body.
    if not response.headers.get("content-type", [""])[0].startswith("text/event-stream"):
        checks += [content_type_conformance, response_schema_conformance]
    case.validate_response(response, checks=checks)
