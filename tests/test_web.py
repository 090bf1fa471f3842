"""The pages through Django's test client: sign-in and the role's home, who may open what, the
booking workspace from order to confirmed case, the case page's reschedule and cancel, the
physician's day, read audits, and query counts that do not grow with the cases."""

import datetime as dt
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from core.models import AuditEvent
from patients.models import Drug, MedicationHold, Patient
from rooms.models import OpeningHours
from scheduling.availability.search import SearchQuery, availability_search
from scheduling.models import Booking, BookingStatus, ProcedureType
from scheduling.request import CaseRequest
from scheduling.selectors import cases_of_physician
from scheduling.services.bookings import booking_create
from staff.models import Shift
from tests.api_helpers import persona_users
from tests.conftest import MONDAY, local

pytestmark = pytest.mark.django_db


@pytest.fixture
def users(clinic):
    return persona_users(clinic)


def client_of(user):
    client = Client()
    client.force_login(user)
    return client


def book(clinic, start, patient=0, **resources):
    return booking_create(
        request=CaseRequest(
            procedure_type=clinic.vp(), patient=clinic.patients[patient], pins=clinic.resources(**resources)
        ),
        actor=None,
        starts_at=start,
    )


def order_form(clinic, patient, **extra):
    data = {
        "patient": patient.pk,
        "procedure_type": clinic.vp().pk,
        "level_names": "T12, L1",
        "side": "",
        "sedation": "",
        "prior_auth_status": "approved",
        "prior_auth_number": "PA-1",
        "indication_code": "M80.08XA",
        "indication_text": "Osteoporotic fracture",
        "referring_provider": "Dr. Ruiz",
        "external_order_id": "ORD-1",
        "notes": "",
        "site": clinic.site.pk,
        "date_from": MONDAY.isoformat(),
        "date_to": (MONDAY + dt.timedelta(days=4)).isoformat(),
        "physician": clinic.physicians[0].pk,
        "room": "",
        "time_of_day": "",
    }
    data.update(extra)
    return data


# --- sign-in and home -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "home"),
    [("scheduler", "/book/"), ("admin", "/book/"), ("physician", "/day/"), ("tech", "/day/"), ("nurse", "/flow/")],
)
def test_home_sends_each_role_to_its_page(users, persona, home):
    response = client_of(users[persona]).get("/")
    assert response.status_code == 302
    assert response["Location"] == home


