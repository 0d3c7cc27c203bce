"""Letta Code 0.21.7 headless (``letta -p``) against convlog: it creates its agent, opens
conversations, runs its client tools on this machine through the approval flow, and resumes.

The fake model calls the tools a prompt names (``[[call Bash {...}]]``, ``tests/fake_openai.py``)
and answers a tool's result with ``tool said: <result>``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.letta_code.conftest import SMALL_MODEL, LettaCode

pytestmark = [pytest.mark.e2e]

BYPASS = ("--permission-mode", "bypassPermissions")


def call(tool: str, **arguments: Any) -> str:
    return f"[[call {tool} {json.dumps(arguments)}]]"


def items(letta: LettaCode, conversation_id: str) -> list[dict[str, Any]]:
    with httpx.Client(base_url=letta.base_url, timeout=30) as http:
        answer = http.get(
            f"/v1/conversations/{conversation_id}/messages", params={"order": "asc", "limit": 1000}
        )
        answer.raise_for_status()
        found: list[dict[str, Any]] = answer.json()
        return found


def event_types(letta: LettaCode, conversation_id: str) -> list[str]:
    with httpx.Client(base_url=letta.base_url, timeout=30) as http:
        answer = http.get(f"/v1/conversations/{conversation_id}/events", params={"limit": 1000})
        answer.raise_for_status()
        return [event["type"].rsplit(".", 1)[-1] for event in answer.json()]


def user_texts(found: list[dict[str, Any]]) -> list[str]:
    texts = []
    for item in found:
        if item["message_type"] == "user_message":
            content = item["content"]
            parts = content if isinstance(content, list) else [{"text": content}]
            texts.append("".join(str(p.get("text", "")) for p in parts))
    return texts


def test_a_new_agent_runs_a_client_shell_tool_that_writes_a_file(letta: LettaCode) -> None:
    prompt = "make the file " + call("Bash", command="echo made-by-letta-code > made.txt")
    result = letta.headless(prompt, "--new-agent", *BYPASS)
    assert (letta.workdir / "made.txt").read_text() == "made-by-letta-code\n"
    assert result["num_turns"] == 2 and result["result"].startswith("tool said:"), result
    assert '"status": "OK"' in result["result"]
    found = items(letta, result["conversation_id"])
    kinds = [item["message_type"] for item in found]
    assert kinds[-4:] == [
        "approval_request_message",
        "approval_response_message",
        "tool_return_message",
        "assistant_message",
    ], kinds
    asked, answered, returned = found[-4], found[-3], found[-2]
    assert asked["tool_call"]["name"] == "Bash"
    assert json.loads(asked["tool_call"]["arguments"]) == {
        "command": "echo made-by-letta-code > made.txt"
    }
    assert answered["approvals"][0]["tool_call_id"] == asked["tool_call"]["tool_call_id"]
    assert (returned["name"], returned["status"]) == ("Bash", "success")
    events = event_types(letta, result["conversation_id"])
    assert events.count("RunClaimed") == 2 and events.count("RunReleased") == 2, events


def test_the_same_conversation_resumes_and_runs_another_tool(letta: LettaCode) -> None:
    first = letta.headless(
        "first " + call("Bash", command="echo one > one.txt"), "--new-agent", *BYPASS
    )
    target = letta.workdir / "two.txt"
    prompt = "second " + call("Write", file_path=str(target), content="two\n")
    second = letta.headless(prompt, "--conversation", first["conversation_id"], *BYPASS)
    assert (second["agent_id"], second["conversation_id"]) == (
        first["agent_id"],
        first["conversation_id"],
    )
    assert target.read_text() == "two\n"
    assert "Successfully wrote" in second["result"], second
    said = user_texts(items(letta, first["conversation_id"]))
    assert [s.rsplit("[[", 1)[0].split("</system-reminder>")[-1].strip() for s in said] == [
        "first",
        "second",
    ], said


def test_a_second_conversation_on_the_same_agent(letta: LettaCode) -> None:
    first = letta.headless("one", "--new-agent")
    second = letta.headless("two", "--agent", first["agent_id"], "--new")
    assert second["agent_id"] == first["agent_id"]
    assert second["conversation_id"] != first["conversation_id"]
    with httpx.Client(base_url=letta.base_url, timeout=30) as http:
        listed = http.get("/v1/conversations/", params={"agent_id": first["agent_id"]}).json()
    assert {first["conversation_id"], second["conversation_id"]} <= {c["id"] for c in listed}
    assert user_texts(items(letta, second["conversation_id"]))[-1].endswith("two")


def test_a_long_conversation_is_compacted_and_goes_on(letta: LettaCode) -> None:
    """The small model's window (4,000 tokens) overflows after a turn or two of Letta Code's
    prompt: the server compacts (with letta/auto, which Letta Code names for summaries)."""
    first = letta.headless("start", "--new-agent", "-m", SMALL_MODEL)
    conversation = first["conversation_id"]
    for n in range(3):
        letta.headless(f"more {n}", "--conversation", conversation)
    events = event_types(letta, conversation)
    assert "Compacted" in events, events
    with httpx.Client(base_url=letta.base_url, timeout=30) as http:
        agent = http.get(f"/v1/agents/{first['agent_id']}").json()
    assert agent["model"] == SMALL_MODEL
    assert user_texts(items(letta, conversation))[-1].endswith("more 2")


def test_a_subagent_started_by_the_task_tool_runs_as_a_hidden_agent(letta: LettaCode) -> None:
    task = call("Task", description="say hi", prompt="say hi", subagent_type="general-purpose")
    result = letta.headless(f"delegate {task}", "--new-agent", *BYPASS)
    assert "subagent_status=success" in result["result"], result
    assert "echo: say hi" in result["result"]
    with httpx.Client(base_url=letta.base_url, timeout=30) as http:
        shown = {a["id"] for a in http.get("/v1/agents/", params={"limit": 1000}).json()}
        every = http.get("/v1/agents/", params={"limit": 1000, "show_hidden_agents": True})
    subagents = [a for a in every.json() if "role:subagent" in a["tags"]]
    assert len(subagents) == 1 and subagents[0]["hidden"] is True
    assert subagents[0]["id"] not in shown and result["agent_id"] in shown


def test_the_json_subcommands(letta: LettaCode) -> None:
    """``letta agents|messages|blocks …``: Letta Code's own commands over the REST API."""
    made = letta.headless("pelicans fly over the bay", "--new-agent")
    agent = made["agent_id"]

    def json_of(*args: str) -> Any:
        done = letta.run(*args)
        assert done.returncode == 0, f"{args}: {done.stdout[-500:]} {done.stderr[-500:]}"
        return json.loads(done.stdout)

    listed = json_of("agents", "list", "--query", "Letta Code")["body"]
    assert agent in [a["id"] for a in listed]
    # The agent's own context (its default conversation): headless runs used a conversation
    # of their own, so it holds the system message alone.
    own = json_of("messages", "list", "--agent", agent)
    assert [m["message_type"] for m in own] == ["system_message"]
    found = json_of("messages", "search", "--query", "pelicans", "--agent", agent)
    assert found and {f["agent_id"] for f in found} == {agent}
    assert {f["message_type"] for f in found} <= {"user_message", "assistant_message"}
    blocks = json_of("blocks", "list", "--agent", agent)["body"]
    persona = next(b for b in blocks if b["label"] == "persona")
    other = letta.headless("a second agent", "--new-agent")["agent_id"]
    copied = json_of(
        "blocks", "copy", "--block-id", persona["id"], "--label", "persona-copy", "--agent", other
    )
    assert copied["sourceBlock"]["id"] == persona["id"]
    labels = [b["label"] for b in json_of("blocks", "list", "--agent", other)["body"]]
    assert "persona-copy" in labels
    # Sharing another agent's own block is refused (convlog shares only standalone blocks):
    # Letta Code shows the server's reason.
    refused = letta.run("blocks", "attach", "--block-id", persona["id"], "--agent", other)
    assert refused.returncode != 0
    assert (
        "only blocks created with POST /v1/blocks/ can be shared" in refused.stdout + refused.stderr
    )
