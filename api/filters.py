"""Query-string filters whose values are checked before they reach the database."""

from __future__ import annotations

from django import forms
from django.db import models
from django_filters import rest_framework as filters

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


class FilterBackend(filters.DjangoFilterBackend):
    filterset_base = SafeFilterSet
