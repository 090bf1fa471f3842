"""A JSON body's values keep their JSON types.

Django REST framework's fields coerce what they are given: ``0`` becomes ``False`` for a
boolean, ``0`` becomes ``"0"`` for a text, ``"7"`` becomes ``7`` for a number. Coercion suits a
query string (where every value is text) but in a JSON body it accepts what the schema calls
invalid, so a client that sends ``"is_active": 0`` by mistake has it quietly read as false.
Installed once (``ApiConfig.ready``), this makes every serializer field of the REST API, and of
the webhook API beside it, refuse a JSON value of the wrong type with a 400 naming the field;
values read from a query string or a form are parsed as before.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.http import QueryDict
from rest_framework import serializers
from rest_framework.settings import api_settings

# Which JSON types each kind of field takes (bool is excluded from the numbers explicitly).
ACCEPTS: dict[type[serializers.Field], tuple[type, ...]] = {
    serializers.BooleanField: (bool,),
    serializers.CharField: (str,),
    serializers.IntegerField: (int,),
    serializers.FloatField: (int, float),
}


def from_json(field: serializers.Field) -> bool:
    """Whether the value being read came from a JSON body (not a query string or a form)."""
    root = field.root
    data = getattr(root, "initial_data", None)
    return data is not None and not isinstance(data, QueryDict)


def wrong_type(field: serializers.Field, value: Any) -> bool:
    if value is None:
        return False
    if isinstance(field, serializers.DecimalField):
        # A decimal is written as text in the schema (e.g. "1.25"), as it is answered.
        as_text = getattr(field, "coerce_to_string", api_settings.COERCE_DECIMAL_TO_STRING)
        return not isinstance(value, str) if as_text else isinstance(value, bool)
    for kind, types in ACCEPTS.items():
        if isinstance(field, kind):
            if isinstance(value, bool) and bool not in types:
                return True
            if kind is serializers.IntegerField and isinstance(value, float) and value.is_integer():
                return False
            return not isinstance(value, types)
    return False


def _strict(original: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def to_internal_value(self: serializers.Field, data: Any) -> Any:
        if from_json(self) and wrong_type(self, data):
            raise serializers.ValidationError(f"Expected {expected(self)}, not {json_type(data)}.", code="wrong_type")
        return original(self, data)

    to_internal_value.strict = True  # type: ignore[attr-defined]
    return to_internal_value


def expected(field: serializers.Field) -> str:
    if isinstance(field, serializers.BooleanField):
        return "true or false"
    if isinstance(field, serializers.DecimalField) and getattr(
        field, "coerce_to_string", api_settings.COERCE_DECIMAL_TO_STRING
    ):
        return 'a decimal written as text, e.g. "1.25"'
    if isinstance(field, serializers.IntegerField):
        return "a whole number"
    if isinstance(field, serializers.FloatField | serializers.DecimalField):
        return "a number"
    return "text"


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def install() -> None:
    for kind in (*ACCEPTS, serializers.DecimalField):
        method = kind.__dict__.get("to_internal_value")
        if method is not None and not getattr(method, "strict", False):
            setattr(kind, "to_internal_value", _strict(method))  # noqa: B010 - on the class, once
