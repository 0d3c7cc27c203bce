"""The request-scoped ``<available_skills>`` block, in Letta 0.16.7's layout."""

from __future__ import annotations

from domain.skills import available_skills, request_system_prompt, skills_of


def test_skills_are_grouped_by_root_and_drawn_as_trees() -> None:
    skills = skills_of(
        [
            {"label": "skills/notes", "description": "Keep notes.\nDetails."},
            {"label": "skills/notes/extra", "description": "nested files are not skills"},
            {"label": "human", "value": "Ada"},
        ],
        [
            {"name": "pdf", "description": "Read PDFs.", "location": "skills/pdf/SKILL.md"},
            {"name": "csv", "description": "", "location": "skills/csv/SKILL.md"},
            {"name": "notes", "description": "shadowed by the agent's", "location": "x/SKILL.md"},
            {"name": "tool", "description": "A script.", "location": "/opt/tools/run.sh"},
        ],
    )
    assert [s.name for s in skills] == ["notes", "pdf", "csv", "tool"]
    assert available_skills(skills) == (
        "\n\n<available_skills>\n"
        "${MEMORY_DIR}/skills\n"
        "└── notes/\n"
        "    └── SKILL.md (Keep notes.)\n"
        "\n"
        "/opt/tools\n"
        "└── run.sh (A script.)\n"
        "\n"
        "skills\n"
        "├── csv/\n"
        "│   └── SKILL.md\n"
        "└── pdf/\n"
        "    └── SKILL.md (Read PDFs.)\n"
        "</available_skills>"
    )


def test_no_skills_no_block_and_an_override_is_sent_as_given() -> None:
    assert available_skills(skills_of([], [])) == ""
    block = available_skills(skills_of([], [{"name": "a", "description": "b", "location": ""}]))
    assert request_system_prompt("stored\n", None, block) == "stored\n\n" + block.lstrip("\n")
    assert request_system_prompt("stored", "mine", block) == "mine"
    assert request_system_prompt("stored", None, "") == "stored"
