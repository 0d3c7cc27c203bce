"""``convlog``: serve the API, manage API keys, rebuild projections, audit the log."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from runtime import audit_cli, export_cli, logs
from runtime.settings import Settings, SettingsError


def _workers(text: str) -> str:
    if text == "auto" or (text.isdigit() and 1 <= int(text) <= 64):
        return text
    raise argparse.ArgumentTypeError(f"--workers takes 1 to 64 or auto, not {text!r}")


ONE_PROCESS = (
    "convlog: --workers {n} needs PostgreSQL (DATABASE_URL=postgresql://…): the {backend} "
    "store is one process's. Run one worker, or point every worker at PostgreSQL."
)
NO_REDIS = (
    "%d workers without Redis: each has its own fast lock and background streams. One run per "
    "conversation still holds (the claim in the log), cancels reach every worker through the "
    "log, but a background run's stream resumes only on the worker running it (the others "
    "answer 503). Set REDIS_URL to share them."
)


def serve_workers(settings: Settings, workers: int) -> int:
    """N processes on one port, as N servers behind a load balancer would be: each builds its
    own services from the same settings (the environment), shares the log and the views in
    PostgreSQL, and Redis when set. Metrics add up across them (prometheus-client's
    multiprocess mode)."""
    if settings.backend != "postgres":
        print(ONE_PROCESS.format(n=workers, backend=settings.backend), file=sys.stderr)
        return 2
    if settings.redis_url is None:
        logging.getLogger("convlog").warning(NO_REDIS, workers)
    # What the workers read: the address they serve (it decides CONVLOG_AUTH's default), and
    # where their metrics meet.
    os.environ["CONVLOG_HOST"], os.environ["CONVLOG_PORT"] = settings.host, str(settings.port)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="convlog-metrics-"))
    import uvicorn

    uvicorn.run(
        "runtime.asgi:from_environment",
        factory=True,
        workers=workers,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        access_log=settings.log_level == "debug",
        http="runtime.http:FromEnvironment",
        timeout_keep_alive=max(1, round(settings.keep_alive_seconds)),
    )
    return 0


def serve(settings: Settings, args: argparse.Namespace) -> int:
    settings = replace(settings, host=args.host or settings.host, port=args.port or settings.port)
    workers = (os.cpu_count() or 1) if args.workers == "auto" else int(args.workers)
    if workers > 1:
        return serve_workers(settings, workers)
    import uvicorn

    # Validate and open the stores before binding, so a bad setting fails loudly and early.
    from runtime.asgi import create
    from runtime.http import with_header_deadline

    app = create(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # JSON lines: uvicorn's own loggers go through ours (its default config prints text).
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        access_log=settings.log_level == "debug",
        http=with_header_deadline(settings.header_timeout_seconds),
        timeout_keep_alive=max(1, round(settings.keep_alive_seconds)),
    )
    return 0


def keys_create(settings: Settings, args: argparse.Namespace) -> int:
    from domain.api_key import organization_id
    from runtime.bootstrap import open_services
    from service.actor import operator

    name = args.organization.strip()
    if not name or len(name) > 200 or not name.isprintable():
        print("convlog: --organization must be 1 to 200 printable characters", file=sys.stderr)
        return 2
    services = open_services(settings)
    try:
        issued = services.keys.issue(operator(organization_id(name)), name, args.name)
    finally:
        services.close()
    print(
        json.dumps({"id": issued.id, "key": issued.key, "organization_id": issued.organization_id})
    )
    return 0


def keys_list(settings: Settings, args: argparse.Namespace) -> int:
    from projections.timefmt import from_micros
    from runtime.bootstrap import open_services

    services = open_services(settings)
    try:
        rows = services.keys.list()
    finally:
        services.close()
    for row in rows:
        revoked = from_micros(row.revoked_at).isoformat() if row.revoked_at else None
        print(
            json.dumps(
                {
                    "id": row.id,
                    "name": row.name,
                    "organization_id": row.organization_id,
                    "organization": row.organization_name,
                    "hint": row.hint + "…",
                    "created_at": from_micros(row.created_at).isoformat(),
                    "revoked_at": revoked,
                }
            )
        )
    return 0


def keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from domain.errors import DomainError
    from runtime.bootstrap import open_services
    from service.actor import operator

    services = open_services(settings)
    try:
        found = services.keys.queries.get(args.id)
        by = operator(found.organization_id if found else "")
        row = services.keys.revoke(by, args.id)
    except DomainError as exc:
        print(f"convlog: {exc}", file=sys.stderr)
        return 1
    finally:
        services.close()
    print(json.dumps({"id": row.id, "revoked": True}))
    return 0


def rebuild(settings: Settings, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from runtime.bootstrap import open_services

    services = open_services(settings)
    try:
        projector = services.projector
        names = [args.name] if args.name else list(projector.projections)
        unknown = [n for n in names if n not in projector.projections]
        if unknown:
            print(
                f"unknown projection {unknown[0]!r}; known: {', '.join(projector.projections)}",
                file=sys.stderr,
            )
            return 2
        total = projector.source.max_position()
        for name in names:
            # The bar counts log positions read (its end is the log's head); events/s in the
            # summary counts the events the projection applied.
            with tqdm(total=total, desc=f"rebuild {name}", unit="pos", unit_scale=True) as bar:

                def advance(position: int, bar: Any = bar) -> None:
                    bar.total = max(bar.total or 0, position)
                    bar.update(position - bar.n)

                result = projector.rebuild(name, progress=advance)
            print(
                json.dumps(
                    {
                        "projection": name,
                        "generation": result.generation,
                        "events": result.events,
                        "seconds": round(result.seconds, 3),
                        "events_per_second": round(result.rate),
                        "resumed_from": result.resumed_from,
                    }
                )
            )
    finally:
        services.close()
    return 0


def status(settings: Settings, args: argparse.Namespace) -> int:
    from runtime.bootstrap import open_services

    services = open_services(settings, catch_up=False)  # as the views stand, not caught up
    try:
        # ``lag``: events some projection has still to apply, counted (up to 100,000); then
        # what GET /v1/admin/projections answers (service/projection_status.py).
        found = services.projection_status.status()
        lag = services.projector.lag()
        print(json.dumps({"backend": settings.backend, "lag": lag, **found.as_json()}))
    finally:
        services.close()
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="convlog", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    p = commands.add_parser("serve", help="run the HTTP API")
    p.add_argument("--host", help="bind address (default CONVLOG_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default CONVLOG_PORT or 8283)")
    p.add_argument(
        "--workers",
        default="1",
        type=_workers,
        help="processes serving the port: a number, or auto (one per CPU); more than one "
        "needs PostgreSQL (docs/workers.md)",
    )
    p.set_defaults(run=serve)
    keys = commands.add_parser("keys", help="API keys (CONVLOG_AUTH=required asks for one)")
    key_actions = keys.add_subparsers(dest="action", required=True)
    c = key_actions.add_parser("create", help="issue a key; it is printed once, keep it safe")
    c.add_argument("--organization", required=True, help="the tenant the key acts for")
    c.add_argument("--name", help="a label to recognise the key by")
    c.set_defaults(run=keys_create)
    key_actions.add_parser("list", help="every key (never the key itself)").set_defaults(
        run=keys_list
    )
    v = key_actions.add_parser("revoke", help="revoke a key by its id (key-…)")
    v.add_argument("id")
    v.set_defaults(run=keys_revoke)
    proj = commands.add_parser("projections", help="read models built from the log")
    sub = proj.add_subparsers(dest="action", required=True)
    r = sub.add_parser("rebuild", help="rebuild from the log while the old view keeps serving")
    r.add_argument("name", nargs="?", help="messages, conversations or agents (default: all)")
    r.set_defaults(run=rebuild)
    s = sub.add_parser(
        "status",
        help="each projection's generation, position, lag behind the log and rebuilds (JSON)",
    )
    s.set_defaults(run=status)
    audit_cli.add_commands(commands)
    export_cli.add_commands(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"convlog: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    from runtime.bootstrap import DatabaseUnreachable

    try:
        result: int = args.run(settings, args)
    except DatabaseUnreachable as exc:
        print(f"convlog: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
