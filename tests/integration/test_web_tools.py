"""web_search and fetch_webpage over real HTTP: ``HttpWeb`` against the fake Exa
(``tests/fake_exa.py``) and a local web (``tests/fake_pages.py``), through ``ToolBox.execute``
so what the model reads (``{"status": "OK"|"Failed", "message"}``) is checked too.

A redirect from a public address to a private one needs a public first hop: the page server is
also the HTTP proxy (``HTTP_PROXY``) and answers for a public IP literal with a redirect to
itself on 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.web import MAX_PAGE_BYTES, MAX_REDIRECTS, HttpWeb
from domain import ids, tools
from domain.agent import Agent
from domain.conversation import Conversation
from service.model import ToolCall
from service.tools.box import ToolBox, ToolResult
from service.tools.env import ToolEnv
from tests import fake_exa as exa_fixtures
from tests.fake_exa import API_KEY, FakeExa
from tests.fake_pages import Pages

fake_exa_server = exa_fixtures.fake_exa_server
fake_exa = exa_fixtures.fake_exa

AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
PUBLIC_IP = "93.184.215.14"  # never contacted: the proxy answers for it
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(scope="module")
def pages() -> Iterator[Pages]:
    with Pages() as served:
        yield served


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def run_tool(web: HttpWeb, name: str, args: dict[str, Any]) -> ToolResult:
    """One call through the ToolBox of an agent that has both web tools."""
    web_tools = [tools.by_name(n).id for n in ("web_search", "fetch_webpage")]
    agent = Agent(
        organization_id=ids.DEFAULT_ORG_ID,
        name="surfer",
        system="You browse.",
        agent_type="letta_v1_agent",
        model="openai/gpt-fake",
        embedding=None,
        blocks=[],
        settings={},
        created_by_id=ids.DEFAULT_USER_ID,
        tool_ids=web_tools,
        tool_rules=[],
    )
    agent_id = ids.format_id(ids.AGENT, agent.id)
    conversation = Conversation(
        organization_id=ids.DEFAULT_ORG_ID,
        agent_id=agent_id,
        summary=None,
        model=None,
        model_settings=None,
        isolated_blocks=[],
        is_default=True,
        created_by_id=ids.DEFAULT_USER_ID,
    )
    env = ToolEnv(
        conversation=conversation,
        load_agent=lambda: agent,
        agent_id=agent_id,
        conversation_id=str(conversation.id),
        run_id="run-1",
        step_id="step-1",
        search=lambda *query: [],
        web=web,
    )
    return ToolBox(agent).execute(ToolCall("call-1", name, json.dumps(args)), env, AT)


def model_reads(result: ToolResult) -> tuple[str, Any]:
    packed = json.loads(result.model_text)
    return packed["status"], packed["message"]


def exa_web(fake: FakeExa, key: str | None = API_KEY) -> HttpWeb:
    return HttpWeb(exa_api_key=key, exa_base_url=fake.base_url, timeout_seconds=5)


# -- web_search -------------------------------------------------------------------------------


def test_search_sends_letta_s_exa_request(fake_exa: FakeExa) -> None:
    args = {
        "query": "emperor penguins",
        "num_results": 2,
        "category": "news",
        "include_domains": ["nature.com"],
        "exclude_domains": ["spam.example"],
        "start_published_date": "2024-01-01",
        "user_location": "NZ",
    }
    result = run_tool(exa_web(fake_exa), "web_search", args)
    assert result.status == "success"
    [sent] = fake_exa.requests
    assert (sent.path, sent.api_key) == ("/search", API_KEY)
    assert sent.body == {
        "query": "emperor penguins",
        "numResults": 2,
        "type": "auto",
        "category": "news",
        "includeDomains": ["nature.com"],
        "excludeDomains": ["spam.example"],
        "startPublishedDate": "2024-01-01",
        "userLocation": "NZ",
        "contents": {
            "text": False,
            "highlights": {"numSentences": 2, "highlightsPerUrl": 3, "query": "emperor penguins"},
            "summary": {
                "query": "Summarize the key information from this content related to: "
                "emperor penguins"
            },
        },
    }


def test_search_results_are_mapped_without_text_by_default(fake_exa: FakeExa) -> None:
    result = run_tool(exa_web(fake_exa), "web_search", {"query": "krill", "num_results": 5})
    found = json.loads(result.value)
    assert found["query"] == "krill"
    assert [r["url"] for r in found["results"]] == [
        f"https://example.com/krill/{n}" for n in (1, 2, 3)
    ]
    assert found["results"][0] == {
        "title": "krill (result 1)",
        "url": "https://example.com/krill/1",
        "published_date": "2024-05-01T00:00:00.000Z",
        "author": "Author 1",
        "highlights": ["Highlight 1 about krill."],
        "summary": "Summary 1 of krill.",
    }
    status, message = model_reads(result)
    assert status == "OK" and json.loads(message) == found


def test_include_text_asks_for_and_returns_the_full_text(fake_exa: FakeExa) -> None:
    args = {"query": "krill", "num_results": 1, "include_text": True}
    found = json.loads(run_tool(exa_web(fake_exa), "web_search", args).value)
    assert fake_exa.requests[0].body["contents"]["text"] is True
    assert [r["text"] for r in found["results"]] == ["Full text 1 of the page about krill."]


def test_a_failing_search_service_is_a_json_error_value(fake_exa: FakeExa) -> None:
    fake_exa.fail_with = 500
    result = run_tool(exa_web(fake_exa), "web_search", {"query": "krill"})
    assert result.status == "success"  # Letta returns the error as the tool's value
    found = json.loads(result.value)
    assert set(found) == {"query", "error"} and found["query"] == "krill"
    assert found["error"].startswith("Search failed: the search service answered 500")
    assert "Internal server error" in found["error"]


def test_a_wrong_key_is_reported_with_exa_s_answer(fake_exa: FakeExa) -> None:
    found = json.loads(run_tool(exa_web(fake_exa, "wrong"), "web_search", {"query": "q"}).value)
    assert "answered 401" in found["error"] and "Invalid API key" in found["error"]
    assert fake_exa.requests[0].api_key == "wrong"


def test_no_key_is_an_error_result_naming_exa_api_key(fake_exa: FakeExa) -> None:
    result = run_tool(exa_web(fake_exa, key=None), "web_search", {"query": "krill"})
    assert result.status == "error" and "EXA_API_KEY" in result.value
    assert model_reads(result) == ("Failed", result.value)
    assert fake_exa.requests == []


def test_an_empty_query_is_a_json_error_value(fake_exa: FakeExa) -> None:
    result = run_tool(exa_web(fake_exa), "web_search", {"query": "  "})
    assert json.loads(result.value) == {"error": "Query cannot be empty", "query": "  "}
    assert fake_exa.requests == []


# -- fetch_webpage ----------------------------------------------------------------------------


def fetch(url: str, allow_private: bool = True) -> ToolResult:
    web = HttpWeb(allow_private=allow_private, timeout_seconds=5)
    return run_tool(web, "fetch_webpage", {"url": url})


def test_an_html_page_comes_back_as_markdown(pages: Pages) -> None:
    result = fetch(pages.url("/page"))
    assert result.status == "success"
    assert "# Emperor penguins" in result.value
    assert "They breed in [Antarctica](https://en.wikipedia.org/wiki/Antarctica)." in result.value
    assert "* tallest\n* heaviest" in result.value
    assert "<h1>" not in result.value
    assert "secret-js" not in result.value and "crimson" not in result.value
    assert model_reads(result) == ("OK", result.value)


def test_plain_text_is_returned_as_it_is(pages: Pages) -> None:
    assert fetch(pages.url("/notes.txt")).value == "plain notes\n<b>kept as is</b>\n"


def test_redirects_are_followed(pages: Pages) -> None:
    assert "# Emperor penguins" in fetch(pages.url("/moved")).value


def test_too_many_redirects_fail(pages: Pages) -> None:
    result = fetch(pages.url("/loop"))
    assert result.value == f"Error fetching webpage: more than {MAX_REDIRECTS} redirects"
    assert pages.hits.count("/loop") >= MAX_REDIRECTS + 1


def test_an_error_status_fails(pages: Pages) -> None:
    result = fetch(pages.url("/gone"))
    assert result.status == "error"
    assert result.value == f"Error fetching webpage: {pages.url('/gone')} answered 404"


def test_loopback_is_refused_by_default(pages: Pages) -> None:
    before = len(pages.hits)
    result = fetch(pages.url("/page"), allow_private=False)
    assert result.status == "error" and model_reads(result)[0] == "Failed"
    assert result.value.startswith("Error fetching webpage: 127.0.0.1 is a private address")
    assert "CONVLOG_FETCH_PRIVATE_ADDRESSES=allow" in result.value
    assert len(pages.hits) == before  # refused before connecting


def test_a_redirect_to_a_private_address_is_refused(
    pages: Pages, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", pages.url(""))
    before = len(pages.hits)
    result = fetch(f"http://{PUBLIC_IP}/start", allow_private=False)
    assert result.status == "error"
    assert "127.0.0.1 is a private address" in result.value
    # The public first hop was fetched (through the proxy); its private target never was.
    assert pages.hits[before:] == [f"http://{PUBLIC_IP}/start"]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/notes.txt"])
def test_other_schemes_are_refused(url: str) -> None:
    result = fetch(url)
    assert result.status == "error"
    scheme = url.partition(":")[0]
    assert result.value.startswith(f"Invalid URL scheme '{scheme}'")
    assert "file://" in result.value


def test_a_page_over_the_size_cap_is_refused(pages: Pages) -> None:
    result = fetch(pages.url("/huge"))
    assert result.value == "Error fetching webpage: the page is larger than 5 MiB"


def test_a_page_at_the_size_cap_is_read(pages: Pages) -> None:
    text = HttpWeb(allow_private=True, timeout_seconds=5).fetch(pages.url("/at-cap"))
    assert len(text) == MAX_PAGE_BYTES and set(text) == {"x"}
