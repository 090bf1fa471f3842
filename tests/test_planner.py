"""The day planner: plans the booking services accept leg for leg, that never move a booked
patient further than allowed, that fit at least what first come first served fits (and end the
day no later when they fit as many); applying one moves the cases through the reschedule
service, and a stale plan is refused and changes nothing."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.db import transaction

from core.models import AuditEvent
from outbox.models import ChangeEvent
from planner import model
from planner.inputs import Waiting
from planner.models import PlanRun, PlanStatus
from planner.services import PlanStale, carry_out, plan_apply, plan_day, plan_queue, plans_run_queued, steps_of
from scheduling.legroles import LEG_ROLES
from scheduling.models import Allocation, Booking, ProcedureType
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_create, booking_reschedule
from tests import factories as f
from tests.conftest import MONDAY, NOW, local

pytestmark = pytest.mark.django_db
BUDGET = 3.0


def privileged(clinic) -> None:
    """Both physicians may do the injections; the first also the augmentations."""
    for code in ("ESI-IL", "MBB", "SIJ"):
        f.CredentialFactory(staff=clinic.physicians[0], kind="privilege", procedure_code=code)
    for code in ("MBB", "SIJ", "RFA"):
        f.CredentialFactory(staff=clinic.physicians[1], kind="privilege", procedure_code=code)


def waiting_list(clinic, rng: random.Random, size: int) -> list[Waiting]:
    codes = ["VP", "ESI-IL", "MBB", "SIJ", "RFA"]
    procedures = {p.code: p for p in ProcedureType.objects.filter(code__in=codes)}
    patients = rng.sample(clinic.patients, size)
    return [Waiting(procedure=procedures[rng.choice(codes)], patient=patient) for patient in patients]


def book(clinic, hour: int, patient: int, minute: int = 0, **pins) -> Booking:
    return booking_create(
        actor=None,
        request=CaseRequest(
            procedure_type=clinic.vp(), patient=clinic.patients[patient], pins=clinic.resources(**pins)
        ),
        starts_at=local(MONDAY, hour, minute),
    )


def active_legs() -> set[tuple]:
    return set(
        Allocation.objects.filter(is_active=True).values_list(
            "booking_id", "role", "room_id", "equipment_id", "staff_id", "bay_id", "starts_at", "ends_at"
        )
    )


class _Undo(Exception):
    pass


def booked_as_planned(planned) -> None:
    """Book the plan with the services (a transaction rolled back) and compare every leg."""
    day, plan = planned.day, planned.plan
    cases = {case.ident: case for case in day.problem.cases}
    try:
        with transaction.atomic():
            moved, created = carry_out(None, steps_of(day, plan.placements))
            written = {b.pk: b for b in [*moved, *created]}
            by_ident = {}
            for booking in moved:
                by_ident[next(i for i, b in day.bookings.items() if b.pk == booking.pk)] = booking
            new = [ident for ident in plan.placements if ident not in day.bookings]
            for ident, booking in zip(new, created, strict=True):
                by_ident[ident] = booking
            for ident, booking in by_ident.items():
                placed = plan.placements[ident]
                legs = {leg.role: leg for leg in Allocation.objects.filter(booking=booking, is_active=True)}
                for pool in cases[ident].pools:
                    key = placed.keys.get(pool.role)
                    if key is None or pool.role not in LEG_ROLES or pool.role == "patient":
                        continue
                    leg = legs[pool.role]
                    assert (leg.resource_column, leg.resource_id) == key, (ident, pool.role)
                    assert leg.starts_at == day.instant(placed.start + pool.offset)
                    assert leg.ends_at == day.instant(placed.start + pool.offset + pool.minutes)
            assert written
            raise _Undo
    except _Undo:
        pass


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_plan_books_leg_for_leg_and_does_at_least_as_well_as_first_come_first_served(clinic, seed):
    privileged(clinic)
    rng = random.Random(seed)
    waiting = waiting_list(clinic, rng, rng.randint(5, 9))
    planned = plan_day(site=clinic.site, day=MONDAY, waiting=waiting, now=NOW, budget=BUDGET, seed=seed)
    plan, baseline = planned.plan.figures, planned.baseline.figures
    assert planned.verified is None
    assert plan.weight >= baseline.weight
    if plan.weight == baseline.weight and baseline.day_end is not None:
        assert plan.day_end is not None
        assert plan.day_end <= baseline.day_end
    booked_as_planned(planned)
    # The plan was booked on a copy: the day itself is as it was.
    assert not Booking.objects.exists()


@pytest.mark.parametrize("max_move", [0, 15, 30])
def test_no_booked_patient_moves_further_than_allowed_and_each_keeps_their_physician(clinic, max_move):
    privileged(clinic)
    booked = [
        book(clinic, 9, 0),
        book(clinic, 12, 1, room=clinic.rooms[1], c_arm=clinic.c_arms[1], recovery_bay=clinic.bays[1]),
        book(clinic, 14, 2, recovery_bay=clinic.bays[2]),
    ]
    waiting = waiting_list(clinic, random.Random(max_move), 4)
    planned = plan_day(site=clinic.site, day=MONDAY, waiting=waiting, now=NOW, budget=BUDGET, max_move=max_move)
    assert planned.verified is None
    placements = planned.plan.placements
    for booking in booked:
        placed = placements[f"b{booking.pk}"]
        moved = abs(planned.day.instant(placed.start) - booking.starts_at).total_seconds() / 60
        assert moved <= max_move
        assert placed.keys["physician"] == ("staff", clinic.physicians[0].pk)
    if max_move == 0:
        assert planned.plan.figures.moves == 0
    booked_as_planned(planned)


def test_a_day_that_can_end_earlier_is_applied_through_the_reschedule_service(clinic):
    admin = f.UserFactory(username="planner-admin", groups=["scheduler"])
    # Two cases with an hour's gap between them: the second can come forward.
    first = book(clinic, 8, 0)
    second = book(clinic, 10, 1, recovery_bay=clinic.bays[1])
    run = plan_queue(actor=admin, site=clinic.site, day=MONDAY, params={"budget_seconds": BUDGET})
    assert plans_run_queued() == 1
    run.refresh_from_db()
    assert run.status == PlanStatus.DONE, run.error
    result = run.result
    assert result["verified"] is True
    rows = {row["booking"]: row for row in result["cases"]}
    assert rows[second.pk]["moved_minutes"] == -30
    assert result["figures"]["plan"]["day_minutes"] < result["figures"]["as_booked"]["day_minutes"]
    applied = plan_apply(actor=admin, run=run)
    assert second.pk in applied["moved"]
    assert applied["created"] == []
    second.refresh_from_db()
    first.refresh_from_db()
    assert second.starts_at == local(MONDAY, 9, 30)
    assert abs(first.starts_at - local(MONDAY, 8)).total_seconds() <= 30 * 60
    assert AuditEvent.objects.filter(action="booking.reschedule", object_id=str(second.pk)).count() == 1
    assert AuditEvent.objects.filter(action="plan.apply", object_id=str(run.pk)).count() == 1
    assert ChangeEvent.objects.filter(kind="booking.rescheduled", booking=second).count() == 1
    run.refresh_from_db()
    assert run.status == PlanStatus.APPLIED
    with pytest.raises(PlanStale.__mro__[1]):
        plan_apply(actor=admin, run=run)


def test_a_stale_plan_is_refused_naming_the_case_and_changes_nothing(clinic):
    admin = f.UserFactory(username="planner-admin", groups=["scheduler"])
    book(clinic, 8, 0)
    second = book(clinic, 10, 1, recovery_bay=clinic.bays[1])
    run = plan_queue(actor=admin, site=clinic.site, day=MONDAY, params={"budget_seconds": BUDGET})
    plans_run_queued()
    run.refresh_from_db()
    # Someone moves the second case meanwhile.
    booking_reschedule(
        actor=None, booking=second, starts_at=local(MONDAY, 11), pins=clinic.resources(recovery_bay=clinic.bays[1])
    )
    before = active_legs()
    audits = AuditEvent.objects.count()
    with pytest.raises(PlanStale) as refused:
        plan_apply(actor=admin, run=run)
    assert refused.value.details == {"changed": [second.pk]}
    assert active_legs() == before
    assert AuditEvent.objects.count() == audits
    run.refresh_from_db()
    assert run.status == PlanStatus.DONE


def test_a_booked_case_that_breaks_a_rule_fails_the_plan_with_words(clinic):
    admin = f.UserFactory(username="planner-admin", groups=["scheduler"])
    case = book(clinic, 9, 0)
    # The physician's shift that day is taken away after the case was booked.
    clinic.physicians[0].shifts.filter(weekday=MONDAY.weekday()).delete()
    run = plan_queue(actor=admin, site=clinic.site, day=MONDAY, params={"budget_seconds": BUDGET})
    plans_run_queued()
    run.refresh_from_db()
    assert run.status == PlanStatus.FAILED
    assert f"b{case.pk}" in run.error
    assert "breaks a rule" in run.error


def test_more_recovery_bays_fit_more_and_a_room_fewer_fits_no_more(clinic):
    privileged(clinic)
    vp = clinic.vp()
    waiting = [Waiting(procedure=vp, patient=clinic.patients[i]) for i in range(10)]
    base = plan_day(site=clinic.site, day=MONDAY, waiting=waiting, now=NOW, budget=5)
    more = plan_day(
        site=clinic.site, day=MONDAY, waiting=waiting, now=NOW, budget=5, what_if=model.WhatIf(bays=3, nurses=1)
    )
    fewer = plan_day(
        site=clinic.site,
        day=MONDAY,
        waiting=waiting,
        now=NOW,
        budget=BUDGET,
        what_if=model.WhatIf(without_rooms=(clinic.rooms[1].pk,)),
    )
    assert more.plan.figures.fitted >= base.plan.figures.fitted
    assert fewer.plan.figures.fitted <= base.plan.figures.fitted
    # With a room fewer, nothing is placed in it.
    assert all(p.keys.get("room") != ("room", clinic.rooms[1].pk) for p in fewer.plan.placements.values())
    assert base.plan.figures.fitted < 10
    assert more.plan.figures.fitted > base.plan.figures.fitted


def test_runs_are_kept_an_hour_and_purged_after(clinic):
    from datetime import timedelta

    from django.utils import timezone

    from planner.services import plans_purge

    admin = f.UserFactory(username="planner-admin", groups=["scheduler"])
    run = plan_queue(actor=admin, site=clinic.site, day=MONDAY, params={})
    assert run.expires_at == timezone.now() + timedelta(hours=1)
    assert plans_purge(now=timezone.now() + timedelta(minutes=59)) == 0
    assert plans_purge(now=timezone.now() + timedelta(minutes=61)) == 1
    assert not PlanRun.objects.exists()


def test_a_case_whose_patient_is_due_already_is_not_moved(clinic):
    import time_machine

    early = book(clinic, 9, 0)
    later = book(clinic, 13, 1, recovery_bay=clinic.bays[1])
    # 08:15: the 09:00 patient (due at 08:00) is here or late; the 13:00 one is not due yet.
    with time_machine.travel(local(MONDAY, 8, 15), tick=False):
        planned = plan_day(site=clinic.site, day=MONDAY, budget=BUDGET)
    assert set(planned.day.bookings) == {f"b{later.pk}"}
    assert f"b{early.pk}" not in planned.plan.placements
    start = planned.day.instant(planned.plan.placements[f"b{later.pk}"].start)
    # Nor is the later patient asked to have arrived before now.
    assert start - timedelta(minutes=60) >= local(MONDAY, 8, 15)


def test_first_come_first_served_keeps_booked_cases_as_booked(clinic):
    booked = [book(clinic, 9, 0), book(clinic, 13, 1, recovery_bay=clinic.bays[1])]
    planned = plan_day(site=clinic.site, day=MONDAY, now=NOW, budget=BUDGET)
    baseline = planned.baseline
    for booking in booked:
        placed = baseline.placements[f"b{booking.pk}"]
        assert planned.day.instant(placed.start) == booking.starts_at
    assert baseline.figures.moves == 0
    assert baseline.figures.changes == 0
