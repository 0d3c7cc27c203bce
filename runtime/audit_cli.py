"""``convlog audit verify|head``: check the log's hash chain; print the head to keep."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any
from uuid import UUID

from runtime.settings import Settings


def _expected(value: str) -> tuple[int, bytes]:
    """``POSITION:HASH``, as ``convlog audit head`` prints them."""
    position, _, digest = value.partition(":")
    try:
        found = (int(position), bytes.fromhex(digest))
    except ValueError:
        raise argparse.ArgumentTypeError("expected POSITION:HASH, e.g. 1234:9f86d0…") from None
    if found[0] < 1 or len(found[1]) != 32:
        raise argparse.ArgumentTypeError("expected a position ≥ 1 and a 64-digit hex hash")
    return found


def _stream(conversation: str) -> UUID | None:
    from domain import ids

    if not ids.is_valid(ids.CONVERSATION, conversation):
        return None
    return ids.to_uuid(conversation)


def verify(settings: Settings, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from runtime.bootstrap import open_services
    from service.audit import Report, verify_log, verify_stream

    services = open_services(settings, catch_up=False)
    try:
        chain = services.ctx.log.chain
        started = time.perf_counter()
        if args.conversation:
            stream = _stream(args.conversation)
            if stream is None or not services.ctx.log.history(stream, 0, 1):
                print(f"convlog: no conversation {args.conversation!r} in the log", file=sys.stderr)
                return 2
            report: Report = verify_stream(chain, stream)
        else:
            end = chain.end()
            if args.start > max(end, 1):
                print(
                    f"convlog: --from {args.start} is past the log's end ({end})", file=sys.stderr
                )
                return 2
            with tqdm(total=end, initial=args.start - 1, desc="verify", unit="pos") as bar:

                def advance(done: int, total: int) -> None:
                    bar.total = total
                    bar.update(done - bar.n)

                report = verify_log(chain, args.start, advance, args.expect)
        seconds = time.perf_counter() - started
    finally:
        services.close()
    _print(report, seconds)
    return 0 if report.intact else 1


def _print(report: Any, seconds: float) -> None:
    summary: dict[str, Any] = {
        "intact": report.intact,
        "checked": report.checked,
        "position": report.last_position,
        "head": report.head,
        "seconds": round(seconds, 3),
        "events_per_second": round(report.checked / seconds) if seconds > 0 else None,
    }
    if report.problem is not None:
        summary["bad_position"] = report.problem.position
        summary["problem"] = report.problem.what
        print(
            f"convlog: NOT INTACT at position {report.problem.position}: {report.problem.what}",
            file=sys.stderr,
        )
    print(json.dumps(summary))


def head(settings: Settings, args: argparse.Namespace) -> int:
    from runtime.bootstrap import open_services

    services = open_services(settings, catch_up=False)
    try:
        position, digest = services.ctx.log.chain.head()
    finally:
        services.close()
    print(
        json.dumps(
            {"position": position, "head": digest.hex(), "expect": f"{position}:{digest.hex()}"}
        )
    )
    return 0


def add_commands(commands: Any) -> None:
    audit = commands.add_parser("audit", help="check that the log was not altered (hash chain)")
    actions = audit.add_subparsers(dest="action", required=True)
    v = actions.add_parser(
        "verify", help="recompute the chain; exit 1 naming the first bad position"
    )
    v.add_argument("--conversation", help="only this conversation's events (conv-…)")
    v.add_argument("--from", dest="start", type=int, default=1, help="start at this log position")
    v.add_argument(
        "--expect",
        type=_expected,
        help="POSITION:HASH from an earlier `convlog audit head`: the log up to there must "
        "be unchanged",
    )
    v.set_defaults(run=verify)
    actions.add_parser(
        "head", help="the log's last position and head hash, to keep elsewhere"
    ).set_defaults(run=head)
