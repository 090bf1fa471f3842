"""What every input and output serializer of the API shares."""

from __future__ import annotations

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
