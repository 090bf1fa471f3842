"""The plan pages without a browser: who may open them, a plan asked for and shown, a plan of
someone else's is not found, a what-if compares without offering to apply, a stale plan is
refused with the case named."""

from __future__ import annotations

import pytest
from django.test import Client

from planner.models import PlanRun
from planner.services import plans_run_queued
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_create, booking_reschedule
from tests import factories as f
from tests.conftest import MONDAY, local

pytestmark = pytest.mark.django_db


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def book(clinic, hour, patient, **pins):
    return booking_create(
        actor=None,
        request=CaseRequest(
            procedure_type=clinic.vp(), patient=clinic.patients[patient], pins=clinic.resources(**pins)
        ),
        starts_at=local(MONDAY, hour),
    )


@pytest.fixture
def scheduler(clinic, settings):
    settings.PLAN_BUDGET_SECONDS = 2
    return client_of(f.UserFactory(username="sched-plan", groups=["scheduler"]))


@pytest.mark.parametrize("role", ["nurse", "tech", "physician"])
def test_only_schedulers_and_admins_open_the_plan_pages(clinic, role):
    answer = client_of(f.UserFactory(username=f"{role}-plan", groups=[role])).get("/plan/")
    assert answer.status_code == 403


def test_a_plan_is_asked_for_and_shown_with_its_moves(clinic, scheduler):
    book(clinic, 8, 0)
    second = book(clinic, 10, 1, recovery_bay=clinic.bays[1])
    asked = scheduler.post(f"/plan/?site={clinic.site.pk}", {"date": MONDAY.isoformat()})
    run = PlanRun.objects.get()
    assert asked.status_code == 302
    assert asked["Location"] == f"/plan/{run.pk}/"
    waiting = scheduler.get(asked["Location"])
    assert b"Waiting for the planner" in waiting.content
    assert scheduler.get(asked["Location"], headers={"HX-Request": "true"}).status_code == 200
    plans_run_queued()
    done = scheduler.get(asked["Location"])
    page = done.content.decode()
    assert "The plan against first come, first served" in page
    assert f'data-moved="{second.pk}"' in page
    assert "Apply this plan" in page
    # Polling a finished plan asks the page to reload itself.
    assert scheduler.get(asked["Location"], headers={"HX-Request": "true"})["HX-Refresh"] == "true"
    other = client_of(f.UserFactory(username="sched-other", groups=["scheduler"]))
    assert other.get(asked["Location"]).status_code == 404
    assert scheduler.get("/plan/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_a_stale_plan_is_refused_on_the_page_naming_the_case(clinic, scheduler):
    book(clinic, 8, 0)
    second = book(clinic, 10, 1, recovery_bay=clinic.bays[1])
    scheduler.post(f"/plan/?site={clinic.site.pk}", {"date": MONDAY.isoformat()})
    plans_run_queued()
    run = PlanRun.objects.get()
    booking_reschedule(
        actor=None, booking=second, starts_at=local(MONDAY, 11), pins=clinic.resources(recovery_bay=clinic.bays[1])
    )
    refused = scheduler.post(f"/plan/{run.pk}/apply/", follow=True)
    assert f"changed since the plan was made ({second.pk})" in refused.content.decode()
    second.refresh_from_db()
    assert second.starts_at == local(MONDAY, 11)


def test_a_what_if_compares_and_offers_nothing_to_apply(clinic, scheduler):
    book(clinic, 9, 0)
    scheduler.post(
        f"/plan/?site={clinic.site.pk}",
        {"date": MONDAY.isoformat(), "compare": "1", "bays": "2", "without_room": str(clinic.rooms[1].pk)},
    )
    run = PlanRun.objects.get()
    assert run.params["what_if"] == {
        "bays": 2,
        "rad_techs": 0,
        "nurses": 0,
        "without_rooms": [clinic.rooms[1].pk],
        "week": False,
    }
    plans_run_queued()
    page = scheduler.get(f"/plan/{run.pk}/").content.decode()
    assert "What if: 2 more bays" in page
    assert "data-more-cases=" in page
    assert "Apply this plan" not in page
