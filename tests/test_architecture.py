"""The dependency rule, enforced by scanning every import (lazy and TYPE_CHECKING ones too).

    runtime ─► anything          api ─► service, projections, domain (+ starlette, pydantic)
    adapters ─► service, domain (+ psycopg, redis, eventsourcing, the OpenAI and Anthropic clients,
                httpx, markdownify, orjson, pyarrow)
    service ─► projections, domain        projections ─► domain
    domain ─► stdlib, eventsourcing.domain

starlette only in api/ and runtime/; pydantic only in api/; redis only in adapters/; psycopg only
in projections/postgres_store.py, adapters/ and runtime/.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("domain", "projections", "service", "adapters", "api", "runtime")
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}

# Which of our own packages each layer may import (itself included).
OWN = {
    "domain": {"domain"},
    "projections": {"projections", "domain"},
    "service": {"service", "projections", "domain"},
    "adapters": {"adapters", "service", "domain"},
    "api": {"api", "service", "projections", "domain"},
    "runtime": set(LAYERS),
}
# Third-party distributions each layer may import; None means any (subject to EXCLUSIVE).
THIRD_PARTY: dict[str, set[str] | None] = {
    "domain": {"eventsourcing.domain"},
    "projections": set(),
    "service": None,
    "adapters": {
        "psycopg",
        "psycopg_pool",
        "redis",
        "eventsourcing",
        "openai",
        "anthropic",
        "httpx",
        "markdownify",
        "orjson",
        "pyarrow",
    },
    "api": {"starlette", "pydantic"},
    "runtime": None,
}
# Libraries that only some places may touch, wherever the import appears.
EXCLUSIVE = {
    "starlette": ("api/", "runtime/"),
    "pydantic": ("api/",),
    "redis": ("adapters/",),
    "psycopg": ("projections/postgres_store.py", "adapters/", "runtime/"),
    "psycopg_pool": ("projections/postgres_store.py", "adapters/", "runtime/"),
}


@dataclass(frozen=True)
class Import:
    path: str  # relative to the repository root
    line: int
    module: str  # dotted; "from a.b import c" is recorded as "a.b.c"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: imports {self.module}"


def _resolve(path: Path, level: int, module: str | None) -> str:
    """The absolute module a relative import names."""
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    base = package[: len(package) - (level - 1)] if level > 1 else package
    return ".".join([*base, *([module] if module else [])])


def imports_of(path: Path) -> list[Import]:
    rel = path.relative_to(ROOT).as_posix()
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=rel)):
        if isinstance(node, ast.Import):
            found += [Import(rel, node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(path, node.level, node.module) if node.level else node.module or ""
            found += [Import(rel, node.lineno, f"{module}.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (getattr(node.func, "attr", None) or getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append(Import(rel, node.lineno, node.args[0].value))
    return found


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violation(imp: Import) -> str | None:
    """Why this import breaks the rule, or None."""
    layer = imp.path.split("/", 1)[0]
    top = imp.module.split(".", 1)[0]
    if top in STDLIB:
        return None
    places = EXCLUSIVE.get(top)
    if places is not None:
        if imp.path.startswith(places):
            return None
        return f"{top} is only allowed in {', '.join(places)}"
    if top in LAYERS or top == "tests":
        if top not in OWN[layer]:
            return f"{layer}/ may not import {top}/"
        return None
    allowed = THIRD_PARTY[layer]
    if allowed is not None and not any(_within(imp.module, a) for a in allowed):
        return f"{layer}/ may not import {imp.module} (allowed: stdlib, {sorted(allowed)})"
    return None


def violations_in(paths: list[Path]) -> list[str]:
    return [f"{imp} ({why})" for p in paths for imp in imports_of(p) if (why := violation(imp))]


def sources(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_respects_the_dependency_rule(layer: str) -> None:
    paths = sources(layer)
    assert paths, f"no sources under {layer}/"
    problems = violations_in(paths)
    assert not problems, "dependency rule broken:\n" + "\n".join(problems)


# -- the checker itself can fail ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        ("domain/x.py", "import eventsourcing.application", "domain/ may not import"),
        ("domain/x.py", "from eventsourcing.persistence import IntegrityError", "domain/"),
        ("domain/x.py", "from projections.store import Row", "domain/ may not import projections/"),
        ("domain/x.py", "import requests", "domain/ may not import requests"),
        ("projections/x.py", "import psycopg", "psycopg is only allowed"),
        ("projections/x.py", "from service.context import Actor", "projections/ may not"),
        ("projections/x.py", "import eventsourcing", "projections/ may not import"),
        ("service/x.py", "from api.app import create_app", "service/ may not import api/"),
        ("service/x.py", "from runtime.settings import Settings", "service/ may not"),
        ("service/x.py", "from adapters.inprocess import InProcessLock", "service/ may not"),
        ("service/x.py", "import redis.asyncio", "redis is only allowed in adapters/"),
        ("service/x.py", "from pydantic import BaseModel", "pydantic is only allowed in api/"),
        ("adapters/x.py", "from api import render", "adapters/ may not import api/"),
        ("adapters/x.py", "from projections import store", "adapters/ may not import"),
        ("adapters/x.py", "from starlette.requests import Request", "starlette is only"),
        ("api/x.py", "from runtime.bootstrap import build", "api/ may not import runtime/"),
        ("api/x.py", "from adapters.models import ModelRouter", "api/ may not import adapters/"),
        ("api/x.py", "import redis", "redis is only allowed"),
        ("runtime/x.py", "from pydantic import BaseModel", "pydantic is only allowed in api/"),
        ("runtime/x.py", "import redis", "redis is only allowed in adapters/"),
        ("service/x.py", "def f():\n    import psycopg\n", "psycopg is only allowed"),
        ("domain/x.py", "import importlib\n\nimportlib.import_module('api')", "domain/"),
        ("projections/sub/x.py", "from ...service import context", "projections/ may not"),
    ],
)
def test_the_checker_reports_violations_with_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str, source: str, expected: str
) -> None:
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    target = tmp_path / path
    target.parent.mkdir(parents=True)
    target.write_text(source)
    (problem,) = violations_in([target])
    line = len(source.rstrip().splitlines())  # the offending import is the last line
    assert problem.startswith(f"{path}:{line}: imports ")
    assert expected in problem


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("domain/x.py", "from eventsourcing.domain import Aggregate, event\nimport re"),
        ("domain/x.py", "from . import ids\nfrom domain.errors import NotFound"),
        ("projections/postgres_store.py", "from psycopg import sql\nimport psycopg_pool"),
        ("service/x.py", "from eventsourcing.application import Application\nimport anyio"),
        ("adapters/x.py", "import redis\nfrom psycopg.sql import SQL\nfrom service import ports"),
        ("api/x.py", "from starlette.routing import Route\nfrom projections.runs import RunRow"),
        ("runtime/x.py", "from api.app import create_app\nfrom adapters import models"),
    ],
)
def test_the_checker_accepts_allowed_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str, source: str
) -> None:
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    target = tmp_path / path
    target.parent.mkdir(parents=True)
    target.write_text(source)
    assert violations_in([target]) == []
