"""Skills the model is told about for one request: an ``<available_skills>`` block added to
the system prompt of that request only (never stored), in Letta 0.16.7's layout.

Two sources, first name wins: the agent's blocks labelled ``skills/<name>`` (or
``skills/<name>/SKILL``), then the request's ``client_skills``. Skills are grouped by the
directory above their own, and each group is drawn as a file tree with the description
beside the file.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TreeNode = dict[str, Any]  # a directory: name -> TreeNode, or a file: name -> description


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    location: str


def default_location(name: str) -> str:
    return f"${{MEMORY_DIR}}/skills/{name}/SKILL.md"


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n")[0].strip()


def skills_of(
    blocks: Iterable[Mapping[str, Any]], client_skills: Sequence[Mapping[str, Any]]
) -> list[Skill]:
    found: dict[str, Skill] = {}
    for block in blocks:
        parts = (block.get("label") or "").split("/")
        if parts[0] != "skills" or len(parts) < 2:
            continue
        top_level = len(parts) == 2 or (len(parts) == 3 and parts[2] == "SKILL")
        if top_level and parts[1] not in found:
            name = parts[1]
            found[name] = Skill(name, _first_line(block.get("description")), default_location(name))
    for skill in client_skills:
        name = skill["name"]
        if name not in found:
            location = (skill.get("location") or "").strip() or default_location(name)
            found[name] = Skill(name, _first_line(skill.get("description")), location)
    return list(found.values())


def _root_and_path(skill: Skill) -> tuple[str, str]:
    """``…/skills/<name>/SKILL.md`` is drawn under ``…/skills`` as ``<name>/SKILL.md``."""
    location = skill.location.strip()
    if location.endswith("/SKILL.md"):
        skill_dir = posixpath.dirname(location)
        if posixpath.basename(skill_dir) == skill.name.split("/")[-1]:
            root = posixpath.dirname(skill_dir)
            return root, posixpath.relpath(location, root)
    return posixpath.dirname(location), posixpath.basename(location)


def _draw(node: TreeNode, prefix: str, out: list[str]) -> None:
    directories = sorted(k for k, v in node.items() if isinstance(v, dict))
    files = sorted(k for k, v in node.items() if isinstance(v, str))
    entries = [(d, True) for d in directories] + [(f, False) for f in files]
    for index, (name, is_dir) in enumerate(entries):
        last = index == len(entries) - 1
        branch = "└── " if last else "├── "
        if is_dir:
            out.append(f"{prefix}{branch}{name}/\n")
            _draw(node[name], prefix + ("    " if last else "│   "), out)
        else:
            description = (node[name] or "").strip()
            out.append(f"{prefix}{branch}{name}{f' ({description})' if description else ''}\n")


def available_skills(skills: Sequence[Skill]) -> str:
    """The block (with its two leading newlines), or "" when there is no skill."""
    if not skills:
        return ""
    groups: dict[str, list[tuple[str, str]]] = {}
    for skill in skills:
        root, path = _root_and_path(skill)
        groups.setdefault(root, []).append((path, skill.description))
    out = ["\n\n<available_skills>\n"]
    for number, root in enumerate(sorted(groups)):
        out.append(f"{root}\n")
        tree: TreeNode = {}
        for path, description in sorted(groups[root]):
            parts = [p for p in path.split("/") if p]
            if not parts:
                continue
            node = tree
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = description
        _draw(tree, "", out)
        if number != len(groups) - 1:
            out.append("\n")
    out.append("</available_skills>")
    return "".join(out)


def request_system_prompt(stored: str, override: str | None, skills: str) -> str:
    """The system prompt of one request: an override exactly as given, else the stored
    prompt with the skills block after it.
    """
    if override is not None:
        return override
    if not skills:
        return stored
    return stored.rstrip("\n") + "\n\n" + skills.lstrip("\n")
