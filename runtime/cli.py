"""``convlog``: serve the API, rebuild projections."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace

from runtime.settings import Settings, SettingsError


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    settings = replace(settings, host=args.host or settings.host, port=args.port or settings.port)
    # Validate and open the stores before binding, so a bad setting fails loudly and early.
    from runtime.asgi import create

    app = create(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
    )
    return 0


def rebuild(settings: Settings, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from runtime.bootstrap import build

    services = build(settings)
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
            with tqdm(total=total, desc=f"rebuild {name}", unit="ev", unit_scale=True) as bar:
                result = projector.rebuild(name, progress=bar.update)
                bar.total = bar.n
            print(
                json.dumps(
                    {
                        "projection": name,
                        "generation": result.generation,
                        "events": result.events,
                        "seconds": round(result.seconds, 3),
                        "events_per_second": round(result.rate),
                    }
                )
            )
    finally:
        services.close()
    return 0


def status(settings: Settings, args: argparse.Namespace) -> int:
    from runtime.bootstrap import build

    services = build(settings)
    try:
        print(json.dumps({"backend": settings.backend, "lag": services.projector.lag()}))
    finally:
        services.close()
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="convlog", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    p = commands.add_parser("serve", help="run the HTTP API")
    p.add_argument("--host", help="bind address (default CONVLOG_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default CONVLOG_PORT or 8283)")
    p.set_defaults(run=serve)
    proj = commands.add_parser("projections", help="read models built from the log")
    sub = proj.add_subparsers(dest="action", required=True)
    r = sub.add_parser("rebuild", help="rebuild from the log while the old view keeps serving")
    r.add_argument("name", nargs="?", help="messages, conversations or agents (default: all)")
    r.set_defaults(run=rebuild)
    s = sub.add_parser("status", help="how far the views are behind the log")
    s.set_defaults(run=status)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"convlog: {exc}", file=sys.stderr)
        return 2
    _logging(settings.log_level)
    result: int = args.run(settings, args)
    return result


if __name__ == "__main__":
    sys.exit(main())
