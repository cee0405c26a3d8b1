"""Log lines: one JSON object per line (or plain text at a terminal), with the request id.

Kept apart from api/observability.py (which needs FastAPI) so that every process — the CLI's
operator commands included — configures logging without importing the web stack.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
from typing import Any

import orjson

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, structured extras."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            doc["request_id"] = request_id
        extra = getattr(record, "pryv", None)
        if isinstance(extra, dict):
            doc.update(extra)
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        try:  # orjson: the access line is written for every request
            return orjson.dumps(doc, default=str).decode()
        except TypeError:  # a non-string key or a huge integer in `extra`: json copes
            return json.dumps(doc, separators=(",", ":"), default=str)


def configure_logging(log_format: str = "json") -> None:
    """JSON lines by default (PRYV_LOG_FORMAT=text for people at a terminal)."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    # httpx logs every request at INFO: one line per upstream call is noise (and measurable
    # CPU on the hot path); the access log says what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("stripe").setLevel(logging.WARNING)  # it logs each request and retry
