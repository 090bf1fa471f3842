"""Lists page by number (``page``, ``page_size``, with a ``count``); the lists that keep other
systems in step (bookings, patients) page by cursor once ``updated_since`` is given."""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from api import sync


class Pagination(PageNumberPagination):
    """``page`` from 1 (past the last page is a 404) and ``page_size`` from 1 to 200; a size out
    of range is a 400, not quietly another size."""

    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request: Request) -> int | None:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (re.fullmatch(r"[0-9]{1,3}", raw) and 1 <= int(raw) <= self.max_page_size):
            raise ValidationError({self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]})
        return super().get_page_size(request)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
            elif parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
        return parameters


class SyncPagination(Pagination):
    """Page numbers, or with ``updated_since`` a walk by cursor over the rows that changed."""

    # Query parameters of its own, besides page and page_size.
    query_params = frozenset({sync.CURSOR})
    walk: sync.Walk | None = None

    def paginate_queryset(self, queryset: QuerySet[Any], request: Request, view: Any = None) -> list[Any] | None:
        if sync.wants_sync(request):
            self.walk = sync.Walk(request, self.get_page_size(request) or self.page_size or 50)
            return self.walk.page(queryset)
        self.walk = None
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data: Any) -> Response:
        if self.walk is None:
            return super().get_paginated_response(data)
        return Response(
            OrderedDict(
                [
                    ("next", self.walk.next_link()),
                    ("next_updated_since", self.walk.next_updated_since()),
                    ("results", data),
                ]
            )
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        by_cursor = {
            "type": "object",
            "required": ["next", "next_updated_since", "results"],
            "properties": {
                "next": {
                    "type": "string",
                    "nullable": True,
                    "format": "uri",
                    "description": "The next page of the walk (its cursor); null on the last page.",
                },
                "next_updated_since": {
                    "type": "string",
                    "nullable": True,
                    "format": "date-time",
                    "description": "On the last page: the updated_since of your next sync (null until then).",
                },
                "results": schema,
            },
        }
        return {"oneOf": [super().get_paginated_response_schema(schema), by_cursor]}

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            *super().get_schema_operation_parameters(view),
            {
                "name": sync.CURSOR,
                "required": False,
                "in": "query",
                "description": "Where a walk over changes goes on: take it from the `next` link, never build it.",
                "schema": {"type": "string", "maxLength": 2000},
            },
        ]
