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
from rest_framework.exceptions import ErrorDetail
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from api.problems import problem_type
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
    status: int,
    code: str,
    detail: str,
    *,
    errors: Any = None,
    context: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """The one error body. ``errors`` is always a list of ``{field, code, message}`` items (an
    item may add ``extra``); given none, the problem itself is its one item, carrying
    ``context`` (the problem's data, e.g. the cases a plan found changed) as its ``extra``."""
    body = problem_body(status, code, detail, errors=errors, context=context)
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(body, status=status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def problem_body(
    status: int, code: str, detail: str, *, errors: Any = None, context: dict[str, Any] | None = None
) -> dict[str, Any]:
    items = error_items(errors) if errors else []
    if not items:
        item: dict[str, Any] = {"field": None, "code": code, "message": detail}
        if context:
            item["extra"] = context
        items = [item]
    return {
        "type": problem_type(code, status),
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        "errors": items,
    }


def error_items(errors: Any, field: str | None = None) -> list[dict[str, Any]]:
    """Field errors as Django REST framework nests them (a dict of lists, nested serializers
    as dicts, list items by index), or rule problems as dicts, flattened to one list of
    ``{field, code, message}``; a nested field is named by its path (``order.levels``,
    ``waiting_list.1.patient``), a problem of the whole request has the field null."""
    items: list[dict[str, Any]] = []
    if isinstance(errors, dict):
        if "code" in errors and "message" in errors:
            return [_problem_item(errors, field)]
        for key, value in errors.items():
            name = None if key in ("non_field_errors", "__all__") else str(key)
            path = ".".join(part for part in (field, name) if part) or None
            items += error_items(value, path)
    elif isinstance(errors, list | tuple):
        for index, value in enumerate(errors):
            if isinstance(value, dict) and not ("code" in value and "message" in value):
                items += error_items(value, ".".join(part for part in (field, str(index)) if part))
            else:
                items += error_items(value, field)
    elif errors is not None and str(errors) != "":
        code = getattr(errors, "code", None) or "invalid"
        items.append({"field": field, "code": str(code), "message": str(errors)})
    return items


def _problem_item(problem_dict: dict[str, Any], field: str | None) -> dict[str, Any]:
    item = {
        "field": problem_dict.get("field") or field,
        "code": str(problem_dict["code"]),
        "message": str(problem_dict["message"]),
    }
    extra = {k: v for k, v in problem_dict.items() if k not in ("field", "code", "message", "extra")}
    extra.update(problem_dict.get("extra") or {})
    if extra:
        item["extra"] = extra
    return item


# A request the schema allows may still refer to what does not exist (422) or repeat what
# must be unique (409); only a request the schema forbids is a 400.
# A field error whose code is here is a rule a schema cannot state (a year the clinic does
# not schedule, a cursor this server did not give): a 422 of that kind, not a 400.
UNPROCESSABLE_CODES = {
    "does_not_exist": "unknown_reference",
    "range": "out_of_range",
    "year_out_of_range": "out_of_range",
    "invalid_cursor": "invalid_cursor",
    "cursor_only": "invalid_cursor",
    "rule": "rule_violated",
}
UNIQUE_CODES = frozenset({"unique"})


def django_errors(exc: DjangoValidationError) -> dict[str, list[ErrorDetail]]:
    """A model's validation errors with their codes kept. One without a code comes from the
    model's own checks across its fields (``clean``, a constraint): a rule, not the schema."""
    by_field = exc.error_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.error_list}
    return {
        field: [ErrorDetail(message, code=error.code or "rule") for error in errors for message in error.messages]
        for field, errors in by_field.items()
    }


def validation_problem(detail: Any, headers: dict[str, str] | None = None) -> Response:
    items = error_items(detail)
    codes = [item["code"] for item in items]
    text = _detail_text(detail)
    if codes and set(codes) <= UNIQUE_CODES:
        return problem(409, "not_unique", text, errors=items, headers=headers)
    if codes and set(codes) <= set(UNPROCESSABLE_CODES) | UNIQUE_CODES:
        first = next(code for code in codes if code in UNPROCESSABLE_CODES)
        return problem(422, UNPROCESSABLE_CODES[first], text, errors=items, headers=headers)
    return problem(400, "invalid", text, errors=items, headers=headers)


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
        errors = {
            name: [ErrorDetail(f'Invalid pk "{value}" - object does not exist.', code="does_not_exist")]
            for name, value in exc.ids.items()
        }
        return validation_problem(errors)
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
        return problem(409, exc.code, exc.message, context=exc.details)
    if isinstance(exc, ReadinessNotMet):
        return problem(409, exc.code, exc.message, errors=[_readiness_item(item) for item in exc.items])
    if isinstance(exc, OverrideNotPermitted):
        return problem(403, exc.code, exc.message, context=exc.details)
    return problem(409, exc.code, exc.message, context=exc.details)


def _readiness_item(item: dict[str, Any]) -> dict[str, Any]:
    label, detail = item.get("label") or item["code"], item.get("detail")
    return {**item, "message": f"{label}: {detail}" if detail else label}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, SchedulingError):
        return scheduling_problem(exc)
    if isinstance(exc, DjangoValidationError):
        return validation_problem(django_errors(exc))
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
        return validation_problem(exc.detail, headers=headers)
    if isinstance(exc, exceptions.ParseError):
        return problem(400, "malformed", str(exc.detail), headers=headers)
    code = getattr(exc, "default_code", "error")
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    return problem(status, str(code), _detail_text(detail), headers=headers)


class ErrorItemSerializer(serializers.Serializer):
    field = serializers.CharField(
        allow_null=True, help_text="The request field at fault, by path (`order.levels`); null for the whole request."
    )
    code = serializers.CharField(help_text="A stable machine-readable code, e.g. `required`, `levels_out_of_range`.")
    message = serializers.CharField(help_text="Words for a person.")
    extra = serializers.DictField(required=False, help_text="Data of the problem, e.g. the earliest date allowed.")


class ProblemSerializer(serializers.Serializer):
    """The error body (RFC 9457 problem details) every error of the API answers."""

    type = serializers.CharField(help_text="A URI of a page describing this kind of problem.")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField()
    conflicts = serializers.ListField(child=serializers.DictField(), required=False)
    alternatives = serializers.ListField(child=serializers.DictField(), required=False)


# "errors" would shadow Serializer.errors as an attribute, so the field is added by name.
ProblemSerializer._declared_fields["errors"] = ErrorItemSerializer(many=True)
