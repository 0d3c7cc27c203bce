"""Letta's deprecated ``llm_config`` / ``embedding_config`` on agent create: honoured where
convlog has the effect, refused (400, nothing written) where it has not.
"""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.e2e

LLM = {
    "model": "builtin",
    "model_endpoint_type": "convlog",
    "context_window": 4096,
    "temperature": 0.2,
    "max_tokens": 300,
    "display_name": "The offline model",
    "put_inner_thoughts_in_kwargs": False,
    "enable_reasoner": False,
    "max_reasoning_tokens": 0,
}


def count(http: httpx.Client) -> int:
    return int(http.get("/v1/agents/count").json())


def test_llm_config_sets_the_model_window_and_settings(http: httpx.Client) -> None:
    made = http.post(
        "/v1/agents/",
        json={
            "llm_config": LLM,
            "embedding_config": {"embedding_endpoint_type": "openai", "embedding_model": "e-3"},
        },
    )
    assert made.status_code == 200, made.text
    agent = made.json()
    assert agent["model"] == "convlog/builtin" and agent["embedding"] == "openai/e-3"
    assert agent["llm_config"]["context_window"] == 4096
    assert (agent["llm_config"]["temperature"], agent["llm_config"]["max_tokens"]) == (0.2, 300)
    assert agent["model_settings"] == {"temperature": 0.2, "max_tokens": 300}
    conversation = http.post("/v1/conversations/", params={"agent_id": agent["id"]}, json={})
    sent = http.post(
        f"/v1/conversations/{conversation.json()['id']}/messages",
        json={"input": "hi", "streaming": False},
    )
    assert sent.status_code == 200, sent.text  # answered by the model llm_config named


@pytest.mark.parametrize(
    ("llm_config", "words"),
    [
        ({**LLM, "max_reasoning_tokens": 2048}, "max_reasoning_tokens"),
        ({**LLM, "model_wrapper": None, "quantum": 1}, "quantum"),
        ({"context_window": 10}, "needs a handle"),
    ],
)
def test_what_convlog_cannot_honour_is_refused(
    http: httpx.Client, llm_config: dict[str, object], words: str
) -> None:
    before = count(http)
    refused = http.post("/v1/agents/", json={"llm_config": llm_config})
    assert refused.status_code == 400 and words in refused.text, refused.text
    assert count(http) == before


def test_model_and_llm_config_must_agree(http: httpx.Client) -> None:
    refused = http.post("/v1/agents/", json={"model": "openai/gpt-4o", "llm_config": LLM})
    assert refused.status_code == 400 and "different models" in refused.text


def test_model_settings_this_server_would_not_send_are_refused(http: httpx.Client) -> None:
    before = count(http)
    refused = http.post("/v1/agents/", json={"model_settings": {"thinking": {"type": "enabled"}}})
    assert refused.status_code == 400 and "thinking" in refused.text
    assert count(http) == before
