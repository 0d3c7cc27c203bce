"""Tokens per agent per day: what each agent's model calls used, by UTC day.

The worked example of README's "Adding a projection". Its source of truth is the run's log:
``Run.StepFinished`` is recorded once per model call, with that call's usage
(``prompt_tokens``, ``completion_tokens``), so a cancelled or failed run still counts the
calls it made; ``Run.Created`` (RunStarted) names the run's organization and agent, which the
step events do not repeat, so the projection keeps a small table of its own to look them up
(a projection reads only its own tables: each may be rebuilt on its own). A deleted run's
tokens stay counted: they were used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any, ClassVar

from domain import ids
from domain.run import Run
from projections.projection import Handler, Projection, Writer
from projections.store import ViewStore

COLUMNS = "organization_id, agent_id, day, steps, prompt_tokens, completion_tokens"


@dataclass(frozen=True)
class TokenDay:
    organization_id: str
    agent_id: str
    day: str  # YYYY-MM-DD, in UTC
    steps: int  # model calls
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> TokenDay:
        org, agent, day, steps, prompt, completion = row
        return cls(str(org), str(agent), str(day), int(steps), int(prompt), int(completion))


class TokensPerDay(Projection):
    name = "tokens_per_day"
    version = 1
    tables: ClassVar[dict[str, list[str]]] = {
        "tokens_per_day": [
            "CREATE TABLE IF NOT EXISTS {tokens_per_day} ("
            " organization_id TEXT NOT NULL, agent_id TEXT NOT NULL, day TEXT NOT NULL,"
            " steps BIGINT NOT NULL, prompt_tokens BIGINT NOT NULL,"
            " completion_tokens BIGINT NOT NULL, PRIMARY KEY (organization_id, agent_id, day))",
        ],
        # Whose each run is (from RunStarted), for its steps.
        "token_runs": [
            "CREATE TABLE IF NOT EXISTS {token_runs} ("
            " run_id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, agent_id TEXT NOT NULL)",
        ],
    }

    def handlers(self) -> Mapping[type[Any], Handler]:
        return {Run.Created: self._started, Run.StepFinished: self._step}

    def _started(self, e: Run.Created, w: Writer) -> None:
        w.insert(
            "token_runs",
            "run_id, organization_id, agent_id",
            (ids.format_id(ids.RUN, e.originator_id), e.organization_id, e.agent_id),
        )

    def _step(self, e: Run.StepFinished, w: Writer) -> None:
        run_id = ids.format_id(ids.RUN, e.originator_id)
        owner = w.fetchone(
            "SELECT organization_id, agent_id FROM {token_runs} WHERE run_id = %s", (run_id,)
        )
        if owner is None:  # a step of a run that never started: nothing to count it for
            return
        day = e.timestamp.astimezone(UTC).date().isoformat()
        prompt = int(e.usage.get("prompt_tokens") or 0)
        completion = int(e.usage.get("completion_tokens") or 0)
        w.execute(
            "INSERT INTO {tokens_per_day} (" + COLUMNS + ") VALUES (%s, %s, %s, 1, %s, %s)"
            " ON CONFLICT (organization_id, agent_id, day) DO UPDATE SET"
            " steps = {tokens_per_day}.steps + 1,"
            " prompt_tokens = {tokens_per_day}.prompt_tokens + excluded.prompt_tokens,"
            " completion_tokens = {tokens_per_day}.completion_tokens"
            " + excluded.completion_tokens",
            (owner[0], owner[1], day, prompt, completion),
        )


class TokensPerDayQueries:
    def __init__(self, store: ViewStore) -> None:
        self.store = store

    def of_organization(self, organization_id: str, agent_id: str | None = None) -> list[TokenDay]:
        """An organization's days (one agent's, if given), by day then agent."""
        clauses, params = ["organization_id = %s"], [organization_id]
        if agent_id is not None:
            clauses.append("agent_id = %s")
            params.append(agent_id)
        rows = self.store.query(
            f"SELECT {COLUMNS} FROM tokens_per_day WHERE {' AND '.join(clauses)}"
            " ORDER BY day, agent_id",
            params,
        )
        return [TokenDay.from_row(row) for row in rows]
