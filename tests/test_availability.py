"""Availability search: feasible starts with concrete resources, reasons, and query budget."""

import datetime as dt

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import BookingInvalid, SlotUnavailable
from patients.models import MedicationHold
from rooms.models import Downtime
from scheduling.availability.search import SearchQuery, availability_search, explain_start
from scheduling.legroles import LEG_ROLES
from scheduling.models import Allocation, ProcedureType
from scheduling.request import CaseRequest
from scheduling.rules.inputs import legs_sql
from scheduling.services.bookings import booking_cancel, booking_create
from staff.models import TimeOff
from tests.conftest import MONDAY, Clinic, local, overlapping_active_legs
from tests.factories import drug

WEEK_END = MONDAY + dt.timedelta(days=6)


def case(code="VP", *, levels=1, sedation=None, patient=None, site_id=None, pins=None) -> CaseRequest:
    return CaseRequest(
        procedure_type=ProcedureType.objects.get(code=code),
        levels=levels,
        sedation=sedation,
        patient=patient,
        site_id=site_id,
        pins=pins or {},
    )


def search(clinic: Clinic, code="VP", *, levels=1, sedation=None, patient=None, site_id=None, pins=None, **kwargs):
    kwargs.setdefault("date_from", MONDAY)
    kwargs.setdefault("date_to", WEEK_END)
    request = case(code, levels=levels, sedation=sedation, patient=patient, site_id=site_id, pins=pins)
    return availability_search(SearchQuery(request=request, **kwargs))


def resources_of(slot) -> dict[str, int]:
    """The pins of every resource a slot offers."""
    return {LEG_ROLES[leg.role].pin: leg.resource_id for leg in slot.legs if leg.role != "patient"}


def book_slot(clinic, slot, patient):
    return booking_create(
        request=CaseRequest(
            procedure_type=ProcedureType.objects.get(code="VP"), patient=patient, pins=resources_of(slot)
        ),
        actor=None,
        starts_at=slot.start,
    )


# --- results ------------------------------------------------------------------------------


def test_empty_clinic_offers_grid_aligned_opening_times(clinic):
    slots = search(clinic, count=3)
    # The site opens at 07:00 and a vertebroplasty patient arrives an hour early.
    assert [s.start for s in slots] == [local(MONDAY, 8, 0), local(MONDAY, 8, 5), local(MONDAY, 8, 10)]
    first = {leg.role: leg for leg in slots[0].legs}
    assert first["room"].name == "Fluoro 1"
    assert (first["room"].start, first["room"].end) == (local(MONDAY, 8), local(MONDAY, 9, 20))
    assert (first["recovery_bay"].start, first["recovery_bay"].end) == (local(MONDAY, 9), local(MONDAY, 11))
    assert first["physician"].name == "Dr. Ana Reyes"
    assert slots[0].end == local(MONDAY, 11)


def test_a_coarser_grid_and_time_of_day_window(clinic):
    slots = search(clinic, count=2, grid_minutes=15, earliest=dt.time(10, 7), latest=dt.time(11))
    assert [s.start for s in slots] == [local(MONDAY, 10, 15), local(MONDAY, 10, 30)]


def test_latest_start_is_bounded_by_recovery_before_closing(clinic):
    slots = search(clinic, count=200, date_to=MONDAY)
    # Recovery (120 min) must end by 18:00 after a 60-minute room phase: last start 15:00.
    assert slots[-1].start == local(MONDAY, 15)
    assert len(slots) == 85  # 08:00 to 15:00 every 5 minutes


