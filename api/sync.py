"""Keeping another system in step: ``updated_since`` and keyset (cursor) paging over changes.

A client asks for ``?updated_since=<instant>``; the rows come in the order they last changed,
``(updated_at, id)``, a page at a time, each page's ``next`` link carrying a signed cursor
(the last row's position, not an offset), so no row is skipped while others change under the
walk: a row that changes meanwhile comes again later in the walk, as it now is.

The last page gives ``next_updated_since``: where the next sync starts. It lies
``SYNC_SETTLE_SECONDS`` before the walk began, because a row is stamped when it is written but
seen only when its transaction commits; starting a little earlier sees every change that was
still committing, at the price of a few rows seen twice (the client keeps the newer by ``id``
and ``updated_at``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.core import signing
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_filters import rest_framework as filters
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.request import Request
from rest_framework.utils.urls import remove_query_param, replace_query_param

from core.validators import FIRST_YEAR, LAST_YEAR

SINCE = "updated_since"
CURSOR = "cursor"
_SALT = "api.sync.cursor"


class InstantFormField(forms.CharField):
    """An ISO 8601 instant with its UTC offset; a naive time is refused, not guessed."""

    def to_python(self, value: Any) -> datetime | None:  # type: ignore[override]
        text = super().to_python(value)
        if not text:
            return None
        # An offset's "+" left unescaped in a query string arrives as a space: read it as meant.
        text = re.sub(r"(\d) (\d{2}:?\d{2})$", r"\1+\2", text.strip())
        try:
            parsed = parse_datetime(text)
        except ValueError:
            parsed = None
        if parsed is None:
            raise forms.ValidationError("Use ISO 8601 with a UTC offset, e.g. 2027-01-11T09:00:00-06:00.")
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise forms.ValidationError("Include a UTC offset, e.g. 2027-01-11T09:00:00Z.")
        if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
            raise forms.ValidationError(f"The year must be between {FIRST_YEAR} and {LAST_YEAR}.", code="range")
        return parsed


class UpdatedSinceFilter(filters.Filter):
    """Rows changed at or after the instant, walked in the order they changed."""

    field_class = InstantFormField

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "label",
            "Only rows changed at or after this instant (ISO 8601 with offset); the list is then in the order "
            "rows changed and pages by cursor: follow `next`, then start the next sync from `next_updated_since`.",
        )
        super().__init__(field_name="updated_at", lookup_expr="gte", **kwargs)


@dataclass(frozen=True)
class Position:
    updated_at: datetime
    pk: int
    walk_started: datetime


def encode(position: Position) -> str:
    return signing.dumps(
        [position.updated_at.isoformat(), position.pk, position.walk_started.isoformat()],
        salt=_SALT,
        compress=True,
    )


def decode(raw: str) -> Position:
    try:
        updated, pk, started = signing.loads(raw, salt=_SALT)
        return Position(datetime.fromisoformat(updated), int(pk), datetime.fromisoformat(started))
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise ValidationError(
            {CURSOR: [ErrorDetail("Not a cursor this server gave; follow the `next` link as given.", "invalid_cursor")]}
        ) from exc


def wants_sync(request: Request) -> bool:
    return SINCE in request.query_params or CURSOR in request.query_params


class Walk:
    """One page of a walk over changes: the rows after the cursor, and where it goes next."""

    def __init__(self, request: Request, page_size: int) -> None:
        if "page" in request.query_params:
            raise ValidationError(
                {
                    "page": [
                        ErrorDetail(
                            "With updated_since, pages are followed by cursor (the `next` link).", "cursor_only"
                        )
                    ]
                }
            )
        raw = request.query_params.get(CURSOR)
        self.position = decode(raw) if raw is not None else None
        self.walk_started = self.position.walk_started if self.position else timezone.now()
        self.request = request
        self.page_size = page_size
        self.last: Position | None = None
        self.more = False

    def page(self, queryset: QuerySet[Any]) -> list[Any]:
        ordered = queryset.order_by("updated_at", "pk")
        if self.position is not None:
            at, pk = self.position.updated_at, self.position.pk
            ordered = ordered.filter(Q(updated_at__gt=at) | Q(updated_at=at, pk__gt=pk))
        rows = list(ordered[: self.page_size + 1])
        self.more = len(rows) > self.page_size
        rows = rows[: self.page_size]
        if rows:
            self.last = Position(rows[-1].updated_at, rows[-1].pk, self.walk_started)
        return rows

    def next_link(self) -> str | None:
        if not self.more or self.last is None:
            return None
        return replace_query_param(self.request.build_absolute_uri(), CURSOR, encode(self.last))

    def next_updated_since(self) -> str | None:
        if self.more:
            return None
        settle = timedelta(seconds=settings.SYNC_SETTLE_SECONDS)
        return (self.walk_started - settle).isoformat()


def first_page_link(request: Request) -> str:
    return remove_query_param(request.build_absolute_uri(), CURSOR)