def test_signed_out_pages_ask_for_sign_in_and_sign_in_works(users):
    users["scheduler"].set_password("correct horse battery")
    users["scheduler"].save()
    client = Client(enforce_csrf_checks=True)
    assert client.get("/").headers["Location"] == "/signin/"
    assert client.get("/day/").headers["Location"].startswith("/signin/?next=/day/")
    page = client.get("/signin/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    refused = client.post("/signin/", {"username": "scheduler-user", "password": "correct horse battery"})
    assert refused.status_code == 403  # no CSRF token
    signed = client.post(
        "/signin/", {"username": "scheduler-user", "password": "correct horse battery", "csrfmiddlewaretoken": token}
    )
    assert signed.status_code == 302
    assert client.get("/book/").status_code == 200


def test_sign_in_is_throttled_after_repeated_failures(users):
    client = Client()
    statuses = [
        client.post("/signin/", {"username": "scheduler-user", "password": f"wrong {i}"}).status_code for i in range(12)
    ]
    assert statuses[0] == 200
    assert 429 in statuses


def test_sign_out_ends_the_session(users):
    client = client_of(users["physician"])
    assert client.get("/day/").status_code == 200
    assert client.get("/signout/").status_code == 405  # sign-out is a POST (CSRF-protected)
    assert client.post("/signout/").status_code == 302
    assert client.get("/day/").status_code == 302


def test_header_names_site_date_zone_user_and_role(users):
    body = client_of(users["scheduler"]).get("/book/").content.decode()
    assert "Main" in body
    assert "America/Chicago" in body
    assert "Scheduler" in body
    assert "scheduler-user" in body


def test_admin_gets_a_link_to_configuration_and_others_do_not(users):
    assert 'href="/admin/"' in client_of(users["admin"]).get("/book/").content.decode()
    assert 'href="/admin/"' not in client_of(users["scheduler"]).get("/book/").content.decode()


def test_pages_carry_a_content_security_policy_without_inline_script(users):
    response = client_of(users["scheduler"]).get("/book/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "<script>" not in response.content.decode()


# --- who may open what ----------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["tech", "nurse", "outsider"])
def test_roles_that_do_not_book_cannot_open_the_workspace(users, persona):
    assert client_of(users[persona]).get("/book/").status_code == 403


def test_a_tech_sees_their_case_without_phone_or_sex(clinic, users):
    patient = clinic.patients[0]
    patient.phone = "555-0100"
    patient.save()
    mine = book(clinic, local(MONDAY, 9))
    tech = client_of(users["tech"])
    assert tech.get(f"/cases/{mine.pk}/").status_code == 200
    day = tech.get(f"/day/?physician={clinic.physicians[0].pk}&date={MONDAY}").content.decode()
    assert patient.last_name in day
    assert "555-0100" not in day
    assert patient.get_sex_display() not in day.split("<tbody>")[1]


def test_a_case_outside_ones_own_is_not_found(clinic, users):
    case = book(clinic, local(MONDAY, 9), physician=clinic.physicians[0], rad_tech=clinic.techs[1])
    assert client_of(users["tech"]).get(f"/cases/{case.pk}/").status_code == 404


# --- patients -------------------------------------------------------------------------------


def test_patient_search_is_a_post_and_forgives_accents(clinic, users):
    Patient.objects.create(mrn="M-77", first_name="Zoë", last_name="Ñúñez", date_of_birth=dt.date(1940, 2, 2))
    client = client_of(users["scheduler"])
    response = client.post("/patients/", {"q": "zoe nunez"})
    assert "M-77" in response.content.decode()
    assert AuditEvent.objects.filter(action="patient.search").exists()


def test_registration_warns_of_a_likely_duplicate_and_shows_it(clinic, users):
    existing = clinic.patients[0]
    client = client_of(users["scheduler"])
    data = {
        "mrn": "NEW-1",
        "first_name": existing.first_name.upper(),
        "last_name": existing.last_name,
        "date_of_birth": existing.date_of_birth.isoformat(),
        "sex": "female",
        "pregnancy_possible": "auto",
    }
    warned = client.post("/patients/new/", data)
    assert warned.status_code == 200
    assert existing.mrn in warned.content.decode()
    assert not Patient.objects.filter(mrn="NEW-1").exists()
    created = client.post("/patients/new/", {**data, "duplicate_ok": "on"})
    assert created.status_code == 302
    assert Patient.objects.filter(mrn="NEW-1").exists()


def test_a_hold_is_entered_from_the_drug_list_with_its_default_days(clinic, users):
    patient = clinic.patients[0]
    client = client_of(users["scheduler"])
    page = client.get(f"/patients/{patient.pk}/").content.decode()
    warfarin = Drug.objects.get(code="warfarin")
    assert f"Warfarin — hold {warfarin.hold_days_high} d before high-risk" in page
    response = client.post(f"/patients/{patient.pk}/holds/", {"drug": warfarin.pk, "last_dose_on": ""})
    assert response.status_code == 302
    hold = MedicationHold.objects.get(patient=patient)
    assert hold.hold_days is None
    assert hold.days_for("high") == warfarin.hold_days_high


# --- booking --------------------------------------------------------------------------------


def test_slot_finder_shows_the_first_starts_of_each_day_with_the_team(clinic, users):
    client = client_of(users["scheduler"])
    response = client.post("/book/search/", order_form(clinic, clinic.patients[0]))
    body = response.content.decode()
    assert response.status_code == 200
    days = re.findall(r"<h3>(\w+day \d+ \w+ \d{4})</h3>", body)
    assert len(days) == 5  # Monday to Friday, each with its own first starts
    assert body.count('<li class="slot">') <= 2 * 5
    assert "Reyes" in body
    assert "C-arm" in body
    assert "Recovery bay" in body


def test_a_time_that_is_not_feasible_shows_the_reasons_in_words(clinic, users):
    client = client_of(users["scheduler"])
    data = order_form(clinic, clinic.patients[0], start=f"{MONDAY}T05:00")
    body = client.post("/book/check/", data).content.decode()
    assert "Not feasible" in body
    assert "Hold this start" not in body.split('id="checked"')[1]


def test_hold_confirm_books_with_the_order_and_the_case_page_shows_it(clinic, users):
    client = client_of(users["scheduler"])
    start = local(MONDAY, 9)
    data = {
        **order_form(clinic, clinic.patients[0]),
        "start": start.isoformat(),
        "pin_physician": clinic.physicians[0].pk,
    }
    held = client.post("/book/hold/", data)
    assert held.status_code == 302, held.content.decode()[:2000]
    booking = Booking.objects.get()
    assert booking.status == BookingStatus.HOLD
    assert booking.level_names == ["T12", "L1"]
    assert booking.levels == 2
    page = client.get(held["Location"]).content.decode()
    assert "data-countdown" in page
    assert "22510, +22512" in page
    assert client.post(f"/cases/{booking.pk}/confirm/").status_code == 302
    booking.refresh_from_db()
    assert booking.status == BookingStatus.SCHEDULED


def test_a_clash_at_hold_shows_what_clashed_and_alternatives(clinic, users):
    start = local(MONDAY, 9)
    book(clinic, start)
    client = client_of(users["scheduler"])
    data = {
        **order_form(clinic, clinic.patients[1]),
        "start": start.isoformat(),
        **{f"pin_{k}": v for k, v in clinic.resources().items()},
    }
    response = client.post("/book/hold/", data)
    body = response.content.decode()
    assert "That start was just taken" in body
    assert body.count("Hold this start") >= 1
    assert Booking.objects.count() == 1


def test_reschedule_and_cancel_from_the_case_page(clinic, users):
    case = book(clinic, local(MONDAY, 9))
    client = client_of(users["scheduler"])
    page = client.get(f"/cases/{case.pk}/reschedule/").content.decode()
    choices = re.findall(r'name="slot" value="([^"]+)"', page)
    assert choices
    moved = client.post(f"/cases/{case.pk}/reschedule/", {"slot": choices[-1]})
    assert moved.status_code == 302
    case.refresh_from_db()
    assert case.starts_at == dt.datetime.fromisoformat(choices[-1].split("|")[0])
    no_reason = client.post(f"/cases/{case.pk}/cancel/", {"reason": ""})
    assert no_reason.status_code == 400
    case.refresh_from_db()
    assert case.status == BookingStatus.SCHEDULED
    client.post(f"/cases/{case.pk}/cancel/", {"reason": "patient_request", "note": ""})
    case.refresh_from_db()
    assert case.status == BookingStatus.CANCELLED
    history = client.get(f"/cases/{case.pk}/").content.decode()
    assert "booking.cancel" in history


def test_the_override_is_offered_only_to_roles_allowed_it(clinic, users):
    patient = clinic.patients[0]
    book(clinic, local(MONDAY, 9))  # the physician's patient now
    scheduler = client_of(users["scheduler"]).get(f"/book/?patient={patient.pk}").content.decode()
    physician = client_of(users["physician"]).get(f"/book/?patient={patient.pk}").content.decode()
    assert "anticoagulant_override_reason" not in scheduler
    assert "anticoagulant_override_reason" in physician


# --- the physician's day --------------------------------------------------------------------


def test_the_day_shows_what_the_team_needs_and_audits_the_read(clinic, users):
    patient = clinic.patients[0]
    patient.allergies = "Iodinated contrast"
    patient.save()
    MedicationHold.objects.create(patient=patient, drug=Drug.objects.get(code="warfarin"), last_dose_on=MONDAY)
    book(clinic, local(MONDAY + dt.timedelta(days=7), 9))
    day = MONDAY + dt.timedelta(days=7)
    body = client_of(users["physician"]).get(f"/day/?date={day}").content.decode()
    assert patient.last_name in body
    assert "Iodinated contrast" in body
    assert 'class="allergy"' in body
    assert "Warfarin" in body
    assert "INR" in body
    assert "Fluoro 1" in body
    assert "C-arm 1" in body
    assert "America/Chicago" in body
    assert AuditEvent.objects.filter(action="daily_list.read").count() == 1


def test_a_physician_cannot_read_another_physicians_day(clinic, users):
    body = client_of(users["physician"]).get(f"/day/?physician={clinic.physicians[1].pk}").content.decode()
    assert "Reyes" in body  # their own day, whatever was asked


def day_queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def fill_day(clinic, day, count):
    """``count`` interlaminar epidurals of the second physician on ``day``, on a site and staff
    open round the clock, placed by the engine."""
    OpeningHours.objects.filter(site=clinic.site).update(opens_at=dt.time(0), closes_at=dt.time(23, 59))
    Shift.objects.update(starts_at=dt.time(0), ends_at=dt.time(23, 59))
    esi = ProcedureType.objects.get(code="ESI-IL")
    physician = clinic.physicians[1]
    booked = 0
    first = Patient.objects.count()
    moment = local(day, 0, 30)
    while booked < count:
        patient = Patient.objects.create(
            mrn=f"Q-{first + booked}", first_name="Q", last_name=f"P{booked}", date_of_birth=dt.date(1950, 1, 1)
        )
        case = CaseRequest(procedure_type=esi, patient=patient, pins={"physician": physician.pk})
        [slot] = availability_search(SearchQuery(request=case, date_from=day, date_to=day, count=1, not_before=moment))
        booking_create(request=case, actor=None, starts_at=slot.start)
        moment = slot.start
        booked += 1
    return physician


def test_day_page_and_slot_finder_queries_do_not_grow_with_the_cases(clinic, users):
    client = client_of(users["scheduler"])
    day = MONDAY + dt.timedelta(days=7)
    physician = fill_day(clinic, day, 1)
    url = f"/day/?physician={physician.pk}&date={day}"
    one = day_queries(client, url)
    finder_one = finder_queries(client, clinic)
    fill_day(clinic, day, 39)
    assert len(cases_of_physician(users["scheduler"], physician, day)) == 40
    assert day_queries(client, url) == one
    assert finder_queries(client, clinic) == finder_one


def finder_queries(client, clinic):
    day = MONDAY + dt.timedelta(days=7)
    form = order_form(clinic, clinic.patients[2], date_from=day.isoformat(), date_to=day.isoformat())
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/book/search/", form)
        assert response.status_code == 200
    return len(queries)


def test_an_expired_session_asks_for_sign_in_again(users):
    client = client_of(users["scheduler"])
    assert client.get("/book/").status_code == 200
    session = client.session
    session.set_expiry(-1)
    session.save()
    assert client.get("/book/").status_code == 302


def test_sessions_end_with_the_browser_and_after_a_working_day(settings):
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE
    assert settings.SESSION_COOKIE_AGE <= 8 * 60 * 60
    assert settings.SESSION_COOKIE_HTTPONLY


def test_page_reads_of_patient_data_are_audited_like_the_api(clinic, users):
    case = book(clinic, local(MONDAY, 9))
    client = client_of(users["nurse"])
    client.get(f"/cases/{case.pk}/")
    client.get(f"/patients/{case.patient_id}/")
    client.get(f"/cases/?date={MONDAY}")
    actions = set(AuditEvent.objects.filter(object_type="patients.patient").values_list("action", flat=True))
    assert {"booking.read", "patient.read", "day_cases.read"} <= actions
    event = AuditEvent.objects.get(action="booking.read")
    assert event.actor == users["nurse"]
    assert event.details["ids"] == [str(case.patient_id)]


def test_a_tech_s_day_lists_the_cases_they_work_on(clinic, users):
    mine = book(clinic, local(MONDAY, 9))
    other = book(clinic, local(MONDAY, 13), patient=1, rad_tech=clinic.techs[1])
    body = client_of(users["tech"]).get(f"/day/?date={MONDAY}").content.decode()
    assert "Your day" in body
    assert f'data-case="{mine.pk}"' in body
    assert f'data-case="{other.pk}"' not in body


def test_a_physician_moves_a_case_inside_the_hold_with_a_reason_and_a_scheduler_cannot(clinic, users):
    patient = clinic.patients[0]
    MedicationHold.objects.create(patient=patient, drug=Drug.objects.get(code="warfarin"))
    friday = MONDAY - dt.timedelta(days=3)
    case = booking_create(
        request=CaseRequest(procedure_type=clinic.vp(), patient=patient, pins=clinic.resources()),
        actor=users["physician"],
        starts_at=local(friday, 9),
        anticoagulant_override_reason="Fracture pain; cardiology agrees",
    )
    # Earlier, deeper inside the hold: the override given for Friday does not cover it.
    thursday = local(friday - dt.timedelta(days=1), 9)
    refused = client_of(users["scheduler"]).post(f"/cases/{case.pk}/reschedule/", {"start": thursday.isoformat()})
    assert refused.status_code == 409
    assert "Warfarin" in refused.content.decode()
    physician = client_of(users["physician"])
    assert 'id="override"' in physician.get(f"/cases/{case.pk}/reschedule/").content.decode()
    moved = physician.post(
        f"/cases/{case.pk}/reschedule/",
        {"start": thursday.isoformat(), "anticoagulant_override_reason": "Still cannot wait"},
    )
    assert moved.status_code == 302, moved.content.decode()[-3000:]
    case.refresh_from_db()
    assert case.starts_at == thursday


def test_a_physician_is_not_shown_a_patient_who_is_not_theirs_by_id(clinic, users):
    stranger = clinic.patients[5]
    body = client_of(users["physician"]).get(f"/book/?patient={stranger.pk}").content.decode()
    assert stranger.last_name not in body
    assert "Find a patient" in body


def test_a_physician_confirms_their_own_hold_but_cannot_cancel(clinic, users):
    hold = booking_create(
        request=CaseRequest(procedure_type=clinic.vp(), patient=clinic.patients[0], pins=clinic.resources()),
        actor=None,
        starts_at=local(MONDAY, 9),
        status=BookingStatus.HOLD,
    )
    physician = client_of(users["physician"])
    assert "Cancel the case" not in physician.get(f"/cases/{hold.pk}/").content.decode()
    assert physician.post(f"/cases/{hold.pk}/cancel/", {"reason": "patient_request"}).status_code == 403
    assert physician.post(f"/cases/{hold.pk}/confirm/").status_code == 302
    hold.refresh_from_db()
    assert hold.status == BookingStatus.SCHEDULED


def test_a_tech_is_not_shown_holds_labs_or_imaging(clinic, users):
    patient = clinic.patients[0]
    MedicationHold.objects.create(patient=patient, drug=Drug.objects.get(code="warfarin"))
    case = book(clinic, local(MONDAY, 9))
    tech = client_of(users["tech"])
    for url in (f"/cases/{case.pk}/", f"/patients/{patient.pk}/", f"/day/?date={MONDAY}"):
        body = tech.get(url).content.decode()
        assert "Warfarin" not in body, url
    assert "Warfarin" in client_of(users["nurse"]).get(f"/cases/{case.pk}/").content.decode()


@pytest.mark.parametrize(
    "url",
    ["/day/?date=9999-12-31", "/cases/?date=0001-01-01", "/day/?date=0001-01-01&physician=1", "/day/?date=nonsense"],
)
def test_out_of_range_days_fall_back_to_today(users, url):
    assert client_of(users["scheduler"]).get(url).status_code == 200


def test_bad_booking_input_gets_words_not_a_crash(clinic, users):
    client = client_of(users["scheduler"])
    patient = clinic.patients[0]
    far = order_form(clinic, patient, date_from="9999-12-01", date_to="9999-12-31")
    assert "The year must be between" in client.post("/book/search/", far).content.decode()
    typed = order_form(clinic, patient, start="9999-12-31T23:59")
    assert "The year must be between" in client.post("/book/check/", typed).content.decode()
    for start in ("9999-12-31T23:59:00-12:00", "yesterday", "2027-01-11T09:00"):
        response = client.post("/book/hold/", {**order_form(clinic, patient), "start": start})
        assert response.status_code == 200
        assert "Choose a start from the list" in response.content.decode()
    stale = client.post(
        "/book/hold/", {**order_form(clinic, patient), "start": local(MONDAY, 9).isoformat(), "pin_room": 999999}
    )
    assert stale.status_code == 409
    assert "no longer exists" in stale.content.decode()
    assert Booking.objects.count() == 0
    case = book(clinic, local(MONDAY, 9))
    assert client.post(f"/cases/{case.pk}/reschedule/", {"slot": "garbage|room=x"}).status_code == 409
    assert client.get("/book/hold/").status_code == 302
    assert client.get("/cases/999999/").status_code == 404