def test_every_result_names_distinct_resources_and_leaves_them_free(clinic):
    booking_create(
        request=CaseRequest(procedure_type=clinic.vp(), patient=clinic.patients[5], pins=clinic.resources()),
        actor=None,
        starts_at=local(MONDAY, 8),
    )
    slots = search(clinic, count=40)
    busy = list(Allocation.objects.filter(is_active=True))
    for slot in slots:
        keys = [(leg.kind, leg.resource_id) for leg in slot.legs if leg.role != "patient"]
        assert len(keys) == len(set(keys))
        for leg in slot.legs:
            column = {"recovery_bay": "bay"}.get(leg.kind, leg.kind)
            for held in busy:
                if held.resource_column == column and held.resource_id == leg.resource_id:
                    assert not (held.starts_at < leg.end and leg.start < held.ends_at)


def test_the_physician_pin_and_privileges(clinic):
    assert search(clinic, pins={"physician": clinic.physicians[1].pk}) == []
    slots = search(clinic, code="ESI-IL", count=1, pins={"physician": clinic.physicians[1].pk})
    assert {leg.role: leg.name for leg in slots[0].legs}["physician"] == "Dr. Ben Okafor"


def test_room_pin_takes_a_c_arm_usable_there(clinic):
    [slot] = search(clinic, count=1, pins={"room": clinic.rooms[1].pk})
    legs = {leg.role: leg for leg in slot.legs}
    assert legs["room"].name == "Fluoro 2"
    assert legs["c_arm"].name == "C-arm 2"  # C-arm 1 is fixed in Fluoro 1


def test_fixed_c_arm_in_qa_moves_the_case_to_the_mobile_one(clinic):
    Downtime.objects.create(
        equipment=clinic.c_arms[1], starts_at=local(MONDAY, 7), ends_at=local(MONDAY, 12), reason="qa"
    )
    Downtime.objects.create(
        room=clinic.rooms[0], starts_at=local(MONDAY, 7), ends_at=local(MONDAY, 10), reason="repair"
    )
    [slot] = search(clinic, count=1)
    # Fluoro 1 is closed until 10:00, C-arm 2 (the only one for Fluoro 2) in QA until 12:00.
    assert slot.start == local(MONDAY, 10)


def test_staff_time_off_and_shift_end_are_respected(clinic):
    TimeOff.objects.create(staff=clinic.physicians[0], starts_at=local(MONDAY, 0), ends_at=local(MONDAY, 23))
    assert search(clinic, count=1)[0].start == local(MONDAY + dt.timedelta(days=1), 8)


def test_high_risk_case_waits_for_the_longest_anticoagulant_hold(clinic):
    patient = clinic.patients[0]
    MedicationHold.objects.create(patient=patient, drug=drug("clopidogrel"), last_dose_on=dt.date(2027, 1, 10))
    MedicationHold.objects.create(patient=patient, drug=drug("apixaban"), last_dose_on=dt.date(2027, 1, 10))
    [slot] = search(clinic, count=1, patient=patient, date_to=MONDAY + dt.timedelta(days=13))
    # Last dose on the 10th, seven whole days without it: the 18th is the first possible day.
    assert slot.start == local(dt.date(2027, 1, 18), 8)
    # A low-risk procedure is not held back.
    f_credential = clinic.physicians[0].credentials.create(
        kind="privilege", procedure_code="MBB", valid_from=dt.date(2020, 1, 1)
    )
    assert f_credential.pk
    assert search(clinic, code="MBB", count=1, patient=patient)[0].start.date() == MONDAY


def test_the_patient_is_not_offered_a_time_they_are_already_booked(clinic):
    patient = clinic.patients[0]
    booking_create(
        request=CaseRequest(
            procedure_type=clinic.vp(),
            patient=patient,
            pins=clinic.resources(
                room=clinic.rooms[1], c_arm=clinic.c_arms[1], rad_tech=clinic.techs[1], recovery_bay=clinic.bays[2]
            ),
        ),
        actor=None,
        starts_at=local(MONDAY, 8),
    )
    [slot] = search(clinic, count=1, patient=patient, pins={"room": clinic.rooms[0].pk})
    # The patient is busy 07:00-11:00 (arrival to end of recovery); next arrival 11:00, start 12:00.
    assert slot.start == local(MONDAY, 12)


