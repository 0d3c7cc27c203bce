"""An export's files (``convlog export``, docs/export.md): a table per file, as JSON lines or as
Parquet with explicit schemas, and ``manifest.json`` beside them.

Each table is written to ``<name>.partial`` and renamed when the export finishes, so a file
with a finished name is always whole; the manifest is written last.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from service.export import ACTOR_FIELDS, TABLES, Column, Columns

FORMATS = {"jsonl": ".jsonl", "parquet": ".parquet"}
MANIFEST = "manifest.json"
PARTIAL = ".partial"
# What an export writes: what --overwrite may replace (anything else in the directory stays).
OWN_FILES = frozenset(
    {MANIFEST, MANIFEST + PARTIAL}
    | {f"{table}{suffix}" for table in TABLES for suffix in FORMATS.values()}
    | {f"{table}{suffix}{PARTIAL}" for table in TABLES for suffix in FORMATS.values()}
)

ACTOR = pa.struct([pa.field(name, pa.string()) for name in ACTOR_FIELDS])
TIME = pa.timestamp("us", tz="UTC")
ARROW_TYPES = {
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "str": pa.string(),
    "json": pa.string(),
    "time": TIME,
    "actor": ACTOR,
}
ROW_GROUP = 65_536  # rows per Parquet row group (each written while the next are made)
# Text with few distinct values, dictionary-encoded (the rest is mostly unique: trying costs
# time and saves nothing); long free text has no min/max statistics.
DICTIONARY = frozenset(
    {
        "stream_id",
        "type",
        "conversation_id",
        "agent_id",
        "organization_id",
        "run_id",
        "step_id",
        "message_type",
        "role",
        "tool_name",
        "status",
        "stop_reason",
        "model",
        "run_type",
        *(f"actor.{name}" for name in ACTOR_FIELDS),
    }
)
FREE_TEXT = frozenset({"payload", "text"})


def arrow_schema(table: str) -> Any:
    def field(column: Column) -> Any:
        # JSON text is marked as such for tools that look (DuckDB reads it as VARCHAR).
        meta = {"convlog.kind": column.kind} if column.kind == "json" else None
        return pa.field(column.name, ARROW_TYPES[column.kind], metadata=meta)

    return pa.schema([field(c) for c in TABLES[table]], metadata={"convlog.table": table})


def refusal(directory: Path, overwrite: bool) -> str | None:
    """Why an export may not write into ``directory``, or None."""
    if directory.exists() and not directory.is_dir():
        return f"--out {directory} is not a directory"
    if directory.is_dir() and any(directory.iterdir()) and not overwrite:
        return f"--out {directory} is not empty; pass --overwrite to replace an earlier export"
    return None


def clear(directory: Path) -> None:
    """Remove an earlier export's files (only those) from ``directory``; create it if need be."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in OWN_FILES:
        (directory / name).unlink(missing_ok=True)


class _Files:
    suffix = ""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.paths = {t: directory / f"{t}{self.suffix}" for t in TABLES}

    def partial(self, table: str) -> Path:
        return self.paths[table].with_name(self.paths[table].name + PARTIAL)

    def _finish(self) -> None:
        for table, path in self.paths.items():
            os.replace(self.partial(table), path)

    def abort(self) -> None:
        for table in TABLES:
            self.partial(table).unlink(missing_ok=True)


class JsonlSink(_Files):
    """One JSON object per line; times in ISO 8601 as stored (UTC, with its offset), actors
    as objects, payloads as JSON text."""

    suffix = ".jsonl"

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self._files: dict[str, IO[bytes]] = {t: open(self.partial(t), "wb") for t in TABLES}  # noqa: SIM115

    def encode(self, table: str, columns: Columns) -> bytes:
        names = list(columns)
        dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
        return b"".join(
            dumps(dict(zip(names, row, strict=True)), option=newline)
            for row in zip(*columns.values(), strict=True)
        )

    def write_encoded(self, table: str, data: bytes) -> None:
        self._files[table].write(data)

    def write(self, table: str, columns: Columns) -> None:
        self.write_encoded(table, self.encode(table, columns))

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._finish()

    def abort(self) -> None:
        for f in self._files.values():
            f.close()
        super().abort()


