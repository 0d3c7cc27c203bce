"""The timeline page (``/ui/``, docs/ui.md) in a real headless Chromium, driven by Selenium,
against the server as a subprocess and the fake OpenAI model.

Chromium and its driver are Debian's (``scripts/install --test`` installs them as root); they
are named explicitly so Selenium never tries to download a browser. Without them the tests
skip, or fail under CI=true. Screenshots go to ``.cache/artifacts/ui/``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from tests.e2e.conftest import CLI, EMBEDDING, MODEL, REPO, SCRUBBED, start_server
from tests.e2e.flows import BUILTIN_MODEL
from tests.e2e.turns_support import (
    create_agent,
    env_for,
    events,
    list_runs,
    messages,
    say,
    send,
)
from tests.fake_openai import FakeOpenAI, Reply
from tests.services import require_program

pytestmark = pytest.mark.e2e

ARTIFACTS = REPO / ".cache" / "artifacts" / "ui"
WAIT = 20.0


# -- the browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    chromium = require_program("chromium", "the timeline page's browser tests")
    chromedriver = require_program("chromedriver", "the timeline page's browser tests")
    options = Options()
    options.binary_location = chromium
    with tempfile.TemporaryDirectory(prefix="convlog-ui-chromium-") as profile:
        for argument in (
            "--headless=new",
            "--no-sandbox",  # root in a container has no user namespaces to sandbox with
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--window-size=1300,1000",
            "--lang=en-US",
            f"--user-data-dir={profile}",  # its own profile: other runs may be browsing too
        ):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def state(driver: WebDriver) -> str | None:
    found = driver.execute_script("return document.body && document.body.dataset.state")
    return None if found is None else str(found)


def until(driver: WebDriver, check: Callable[[WebDriver], Any], what: str) -> Any:
    # The page redraws by replacing its elements: one found a moment ago may be gone.
    ignored = (NoSuchElementException, StaleElementReferenceException)
    wait = WebDriverWait(driver, WAIT, poll_frequency=0.05, ignored_exceptions=ignored)
    return wait.until(check, f"waiting for {what}")


def settled(driver: WebDriver, expected: str = "ready") -> None:
    """The page drew what it was asked for (``ready``, ``key`` or ``error``)."""
    until(driver, lambda d: state(d) not in (None, "loading"), "the page to settle")
    assert state(driver) == expected, driver.find_element(By.ID, "main").text[:2000]


def visit(driver: WebDriver, url: str, expected: str = "ready") -> None:
    driver.get(url)
    settled(driver, expected)


def texts(driver: WebDriver, selector: str) -> list[str]:
    return [str(e.text) for e in driver.find_elements(By.CSS_SELECTOR, selector)]


def one(driver: WebDriver, selector: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, selector)


def data(element: WebElement, name: str) -> str | None:
    value = element.get_attribute(f"data-{name}")
    return None if value is None else str(value)


def screenshot(driver: WebDriver, name: str) -> Path:
    """The whole page, as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    size = driver.get_window_size()
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(size["width"], min(max(height + 40, 600), 12000))
    try:
        assert driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(size["width"], size["height"])
    return path


def console_errors(driver: WebDriver, allowed: tuple[str, ...] = ()) -> list[str]:
    """What the page logged as an error (a CSP violation, an exception), since last asked."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [
        str(e["message"])
        for e in entries
        if e["level"] == "SEVERE" and not any(a in str(e["message"]) for a in allowed)
    ]


def show_version(driver: WebDriver, version: int) -> None:
    field = one(driver, "#as-of-version")
    field.clear()
    field.send_keys(str(version))
    one(driver, "#as-of-apply").click()
    until(
        driver,
        lambda d: state(d) == "ready" and data(one(d, "#as-of-status"), "version") == str(version),
        f"version {version}",
    )


# -- the server ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    url: str
    data_dir: Path

    def tamper(self, statement: str, position: int) -> None:
        """Change the stored log behind the server's back (tests/integration/tamper.py)."""
        with closing(sqlite3.connect(self.data_dir / "convlog.db")) as conn, conn:
            changed = conn.execute(statement, (position,)).rowcount
        assert changed == 1


