"""The procedure day for REST clients: the site's day carries downtime, time off and projected
delays; a booking shows its step times and recovery clock; a step's time is corrected with a
reason; a downtime's impact lists the swaps, one of which the reschedule endpoint applies."""

from __future__ import annotations

import pytest
import time_machine

from core.models import AuditEvent
from rooms.models import Downtime
from scheduling.models import Allocation, Booking
from staff.models import TimeOff
from tests.api_helpers import client_for, persona_users, post
from tests.conftest import MONDAY, local
from tests.test_day_board import in_recovery
from tests.test_late import esi, vp_at_nine

pytestmark = pytest.mark.django_db


def test_the_site_day_names_downtime_time_off_and_projected_delays(clinic):
    users = persona_users(clinic)
    late = vp_at_nine(clinic)
    following = esi(clinic, 10, 20, bay=1, patient=1, room=0, c_arm=0)
    Booking.objects.filter(pk=late.pk).update(status="in_procedure", procedure_started_at=local(MONDAY, 9))
    Downtime.objects.create(
        equipment=clinic.c_arms[1], starts_at=local(MONDAY, 13), ends_at=local(MONDAY, 15), reason="repair"
    )
    TimeOff.objects.create(staff=clinic.techs[1], starts_at=local(MONDAY, 12), ends_at=local(MONDAY, 18))
    with time_machine.travel(local(MONDAY, 10, 25), tick=False):
        answer = client_for(users["tech"]).get(f"/api/v1/sites/{clinic.site.pk}/schedule/?date={MONDAY}")
    assert answer.status_code == 200
    body = answer.json()
    assert [d["resource"] for d in body["downtime"]] == [
        {"kind": "equipment", "id": clinic.c_arms[1].pk, "name": "C-arm 2"}
    ]
    assert body["downtime"][0]["start"] == "2027-01-11T13:00:00-06:00"
    assert [t["staff"]["id"] for t in body["time_off"]] == [clinic.techs[1].pk]
    delays = {d["booking"]: d for d in body["delays"]}
    assert delays[late.pk]["running_late"] is True
    assert (delays[following.pk]["minutes"], delays[following.pk]["because_of"]) == (25, [late.pk])
    assert "patient" not in answer.content.decode()


def test_a_step_time_is_corrected_through_the_api_with_a_reason(clinic):
    users = persona_users(clinic)
    booking = vp_at_nine(clinic)
    in_recovery(booking)
    url = f"/api/v1/bookings/{booking.pk}/correct-time/"
    data = {"step": "recovery_started_at", "at": "2027-01-11T10:05:00-06:00", "reason": "Pressed late"}
    with time_machine.travel(local(MONDAY, 10, 30), tick=False):
        assert post(client_for(users["tech"]), url, data).status_code == 403
        refused = post(client_for(users["nurse"]), url, {**data, "at": "2027-01-11T09:30:00-06:00"})
        assert refused.status_code == 422
        done = post(client_for(users["nurse"]), url, data)
    assert done.status_code == 200
    body = done.json()
    assert body["steps"]["recovery_started"] == "2027-01-11T10:05:00-06:00"
    assert body["recovery"] == {
        "flat_until": "2027-01-11T11:05:00-06:00",
        "discharge_from": "2027-01-11T12:05:00-06:00",
    }
    assert AuditEvent.objects.filter(action="booking.step_time_correct", actor_label="nurse-user").count() == 1


def test_a_downtimes_impact_lists_swaps_and_the_reschedule_endpoint_applies_one(clinic):
    users = persona_users(clinic)
    booking = vp_at_nine(clinic)
    scheduler = client_for(users["scheduler"])
    created = post(
        scheduler,
        "/api/v1/downtime/",
        {
            "equipment": clinic.c_arms[0].pk,
            "starts_at": "2027-01-11T08:00:00-06:00",
            "ends_at": "2027-01-11T12:00:00-06:00",
            "reason": "qa",
        },
    )
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert client_for(users["nurse"]).get(f"/api/v1/downtime/{pk}/impact/").status_code == 403
    impact = scheduler.get(f"/api/v1/downtime/{pk}/impact/")
    assert impact.status_code == 200
    [case] = impact.json()["cases"]
    assert (case["booking"], case["physician"], case["start"]) == (
        booking.pk,
        "Dr. Ana Reyes",
        "2027-01-11T09:00:00-06:00",
    )
    swap = next(s for s in case["swaps"] if s["kind"] == "c_arm")
    assert swap["pins"]["c_arm"] == clinic.c_arms[1].pk
    moved = post(scheduler, f"/api/v1/bookings/{booking.pk}/reschedule/", {"start": swap["start"], **swap["pins"]})
    assert moved.status_code == 200, moved.content
    legs = {leg.role: leg.equipment_id for leg in Allocation.objects.filter(booking=booking, is_active=True)}
    assert legs["c_arm"] == clinic.c_arms[1].pk
    assert scheduler.get(f"/api/v1/downtime/{pk}/impact/").json()["cases"] == []
