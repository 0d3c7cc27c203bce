"""Spans (OpenTelemetry): one per request, turn, step, model call and log transaction, with
the run and conversation ids as attributes. Only the API is imported here: without the SDK
(the ``tracing`` extra) and its ``OTEL_*`` settings every span is a no-op that costs next to
nothing; ``runtime/tracing.py`` installs the exporter when they are there.
"""

from __future__ import annotations

from opentelemetry import trace

tracer = trace.get_tracer("convlog")


def request_span(method: str) -> trace.Span:
    """A server span for one HTTP request (named with its route once it is known)."""
    return tracer.start_span(method, kind=trace.SpanKind.SERVER)


def name_request(span: trace.Span, method: str, route: str, status: int, request_id: str) -> None:
    span.update_name(f"{method} {route}")
    span.set_attributes(
        {
            "http.request.method": method,
            "http.route": route,
            "http.response.status_code": status,
            "convlog.request_id": request_id,
        }
    )


use_span = trace.use_span
