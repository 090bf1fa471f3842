"""The procedure day's services behind the board and the flow: projected delays of a late case
reach every case it holds up and no other; a start that would overlap another case is refused;
corrected step times are audited; readiness says "due on the day" before it; the board's queries
do not grow with the cases; downtime lists swaps that the reschedule service applies."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.errors import BookingInvalid, InvalidTransition, NotPermitted, SlotUnavailable
from core.models import AuditEvent
from outbox.models import Alert
from procedure_day.board import day_board, day_delays
from procedure_day.models import CaseChecklist
from procedure_day.readiness import DUE_ON_DAY, evaluate_with, load_readiness, summarize
from procedure_day.services.corrections import step_time_correct
from procedure_day.services.transitions import booking_start_procedure
from rooms.models import Downtime
from scheduling.models import Allocation, Booking
from scheduling.request import CaseRequest
from scheduling.selectors import site_day_schedule
from scheduling.services.bookings import booking_create
from scheduling.services.downtime import downtime_create
from scheduling.services.swaps import downtime_impact, swap_apply
from tests import factories as f
from tests.conftest import MONDAY, local
from tests.test_late import esi, vp_at_nine

pytestmark = pytest.mark.django_db


def at(hour: int, minute: int = 0):
    return time_machine.travel(local(MONDAY, hour, minute), tick=False)


def vp(clinic, hour: int, minute: int, *, patient: int, bay: int) -> Booking:
    return booking_create(
        request=CaseRequest(
            procedure_type=clinic.vp(),
            patient=clinic.patients[patient],
            pins=clinic.resources(recovery_bay=clinic.bays[bay]),
        ),
        actor=None,
        starts_at=local(MONDAY, hour, minute),
    )


def in_procedure(booking: Booking, hour: int = 9, minute: int = 0) -> Booking:
    Booking.objects.filter(pk=booking.pk).update(
        status="in_procedure", procedure_started_at=local(MONDAY, hour, minute)
    )
    booking.refresh_from_db()
    return booking


def in_recovery(booking: Booking, *, checked_in_minute: int = 0) -> None:
    """Checked in at 08:00 (or a few minutes after), ready 08:40, procedure 09:00-10:00, in
    recovery since 10:20."""
    Booking.objects.filter(pk=booking.pk).update(
        status="in_recovery",
        checked_in_at=local(MONDAY, 8, checked_in_minute),
        ready_at=local(MONDAY, 8, 40),
        procedure_started_at=local(MONDAY, 9),
        procedure_ended_at=local(MONDAY, 10),
        recovery_started_at=local(MONDAY, 10, 20),
    )


def ready(booking: Booking) -> Booking:
    """Past the gate by an override, so starting checks only the legs."""
    CaseChecklist.objects.create(booking=booking, override_at=local(MONDAY, 7), override_reason="test")
    Booking.objects.filter(pk=booking.pk).update(status="ready")
    booking.refresh_from_db()
    return booking


@pytest.fixture
def day(clinic):
    """A (VP 09:00 Fluoro 1) runs late; B (VP 10:20, same room and team) follows it; D (ESI
    11:40 in Fluoro 1) follows B; C (ESI 10:30 in Fluoro 2, other team) shares nothing with
    them."""
    a = in_procedure(vp_at_nine(clinic))
    b = vp(clinic, 10, 20, patient=1, bay=1)
    c = esi(clinic, 10, 30, bay=2, patient=2, room=1, c_arm=1)
    d = esi(clinic, 11, 40, bay=2, patient=3, room=0, c_arm=1)
    return {"a": a, "b": b, "c": c, "d": d}


# --- running late, ahead of time ----------------------------------------------------------


def test_a_late_case_delays_every_case_it_holds_up_and_only_them(clinic, day):
    a, b, c, d = day["a"], day["b"], day["c"], day["d"]
    # A's procedure should have ended at 10:00; at 10:25 it is 25 minutes over.
    delays = day_delays(clinic.site, MONDAY, now=local(MONDAY, 10, 25))
    assert set(delays) == {a.pk, b.pk, d.pk}
    assert (delays[a.pk].minutes, delays[a.pk].running_late) == (25, True)
    # B's room is A's until 10:45 (turnover included): B starts 25 minutes late.
    assert (delays[b.pk].minutes, delays[b.pk].running_late, delays[b.pk].because) == (25, False, (a.pk,))
    # D is not next to A at all: it waits for B, which waits for A.
    assert (delays[d.pk].minutes, delays[d.pk].because) == (25, (b.pk,))
    assert c.pk not in delays


def test_no_delay_while_the_late_case_is_still_within_its_plan_or_once_it_ended(clinic, day):
    assert day_delays(clinic.site, MONDAY, now=local(MONDAY, 9, 59)) == {}
    Booking.objects.filter(pk=day["a"].pk).update(procedure_ended_at=local(MONDAY, 9, 58))
    assert day_delays(clinic.site, MONDAY, now=local(MONDAY, 10, 25)) == {}


def test_a_small_overrun_is_absorbed_by_the_gap_before_the_next_case(clinic):
    a = in_procedure(vp_at_nine(clinic))
    later = vp(clinic, 11, 0, patient=1, bay=1)
    # Room free from 10:20; 10 minutes over moves it to 10:30, still before 11:00.
    delays = day_delays(clinic.site, MONDAY, now=local(MONDAY, 10, 10))
    assert set(delays) == {a.pk}
    assert later.pk not in delays


def test_the_board_marks_late_and_delayed_bars(clinic, day):
    board = day_board(f.UserFactory(groups=["nurse"]), clinic.site, MONDAY, now=local(MONDAY, 10, 25))
    bars = [bar for group in board.groups for row in group.rows for bar in row.bars]
    assert len(bars) == len(site_day_schedule(clinic.site, MONDAY)) == board.bar_count
    late = {bar.booking_id: bar.delay.minutes for bar in bars if bar.delay is not None}
    assert late == {day["a"].pk: 25, day["b"].pk: 25, day["d"].pk: 25}
    assert board.late == [day["a"].pk]
    assert board.now_left is not None


# --- starting at the real time ------------------------------------------------------------


def test_a_start_while_the_room_and_team_are_still_in_another_procedure_is_refused(clinic, day):
    b = ready(day["b"])
    with at(10, 10), pytest.raises(SlotUnavailable) as refused:
        booking_start_procedure(actor=None, booking=b)
    assert {c["booking"] for c in refused.value.conflicts} == {day["a"].pk}
    assert any("whose procedure has not ended" in c["message"] for c in refused.value.conflicts)
    b.refresh_from_db()
    assert (b.status, b.starts_at) == ("ready", local(MONDAY, 10, 20))


def test_an_early_start_that_would_overlap_another_case_is_refused_and_nothing_moves(clinic):
    first = vp_at_nine(clinic)
    second = ready(vp(clinic, 10, 20, patient=1, bay=1))
    before = sorted(Allocation.objects.filter(booking=second, is_active=True).values_list("starts_at", "ends_at"))
    # 40 minutes early: Fluoro 1 and the team are the first case's until 10:20.
    with at(9, 40), pytest.raises(SlotUnavailable) as refused:
        booking_start_procedure(actor=None, booking=second)
    assert {c["booking"] for c in refused.value.conflicts} == {first.pk}
    assert {c["role"] for c in refused.value.conflicts} >= {"room", "c_arm", "rad_tech"}
    after = sorted(Allocation.objects.filter(booking=second, is_active=True).values_list("starts_at", "ends_at"))
    assert after == before


def test_a_start_that_fits_moves_the_legs_to_the_real_time(clinic):
    booking = ready(esi(clinic, 10, 30, bay=2, patient=2, room=1, c_arm=1))
    planned = {
        leg.role: (leg.starts_at, leg.ends_at) for leg in Allocation.objects.filter(booking=booking, is_active=True)
    }
    with at(10, 37):
        booking_start_procedure(actor=None, booking=booking)
    booking.refresh_from_db()
    assert (booking.status, booking.starts_at) == ("in_procedure", local(MONDAY, 10, 37))
    moved = {
        leg.role: (leg.starts_at, leg.ends_at) for leg in Allocation.objects.filter(booking=booking, is_active=True)
    }
    seven = dt.timedelta(minutes=7)
    assert moved == {role: (start + seven, end + seven) for role, (start, end) in planned.items()}
    event = AuditEvent.objects.filter(action="booking.start_procedure", object_id=str(booking.pk)).get()
    assert event.details["minutes_from_plan"] == 7


# --- corrected step times ------------------------------------------------------------------


def test_a_corrected_step_time_is_audited_with_both_times_and_the_reason(clinic):
    nurse = f.UserFactory(username="nurse-fix", groups=["nurse"])
    booking = vp_at_nine(clinic)
    in_recovery(booking, checked_in_minute=5)
    with at(10, 30):
        step_time_correct(
            actor=nurse,
            booking=booking,
            step="recovery_started_at",
            at=local(MONDAY, 10, 2),
            reason="Pressed late; the patient was in Bay 1 at 10:02",
        )
    booking.refresh_from_db()
    assert booking.recovery_started_at == local(MONDAY, 10, 2)
    event = AuditEvent.objects.get(action="booking.step_time_correct", object_id=str(booking.pk))
    assert event.actor_label == "nurse-fix"
    assert (event.details["step"], event.details["reason"]) == (
        "recovery_started_at",
        "Pressed late; the patient was in Bay 1 at 10:02",
    )
    assert dt.datetime.fromisoformat(event.details["from"]) == local(MONDAY, 10, 20)
    assert dt.datetime.fromisoformat(event.details["to"]) == local(MONDAY, 10, 2)


@pytest.mark.parametrize(
    ("step", "hour", "minute", "reason", "code"),
    [
        ("recovery_started_at", 9, 50, "typo", "before_previous_step"),
        ("checked_in_at", 8, 50, "typo", "after_next_step"),
        ("recovery_started_at", 10, 40, "typo", "in_future"),
        ("recovery_started_at", 10, 5, "  ", "reason_required"),
        ("created_at", 10, 5, "typo", "unknown_step"),
    ],
)
def test_a_correction_out_of_order_in_the_future_or_without_a_reason_is_refused(
    clinic, step, hour, minute, reason, code
):
    booking = vp_at_nine(clinic)
    in_recovery(booking, checked_in_minute=5)
    with at(10, 30), pytest.raises(BookingInvalid) as refused:
        step_time_correct(actor=None, booking=booking, step=step, at=local(MONDAY, hour, minute), reason=reason)
    assert code in [p.code for p in refused.value.problems]
    assert not AuditEvent.objects.filter(action="booking.step_time_correct").exists()


def test_a_step_not_recorded_cannot_be_corrected_and_a_tech_corrects_nothing(clinic):
    booking = vp_at_nine(clinic)
    with at(8), pytest.raises(InvalidTransition):
        step_time_correct(actor=None, booking=booking, step="checked_in_at", at=local(MONDAY, 7), reason="x")
    with at(8), pytest.raises(NotPermitted):
        step_time_correct(
            actor=f.UserFactory(groups=["tech"]), booking=booking, step="checked_in_at", at=local(MONDAY, 7), reason="x"
        )


# --- readiness on the right day ------------------------------------------------------------


def test_consent_fasting_and_the_pickup_are_due_on_the_day_before_it_and_missing_on_it(clinic):
    booking = vp_at_nine(clinic)
    patient = booking.patient
    patient.escort_name, patient.escort_phone = "Pat Escort", "555-0101"
    patient.save()
    booking.refresh_from_db()
    inputs = load_readiness(booking)
    week_before = local(MONDAY, 9) - dt.timedelta(days=7)
    items = {item.code: item.status for item in evaluate_with(booking, inputs, now=week_before)}
    assert (items["consent"], items["fasting"], items["escort"]) == (DUE_ON_DAY, DUE_ON_DAY, DUE_ON_DAY)
    summary = summarize(booking, inputs, now=week_before)
    assert set(summary.due) == {"consent", "fasting", "escort"}
    assert not {"consent", "fasting", "escort"} & set(summary.outstanding)
    on_the_day = {item.code: item.status for item in evaluate_with(booking, inputs, now=local(MONDAY, 7))}
    assert (on_the_day["consent"], on_the_day["fasting"], on_the_day["escort"]) == ("missing", "missing", "missing")


def test_an_escort_not_named_is_missing_even_before_the_day(clinic):
    booking = vp_at_nine(clinic)
    patient = booking.patient
    patient.escort_name = ""
    patient.save()
    booking.refresh_from_db()
    week_before = local(MONDAY, 9) - dt.timedelta(days=7)
    items = {item.code: item.status for item in evaluate_with(booking, load_readiness(booking), now=week_before)}
    assert items["escort"] == "missing"


# --- the board's queries ---------------------------------------------------------------------


def _board_statements(user, site, day) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        day_board(user, site, day)
    return [q["sql"][:60] for q in queries]


def test_the_board_takes_the_same_queries_for_5_and_60_cases(db):
    from devtools.management.commands.bench_pages import book_up_to, build, remove
    from scheduling.catalogue import install_default_catalogue
    from scheduling.models import ProcedureType

    install_default_catalogue(ProcedureType)
    bench = build(timezone.now().date())
    user = f.UserFactory(groups=["nurse"])
    try:
        book_up_to(bench, 5, any_physician=True)
        day_board(user, bench.site, bench.day)  # the user's roles are read once, then remembered
        five = _board_statements(user, bench.site, bench.day)
        board = day_board(user, bench.site, bench.day)
        assert board.bar_count == len(site_day_schedule(bench.site, bench.day)) > 0
        book_up_to(bench, 60, any_physician=True)
        sixty = _board_statements(user, bench.site, bench.day)
        board = day_board(user, bench.site, bench.day)
        assert Booking.objects.filter(site=bench.site).count() == 60
        assert board.bar_count == len(site_day_schedule(bench.site, bench.day))
        assert five == sixty
    finally:
        remove(bench.site)


# --- downtime with swaps ---------------------------------------------------------------------


def test_a_c_arm_downtime_lists_the_hit_cases_with_swaps_and_one_applies(clinic):
    first = vp_at_nine(clinic)
    other = esi(clinic, 13, 0, bay=2, patient=2, room=0, c_arm=0)
    scheduler = f.UserFactory(username="sched-swap", groups=["scheduler"])
    down = downtime_create(
        actor=scheduler,
        data={
            "equipment_id": clinic.c_arms[0].pk,
            "starts_at": local(MONDAY, 8),
            "ends_at": local(MONDAY, 14),
            "reason": "qa",
        },
    )
    alerts = list(Alert.objects.filter(kind="downtime_impact").order_by("booking_id"))
    assert [a.booking_id for a in alerts] == [first.pk, other.pk]
    assert "09:00 with Dr. Ana Reyes" in alerts[0].message
    # The alert says what is free instead, not only which booking needs the C-arm.
    assert "First swap found: C-arm 2 instead, at 09:00." in alerts[0].message
    assert "13:00 with Dr. Ben Okafor" in alerts[1].message
    hit = downtime_impact(down)
    assert [h.booking.pk for h in hit] == [first.pk, other.pk]
    swaps = hit[0].swaps
    kinds = [s.kind for s in swaps]
    assert kinds[0] == "c_arm"
    assert swaps[0].starts_at == first.starts_at
    assert swaps[0].pins["c_arm"] == clinic.c_arms[1].pk
    assert "time" in kinds
    swap_apply(actor=scheduler, booking=first, starts_at=swaps[0].starts_at, pins=swaps[0].pins)
    legs = {leg.role: leg for leg in Allocation.objects.filter(booking=first, is_active=True)}
    assert legs["c_arm"].equipment_id == clinic.c_arms[1].pk
    assert first.pk not in [h.booking.pk for h in downtime_impact(Downtime.objects.get(pk=down.pk))]


def test_a_start_in_a_room_another_case_is_still_in_is_refused_whatever_the_team(clinic):
    a = in_procedure(vp_at_nine(clinic))
    # Fluoro 1 after A's planned room time, with the other physician, tech and C-arm 2.
    other = ready(esi(clinic, 10, 30, bay=2, patient=2, room=0, c_arm=1))
    with at(10, 30), pytest.raises(SlotUnavailable) as refused:
        booking_start_procedure(actor=None, booking=other)
    assert [(c["role"], c["booking"]) for c in refused.value.conflicts] == [("room", a.pk)]


def test_a_start_that_runs_into_downtime_is_refused(clinic):
    booking = ready(esi(clinic, 10, 30, bay=2, patient=2, room=1, c_arm=1))
    Downtime.objects.create(
        equipment=clinic.c_arms[1], starts_at=local(MONDAY, 11, 5), ends_at=local(MONDAY, 12), reason="repair"
    )
    with at(10, 45), pytest.raises(SlotUnavailable) as refused:
        booking_start_procedure(actor=None, booking=booking)
    assert "C-arm 2" in refused.value.conflicts[0]["message"]
    assert "is down" in refused.value.conflicts[0]["message"]


def test_each_step_is_corrected_only_by_the_roles_that_record_it(clinic):
    booking = vp_at_nine(clinic)
    in_recovery(booking)
    scheduler = f.UserFactory(groups=["scheduler"])
    nurse = f.UserFactory(groups=["nurse"])
    with at(10, 30):
        with pytest.raises(NotPermitted):
            step_time_correct(
                actor=scheduler, booking=booking, step="recovery_started_at", at=local(MONDAY, 10, 5), reason="x"
            )
        step_time_correct(actor=scheduler, booking=booking, step="checked_in_at", at=local(MONDAY, 7, 50), reason="x")
        step_time_correct(actor=nurse, booking=booking, step="recovery_started_at", at=local(MONDAY, 10, 5), reason="x")
        with pytest.raises(BookingInvalid) as refused:
            step_time_correct(
                actor=nurse,
                booking=booking,
                step="checked_in_at",
                at=local(MONDAY, 7) - dt.timedelta(days=3),
                reason="x",
            )
    assert "before_the_day" in [p.code for p in refused.value.problems]


@pytest.mark.parametrize(
    ("status", "ended", "steps"),
    [
        ("scheduled", False, ["check_in", "no_show"]),
        ("checked_in", False, ["ready", "no_show"]),
        ("ready", False, ["start_procedure"]),
        ("in_procedure", False, ["end_procedure"]),
        ("in_procedure", True, ["start_recovery"]),
        ("in_recovery", True, ["ready_for_discharge"]),
        ("ready_for_discharge", True, ["discharge"]),
        ("discharged", True, []),
        ("cancelled", False, []),
    ],
)
def test_the_next_steps_follow_the_statuses_each_step_starts_from(status, ended, steps):
    from procedure_day.services.common import next_steps

    booking = Booking(status=status, procedure_ended_at=local(MONDAY, 10) if ended else None)
    assert next_steps(booking) == steps
