"""Structured logs: one JSON object per line, with the request's id and user id attached to
every record written while the request is served."""

from __future__ import annotations

import contextvars
import json
import logging
import traceback
from datetime import UTC, datetime

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
user_id: contextvars.ContextVar[str] = contextvars.ContextVar("user_id", default="-")

# The only extra fields a line may carry. Others (Django attaches the request object, whose text
# includes the query string, and so possibly an MRN) are left out or reduced.
EXTRAS = ("event", "method", "path", "status", "duration_ms", "user_id", "client", "request_id", "status_code")


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        if not hasattr(record, "user_id"):
            record.user_id = user_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in EXTRAS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value if isinstance(value, str | int | float | bool) else str(value)
        request = getattr(record, "request", None)
        if request is not None and "path" not in entry:
            entry["method"] = str(getattr(request, "method", ""))
            entry["path"] = str(getattr(request, "path", ""))
        if record.exc_info and record.exc_info[0] is not None:
            # The stack and the exception's type, not its message: a database error can quote
            # the row it refused (an MRN in a unique violation).
            kind, _, tb = record.exc_info
            entry["exception"] = kind.__name__
            entry["traceback"] = "".join(traceback.format_tb(tb))
        return json.dumps(entry, ensure_ascii=False)
