"""JSON bodies that are checked for depth, so a hostile body is a 400 and never a crash."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


def _too_deep(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


class SafeJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding) if stream is not None else ""
        except (LookupError, UnicodeError, ValueError, TypeError) as exc:
            # An unknown charset, or a codec that is not a text encoding (e.g. "hex", "zlib").
            raise ParseError("The body is not valid JSON text in the charset it names (use UTF-8).") from exc
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError as exc:
            raise ParseError(f"The JSON is nested too deeply (at most {MAX_DEPTH} levels).") from exc
        except ValueError as exc:
            raise ParseError(f"The body is not valid JSON: {exc}") from exc
        if _too_deep(data, MAX_DEPTH):
            raise ParseError(f"The JSON is nested too deeply (at most {MAX_DEPTH} levels).")
        return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")
