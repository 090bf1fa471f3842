"""The procedure-day pages through Django's test client: who may open them, what a bad form
gets, what a refreshing page gets once its session is gone."""

from __future__ import annotations

import pytest
import time_machine
from django.test import Client

from core.models import AuditEvent
from scheduling.models import Booking
from tests.api_helpers import persona_users
from tests.conftest import MONDAY, local
from tests.test_late import esi, vp_at_nine

pytestmark = pytest.mark.django_db


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def at(hour: int, minute: int = 0):
    return time_machine.travel(local(MONDAY, hour, minute), tick=False)


def test_who_opens_the_board_the_flow_and_downtime(clinic):
    users = persona_users(clinic)
    with at(8):
        for role, board, flow, downtime in (
            ("nurse", 200, 200, 403),
            ("scheduler", 200, 200, 200),
            ("physician", 200, 200, 403),
            ("tech", 200, 403, 403),
            ("admin", 200, 200, 200),
        ):
            client = client_of(users[role])
            assert client.get("/board/").status_code == board, role
            assert client.get("/flow/").status_code == flow, role
            assert client.get("/downtime/").status_code == downtime, role


def test_the_board_shows_initials_only_on_cases_the_role_sees(clinic):
    users = persona_users(clinic)
    mine = vp_at_nine(clinic)  # the tech's case (techs[0])
    other = esi(clinic, 13, 0, bay=2, patient=2, room=1, c_arm=1)  # techs[1]
    first, second = mine.patient, other.patient
    with at(8):
        page = client_of(users["tech"]).get(f"/board/?date={MONDAY}").content.decode()
        nurse_page = client_of(users["nurse"]).get(f"/board/?date={MONDAY}").content.decode()
    mine_initials = f"{first.first_name[0]}.{first.last_name[0]}."
    other_initials = f"{second.first_name[0]}.{second.last_name[0]}."
    assert f"{mine_initials} · VP" in page
    assert f"{other_initials} · ESI-IL" not in page
    assert "ESI-IL · Dr. Okafor" in page
    assert f"{other_initials} · ESI-IL" in nurse_page
    assert AuditEvent.objects.filter(action="board.read").count() == 2


def test_a_refresh_after_the_session_ended_sends_the_whole_page_to_sign_in(db):
    answer = Client().get("/board/", headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/board/"})
    assert answer.status_code == 204
    assert answer["HX-Redirect"].startswith("/signin/?next=")


def test_a_checklist_time_outside_the_clinics_years_is_an_error_not_a_crash(clinic):
    users = persona_users(clinic)
    booking = vp_at_nine(clinic)
    Booking.objects.filter(pk=booking.pk).update(status="checked_in", checked_in_at=local(MONDAY, 8))
    with at(8, 30):
        answer = client_of(users["nurse"]).post(
            f"/flow/{booking.pk}/checklist/", {"consent_signed_at": "1999-01-11T07:00"}
        )
    assert answer.status_code == 422
    assert "Consent signed at" in answer.content.decode()


def test_a_step_button_runs_its_service_and_refuses_what_the_role_may_not(clinic):
    users = persona_users(clinic)
    booking = vp_at_nine(clinic)
    with at(8):
        scheduler = client_of(users["scheduler"])
        assert scheduler.get(f"/flow/{booking.pk}/check_in/").status_code == 405
        assert scheduler.post(f"/flow/{booking.pk}/teleport/").status_code == 404
        done = scheduler.post(f"/flow/{booking.pk}/check_in/", {"next": "https://elsewhere.example/"})
        assert done.status_code == 302
        assert done["Location"] == f"/flow/{booking.pk}/"
        booking.refresh_from_db()
        assert booking.status == "checked_in"
        refused = scheduler.post(f"/flow/{booking.pk}/start_procedure/", follow=True)
        assert "does not record" in refused.content.decode()
    booking.refresh_from_db()
    assert booking.status == "checked_in"
