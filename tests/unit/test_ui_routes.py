"""The timeline page's routes (``api/ui.py``): what they serve, with which headers, to whom;
and the page's scripts checked for the ways untrusted text could become markup. The page
itself, in a real browser, is ``tests/e2e/test_ui.py``."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from api import ui
from api.app import create_app
from api.config import EdgeConfig
from service.services import Services

STATIC = Path(ui.__file__).parent / "ui_static"


@pytest.fixture
def http(services: Services) -> Iterator[TestClient]:
    edge = EdgeConfig(auth_required=True, allowed_hosts=("localhost",))
    with TestClient(create_app(services, edge), base_url="http://localhost") as client:
        yield client


def _strict(headers: Mapping[str, str]) -> None:
    csp = headers["content-security-policy"]
    for directive in (
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
    ):
        assert directive in csp
    assert "unsafe" not in csp
    assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/ui/", "text/html; charset=utf-8"),
        ("/ui/conversations/conv-00000000-0000-4000-8000-000000000000", "text/html; charset=utf-8"),
        ("/ui/assets/app.js", "text/javascript; charset=utf-8"),
        ("/ui/assets/timeline.js", "text/javascript; charset=utf-8"),
        ("/ui/assets/app.css", "text/css; charset=utf-8"),
        ("/ui/assets/favicon.svg", "image/svg+xml"),
    ],
)
def test_the_page_and_its_assets_are_served_without_a_key(
    http: TestClient, path: str, media_type: str
) -> None:
    response = http.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type
    _strict(response.headers)
    assert http.get("/v1/conversations/").status_code == 401  # the data still needs one


def test_every_page_is_the_same_shell(http: TestClient) -> None:
    shell = http.get("/ui/").text
    assert http.get("/ui/conversations/agent-x").text == shell
    assert '<script type="module" src="/ui/assets/app.js">' in shell


def test_ui_without_its_slash_redirects_keeping_the_query(http: TestClient) -> None:
    response = http.get("/ui", follow_redirects=False)
    assert response.status_code == 308
    assert response.headers["location"] == "/ui/"
    kept = http.get("/ui?summary_search=tea", follow_redirects=False)
    assert kept.headers["location"] == "/ui/?summary_search=tea"


@pytest.mark.parametrize("name", ["missing.js", "__init__.py", "index", "ui.py"])
def test_only_the_shipped_assets_are_served(http: TestClient, name: str) -> None:
    response = http.get(f"/ui/assets/{name}")
    assert response.status_code == 404
    _strict(response.headers)
    assert http.get("/ui/assets/..%2Fui.py").status_code == 404
    assert http.get("/ui/assets/../ui.py").status_code == 404


def test_the_guard_still_refuses_foreign_hosts(http: TestClient) -> None:
    assert http.get("/ui/", headers={"host": "evil.example"}).status_code == 400


def test_every_file_the_page_loads_is_shipped() -> None:
    """Each asset the shell names and each module a script imports is in the package."""
    shipped = {p.name for p in STATIC.iterdir()}
    named = set(re.findall(r"/ui/assets/([\w.-]+)", (STATIC / "index.html").read_text()))
    for script in STATIC.glob("*.js"):
        named |= set(re.findall(r'from "\./([\w.-]+)"', script.read_text()))
    assert named <= shipped, named - shipped
    assert {"index.html", "app.js", "app.css"} <= named | {"index.html"}


# Ways a string can become markup or code; the page builds its DOM from text nodes only.
UNSAFE = re.compile(
    r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|"
    r"setAttribute\(\s*[\"']on|srcdoc|createContextualFragment|DOMParser"
)


@pytest.mark.parametrize("script", sorted(p.name for p in STATIC.glob("*.js")))
def test_no_script_turns_text_into_markup(script: str) -> None:
    source = (STATIC / script).read_text()
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("//"))
    assert not UNSAFE.search(code), UNSAFE.search(code)


def test_the_key_is_kept_for_the_tab_only() -> None:
    source = (STATIC / "api.js").read_text()
    assert "sessionStorage" in source
    assert "localStorage" not in "".join(p.read_text() for p in STATIC.glob("*.js"))
