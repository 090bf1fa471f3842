"""Reading one row by exact values without the query compiler (``core.sql.fetch_one``), as the
API's id and code fields do, and the flat serializers that bind shallow copies of their fields.

The short path must give what ``queryset.get`` gives: the same instance values (times, JSON,
dates converted as the ORM converts them on each engine), the queryset's own filters honoured,
nothing for a missing row or an empty queryset, and any other queryset asked as usual."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import MultipleObjectsReturned
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api.serializers.bookings import BookingCreateInput
from core.sql import fetch_one, simple_filters
from patients.models import Patient
from scheduling.models import ProcedureType
from staff.models import StaffMember
from tests import factories as f

pytestmark = pytest.mark.django_db


def field_values(obj: Any) -> dict[str, Any]:
    return {field.attname: getattr(obj, field.attname) for field in type(obj)._meta.concrete_fields}


def test_a_plain_table_and_exact_filters_are_simple() -> None:
    assert simple_filters(Patient.objects.all()) == {}
    filters = simple_filters(ProcedureType.objects.filter(is_active=True))
    assert filters is not None
    assert {field.name: value for field, value in filters.items()} == {"is_active": True}
    # Anything else is asked through the ORM.
    assert simple_filters(Patient.objects.none()) is None
    assert simple_filters(Patient.objects.filter(last_name__startswith="A")) is None
    assert simple_filters(Patient.objects.exclude(pk=1)) is None
    assert simple_filters(StaffMember.objects.select_related("user")) is None
    assert simple_filters(Patient.objects.only("pk")) is None


def test_a_row_read_by_id_is_the_row_the_orm_reads() -> None:
    patient = f.PatientFactory()
    expected = field_values(Patient.objects.get(pk=patient.pk))
    with CaptureQueriesContext(connection) as captured:
        found = fetch_one(Patient.objects.all(), "pk", patient.pk)
    assert isinstance(found, Patient)
    assert field_values(found) == expected
    assert found._state.adding is False
    assert found._state.db == "default"
    assert len(captured.captured_queries) == 1


def test_a_code_is_read_with_the_querysets_own_filters() -> None:
    procedure = ProcedureType.objects.get(code="VP")
    expected = field_values(procedure)
    active = ProcedureType.objects.filter(is_active=True)
    found = fetch_one(active, "code", "VP")
    assert found is not None
    assert field_values(found) == expected  # JSON and durations as the ORM gives them
    ProcedureType.objects.filter(pk=procedure.pk).update(is_active=False)
    assert fetch_one(active, "code", "VP") is None
    assert fetch_one(ProcedureType.objects.all(), "code", "VP") is not None
    assert fetch_one(active, "code", "NOPE") is None


def test_an_empty_or_filtered_queryset_is_asked_as_usual() -> None:
    patient = f.PatientFactory(last_name="Zorn")
    assert fetch_one(Patient.objects.none(), "pk", patient.pk) is None
    assert fetch_one(Patient.objects.filter(last_name__startswith="Zo"), "pk", patient.pk) == patient
    assert fetch_one(Patient.objects.filter(last_name__startswith="Xy"), "pk", patient.pk) is None


def test_more_than_one_match_is_an_error_not_a_pick() -> None:
    f.PatientFactory(last_name="Twin")
    f.PatientFactory(last_name="Twin")
    with pytest.raises(MultipleObjectsReturned):
        fetch_one(Patient.objects.all(), "last_name", "Twin")


def test_flat_serializers_do_not_share_bound_fields() -> None:
    patient = f.PatientFactory()
    body = {"patient": patient.pk, "procedure_type": "VP", "start": "2027-01-11T09:00:00-06:00"}
    allowed = BookingCreateInput(data=body, patients=Patient.objects.all())
    refused = BookingCreateInput(data=body, patients=Patient.objects.none())
    assert allowed.fields["patient"] is not refused.fields["patient"]
    assert allowed.is_valid(), allowed.errors
    assert allowed.validated_data["patient"] == patient
    assert not refused.is_valid()
    assert set(refused.errors) == {"patient"}
    # The declared fields are untouched: a third instance starts clean.
    assert BookingCreateInput._declared_fields["patient"].parent is None  # type: ignore[attr-defined]