def test_ties_break_the_same_way_every_time(clinic):
    assert search(clinic, count=20) == search(clinic, count=20)


def test_recovery_bays_are_spread(clinic):
    booking_create(
        request=CaseRequest(procedure_type=clinic.vp(), patient=clinic.patients[3], pins=clinic.resources()),
        actor=None,
        starts_at=local(MONDAY, 8),
    )
    slots = search(clinic, count=1, earliest=dt.time(13))
    # Bay 1 already has a patient that day; Bay 2 is free and empty.
    assert {leg.role: leg.name for leg in slots[0].legs}["recovery_bay"] == "Bay 2"


def test_a_physicians_day_stays_in_one_room(clinic):
    booking_create(
        request=CaseRequest(
            procedure_type=clinic.vp(),
            patient=clinic.patients[3],
            pins=clinic.resources(room=clinic.rooms[1], c_arm=clinic.c_arms[1]),
        ),
        actor=None,
        starts_at=local(MONDAY, 8),
    )
    [slot] = search(clinic, count=1, earliest=dt.time(13), pins={"physician": clinic.physicians[0].pk})
    assert {leg.role: leg.name for leg in slot.legs}["room"] == "Fluoro 2"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"date_to": MONDAY + dt.timedelta(days=92)}, "window_too_large"),
        ({"date_to": MONDAY - dt.timedelta(days=1)}, "window_inverted"),
        ({"count": 0}, "count_out_of_range"),
        ({"grid_minutes": 7}, "grid_invalid"),
        ({"earliest": dt.time(12), "latest": dt.time(9)}, "time_of_day_inverted"),
        ({"levels": 5}, "levels_out_of_range"),
    ],
)
def test_bad_searches_are_refused(clinic, kwargs, code):
    with pytest.raises(BookingInvalid) as caught:
        search(clinic, **kwargs)
    assert code in [p.code for p in caught.value.problems]


def test_a_92_day_window_is_accepted(clinic):
    assert len(search(clinic, count=1, date_to=MONDAY + dt.timedelta(days=91))) == 1


# --- query budget and index ---------------------------------------------------------------


@pytest.mark.parametrize("days", [1, 7, 92])
def test_at_most_three_queries_per_search(clinic, django_assert_max_num_queries, days):
    booking_create(
        request=CaseRequest(procedure_type=clinic.vp(), patient=clinic.patients[3], pins=clinic.resources()),
        actor=None,
        starts_at=local(MONDAY, 8),
    )
    TimeOff.objects.create(staff=clinic.techs[1], starts_at=local(MONDAY, 0), ends_at=local(MONDAY, 23))
    query = SearchQuery(
        request=CaseRequest(procedure_type=clinic.vp(), patient=clinic.patients[0]),
        date_from=MONDAY,
        date_to=MONDAY + dt.timedelta(days=days - 1),
        count=200,
    )
    with django_assert_max_num_queries(3):
        slots = availability_search(query)
    assert slots


