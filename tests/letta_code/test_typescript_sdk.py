"""The TypeScript SDK (``@letta-ai/letta-client`` 1.10.1, the one Letta Code depends on) against
convlog: an agent, a conversation, a streamed send, paged lists (``sdk_smoke.mjs``)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.fake_openai import FakeOpenAI
from tests.letta_code.node import HERE, cache_dir, node_modules
from tests.services import require_program

pytestmark = [pytest.mark.e2e]


def test_create_stream_and_list_with_the_typescript_sdk(server: str, fake: FakeOpenAI) -> None:
    node = require_program("node", "the TypeScript SDK runs on Node.js")
    node_modules()
    # Run beside the installed packages, so that Node resolves the SDK from there.
    script = cache_dir() / "sdk_smoke.mjs"
    shutil.copyfile(HERE / "sdk_smoke.mjs", script)
    done = subprocess.run([node, str(script), server], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["text"] == "echo: hello from typescript [context=2]"
    assert seen["streamed"][-2:] == ["stop_reason", "usage_statistics"]
    assert set(seen["streamed"][:-2]) == {"assistant_message"}
    assert seen["listed"] == ["system_message", "user_message", "assistant_message"]
    assert seen["agent"] in seen["agents"]
    assert seen["health"]["version"] == "0.16.7" and seen["health"]["status"] == "ok"
    (request,) = [r for r in fake.requests if "hello from typescript" in json.dumps(r.body)]
    assert request.body["model"] == "gpt-fake"
