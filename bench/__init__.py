"""Benchmarks for convlog: ``python -m bench`` (or ``scripts/bench``) prints one JSON document.

Performance targets live here, never in timed tests. Each module measures one thing:

* ``rebuild``            projection rebuild rate (events/s) over a seeded log;
* ``message_latency``    ``GET /v1/conversations/{id}/messages?limit=50`` against the real server;
* ``read_your_writes``   ``POST /v1/conversations/`` then ``GET …/messages`` of the new one;
* ``turn_throughput``    C concurrent clients x M turns (SSE read to ``[DONE]``): turns/s, turn
                         latency, time to the first event, CPU per turn of every process;
* ``turn_history``       a turn at 10 against 1,000 messages of history;
* ``compaction``         ``POST …/compact`` (mode ``all``) at 100 and 10,000 messages, with the
                         model call timed apart in-process, and the turn right after it;
* ``turn_client``        the async client (one keep-alive connection per simulated client);
* ``fake_model``         the tests' fake OpenAI-compatible server, in its own process;
* ``cpu``                CPU seconds from /proc (a pid, processes by name, the machine);
* ``server``             the server subprocess, and its peak RSS (``VmHWM``).

``suite`` runs them in order on one backend (the turn measurements on a server of their own,
with Redis on PostgreSQL); ``targets`` says what counts as a pass.
"""
