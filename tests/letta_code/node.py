"""Letta's JavaScript clients (Letta Code and the TypeScript SDK), pinned by this folder's
``package.json`` and ``package-lock.json``, installed with ``npm ci`` into a cache folder the
tests own (``.cache/node`` in the checkout; ``CONVLOG_NODE_CACHE`` moves it). Installed once per
lock file: a second run finds it in place.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

from tests.services import require_program

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LOCK = HERE / "package-lock.json"
STAMP = ".installed-lock"


def cache_dir() -> Path:
    return Path(os.environ.get("CONVLOG_NODE_CACHE") or REPO / ".cache" / "node")


@cache  # checked and installed once per test process
def node_modules() -> Path:
    """The installed packages (skips, or fails under CI=true, without Node and npm)."""
    require_program("node", "Letta's JavaScript clients run on Node.js")
    npm = require_program("npm", "Letta's JavaScript clients are installed with npm")
    target = cache_dir()
    wanted = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    stamp = target / STAMP
    if stamp.exists() and stamp.read_text() == wanted:
        return target / "node_modules"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(HERE / name, target / name)
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=target,
        check=True,
        timeout=600,
    )
    stamp.write_text(wanted)
    return target / "node_modules"


def letta_code() -> Path:
    """The ``letta`` command of the pinned Letta Code."""
    return node_modules() / ".bin" / "letta"


def letta_code_env(base_url: str, home: Path) -> dict[str, str]:
    """What every Letta Code run gets: the server, a home of its own (its settings and
    sessions), ``letta`` on the PATH (its Task tool starts subagents by that name), and no
    self-update (it would reach for the npm registry and take ~10 s)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LETTA_")}
    env.update(
        PATH=f"{letta_code().parent}{os.pathsep}{env.get('PATH', '')}",
        LETTA_BASE_URL=base_url,
        HOME=str(home),
        DISABLE_AUTOUPDATER="1",
        LETTA_CODE_TELEM="0",
        NO_COLOR="1",
    )
    return env
