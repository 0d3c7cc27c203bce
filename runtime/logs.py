"""Logging: the text format, or one JSON object per line (``CONVLOG_LOG_FORMAT=json``), each
line carrying the request id, run id, conversation id and organization it is about."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from service import log_context

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class WithContext(logging.Filter):
    """Puts the fields of ``service/log_context.py`` on each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.context = log_context.current()
        return True


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "context", {}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(level: str, fmt: str) -> None:
    root = logging.getLogger()
    root.setLevel(level.upper())
    if root.handlers:  # configured already (as logging.basicConfig, which this replaces)
        return
    handler = logging.StreamHandler()
    handler.addFilter(WithContext())
    handler.setFormatter(JsonLines() if fmt == "json" else logging.Formatter(TEXT))
    root.addHandler(handler)
