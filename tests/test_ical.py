"""iCalendar feeds: a physician's and a room's cases behind a revocable secret link, parsed by
``icalendar``: stable UIDs, SEQUENCE that grows with each change, cancelled cases kept as
CANCELLED, and no patient data in any property."""

from __future__ import annotations

import re

import pytest
from icalendar import Calendar

from core.clients import feed_token_issue, feed_token_revoke
from core.models import AuditEvent
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_cancel, booking_create, booking_reschedule
from tests.api_helpers import persona_users
from tests.conftest import MONDAY, local

pytestmark = pytest.mark.django_db


def book(clinic, hour=9, patient=0, status="scheduled"):
    return booking_create(
        actor=None,
        request=CaseRequest(procedure_type=clinic.vp(), patient=clinic.patients[patient], pins=clinic.resources()),
        starts_at=local(MONDAY, hour),
        status=status,
    )


def events(client, url: str) -> list:
    response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    calendar = Calendar.from_ical(response.content)
    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["METHOD"]) == "PUBLISH"
    found = calendar.walk("VEVENT")
    for event in found:
        assert len(event.property_items()) > 0
        assert "DTSTAMP" in event
    return found


def assert_no_patient_data(body: str, patients) -> None:
    for patient in patients:
        for value in (
            patient.first_name,
            patient.last_name,
            patient.mrn,
            patient.phone,
            patient.date_of_birth.isoformat(),
            patient.date_of_birth.strftime("%Y%m%d"),
        ):
            assert value not in body, value


def test_a_physician_subscribes_to_their_procedures_and_sees_changes(clinic, client):
    users = persona_users(clinic)
    client.force_login(users["physician"])
    made = client.post("/calendar/new/", follow=True)
    urls = re.findall(r"http://[^<\s]+\.ics", made.content.decode())
    mine = next(u for u in urls if "/physician/" in u).replace("http://127.0.0.1:8000", "")
    assert any("/room/" in u for u in urls)
    # Shown once: the next visit does not show the secret again.
    assert not re.findall(r"\.ics", client.get("/calendar/").content.decode())
    case = book(clinic)
    first = events(client, mine)
    assert [str(e["UID"]) for e in first] == [f"case-{case.pk}@127.0.0.1"]
    assert str(first[0]["STATUS"]) == "CONFIRMED"
    assert first[0]["SEQUENCE"] == 0
    assert str(first[0]["SUMMARY"]) == "Procedure – Fluoro 1"
    booking_reschedule(actor=None, booking=case, starts_at=local(MONDAY, 13), pins=clinic.resources())
    moved = events(client, mine)
    assert [str(e["UID"]) for e in moved] == [f"case-{case.pk}@127.0.0.1"]
    assert moved[0]["SEQUENCE"] > first[0]["SEQUENCE"]
    assert moved[0].decoded("DTSTART") > first[0].decoded("DTSTART")
    booking_cancel(actor=None, booking=case, reason="patient_request")
    cancelled = events(client, mine)
    assert str(cancelled[0]["STATUS"]) == "CANCELLED"
    assert cancelled[0]["SEQUENCE"] > moved[0]["SEQUENCE"]
    assert AuditEvent.objects.filter(action="feed.read", actor=users["physician"]).count() == 3


def test_no_patient_name_mrn_birth_date_or_phone_appears_in_any_feed(clinic):
    users = persona_users(clinic)
    book(clinic, hour=9)
    book(clinic, hour=13, patient=1, status="hold")
    token = feed_token_issue(user=users["scheduler"])
    from django.test import Client

    anonymous = Client()
    for url in (
        f"/ical/{token}/physician/{clinic.physicians[0].pk}.ics",
        f"/ical/{token}/room/{clinic.rooms[0].pk}.ics",
    ):
        body = anonymous.get(url).content.decode()
        assert "BEGIN:VEVENT" in body
        assert_no_patient_data(body, clinic.patients[:2])
        assert "Vertebroplasty" not in body
    statuses = [str(e["STATUS"]) for e in events(anonymous, f"/ical/{token}/room/{clinic.rooms[0].pk}.ics")]
    assert statuses == ["CONFIRMED", "TENTATIVE"]


def test_a_revoked_or_rotated_link_stops_at_once_and_others_feeds_stay_closed(clinic):
    from django.test import Client

    users = persona_users(clinic)
    book(clinic)
    anonymous = Client()
    old = feed_token_issue(user=users["physician"])
    mine = f"/physician/{clinic.physicians[0].pk}.ics"
    assert anonymous.get(f"/ical/{old}{mine}").status_code == 200
    assert anonymous.get(f"/ical/{old}/physician/{clinic.physicians[1].pk}.ics").status_code == 404
    new = feed_token_issue(user=users["physician"])
    assert anonymous.get(f"/ical/{old}{mine}").status_code == 404
    assert anonymous.get(f"/ical/{new}{mine}").status_code == 200
    feed_token_revoke(user=users["physician"])
    assert anonymous.get(f"/ical/{new}{mine}").status_code == 404
    assert anonymous.get(f"/ical/not-a-token{mine}").status_code == 404
    assert anonymous.get(f"/ical/{new}/nurse/1.ics").status_code == 404
