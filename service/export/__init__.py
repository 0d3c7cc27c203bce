"""Exporting the log for analysts (``convlog export``, docs/export.md): three tables built from
the stored events alone, never from the views.

- ``events``: every stored event, with who caused it, its fields as JSON and its two hashes;
- ``messages``: one row per message appended to a conversation (and per compaction summary);
- ``runs``: one row per run, folded from all of the run's events up to the head.

The log is read in large pages of stored rows (``LogPages``); each event's state is decoded
once, with orjson when it holds nothing but JSON and its timestamp (nearly always), else by the
application's own mapper, and becomes a typed domain event that the row builders read. Each
page's ``events`` and ``messages`` rows go to a ``TableSink`` (adapters/export_files.py: JSON
lines or Parquet) as columns; the runs, which need every event of a run, are folded as the pages
go by and written at the end. On PostgreSQL a whole log's pages can be read and made into rows
by forked worker processes (``Exporter.run(workers=…)``), each with a connection of its own;
the export's own process then folds the runs and writes the workers' rows in log order.

The modules, in the order the rows go through them:

- ``tables``: the tables' columns; ``ports``: ``LogPages`` and ``TableSink``;
- ``decoding``: ``EventDecoder``, a stored event's time, actor, payload and typed event;
- ``messages`` and ``runs``: the ``messages`` rows, and a run folded into its ``runs`` row;
- ``page_rows``: a page's ``events`` and ``messages`` rows, the hot loop;
- ``walk``: what needs the history (a conversation's rows, owners, runs), in log order;
- ``workers``: the forked workers; ``exporter``: ``Exporter``, its ``Plan`` and ``Result``.

This package's names are what the adapters, the command and the benchmark use.
"""

from service.export.exporter import PAGE, Exporter, ExportRefused, Plan, Progress, Result
from service.export.ports import ChainPages, LogPages, LogRow, SharedPages, TableSink
from service.export.tables import (
    ACTOR_FIELDS,
    EVENTS,
    MESSAGES,
    RUNS,
    TABLES,
    Column,
    Columns,
    columns_of,
)

__all__ = [
    "ACTOR_FIELDS",
    "EVENTS",
    "MESSAGES",
    "PAGE",
    "RUNS",
    "TABLES",
    "ChainPages",
    "Column",
    "Columns",
    "ExportRefused",
    "Exporter",
    "LogPages",
    "LogRow",
    "Plan",
    "Progress",
    "Result",
    "SharedPages",
    "TableSink",
    "columns_of",
]
