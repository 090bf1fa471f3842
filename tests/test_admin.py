"""The admin is for configuration: every write is audited, times are shown and taken in the
site's zone with the zone named, and operational records are read-only or saved through the
same services as the API."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib import admin

from core.admin import AuditedAdmin
from core.models import AuditEvent
from outbox.models import Alert, Notification
from patients.models import LabResult, MedicationHold
from rooms.models import Downtime
from scheduling.models import Booking
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_create
from tests import factories as f
from tests.conftest import MONDAY, local
from tests.factories import drug


@pytest.fixture
def root(clinic, client):
    user = f.UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def book(clinic, hour=9):
    return booking_create(
        actor=None,
        request=CaseRequest(procedure_type=clinic.vp(), patient=clinic.patients[0], pins=clinic.resources()),
        starts_at=local(MONDAY, hour),
    )


def downtime_form(target_field: str, target_id: int, day: dt.date, starts: str, ends: str) -> dict[str, str]:
    return {
        target_field: str(target_id),
        "starts_at_0": day.isoformat(),
        "starts_at_1": starts,
        "ends_at_0": day.isoformat(),
        "ends_at_1": ends,
        "reason": "qa",
        "note": "",
    }


def test_every_model_the_admin_shows_is_audited_and_zoned():
    plain = [
        model.__name__
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, AuditedAdmin)
    ]
    assert plain == []


def test_downtime_entered_at_1300_local_is_stored_at_1300_local_and_flags_the_cases_it_hits(clinic, client, root):
    booking = book(clinic)  # C-arm 1 from 09:00 to 10:20
    response = client.post(
        "/admin/rooms/downtime/add/", downtime_form("equipment", clinic.c_arms[0].pk, MONDAY, "09:30", "13:00")
    )

    assert response.status_code == 302, response.content.decode()[-2000:]
    downtime = Downtime.objects.get()
    # January in Chicago is UTC-6: 09:30 and 13:00 local are 15:30 and 19:00 UTC.
    assert downtime.starts_at == local(MONDAY, 9, 30)
    assert downtime.ends_at == local(MONDAY, 13)
    assert downtime.ends_at.astimezone(dt.UTC).hour == 19
    # The same alert and notice as the API's downtime endpoint raises.
    alert = Alert.objects.get()
    assert (alert.kind, alert.booking_id) == ("downtime_impact", booking.pk)
    assert "09:30–13:00" in alert.message
    assert Notification.objects.filter(kind="downtime_impact", booking=booking, subject_id=downtime.pk).count() == 1
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"downtime.create", "admin.downtime.add"} <= actions


def test_downtime_at_a_site_in_another_zone_is_read_in_that_site_s_time(clinic, client, root):
    east = f.SiteFactory(name="East", code="east", timezone="America/New_York")
    room = f.RoomFactory(site=east, name="East 1")
    response = client.post("/admin/rooms/downtime/add/", downtime_form("room", room.pk, MONDAY, "13:00", "15:00"))
    assert response.status_code == 302, response.content.decode()[-2000:]
    downtime = Downtime.objects.get()
    assert downtime.starts_at == dt.datetime(2027, 1, 11, 13, tzinfo=east.zone)
    assert downtime.starts_at.astimezone(dt.UTC).hour == 18


def test_downtime_changed_in_the_admin_goes_through_the_service_and_flags_new_cases(clinic, client, root):
    booking = book(clinic, hour=14)  # C-arm 1 from 14:00
    downtime = Downtime.objects.create(
        equipment=clinic.c_arms[0], starts_at=local(MONDAY, 7), ends_at=local(MONDAY, 8), reason="qa"
    )
    response = client.post(
        f"/admin/rooms/downtime/{downtime.pk}/change/",
        downtime_form("equipment", clinic.c_arms[0].pk, MONDAY, "07:00", "15:00"),
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    downtime.refresh_from_db()
    assert downtime.ends_at == local(MONDAY, 15)
    assert Alert.objects.get().booking_id == booking.pk
    assert AuditEvent.objects.filter(action="downtime.update").count() == 1


def test_the_admin_shows_times_in_the_site_s_zone_and_names_it(clinic, client, root):
    booking = book(clinic)
    listed = client.get("/admin/scheduling/booking/").content.decode()
    assert "2027-01-11 09:00 CST" in listed
    assert "Times in America/Chicago" in listed
    page = client.get(f"/admin/scheduling/booking/{booking.pk}/change/").content.decode()
    assert "times in America/Chicago" in page
    assert "9 a.m." in page  # the room start, read in Chicago (15:00 UTC)
    # The page's own title names the start in the site's zone too, not in UTC.
    assert f"Booking {booking.pk} VP 2027-01-11 09:00 CST" in page
    assert "15:00Z" not in page
    # The case comes first, then its day.
    assert page.index("field-patient") < page.index("field-starts_at") < page.index("field-checked_in_at")
    form = client.get("/admin/rooms/downtime/add/").content.decode()
    assert "Local time, America/Chicago." in form


def test_an_admin_write_of_configuration_leaves_an_audit_record(clinic, client, root):
    room = clinic.rooms[1]
    response = client.post(
        f"/admin/rooms/procedureroom/{room.pk}/change/",
        {
            "site": clinic.site.pk,
            "name": "Fluoro Two",
            "capabilities": '["fluoroscopy", "sterile_field"]',
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    event = AuditEvent.objects.get(action="admin.procedureroom.change")
    assert (event.actor, event.object_id) == (root, str(room.pk))
    assert "name" in event.details["fields"]

    deleted = client.post(f"/admin/staff/staffmember/{clinic.rep.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert AuditEvent.objects.filter(action="admin.staffmember.delete", object_id=str(clinic.rep.pk)).exists()


def test_an_account_change_is_audited(clinic, client, root):
    user = f.UserFactory(username="newcomer")
    response = client.post(
        f"/admin/auth/user/{user.pk}/password/",
        {"password1": "A-long-new-passphrase-1", "password2": "A-long-new-passphrase-1"},
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert AuditEvent.objects.filter(action="admin.user.change", object_id=str(user.pk)).exists()


def test_bookings_and_their_legs_cannot_be_written_in_the_admin(clinic, client, root):
    booking = book(clinic)
    assert client.get("/admin/scheduling/booking/add/").status_code == 403
    before = Booking.objects.values().get(pk=booking.pk)
    changed = client.post(f"/admin/scheduling/booking/{booking.pk}/change/", {"status": "cancelled", "levels": 3})
    assert changed.status_code == 403
    assert client.post(f"/admin/scheduling/booking/{booking.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Booking.objects.values().get(pk=booking.pk) == before


def test_clinical_records_are_shown_with_the_patient_but_written_only_through_the_api(clinic, client, root):
    patient = clinic.patients[0]
    MedicationHold.objects.create(patient=patient, drug=drug("warfarin"), last_dose_on=dt.date(2027, 1, 3))
    page = client.get(f"/admin/patients/patient/{patient.pk}/change/").content.decode()
    assert "Warfarin" in page
    form = {
        "mrn": patient.mrn,
        "first_name": patient.first_name,
        "last_name": patient.last_name,
        "date_of_birth": "1948-05-17",
        "sex": "female",
        "pregnancy_possible": "auto",
        "medication_holds-TOTAL_FORMS": "2",
        "medication_holds-INITIAL_FORMS": "1",
        "medication_holds-0-id": str(MedicationHold.objects.get().pk),
        "medication_holds-0-last_dose_on": "2027-01-10",
        "medication_holds-1-drug": str(drug("clopidogrel").pk),
        "lab_results-TOTAL_FORMS": "1",
        "lab_results-INITIAL_FORMS": "0",
        "lab_results-0-test": "inr",
        "lab_results-0-value": "1.0",
        "imaging_studies-TOTAL_FORMS": "0",
        "imaging_studies-INITIAL_FORMS": "0",
    }
    client.post(f"/admin/patients/patient/{patient.pk}/change/", form)
    assert list(MedicationHold.objects.values_list("drug__code", "last_dose_on")) == [("warfarin", dt.date(2027, 1, 3))]
    assert not LabResult.objects.exists()
    assert client.get("/admin/patients/labresult/").status_code == 404
    assert client.get("/admin/procedure_day/casechecklist/").status_code == 404
