"""The fault suite: real servers, real PostgreSQL and Redis, faults injected from outside
(kill -9 of a server, of a Redis of its own, a TCP proxy in front of PostgreSQL stopped and
started, a catch-up killed mid-batch), clients that retry as a careful client would. Each
scenario reports requests never answered, messages lost and duplicated, the longest wait,
and the seconds from the fault's end to the first good turn.

``python -m tests.faults [--quick]`` (``scripts/faults``) prints the figures as JSON; CI runs
the quick form through tests/e2e/test_faults.py.
"""
