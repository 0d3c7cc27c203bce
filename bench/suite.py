"""One backend, end to end: seed, rebuild, then the HTTP measurements on the real server."""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from typing import Any

from bench import (
    audit,
    auth,
    compaction,
    export,
    fork,
    letta_code,
    rebuild,
    retries,
    seed,
    time_travel,
    tool_turns,
)
from bench.backends import Storage, analyze, check_redis, storage
from bench.deployed import Shape, deployed
from bench.fake_model import MODEL as FAKE_MODEL
from bench.fake_model import fake_openai_process
from bench.message_latency import message_latency
from bench.read_your_writes import read_your_writes
from bench.server import running_server
from bench.targets import evaluate
from bench.turn_history import seed_histories, turn_history
from bench.turn_throughput import turn_throughput
from runtime.bootstrap import build
from service.services import Services
from tests.actors import DEFAULT_ACTOR

log = logging.getLogger("bench")


@dataclass(frozen=True)
class Params:
    conversations: int  # seeded conversations…
    messages_each: int  # …of this many messages each (plus a system message)
    long_messages: int  # the long conversation for the page-latency comparison
    rebuild_repeats: int
    chain_appends: int  # single-event appends timed, each with and without the hash chain
    requests: int  # GET …/messages per conversation per repeat
    warmup: int
    repeats: int
    ryw_pairs: int  # POST + GET pairs
    ryw_warmup: int
    turn_concurrency: tuple[int, ...]  # C: concurrent clients, each on its own conversation
    turn_messages: int  # M: timed turns per client
    turn_warmup: int  # untimed turns per client first
    history_lengths: tuple[int, ...]  # messages of history before the compared turns
    history_conversations: int  # per length and model
    history_turns: int  # timed turns per conversation after its first
    compaction_sizes: tuple[int, ...]  # messages in the compacted conversations
    compaction_http: int  # conversations per size compacted over HTTP
    compaction_in_process: int  # conversations per size compacted in-process (the split)
    tool_concurrency: tuple[int, ...]  # two-step tool turns: C clients
    tool_turns: int  # timed two-step turns per client
    tool_history_conversations: int  # per history length
    search_messages: int  # messages of the agent conversation_search looks through
    search_queries: int
    forks: int  # forks of the short and of the long conversation, each
    letta_code_runs: int  # Letta Code one-tool headless tasks, after a warm-up one
    deployed: Shape  # the deployment measurement (PostgreSQL + Redis, 1 and 2 workers)


FULL = Params(
    conversations=1000,
    messages_each=100,
    long_messages=10_000,
    rebuild_repeats=5,
    chain_appends=4000,
    requests=1000,
    warmup=200,
    repeats=3,
    ryw_pairs=1000,
    ryw_warmup=50,
    turn_concurrency=(1, 4, 16),
    turn_messages=100,
    turn_warmup=3,
    history_lengths=(10, 1000),
    history_conversations=10,
    history_turns=5,
    compaction_sizes=(100, 10_000),
    compaction_http=5,
    compaction_in_process=3,
    tool_concurrency=(1, 16),
    tool_turns=50,
    tool_history_conversations=5,
    search_messages=10_000,
    search_queries=500,
    forks=200,
    letta_code_runs=7,
    deployed=Shape(concurrency=(1, 4, 16), turns=10, warmup=2, repeats=3),
)
QUICK = Params(
    conversations=50,
    messages_each=100,
    long_messages=1000,
    rebuild_repeats=1,
    chain_appends=200,
    requests=200,
    warmup=20,
    repeats=1,
    ryw_pairs=100,
    ryw_warmup=10,
    turn_concurrency=(1, 4, 16),
    turn_messages=3,
    turn_warmup=1,
    history_lengths=(10, 1000),
    history_conversations=1,
    history_turns=2,
    compaction_sizes=(100, 1000),
    compaction_http=1,
    compaction_in_process=1,
    tool_concurrency=(1, 16),
    tool_turns=3,
    tool_history_conversations=1,
    search_messages=1000,
    search_queries=50,
    forks=20,
    letta_code_runs=1,
    deployed=Shape(concurrency=(1, 16), turns=2, warmup=1, repeats=1),
)

# The two zero-delay models every turn measurement runs with: the built-in offline model, and
# the fake OpenAI-compatible server (tests.fake_openai) reached through the real adapter.
TURN_MODELS = {"builtin": "convlog/builtin", "fake_openai": f"openai/{FAKE_MODEL}"}