@pytest.mark.postgres
def test_busy_interval_query_uses_the_gist_index(clinic):
    # Enough history that the planner has a real choice between scanning and the index.
    booking = booking_create(
        request=CaseRequest(procedure_type=clinic.vp(), patient=clinic.patients[3], pins=clinic.resources()),
        actor=None,
        starts_at=local(MONDAY, 8),
    )
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    history = [
        Allocation(
            booking=booking,
            role="room",
            room=clinic.rooms[i % 2],
            is_active=True,
            starts_at=start + dt.timedelta(hours=i),
            ends_at=start + dt.timedelta(hours=i, minutes=50),
        )
        for i in range(30000)
    ]
    Allocation.objects.bulk_create(history, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE scheduling_allocation")
        sql, params = legs_sql(
            {
                "room": [r.pk for r in clinic.rooms],
                "staff": [clinic.physicians[0].pk],
                "bay": [b.pk for b in clinic.bays],
            },
            lo=local(MONDAY, 0),
            hi=local(MONDAY + dt.timedelta(days=7), 0),
        )
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "scheduling_allocation_room_no_overlap" in plan, plan
    assert "Seq Scan" not in plan, plan


# --- reasons ------------------------------------------------------------------------------


def reasons(clinic, start, code="VP", **kwargs):
    return explain_start(case(code, **kwargs), start)


def test_a_feasible_start_has_no_reasons(clinic):
    assert reasons(clinic, local(MONDAY, 9)) == []


def test_reason_no_recovery_bay_free(clinic):
    holder = booking_create(
        request=CaseRequest(procedure_type=clinic.vp(), patient=clinic.patients[3], pins=clinic.resources()),
        actor=None,
        starts_at=local(MONDAY, 8),
    )  # Bay 1 09:00-11:00
    for bay in clinic.bays[1:]:
        Allocation.objects.create(
            booking=holder, role="recovery_bay", bay=bay, starts_at=local(MONDAY, 10), ends_at=local(MONDAY, 13)
        )
    [problem] = reasons(clinic, local(MONDAY, 9, 35), pins={"room": clinic.rooms[1].pk})
    assert (problem.code, problem.role) == ("leg_unavailable", "recovery_bay")
    assert problem.message == "No recovery bay free 10:35–12:35."
    assert problem.extra["candidates"]["Bay 1"] == "Bay 1 is booked 09:00–11:00"


def test_reason_physician_not_privileged(clinic):
    [problem] = reasons(clinic, local(MONDAY, 9), code="ESI-IL", pins={"physician": clinic.physicians[0].pk})
    assert problem.message.startswith("Dr. Ana Reyes is not privileged for interlaminar epidural steroid injection")


def test_reason_c_arm_in_qa(clinic):
    Downtime.objects.create(
        equipment=clinic.c_arms[1], starts_at=local(MONDAY, 7), ends_at=local(MONDAY, 14), reason="qa"
    )
    [problem] = reasons(clinic, local(MONDAY, 9), pins={"room": clinic.rooms[1].pk})
    assert problem.role == "c_arm"
    assert problem.message.startswith("C-arm 2 is in QA until 14:00")


def test_reason_outside_the_physicians_shift(clinic):
    clinic.physicians[0].shifts.update(ends_at=dt.time(12))
    [problem] = reasons(clinic, local(MONDAY, 11, 30))
    assert problem.role == "physician"
    assert problem.message.startswith("Outside Dr. Ana Reyes's shift")


def test_reason_staff_off(clinic):
    TimeOff.objects.create(staff=clinic.nurses[0], starts_at=local(MONDAY, 7), ends_at=local(MONDAY, 12))
    [problem] = reasons(clinic, local(MONDAY, 9))
    assert problem.message.startswith("Nia Sedation is off until 12:00")


def test_reason_room_closed_and_arrival_before_opening(clinic):
    problems = reasons(clinic, local(MONDAY, 7, 30))
    assert [p.code for p in problems] == ["arrival_outside_opening_hours"]
    assert problems[0].message == "The patient would arrive at 06:30, when Main is closed."


def test_reason_resource_booked(clinic):
    booking_create(
        request=CaseRequest(procedure_type=clinic.vp(), patient=clinic.patients[3], pins=clinic.resources()),
        actor=None,
        starts_at=local(MONDAY, 9),
    )
    problems = reasons(clinic, local(MONDAY, 9, 30), pins={"room": clinic.rooms[0].pk})
    by_role = {p.role: p.message for p in problems}
    assert by_role["room"] == "Fluoro 1 is booked 09:00–10:20 (procedure room needed 09:30–10:50)."
    assert by_role["physician"] == "Dr. Ana Reyes is booked 09:20–10:00 (physician needed 09:50–10:30)."


def test_reason_anticoagulant_hold_and_past(clinic):
    patient = clinic.patients[0]
    MedicationHold.objects.create(patient=patient, drug=drug("warfarin"), last_dose_on=dt.date(2027, 1, 9))
    [problem] = reasons(clinic, local(MONDAY, 9), patient=patient)
    assert problem.code == "anticoagulant_hold"
    assert (
        problem.message
        == "The patient's Warfarin hold runs until 2027-01-14; a case at high bleeding risk can start on 2027-01-15."
    )
    assert [p.code for p in reasons(clinic, local(dt.date(2026, 12, 28), 9))] == ["starts_in_past"]


def test_reason_patient_already_booked(clinic):
    patient = clinic.patients[0]
    booking_create(
        request=CaseRequest(procedure_type=clinic.vp(), patient=patient, pins=clinic.resources()),
        actor=None,
        starts_at=local(MONDAY, 9),
    )
    problems = reasons(clinic, local(MONDAY, 10), patient=patient, pins={"room": clinic.rooms[1].pk})
    patient_problem = next(p for p in problems if p.role == "patient")
    assert patient_problem.message.startswith("The patient already has a case 08:00–12:00")


# --- properties ---------------------------------------------------------------------------

starts = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 7 * 12)), max_size=6)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(existing=starts, pick=st.integers(0, 30))
def test_property_every_returned_start_books_at_once(clinic, existing, pick):
    with transaction.atomic():
        for n, (day, slot_index) in enumerate(existing):
            start = local(MONDAY + dt.timedelta(days=day), 8) + dt.timedelta(minutes=5 * slot_index)
            try:
                booking_create(
                    request=CaseRequest(procedure_type=clinic.vp(), patient=clinic.patients[n]),
                    actor=None,
                    starts_at=start,
                )
            except (BookingInvalid, SlotUnavailable):
                continue  # an existing case that does not fit is simply not there
        slots = search(clinic, count=pick + 1)
        for slot in slots:
            with transaction.atomic():
                booking = book_slot(clinic, slot, clinic.patients[19])
                assert booking.starts_at == slot.start
                transaction.set_rollback(True)
        assert overlapping_active_legs() == []
        transaction.set_rollback(True)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(day=st.integers(0, 4), slot_index=st.integers(0, 84))
