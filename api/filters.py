"""Query-string filters whose values are checked before they reach the database."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import models
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema_field
from rest_framework.exceptions import ErrorDetail, ValidationError

from api.fields import MAX_ID
from core.validators import YearRangeValidator


class IdFormField(forms.IntegerField):
    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(filters.NumberFilter):
    field_class = IdFormField


class ClinicDateFormField(forms.DateField):
    """A date (YYYY-MM-DD only) within the clinic's years."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("input_formats", ["%Y-%m-%d"])
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.validators.append(YearRangeValidator())


class ClinicDateFilter(filters.DateFilter):
    field_class = ClinicDateFormField


class StrictBooleanFormField(forms.Field):
    """``true`` or ``false``, as the schema writes a boolean; anything else is a 400, not a
    filter quietly dropped (which would list every row)."""

    widget = forms.TextInput

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        if value in ("true", "false"):
            return value == "true"
        raise forms.ValidationError("Give true or false.", code="invalid")


@extend_schema_field({"type": "boolean"})
class StrictBooleanFilter(filters.BooleanFilter):
    field_class = StrictBooleanFormField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # django-filter's boolean widget reads an unknown word as "not given"; read it as given.
        kwargs["widget"] = forms.TextInput
        super().__init__(*args, **kwargs)


class SafeFilterSet(filters.FilterSet):
    """Foreign keys filter by a bounded integer id instead of a model lookup, so an absurd id
    is a 400 rather than a database range error. ``ranges`` names pairs of filters that bound
    a range: one given after the other is a 400, not an empty answer."""

    FILTER_DEFAULTS = {
        **filters.FilterSet.FILTER_DEFAULTS,
        models.ForeignKey: {"filter_class": IdFilter},
        models.OneToOneField: {"filter_class": IdFilter},
        models.BooleanField: {"filter_class": StrictBooleanFilter},
    }
    ranges: tuple[tuple[str, str], ...] = ()

    def filter_queryset(self, queryset: Any) -> Any:
        data = self.form.cleaned_data
        for low, high in self.ranges:
            if data.get(low) is not None and data.get(high) is not None and data[low] > data[high]:
                raise ValidationError({high: [ErrorDetail(f"{high} is before {low}.", code="inverted_range")]})
        return super().filter_queryset(queryset)


# Query parameters every list takes besides its filters.
PAGING_PARAMS = frozenset({"page", "page_size", "format"})


def refuse_unknown_parameters(request: Any, known: set[str]) -> None:
    """A query parameter the operation does not take is a 400 naming it: a misspelt one that
    is silently ignored gives a wrong answer, not a slow one."""
    known = known | {"format"}
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known - {"format"})) or "no query parameters"
        raise ValidationError({name: [f"Unknown query parameter; this operation takes {takes}."] for name in unknown})


class FilterBackend(filters.DjangoFilterBackend):
    """A parameter the list does not know is refused: a misspelt filter that is silently
    ignored returns every row, which for a list of cases is a wrong answer, not a slow one."""

    filterset_base = SafeFilterSet

    def filter_queryset(self, request: Any, queryset: Any, view: Any) -> Any:
        action = getattr(view, "action", None)
        if action != "list":
            # Detail views and actions take only the parameters they name (a schedule's date).
            refuse_unknown_parameters(request, set(getattr(view, "action_query_params", {}).get(action, ())))
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