@pytest.fixture(scope="module")
def served(
    fake_openai_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("convlog-ui")
    env = env_for(fake_openai_server.base_url, CONVLOG_DATA_DIR=str(root / "data"))
    with start_server(env, root) as url:
        yield Served(url, root / "data")


@pytest.fixture
def http(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=30.0) as client:
        yield client


def conversation(http: httpx.Client, agent_id: str, summary: str) -> str:
    made = http.post("/v1/conversations/", params={"agent_id": agent_id}, json={"summary": summary})
    assert made.status_code == 200, made.text
    return str(made.json()["id"])


def event_of(found: list[dict[str, Any]], **payload: Any) -> dict[str, Any]:
    """The first event whose payload has these fields."""
    return next(e for e in found if all(e["payload"].get(k) == v for k, v in payload.items()))


# -- the tests -----------------------------------------------------------------------------------

HOSTILE = 'Hello <img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


def test_the_page_shows_a_conversation_made_by_the_test(
    browser: WebDriver, served: Served, http: httpx.Client, fake_openai: FakeOpenAI
) -> None:
    agent = create_agent(http)
    token = uuid.uuid4().hex[:8]
    conv = conversation(http, agent, f"ui tour {token}")
    say(http, conv, HOSTILE)
    fake_openai.script = [
        Reply(
            tool_calls=[
                (
                    "memory_replace",
                    json.dumps(
                        {"label": "human", "old_string": "Name: Ada", "new_string": "Name: Ada L."}
                    ),
                )
            ]
        ),
        Reply(content="Noted your surname."),
    ]
    say(http, conv, "my surname starts with L")
    fake_openai.failure = "server_error"
    failed = send(http, conv, {"input": "this attempt fails"}).run_id
    fake_openai.failure = None
    approval = http.patch(
        f"/v1/agents/{agent}/tools/approval/memory_insert", json={"requires_approval": True}
    )
    assert approval.status_code == 200, approval.text
    insert = json.dumps({"label": "human", "new_string": "likes tea"})
    fake_openai.script = [Reply(tool_calls=[("memory_insert", insert)])]
    asked = send(http, conv, {"input": "remember I like tea"})
    (request,) = asked.of("approval_request_message")
    call_id = request["tool_call"]["tool_call_id"]
    fake_openai.script = [Reply(content="Understood, I will not.")]
    denial = {"type": "approval", "tool_call_id": call_id, "approve": False, "reason": "not now"}
    answer = send(http, conv, {"messages": [{"type": "approval", "approvals": [denial]}]})
    assert answer.status == 200
    listed = messages(http, conv)
    runs = list_runs(http, conversation_id=conv)
    logged = events(http, conv)

    # The list finds it by its summary; its link opens the timeline.
    visit(browser, f"{served.url}/ui/?summary_search={token}")
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.conversation")
    assert [data(r, "id") for r in rows] == [conv]
    screenshot(browser, "list")
    rows[0].find_element(By.TAG_NAME, "a").click()
    until(browser, lambda d: d.current_url.endswith(f"/ui/conversations/{conv}"), "the timeline")
    settled(browser)

    # Every message, in order, and the hostile one as the text it is.
    cards = browser.find_elements(By.CSS_SELECTOR, "#timeline article.msg")
    assert [data(c, "message-id") for c in cards] == [m["id"] for m in listed]
    assert HOSTILE in texts(browser, "#timeline article.msg.user")[0]
    assert browser.find_elements(By.CSS_SELECTOR, "#timeline .differs") == []
    assert browser.execute_script("return window.__pwned") is None
    assert browser.find_elements(By.CSS_SELECTOR, "#main img, #main script") == []
    assistant = "\n".join(texts(browser, "#timeline article.msg.assistant"))
    assert f"echo: {HOSTILE}" in assistant
    assert "Noted your surname." in assistant

    # Runs with status, stop reason, model, steps, tokens; the failed attempt with its input.
    run_rows = browser.find_elements(By.CSS_SELECTOR, "#runs tr.run-row")
    assert [data(r, "run-id") for r in run_rows] == [r["id"] for r in reversed(runs)]
    by_id = {data(r, "run-id"): r.text for r in run_rows}
    assert "failed" in by_id[failed] and "llm_api_error" in by_id[failed]
    first = by_id[runs[-1]["id"]]
    assert "completed" in first and "end_turn" in first and MODEL in first
    attempts = one(browser, "#runs").text
    assert "Failed and cancelled attempts (1)" in attempts

    # The memory edit, before and after; the tool call and its result.
    memory = one(browser, "#memory")
    assert "- Name: Ada" in texts(browser, "#memory .diff-del")
    assert "+ Name: Ada L." in texts(browser, "#memory .diff-add")
    assert "memory_replace" in memory.text.lower()  # headings are upper-cased by the CSS
    returns = "\n".join(texts(browser, "#timeline article.msg.tool_return"))
    assert "memory_replace" in returns and "success" in returns

    # The approval, denied, with the reason and who decided.
    (decision,) = browser.find_elements(By.CSS_SELECTOR, "#approvals tr.approval-row")
    assert data(decision, "tool-call-id") == call_id
    assert "denied" in decision.text and "not now" in decision.text
    assert "user-00000000-0000-4000-8000-000000000000" in decision.text

    # The raw events, each hash recomputed in the browser, and the server's verdict.
    event_rows = browser.find_elements(By.CSS_SELECTOR, "#events tr.event")
    assert [int(data(r, "version") or 0) for r in event_rows] == [e["version"] for e in logged]
    assert {data(r, "recomputed") for r in event_rows} == {"true"}
    assert {data(r, "linked") for r in event_rows} == {"true"}
    assert data(one(browser, "#audit"), "verified") == "true"
    assert console_errors(browser) == []
    screenshot(browser, "conversation")


def test_the_as_of_control_redraws_an_earlier_version(
    browser: WebDriver, served: Served, http: httpx.Client, fake_openai: FakeOpenAI
) -> None:
    agent = create_agent(http)
    conv = conversation(http, agent, "ui as of")
    say(http, conv, "the first question")
    time.sleep(1.1)  # the two turns a second apart, so a time in seconds can fall between them
    say(http, conv, "the second question")
    logged = events(http, conv)
    first_run = event_of(logged, status="completed")  # the first run's release
    version = first_run["version"]
    then = messages(http, conv, as_of_version=version)
    live = messages(http, conv)
    assert 0 < len(then) < len(live)

    visit(browser, f"{served.url}/ui/conversations/{conv}")
    assert data(one(browser, "#as-of-status"), "live") == "true"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#timeline article.msg")) == len(live)

    show_version(browser, version)
    cards = browser.find_elements(By.CSS_SELECTOR, "#timeline article.msg")
    assert [data(c, "message-id") for c in cards] == [m["id"] for m in then]
    shown = "\n".join(c.text for c in cards)
    assert "the first question" in shown and "the second question" not in shown
    assert len(browser.find_elements(By.CSS_SELECTOR, "#runs tr.run-row")) == 1
    versions = [
        int(data(r, "version") or 0)
        for r in browser.find_elements(By.CSS_SELECTOR, "#events tr.event")
    ]
    assert versions == list(range(1, version + 1))
    assert f"as_of_version={version}" in browser.current_url
    screenshot(browser, "as-of-version")

    # A time between the turns: the last version at or before it, as the server answers.
    at = datetime.fromisoformat(first_run["timestamp"].replace("Z", "+00:00"))
    between = (at + timedelta(milliseconds=500)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]
    browser.execute_script("document.getElementById('as-of-time').value = arguments[0]", between)
    one(browser, "#as-of-time-apply").click()
    until(browser, lambda d: "as_of=" in d.current_url and state(d) == "ready", "the time")
    answered = data(one(browser, "#as-of-status"), "version")
    assert answered is not None and version <= int(answered) < logged[-1]["version"]
    shown = "\n".join(texts(browser, "#timeline article.msg"))
    assert "the first question" in shown and "the second question" not in shown

    one(browser, "#as-of-live").click()
    until(browser, lambda d: data(one(d, "#as-of-status"), "live") == "true", "the live page")
    settled(browser)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#timeline article.msg")) == len(live)
    assert console_errors(browser) == []


def test_a_tampered_log_shows_as_not_verified(
    browser: WebDriver, served: Served, http: httpx.Client, fake_openai: FakeOpenAI
) -> None:
    agent = create_agent(http)
    conv = conversation(http, agent, "ui tampered")
    say(http, conv, "Hello, auditor")
    target = event_of(events(http, conv), content="Hello, auditor")["position"]

    visit(browser, f"{served.url}/ui/conversations/{conv}")
    assert data(one(browser, "#audit"), "verified") == "true"

    # A changed value: the events still read, and the browser finds which hash no longer holds.
    served.tamper(
        "UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT), 'Hello, auditor',"
        " 'Hello, auditee') AS BLOB) WHERE rowid = ?",
        target,
    )
    visit(browser, f"{served.url}/ui/conversations/{conv}")
    audit = one(browser, "#audit")
    assert data(audit, "verified") == "false"
    assert "NOT VERIFIED" in audit.text and f"position {target}" in audit.text
    row = one(browser, f'#events tr.event[data-position="{target}"]')
    assert data(row, "recomputed") == "false"
    assert "hash differs" in row.text
    # The views still list what was said; the page shows that the log now says otherwise.
    (user,) = browser.find_elements(By.CSS_SELECTOR, "#timeline article.msg.user")
    assert "Hello, auditor" in user.text and "differs from its event: Hello, auditee" in user.text
    assert data(one(browser, "#recheck"), "differ") == "1"
    screenshot(browser, "tampered")

    # The bytes mangled as tests/integration/tamper.py does: still not verified.
    served.tamper(
        "UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT), 'o', '0') AS BLOB)"
        " WHERE rowid = ?",
        target,
    )
    visit(browser, f"{served.url}/ui/conversations/{conv}")
    assert data(one(browser, "#audit"), "verified") == "false"
    screenshot(browser, "tampered-bytes")
    console_errors(browser)  # the events may no longer decode: the page says so, not asserted


# -- with keys -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keyed:
    url: str
    data_dir: Path

    def issue(self, organization: str) -> str:
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
        env["CONVLOG_DATA_DIR"] = str(self.data_dir)
        done = subprocess.run(
            [*CLI, "keys", "create", "--organization", organization],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return str(json.loads(done.stdout.strip().splitlines()[-1])["key"])


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    root = tmp_path_factory.mktemp("convlog-ui-auth")
    env = {"CONVLOG_DATA_DIR": str(root / "data"), "CONVLOG_AUTH": "required"}
    with start_server(env, root) as url:
        yield Keyed(url, root / "data")


def test_with_keys_required_the_page_asks_for_one_and_then_works(
    browser: WebDriver, keyed: Keyed
) -> None:
    key = keyed.issue(f"ui-{uuid.uuid4().hex[:6]}")
    headers = {"authorization": f"Bearer {key}"}
    with httpx.Client(base_url=keyed.url, headers=headers, timeout=30.0) as http:
        made = http.post(
            "/v1/agents/",
            json={"name": "ui-keyed", "model": BUILTIN_MODEL, "embedding": EMBEDDING},
        )
        assert made.status_code == 200, made.text
        conv = conversation(http, made.json()["id"], "ui with a key")
        say(http, conv, "Hello with a key")
    with httpx.Client(base_url=keyed.url) as anonymous:
        assert anonymous.get("/ui/assets/app.js").status_code == 200  # no data in it
        assert anonymous.get(f"/v1/conversations/{conv}").status_code == 401

    browser.get(f"{keyed.url}/ui/")
    browser.execute_script("sessionStorage.clear()")
    visit(browser, f"{keyed.url}/ui/conversations/{conv}", expected="key")
    assert one(browser, "#key-form").is_displayed()
    screenshot(browser, "asks-for-a-key")

    one(browser, "#api-key").send_keys("sk-convlog-not-a-key")
    one(browser, "#key-form button[type=submit]").click()
    until(browser, lambda d: d.find_elements(By.ID, "key-refused"), "the refusal")
    settled(browser, "key")

    field = one(browser, "#api-key")
    field.clear()
    field.send_keys(key)
    one(browser, "#key-form button[type=submit]").click()
    settled(browser)
    shown = "\n".join(texts(browser, "#timeline article.msg"))
    assert "Hello with a key" in shown
    assert data(one(browser, "#audit"), "verified") == "true"
    stored = browser.execute_script(
        "return [sessionStorage.getItem('convlog.apiKey'), localStorage.length]"
    )
    assert stored == [key, 0]
    screenshot(browser, "with-a-key")

    visit(browser, f"{keyed.url}/ui/")  # the key stays for the tab
    assert [data(r, "id") for r in browser.find_elements(By.CSS_SELECTOR, "tr.conversation")] == [
        conv
    ]
    one(browser, "#forget-key").click()
    settled(browser, "key")
    assert browser.execute_script("return sessionStorage.length") == 0
    # The refused requests are logged by the browser as failed loads (401), nothing else.
    assert console_errors(browser, allowed=("401 (Unauthorized)",)) == []