def test_property_cancelling_brings_the_start_back(clinic, day, slot_index):
    with transaction.atomic():
        start = local(MONDAY + dt.timedelta(days=day), 8) + dt.timedelta(minutes=5 * slot_index)
        pins = {"room": clinic.rooms[0].pk}
        window = {"date_from": start.date(), "date_to": start.date(), "pins": pins}
        before = [s.start for s in search(clinic, count=200, **window)]
        booking = booking_create(
            request=CaseRequest(procedure_type=clinic.vp(), patient=clinic.patients[0], pins=clinic.resources()),
            actor=None,
            starts_at=start,
        )
        during = [s.start for s in search(clinic, count=200, **window)]
        assert start not in during
        booking_cancel(actor=None, booking=booking, reason="patient_request")
        after = [s.start for s in search(clinic, count=200, **window)]
        assert after == before
        assert start in after
        transaction.set_rollback(True)


def test_reason_tech_permit_expired(clinic):
    clinic.techs[0].credentials.update(expires_on=dt.date(2027, 1, 10))
    problems = reasons(clinic, local(MONDAY, 9), pins={"rad_tech": clinic.techs[0].pk})
    assert [p.message for p in problems] == [
        "Tia Tech1's fluoroscopy permit for TX is not valid on 2027-01-11 (radiology tech needed 09:00–10:00)."
    ]


def test_reason_room_outside_its_own_hours(clinic):
    from tests import factories as f

    f.OpeningHoursFactory(
        site=clinic.site, room=clinic.rooms[0], weekday=0, opens_at=dt.time(12), closes_at=dt.time(18)
    )
    [problem] = reasons(clinic, local(MONDAY, 9), pins={"room": clinic.rooms[0].pk})
    assert problem.message == "Fluoro 1 is outside opening hours (procedure room needed 09:00–10:20)."
