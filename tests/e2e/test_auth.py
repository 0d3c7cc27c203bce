"""CONVLOG_AUTH=required, end to end: keys issued and revoked with the CLI while the server
runs, the real SDK with ``api_key=``, and two tenants that cannot see each other."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from letta_client import AuthenticationError, Letta, NotFoundError

from tests.e2e.conftest import CLI, EMBEDDING, REPO, SCRUBBED, start_server
from tests.e2e.flows import BUILTIN_MODEL


@dataclass(frozen=True)
class Key:
    id: str
    key: str
    organization_id: str


@dataclass(frozen=True)
class Deployment:
    url: str
    data_dir: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
        env["CONVLOG_DATA_DIR"] = str(self.data_dir)
        return subprocess.run(
            [*CLI, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
        )

    def issue(self, organization: str) -> Key:
        done = self.cli("keys", "create", "--organization", organization, "--name", "e2e")
        assert done.returncode == 0, done.stderr
        return Key(**json.loads(done.stdout.strip().splitlines()[-1]))

    def sdk(self, key: Key) -> Letta:
        return Letta(base_url=self.url, api_key=key.key, max_retries=0, timeout=30.0)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("convlog-auth")
    data = root / "data"
    env = {"CONVLOG_DATA_DIR": str(data), "CONVLOG_AUTH": "required"}
    with start_server(env, root) as url:
        yield Deployment(url, data)


def new_agent(client: Letta, tags: list[str] | None = None) -> str:
    return client.agents.create(
        name=f"auth-{uuid.uuid4().hex[:6]}",
        model=BUILTIN_MODEL,
        embedding=EMBEDDING,
        tags=tags or [],
    ).id


def test_every_route_but_health_needs_a_key(deployment: Deployment) -> None:
    with httpx.Client(base_url=deployment.url) as http:
        assert http.get("/v1/health/").status_code == 200
        for headers in ({}, {"authorization": "Bearer sk-convlog-nope"}, {"authorization": "x"}):
            refused = http.get("/v1/agents/", headers=headers)
            assert refused.status_code == 401
            assert refused.json() == {"detail": "Unauthorized"}
            assert "Bearer" in refused.headers["www-authenticate"]
        assert http.get("/openapi.json").status_code == 401
    with (
        Letta(base_url=deployment.url, max_retries=0) as anonymous,
        pytest.raises(AuthenticationError),
    ):
        anonymous.agents.list()


def test_a_key_acts_for_its_organization_and_records_who(deployment: Deployment) -> None:
    key = deployment.issue("acme")
    user = f"user-{uuid.uuid4()}"
    with deployment.sdk(key) as client:
        agent = new_agent(client)
        conversation = client.conversations.create(agent_id=agent).id
        stream = client.conversations.messages.create(
            conversation, messages=[{"role": "user", "content": "hello"}]
        )
        assert any(m.message_type == "assistant_message" for m in stream)
    with httpx.Client(base_url=deployment.url) as http:
        headers = {"authorization": f"Bearer {key.key}", "user_id": user}
        renamed = http.patch(
            f"/v1/conversations/{conversation}", json={"summary": "s"}, headers=headers
        )
        assert renamed.status_code == 200
        events = http.get(f"/v1/conversations/{conversation}/events", headers=headers).json()
    assert events and all(e["by"]["key_id"] == key.id for e in events)
    assert all(e["by"]["organization_id"] == key.organization_id for e in events)
    assert events[-1]["by"]["user_id"] == user  # the user_id header names the user


def test_tenants_see_nothing_of_each_other(deployment: Deployment) -> None:
    a, b = deployment.issue("tenant-a"), deployment.issue("tenant-b")
    assert a.organization_id != b.organization_id
    tag = f"t-{uuid.uuid4().hex[:6]}"
    with deployment.sdk(a) as alice, deployment.sdk(b) as bob:
        mine = new_agent(alice, [tag])
        conversation = alice.conversations.create(agent_id=mine).id
        theirs = new_agent(bob, [tag])
        assert [x.id for x in bob.agents.list(tags=[tag])] == [theirs]
        assert [x.id for x in alice.agents.list(tags=[tag])] == [mine]
        assert mine not in {x.id for x in bob.agents.list()}
        assert conversation not in {c.id for c in bob.conversations.list()}
        attempts: tuple[Callable[[], object], ...] = (
            lambda: bob.agents.retrieve(mine),
            lambda: bob.agents.delete(mine),
            lambda: bob.conversations.retrieve(conversation),
            lambda: bob.conversations.update(conversation, summary="mine now"),
            lambda: list(bob.conversations.messages.list(conversation)),
            lambda: bob.conversations.create(agent_id=mine),
        )
        for attempt in attempts:
            with pytest.raises(NotFoundError):
                attempt()
        assert alice.agents.retrieve(mine).id == mine
        assert alice.conversations.retrieve(conversation).summary is None


def test_a_revoked_key_stops_working_at_once(deployment: Deployment) -> None:
    key = deployment.issue("short-lived")
    with httpx.Client(base_url=deployment.url) as http:
        headers = {"authorization": f"Bearer {key.key}"}
        assert http.get("/v1/agents/", headers=headers).status_code == 200
        done = deployment.cli("keys", "revoke", key.id)
        assert done.returncode == 0, done.stderr
        revoked_at = time.monotonic()
        # Another process revoked it: this server must notice within a second (cache + log).
        while http.get("/v1/agents/", headers=headers).status_code != 401:
            assert time.monotonic() - revoked_at < 5, "the revoked key still works"
            time.sleep(0.05)
    listed = [json.loads(line) for line in deployment.cli("keys", "list").stdout.splitlines()]
    mine = next(row for row in listed if row["id"] == key.id)
    assert mine["revoked_at"] is not None and "key" not in mine
    again = deployment.cli("keys", "revoke", key.id)
    assert again.returncode == 1 and "already revoked" in again.stderr