def _seed_and_rebuild(
    services: Services, store: Storage, params: Params, result: dict[str, Any]
) -> dict[str, Any]:
    """Fill the store, time catch-up and rebuilds; returns what the HTTP phase needs."""
    agent_id = seed.create_agent(services)
    log.info("  seeding %d conversations x %d messages", params.conversations, params.messages_each)
    seeded = seed.seed(services, agent_id, params.conversations, params.messages_each)
    started = time.perf_counter()
    caught_up = services.projector.catch_up()
    catch_up_seconds = time.perf_counter() - started
    log_events = services.projector.source.max_position()
    result["seed"] = {
        "conversations": params.conversations,
        "messages_per_conversation": params.messages_each,
        "message_events": seeded.messages,
        "log_events": log_events,
        "seconds": round(seeded.seconds, 3),
        "events_per_second": round(seeded.messages / seeded.seconds),
        "final_catch_up_events": caught_up,
        "final_catch_up_seconds": round(catch_up_seconds, 3),
    }
    log.info(
        "  seeded %d message events in %.1fs (%d in the log)",
        seeded.messages,
        seeded.seconds,
        log_events,
    )
    # Rebuilds run over the seeded log before the long conversation is added.
    if store.backend == "postgres":
        log.info("  rebuild messages before the planner has statistics (once)")
        result["rebuild_without_planner_statistics"] = {
            "messages": rebuild.rebuild_rate(services, "messages", 1)
        }
    result["planner_statistics"] = analyze(store)
    result["rebuild"] = rebuild.rebuild_all(services, params.rebuild_repeats)
    result["audit"] = {
        "verify": audit.verify_rate(services, params.rebuild_repeats),
        "append": audit.append_overhead(services, params.chain_appends),
    }
    result["export"] = {
        "parquet": export.export_rate(services, params.rebuild_repeats, "parquet"),
        "jsonl": export.export_rate(services, params.rebuild_repeats, "jsonl"),
    }

    started = time.perf_counter()
    long_row = services.conversations.create(DEFAULT_ACTOR, agent_id)
    seed.append_messages(services, long_row.id, params.long_messages)
    services.projector.catch_up()
    result["seed"]["long_conversation"] = {
        "messages": params.long_messages + 1,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return {
        "agent_id": agent_id,
        "agent_conversations": params.conversations + 1,
        "short": (seeded.conversation_ids[0], params.messages_each + 1),
        "long": (long_row.conversation_id, params.long_messages + 1),
    }


def _http(server_env: dict[str, str], params: Params, seeded: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    started = time.perf_counter()
    with running_server(server_env) as server:
        out["server"] = {
            "pid": server.pid,
            "startup_seconds": round(time.perf_counter() - started, 3),
            "after_startup": server.memory(),
        }
        listing = message_latency(
            server.base_url,
            {"short": seeded["short"], "long": seeded["long"]},
            requests=params.requests,
            warmup=params.warmup,
            repeats=params.repeats,
        )
        short_p99, long_p99 = listing["short"]["p99_ms"], listing["long"]["p99_ms"]
        listing["p99_ratio_long_to_short"] = round(long_p99 / short_p99, 3) if short_p99 else None
        listing["p50_ratio_long_to_short"] = (
            round(listing["long"]["p50_ms"] / listing["short"]["p50_ms"], 3)
            if listing["short"]["p50_ms"]
            else None
        )
        out["list_messages"] = listing
        long_id, long_messages = seeded["long"]
        out["time_travel"] = time_travel.time_travel_latency(
            server.base_url, long_id, long_messages, params.requests, params.warmup
        )
        out["read_your_writes"] = read_your_writes(
            server.base_url, seeded["agent_id"], params.ryw_pairs, params.ryw_warmup
        )
        out["read_your_writes"]["agent_conversations_at_start"] = seeded["agent_conversations"]
        out["fork"] = fork.fork_latency(
            server.base_url,
            {"short": seeded["short"], "long": seeded["long"]},
            params.forks,
            warmup=5,
        )
        out["retried_send"] = retries.retry_latency(server.base_url, params.forks)
        # VmHWM is the peak resident set over the server's whole life, read just before it stops.
        memory = server.memory()
        out["server"]["peak_rss_mib"] = memory["peak_rss_mib"]
        out["server"]["rss_mib_at_end"] = memory["rss_mib"]
        log.info("  server peak RSS %.1f MiB", memory["peak_rss_mib"] or 0.0)
    return out


def _seed_for_turns(services: Services, params: Params, result: dict[str, Any]) -> dict[str, Any]:
    """After the listing phase: an agent on the built-in model, and the conversations of the
    history comparison and of compaction.
    """
    started = time.perf_counter()
    agent_id = seed.create_agent(services, "bench-turns", TURN_MODELS["builtin"])
    histories = seed_histories(
        services,
        agent_id,
        TURN_MODELS,
        params.history_lengths,
        params.history_conversations,
    )
    log.info("  seeding compaction conversations of %s messages", params.compaction_sizes)
    to_compact = compaction.seed_conversations(
        services,
        agent_id,
        params.compaction_sizes,
        params.compaction_http + params.compaction_in_process,
    )
    warmup = compaction.seed_conversations(services, agent_id, [min(params.compaction_sizes)], 1)
    tool_histories = tool_turns.seed_tool_histories(
        services,
        TURN_MODELS["fake_openai"],
        params.history_lengths,
        params.tool_history_conversations,
    )
    result["seed"]["for_turns_seconds"] = round(time.perf_counter() - started, 3)
    return {
        "tool_histories": tool_histories,
        "agent_id": agent_id,
        "histories": histories,
        "compaction": {size: ids[: params.compaction_http] for size, ids in to_compact.items()},
        "compaction_in_process": {
            size: ids[params.compaction_http :] for size, ids in to_compact.items()
        },
        "compaction_warmup": next(iter(warmup.values()))[0],
    }


def _turns(
    server_env: dict[str, str],
    redis_url: str | None,
    params: Params,
    seeded: dict[str, Any],
    result: dict[str, Any],
) -> None:
    """The turn measurements, on a server of their own: with Redis when ``redis_url`` is
    given, and with the fake OpenAI server in its own process for ``openai/…`` handles.
    """
    with fake_openai_process() as fake:
        env = {**server_env, "OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "bench"}
        if redis_url is not None:
            env["REDIS_URL"] = redis_url
        started = time.perf_counter()
        with running_server(env) as server:
            info: dict[str, Any] = {
                "pid": server.pid,
                "redis": redis_url is not None,
                "startup_seconds": round(time.perf_counter() - started, 3),
                "after_startup": server.memory(),
            }
            result["turn_server"] = info
            result["turns"] = turn_throughput(
                server.base_url,
                seeded["agent_id"],
                TURN_MODELS,
                params.turn_concurrency,
                params.turn_messages,
                params.turn_warmup,
                {"server": server.pid, "model_server": fake.pid},
            )
            result["turn_history"] = turn_history(
                server.base_url, seeded["histories"], params.history_turns
            )
            result["tool_turns"] = tool_turns.tool_turns(
                server.base_url,
                TURN_MODELS["fake_openai"],
                params.tool_concurrency,
                params.tool_turns,
                params.turn_warmup,
                {"server": server.pid, "model_server": fake.pid},
            )
            result["tool_history"] = tool_turns.tool_history(
                server.base_url, seeded["tool_histories"], params.history_turns
            )
            # Peak RSS of the turn workload, before compaction reads 10k-message contexts.
            memory = server.memory()
            info["peak_rss_mib_after_turns"] = memory["peak_rss_mib"]
            log.info("  turn server peak RSS %.1f MiB", memory["peak_rss_mib"] or 0.0)
            over_http = compaction.compaction_over_http(
                server.base_url, seeded["agent_id"], seeded["compaction"]
            )
            result["compaction"]["http"] = over_http
            result["compaction"]["summary"] = compaction.summarize(
                over_http, result["compaction"]["in_process"], params.compaction_sizes
            )
            memory = server.memory()
            info["peak_rss_mib"] = memory["peak_rss_mib"]
            info["rss_mib_at_end"] = memory["rss_mib"]


def run_backend(
    backend: str, params: Params, postgres_url: str, redis_url: str | None = None
) -> dict[str, Any]:
    """Every measurement on one backend; an error is recorded, not raised. The turn
    measurements use Redis on PostgreSQL (``redis_url``), none on SQLite (single node).
    """
    result: dict[str, Any] = {"backend": backend}
    started = time.perf_counter()
    log.info("== %s", backend)
    try:
        with storage(backend, postgres_url) as store:
            result["storage"] = store.details
            services = build(store.settings)
            try:
                seeded = _seed_and_rebuild(services, store, params, result)
            finally:
                services.close()
            result.update(_http(store.server_env, params, seeded))
            services = build(store.settings)
            try:
                result["auth"] = auth.auth_overhead(
                    services, store.server_env, params.requests, params.repeats
                )
            finally:
                services.close()
            services = build(store.settings)
            try:
                for_turns = _seed_for_turns(services, params, result)
            finally:
                services.close()
            # A process that has not seen these conversations yet, as the server will be (the
            # seeding process's cached aggregates would replay every seeded event instead).
            services = build(store.settings)
            try:
                result["compaction"] = {
                    "in_process": compaction.split_in_process(
                        services,
                        for_turns["compaction_in_process"],
                        for_turns["compaction_warmup"],
                    )
                }
                result["conversation_search"] = tool_turns.search_latency(
                    services, params.search_messages, params.search_queries
                )
            finally:
                services.close()
            turn_redis = redis_url if backend == "postgres" else None
            if turn_redis is not None:
                result["redis"] = check_redis(turn_redis)
            _turns(store.server_env, turn_redis, params, for_turns, result)
            result["letta_code"] = letta_code.one_tool_task(
                store.server_env, params.letta_code_runs
            )
            if turn_redis is not None:
                result["deployed"] = deployed(store.server_env, turn_redis, params.deployed)
    except Exception as exc:
        log.error("  %s failed: %s", backend, exc)
        result["error"] = "".join(traceback.format_exception(exc))
    result["seconds"] = round(time.perf_counter() - started, 1)
    targets = evaluate(backend, result)
    result["targets"] = targets
    result["passed"] = "error" not in result and all(t["pass"] for t in targets)
    return result
