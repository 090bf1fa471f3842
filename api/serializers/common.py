"""What every input and output serializer of the API shares."""

from __future__ import annotations

import copy
from typing import Any

from django.db import models
from django.db.models import QuerySet
from rest_framework import serializers

from api.fields import AwareDateTimeField, ClinicDateField, IdField
from patients.models import Patient


class ClinicModelSerializer(serializers.ModelSerializer):
    """A model serializer whose dates and times are bounded to the clinic's years, and whose
    times must carry an offset, whatever the model field says."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateField: ClinicDateField,
        models.DateTimeField: AwareDateTimeField,
    }


class FlatFields(serializers.Serializer):
    """A serializer whose fields are all flat (no nested serializer, list or many-relation):
    each instance gets shallow copies of the declared fields to bind, not deep copies rebuilt
    from their arguments (what DRF does for any field), which is most of the cost of reading a
    small request. A nested field would share its child between instances, so it is refused."""

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = {}
        for name, field in self._declared_fields.items():
            if isinstance(field, serializers.BaseSerializer | serializers.ListField | serializers.ManyRelatedField):
                raise TypeError(f"{type(self).__name__}.{name} is nested; FlatFields is for flat serializers.")
            fields[name] = copy.copy(field)
        return fields


class PatientScoped(serializers.Serializer):
    """For a serializer with a ``patient`` id field: only the patients given (those the caller may
    see) are accepted, and any other id is refused with the very words an unknown id gets, so
    the answer does not tell "not yours" from "does not exist". Without ``patients`` none is
    accepted, so a view that forgets to pass them fails closed."""

    def __init__(self, *args: Any, patients: QuerySet[Patient] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["patient"]
        assert isinstance(field, IdField)
        field.queryset = patients if patients is not None else Patient.objects.none()
