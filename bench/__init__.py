"""Benchmarks for convlog: ``python -m bench`` (or ``scripts/bench``) prints one JSON document.

Performance targets live here, never in timed tests. Each module measures one thing:

* ``rebuild``            projection rebuild rate (events/s) over a seeded log;
* ``message_latency``    ``GET /v1/conversations/{id}/messages?limit=50`` against the real server;
* ``read_your_writes``   ``POST /v1/conversations/`` then ``GET …/messages`` of the new one;
* ``server``             the server subprocess, and its peak RSS (``VmHWM``).

``suite`` runs them in order on one backend; ``targets`` says what counts as a pass.
"""
