"""Query-string filters whose values are checked before they reach the database."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import models
from django_filters import rest_framework as filters
from rest_framework.exceptions import ValidationError

from api.fields import MAX_ID


class IdFormField(forms.IntegerField):
    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


class IdFilter(filters.NumberFilter):
    field_class = IdFormField


class SafeFilterSet(filters.FilterSet):
    """Foreign keys filter by a bounded integer id instead of a model lookup, so an absurd id
    is a 400 rather than a database range error."""

    FILTER_DEFAULTS = {
        **filters.FilterSet.FILTER_DEFAULTS,
        models.ForeignKey: {"filter_class": IdFilter},
        models.OneToOneField: {"filter_class": IdFilter},
    }


# Query parameters every list takes besides its filters.
PAGING_PARAMS = frozenset({"page", "page_size", "format"})


class FilterBackend(filters.DjangoFilterBackend):
    """A parameter the list does not know is refused: a misspelt filter that is silently
    ignored returns every row, which for a list of cases is a wrong answer, not a slow one."""

    filterset_base = SafeFilterSet

    def filter_queryset(self, request: Any, queryset: Any, view: Any) -> Any:
        if getattr(view, "action", None) != "list":
            # Detail views and actions read their own parameters (e.g. a schedule's date).
            return super().filter_queryset(request, queryset, view)
        filterset_class = self.get_filterset_class(view, queryset)
        known = set(PAGING_PARAMS) | set(getattr(view.paginator, "query_params", ()))
        if filterset_class is not None:
            known |= set(filterset_class.base_filters)
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            raise ValidationError(
                {name: [f"Unknown query parameter; this list takes {', '.join(sorted(known))}."] for name in unknown}
            )
        return super().filter_queryset(request, queryset, view)