class ParquetSink(_Files):
    """A Parquet file per table with the schemas above (zstd), in row groups of up to
    ``ROW_GROUP`` rows, written by a thread of its own (Arrow lets go of the interpreter while
    it encodes and compresses) while the next rows are made."""

    suffix = ".parquet"

    def __init__(self, directory: Path, row_group: int = ROW_GROUP) -> None:
        super().__init__(directory)
        self._schemas = {t: arrow_schema(t) for t in TABLES}
        self._writers = {t: self._writer(t) for t in TABLES}
        self._held: dict[str, list[Any]] = {t: [] for t in TABLES}
        self._rows = dict.fromkeys(TABLES, 0)
        self._row_group = row_group
        self._writing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-write")
        self._written: list[Future[None]] = []

    def _writer(self, table: str) -> Any:
        paths = [
            f"{c.name}.{name}" if c.kind == "actor" else c.name
            for c in TABLES[table]
            for name in (ACTOR_FIELDS if c.kind == "actor" else ("",))
        ]
        return pq.ParquetWriter(
            self.partial(table),
            self._schemas[table],
            compression="zstd",
            use_dictionary=[p for p in paths if p in DICTIONARY],
            write_statistics=[p for p in paths if p not in FREE_TEXT],
        )

    def _table(self, table: str, columns: Columns) -> Any:
        schema = self._schemas[table]
        arrays = [_array(columns[f.name], f.type) for f in schema]
        return pa.Table.from_arrays(arrays, schema=schema)

    def encode(self, table: str, columns: Columns) -> bytes:
        """A batch as an Arrow IPC stream: what a worker process hands over."""
        found = self._table(table, columns)
        out = pa.BufferOutputStream()
        with pa.ipc.new_stream(out, found.schema) as stream:
            stream.write_table(found)
        data: bytes = out.getvalue().to_pybytes()
        return data

    def write_encoded(self, table: str, data: bytes) -> None:
        self._hold(table, pa.ipc.open_stream(pa.py_buffer(data)).read_all())

    def write(self, table: str, columns: Columns) -> None:
        self._hold(table, self._table(table, columns))

    def _hold(self, table: str, rows: Any) -> None:
        self._held[table].append(rows)
        self._rows[table] += rows.num_rows
        if self._rows[table] >= self._row_group:
            self._flush(table)

    def _flush(self, table: str) -> None:
        if self._held[table]:
            whole = pa.concat_tables(self._held[table])
            self._written.append(
                self._writing.submit(
                    self._writers[table].write_table, whole, row_group_size=self._row_group
                )
            )
            # A failed write is reported now rather than at the end.
            for done in [f for f in self._written if f.done()]:
                done.result()
                self._written.remove(done)
        self._held[table], self._rows[table] = [], 0

    def close(self) -> None:
        for table in TABLES:
            self._flush(table)
        self._writing.shutdown(wait=True)
        for written in self._written:
            written.result()
        for writer in self._writers.values():
            writer.close()
        self._finish()

    def abort(self) -> None:
        self._writing.shutdown(wait=True, cancel_futures=True)
        for writer in self._writers.values():
            writer.close()
        super().abort()


def _array(values: list[Any], kind: Any) -> Any:
    if kind == TIME:  # ISO 8601 text with an offset: Arrow parses it (in C++)
        return pa.array(values, type=pa.string()).cast(TIME)
    return pa.array(values, type=kind)


Sink = JsonlSink | ParquetSink


def open_sink(file_format: str, directory: Path) -> Sink:
    return ParquetSink(directory) if file_format == "parquet" else JsonlSink(directory)


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    path = directory / MANIFEST
    partial = path.with_name(MANIFEST + PARTIAL)
    partial.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(partial, path)
