"""The day planner over REST: asked for (202 with Location), solved by a worker with progress,
read by its owner, applied; the roles, the key scopes, bad input and expiry."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from planner.models import PlanRun
from planner.services import plans_run_queued
from scheduling.models import Booking
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_create
from tests.api_helpers import client_for, persona_users, post, problem_extra
from tests.conftest import MONDAY, NOW, local

pytestmark = pytest.mark.django_db


def book(clinic, hour, patient, **pins):
    return booking_create(
        actor=None,
        request=CaseRequest(
            procedure_type=clinic.vp(), patient=clinic.patients[patient], pins=clinic.resources(**pins)
        ),
        starts_at=local(MONDAY, hour),
    )


FIRST = "the clinic's first patient"  # ids differ between databases; filled in by ask()


def ask(client, clinic, **extra):
    body = copy.deepcopy({"site": clinic.site.pk, "date": MONDAY.isoformat(), "budget_seconds": 2, **extra})
    for item in body.get("waiting_list", []):
        if item.get("patient") == FIRST:
            item["patient"] = clinic.patients[0].pk
    return post(client, "/api/v1/plans/", body)


def test_a_scheduler_plans_reads_the_progress_and_applies(clinic):
    users = persona_users(clinic)
    scheduler = client_for(users["scheduler"])
    book(clinic, 8, 0)
    second = book(clinic, 10, 1, recovery_bay=clinic.bays[1])
    asked = ask(
        scheduler,
        clinic,
        waiting_list=[{"patient": clinic.patients[5].pk, "procedure_type": "VP", "priority": 2}],
    )
    assert asked.status_code == 202, asked.content
    body = asked.json()
    assert body["status"] == "queued"
    assert asked["Location"].endswith(f"/api/v1/plans/{body['id']}/")
    assert body["params"]["waiting_list"][0]["patient"] == clinic.patients[5].pk
    assert plans_run_queued() == 1
    done = scheduler.get(f"/api/v1/plans/{body['id']}/").json()
    assert (done["status"], done["progress"]) == ("done", 100)
    result = done["result"]
    assert set(result["figures"]) == {"plan", "first_come_first_served", "as_booked"}
    for figures in result["figures"].values():
        assert {"fitted", "day_end", "peak_bays", "moves"} <= set(figures)
    assert result["bound"]["gap"] is not None
    assert [row["waiting"] for row in result["cases"] if row["waiting"]] == [1]
    applied = post(scheduler, f"/api/v1/plans/{body['id']}/apply/", {})
    assert applied.status_code == 200, applied.content
    assert len(applied.json()["created"]) == 1
    made = Booking.objects.get(pk=applied.json()["created"][0])
    assert made.patient == clinic.patients[5]
    second.refresh_from_db()
    assert abs(second.starts_at - local(MONDAY, 10)) <= timedelta(minutes=30)
    again = post(scheduler, f"/api/v1/plans/{body['id']}/apply/", {})
    assert again.status_code == 409


@pytest.mark.parametrize("persona", ["physician", "nurse", "tech"])
def test_only_schedulers_and_admins_plan(clinic, persona):
    users = persona_users(clinic)
    assert ask(client_for(users[persona]), clinic).status_code == 403
    assert not PlanRun.objects.exists()


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"site": 999999}, "site"),
        ({"waiting_list": [{"patient": 999999, "procedure_type": "VP"}]}, "waiting_list.0.patient"),
        ({"waiting_list": [{"patient": FIRST, "procedure_type": "XX"}]}, "waiting_list.0.procedure_type"),
    ],
)
def test_a_plan_naming_what_does_not_exist_is_a_422_and_queues_nothing(clinic, extra, field):
    users = persona_users(clinic)
    answer = ask(client_for(users["scheduler"]), clinic, **extra)
    assert answer.status_code == 422, answer.content
    assert [item["field"] for item in answer.json()["errors"]] == [field]
    assert not PlanRun.objects.exists()


def test_a_plan_is_its_owners_and_an_admins_and_is_gone_after_an_hour(clinic):
    users = persona_users(clinic)
    body = ask(client_for(users["scheduler"]), clinic).json()
    other = client_for(users["admin"])
    assert other.get(f"/api/v1/plans/{body['id']}/").status_code == 200
    from tests import factories as f

    stranger = client_for(f.UserFactory(username="scheduler-2", groups=["scheduler"]))
    assert stranger.get(f"/api/v1/plans/{body['id']}/").status_code == 404
    assert client_for(users["scheduler"]).get("/api/v1/plans/not-a-uuid/").status_code == 404
    with time_machine.travel(NOW + timedelta(minutes=61), tick=False):
        assert client_for(users["scheduler"]).get(f"/api/v1/plans/{body['id']}/").status_code == 404


def test_a_read_scope_key_may_plan_but_not_apply(clinic):
    users = persona_users(clinic)
    issued = post(
        client_for(users["admin"]), "/api/v1/service-accounts/", {"name": "Planner", "scopes": ["schedule:read"]}
    ).json()
    key = APIClient()
    key.credentials(HTTP_AUTHORIZATION=f"Bearer {issued['key']}")
    book(clinic, 10, 0)
    body = ask(key, clinic).json()
    plans_run_queued()
    refused = post(key, f"/api/v1/plans/{body['id']}/apply/", {})
    assert refused.status_code == 403
    assert "book" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"date": "2027-13-40"}, "date"),
        ({"site": 0}, "site"),
        ({"budget_seconds": 0}, "budget_seconds"),
        ({"waiting_list": [{"patient": 0, "procedure_type": "VP"}]}, "waiting_list.0.patient"),
        ({"waiting_list": [{"patient": FIRST, "procedure_type": "X X"}]}, "waiting_list.0.procedure_type"),
        (
            {
                "waiting_list": [
                    {
                        "patient": FIRST,
                        "procedure_type": "VP",
                        "earliest": "2027-01-11T12:00:00-06:00",
                        "latest": "2027-01-11T09:00:00-06:00",
                    }
                ]
            },
            "waiting_list",
        ),
        (
            {"waiting_list": [{"patient": FIRST, "procedure_type": "VP", "earliest": "2027-01-11T12:00:00"}]},
            "waiting_list",
        ),
        ({"what_if": {"bays": -1}}, "what_if"),
    ],
)
def test_bad_input_is_a_clear_400_and_queues_nothing(clinic, extra, field):
    users = persona_users(clinic)
    answer = ask(client_for(users["scheduler"]), clinic, **extra)
    assert answer.status_code == 400, answer.content
    assert field in answer.content.decode()
    assert not PlanRun.objects.exists()


def test_a_what_if_reports_the_base_beside_it_and_cannot_be_applied(clinic):
    users = persona_users(clinic)
    scheduler = client_for(users["scheduler"])
    waiting = [{"patient": clinic.patients[i].pk, "procedure_type": "VP"} for i in range(6)]
    body = ask(scheduler, clinic, waiting_list=waiting, what_if={"bays": 2}).json()
    plans_run_queued()
    done = scheduler.get(f"/api/v1/plans/{body['id']}/").json()
    assert done["status"] == "done", done["error"]
    what_if = done["result"]["what_if"]
    assert what_if["asked"]["bays"] == 2
    assert done["result"]["figures"]["plan"]["fitted"] >= what_if["base"]["fitted"]
    assert what_if["more_cases"] == done["result"]["figures"]["plan"]["fitted"] - what_if["base"]["fitted"]
    assert [row["date"] for row in what_if["days"]] == [MONDAY.isoformat()]
    assert post(scheduler, f"/api/v1/plans/{body['id']}/apply/", {}).status_code == 409


def test_a_what_if_of_a_week_compares_each_weekday(clinic):
    users = persona_users(clinic)
    scheduler = client_for(users["scheduler"])
    book(clinic, 9, 0)
    body = ask(scheduler, clinic, budget_seconds=1, what_if={"bays": 1, "week": True}).json()
    plans_run_queued()
    done = scheduler.get(f"/api/v1/plans/{body['id']}/").json()
    assert done["status"] == "done", done["error"]
    days = done["result"]["what_if"]["days"]
    assert [row["date"] for row in days] == [(MONDAY + timedelta(days=n)).isoformat() for n in range(5)]
    assert days[0]["base"]["fitted"] == 1
    assert all(row["base"]["fitted"] == 0 for row in days[1:])


def test_a_waiting_list_is_checked_against_the_catalogue_and_lists_a_patient_once(clinic):
    users = persona_users(clinic)
    scheduler = client_for(users["scheduler"])
    twice = ask(
        scheduler,
        clinic,
        waiting_list=[
            {"patient": clinic.patients[0].pk, "procedure_type": "VP"},
            {"patient": clinic.patients[0].pk, "procedure_type": "MBB"},
        ],
    )
    assert twice.status_code == 422
    assert "twice" in twice.content.decode()
    too_many_levels = ask(
        scheduler, clinic, waiting_list=[{"patient": clinic.patients[0].pk, "procedure_type": "VP", "levels": 9}]
    )
    assert too_many_levels.status_code == 422
    assert too_many_levels.json()["code"] == "booking_invalid"
    assert not PlanRun.objects.exists()


def test_a_person_has_at_most_three_plans_being_made(clinic):
    users = persona_users(clinic)
    scheduler = client_for(users["scheduler"])
    for _ in range(3):
        assert ask(scheduler, clinic).status_code == 202
    fourth = ask(scheduler, clinic)
    assert fourth.status_code == 409
    assert PlanRun.objects.count() == 3


def test_a_plan_the_rules_refused_or_whose_waiting_patient_was_booked_meanwhile_is_not_applied(clinic):
    users = persona_users(clinic)
    scheduler = client_for(users["scheduler"])
    waiting = [{"patient": clinic.patients[5].pk, "procedure_type": "VP"}]
    body = ask(scheduler, clinic, waiting_list=waiting).json()
    plans_run_queued()
    run = PlanRun.objects.get(pk=body["id"])
    # Booked meanwhile, at another time of that day.
    booking_create(
        actor=None,
        request=CaseRequest(procedure_type=clinic.vp(), patient=clinic.patients[5], pins=clinic.resources()),
        starts_at=local(MONDAY, 15),
    )
    refused = post(scheduler, f"/api/v1/plans/{run.pk}/apply/", {})
    assert refused.status_code == 409
    assert problem_extra(refused)["patients_booked"] == [clinic.patients[5].pk]
    assert Booking.objects.filter(patient=clinic.patients[5]).count() == 1
    result = dict(run.result)
    result["verified"] = False
    PlanRun.objects.filter(pk=run.pk).update(result=result)
    unverified = post(scheduler, f"/api/v1/plans/{run.pk}/apply/", {})
    assert unverified.status_code == 409
    assert "refused this plan" in unverified.json()["detail"]
