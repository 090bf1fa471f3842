"""One error shape for every response: RFC 9457 problem details.

``{"type", "title", "status", "detail", "code"}`` plus ``errors`` (field or rule problems)
and, for booking conflicts, ``conflicts`` and ``alternatives``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, OperationalError
from django.db.models import ProtectedError
from django.http import Http404
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core import metrics
from core.errors import (
    BookingInvalid,
    InvalidTransition,
    NotPermitted,
    OverrideNotPermitted,
    ReadinessNotMet,
    SchedulingError,
    SlotUnavailable,
    UnknownReference,
)

logger = logging.getLogger(__name__)
PROBLEM_CONTENT_TYPE = "application/problem+json"

TITLES = {
    400: "Invalid request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    415: "Unsupported media type",
    422: "Unprocessable request",
    429: "Too many requests",
    500: "Server error",
    503: "Service unavailable",
}


def problem(
    status: int, code: str, detail: str, *, errors: Any = None, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    body: dict[str, Any] = {
        "type": f"/api/problems/{code}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(body, status=status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def _detail_text(detail: Any) -> str:
    if isinstance(detail, list | tuple) and detail:
        return _detail_text(detail[0])
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        text = _detail_text(value)
        return text if key == "non_field_errors" else f"{key}: {text}"
    return str(detail)


def scheduling_problem(exc: SchedulingError) -> Response:
    if isinstance(exc, UnknownReference):
        # The words DRF gives any unknown id, so the answer is the same whoever looked it up.
        errors = {name: [f'Invalid pk "{value}" - object does not exist.'] for name, value in exc.ids.items()}
        return problem(400, "invalid", _detail_text(errors), errors=errors)
    if isinstance(exc, NotPermitted):
        return problem(403, exc.code, exc.message)
    if isinstance(exc, BookingInvalid):
        return problem(422, exc.code, exc.message, errors=[p.as_dict() for p in exc.problems])
    if isinstance(exc, SlotUnavailable):
        metrics.booking_conflicts.inc()
        return problem(
            409, exc.code, exc.message, conflicts=exc.conflicts, alternatives=getattr(exc, "alternatives", None)
        )
    if isinstance(exc, InvalidTransition):
        return problem(409, exc.code, exc.message, errors=exc.details or None)
    if isinstance(exc, ReadinessNotMet):
        return problem(409, exc.code, exc.message, errors=exc.items)
    if isinstance(exc, OverrideNotPermitted):
        return problem(403, exc.code, exc.message, errors=exc.details or None)
    return problem(409, exc.code, exc.message, errors=exc.details or None)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, SchedulingError):
        return scheduling_problem(exc)
    if isinstance(exc, DjangoValidationError):
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return problem(400, "invalid", _detail_text(errors), errors=errors)
    if isinstance(exc, ProtectedError):
        return problem(409, "in_use", "It is still referred to by other records, so it cannot be deleted.")
    if isinstance(exc, DataError):
        # A value the database cannot hold (out of range, NUL byte) that slipped past validation.
        return problem(400, "invalid", "A value in the request is out of range or malformed.")
    if isinstance(exc, IntegrityError):
        return problem(409, "conflict", "The change conflicts with data already stored.")
    if isinstance(exc, OperationalError | InterfaceError):
        logger.warning("database unavailable: %s", type(exc).__name__)
        return problem(
            503, "unavailable", "The database is not answering; try again shortly.", headers={"Retry-After": "5"}
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        if isinstance(exc, DatabaseError):
            logger.exception("database error")
            return problem(
                503, "unavailable", "The database refused the request; try again shortly.", headers={"Retry-After": "5"}
            )
        return None
    status = response.status_code
    headers = {k: v for k, v in response.headers.items() if k in ("Retry-After", "WWW-Authenticate", "Allow")}
    if isinstance(exc, exceptions.ValidationError):
        return problem(400, "invalid", _detail_text(exc.detail), errors=exc.detail, headers=headers)
    if isinstance(exc, exceptions.ParseError):
        return problem(400, "malformed", str(exc.detail), headers=headers)
    code = getattr(exc, "default_code", "error")
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    return problem(status, str(code), _detail_text(detail), headers=headers)


class ProblemSerializer(serializers.Serializer):
    """The error body (RFC 9457)."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField()
    conflicts = serializers.JSONField(required=False)
    alternatives = serializers.JSONField(required=False)


# "errors" would shadow Serializer.errors as an attribute, so the field is added by name.
ProblemSerializer._declared_fields["errors"] = serializers.JSONField(required=False)
