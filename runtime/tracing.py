"""Tracing, when asked for: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``…_TRACES_ENDPOINT``, or
``OTEL_TRACES_EXPORTER=otlp``) set and the ``tracing`` extra installed. Spans go over OTLP/HTTP
to that collector, batched; every other ``OTEL_*`` setting (service name, headers, sampling,
batch delays) is read by the SDK itself."""

from __future__ import annotations

import logging
import os

log = logging.getLogger("convlog")
ASKED_BY = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_TRACES_EXPORTER",
)


def configure() -> bool:
    """Install the exporter if tracing is asked for; whether it now exports."""
    if not any(os.environ.get(name) for name in ASKED_BY):
        return False
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp") == "none":
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "OTEL_* settings ask for traces, but the tracing extra is not installed "
            "(pip install 'convlog[tracing]'): no spans are exported"
        )
        return False
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "convlog")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    log.info("exporting traces over OTLP/HTTP")
    return True


def shutdown() -> None:
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    stop = getattr(provider, "shutdown", None)
    if stop is not None:
        stop()
