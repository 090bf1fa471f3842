"""Planning a day, and applying a plan.

- ``plan_day`` loads the day through the rulebook (``planner.inputs``), places it first come
  first served (the baseline) and with the model (``planner.model``), then replays the plan
  through the booking services on a copy of the day (a transaction rolled back): a plan that
  the services would refuse is never offered.
- ``plan_apply`` carries a plan out: every moved case through the reschedule service (all
  together, ``bookings_move_together``) and every waiting-list case through ``booking_create``,
  in one transaction, only while none of the planned cases has changed since the plan was made.
- ``plan_queue``, ``plans_run_queued`` and ``plans_purge``: a plan is solved by a worker (a
  budget of seconds is too long for a request), kept for ``PLAN_KEEP_MINUTES`` and then deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.audit import audit_record
from core.errors import InvalidTransition, SchedulingError
from patients.models import Patient
from planner import model
from planner.inputs import Day, Waiting, load_day, movable, pins_of, stamp
from planner.models import PlanRun, PlanStatus
from rooms.models import Equipment, ProcedureRoom, RecoveryBay, Site
from scheduling.legroles import LegRole, kind_of_column
from scheduling.models import ACTIVE_STATUSES, Allocation, Booking, ProcedureType
from scheduling.request import CaseRequest
from scheduling.services.bookings import Move, booking_create, bookings_move_together, lock_for_cases
from staff.models import StaffMember

logger = logging.getLogger(__name__)
Progress = Callable[[int, str], None]


class PlanStale(InvalidTransition):
    """Cases the plan moves have changed since it was made: it is not applied."""

    code = "plan_stale"


# --- the plan, as data --------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One case of a plan: a booked case moved (``booking``) or a waiting case booked
    (``request``), at ``starts_at`` on exactly ``pins``."""

    ident: str
    starts_at: datetime
    pins: Mapping[str, int]
    booking: Booking | None = None
    request: CaseRequest | None = None


def steps_of(day: Day, placements: Mapping[str, model.Placement]) -> list[Step]:
    """What carrying out the plan writes: the booked cases whose time or resources change, and
    every waiting case it fits."""
    cases = {case.ident: case for case in day.problem.cases}
    steps = []
    for ident, placed in placements.items():
        case = cases[ident]
        if ident in day.bookings:
            unchanged = all(placed.keys.get(role) == key for role, key in case.current_keys.items())
            if placed.start == case.current and unchanged:
                continue
            steps.append(Step(ident, day.instant(placed.start), pins_of(placed.keys), booking=day.bookings[ident]))
        else:
            steps.append(Step(ident, day.instant(placed.start), pins_of(placed.keys), request=day.requests[ident]))
    return steps


def carry_out(actor: Any, steps: list[Step]) -> tuple[list[Booking], list[Booking]]:
    """Write the steps through the booking services, in the caller's transaction: the moves
    together, then the new cases. Raises what the services raise; nothing is kept then."""
    lock_for_cases(
        (s.pins, s.booking.patient_id if s.booking is not None else s.request.patient_id if s.request else None)
        for s in steps
    )
    moves = [Move(s.booking, s.starts_at, dict(s.pins)) for s in steps if s.booking is not None]
    moved = bookings_move_together(actor=actor, moves=moves)
    created = [
        booking_create(actor=actor, request=s.request.pinning(**s.pins), starts_at=s.starts_at)
        for s in steps
        if s.request is not None
    ]
    return moved, created


class _RolledBack(Exception):
    pass


def verify(day: Day, placements: Mapping[str, model.Placement]) -> str | None:
    """Book the plan with the services on a copy of the day (a transaction rolled back): None
    if every case books leg for leg, else what refused it."""
    steps = steps_of(day, placements)
    try:
        with transaction.atomic():
            carry_out(None, steps)
            raise _RolledBack
    except _RolledBack:
        return None
    except SchedulingError as exc:
        return exc.message


# --- planning -----------------------------------------------------------------------------------


@dataclass
class Planned:
    day: Day
    plan: model.Result
    baseline: model.Result
    as_booked: model.Figures | None
    verified: str | None


def plan_day(
    *,
    site: Site,
    day: date,
    waiting: list[Waiting] | tuple[Waiting, ...] = (),
    now: datetime | None = None,
    budget: float | None = None,
    seed: int = 0,
    max_move: int | None = None,
    what_if: model.WhatIf | None = None,
    progress: Progress | None = None,
) -> Planned:
    """Plan the day (see the module). Raises model.Infeasible if a booked case cannot keep a
    place within its allowed move (the day as booked breaks a rule)."""
    now = now or timezone.now()
    budget = budget if budget is not None else settings.PLAN_BUDGET_SECONDS
    report = progress or (lambda percent, stage: None)
    report(5, "Reading the day")
    loaded = load_day(
        site=site,
        day=day,
        waiting=waiting,
        now=now,
        max_move=max_move if max_move is not None else settings.PLAN_MAX_MOVE_MINUTES,
    )
    if what_if is not None:
        loaded.problem = model.with_capacity(loaded.problem, what_if)
    report(15, "First come, first served")
    baseline = model.first_come_first_served(loaded.problem)
    as_booked = None
    if loaded.bookings:
        as_booked = model.figures(
            loaded.problem,
            {
                case.ident: model.Placement(case.ident, case.current, case.current_keys)
                for case in loaded.problem.cases
                if case.current is not None
            },
        )
    report(20, "Solving")
    plan = model.solve(
        loaded.problem,
        budget=budget,
        seed=seed,
        on_stage=lambda name, share: report(20 + int(70 * share), name),
        hint=baseline.placements,
    )
    report(92, "Checking the plan with the booking rules")
    verified = verify(loaded, plan.placements) if what_if is None else None
    report(100, "Done")
    return Planned(loaded, plan, baseline, as_booked, verified)


def _names(keys: set[model.Key]) -> dict[model.Key, str]:
    wanted: dict[str, set[int]] = {}
    for column, pk in keys:
        wanted.setdefault(column, set()).add(pk)
    names: dict[model.Key, str] = {}
    for column, table in (
        ("room", ProcedureRoom),
        ("equipment", Equipment),
        ("staff", StaffMember),
        ("bay", RecoveryBay),
    ):
        for row in table.objects.filter(pk__in=wanted.get(column, ())):
            names[(column, row.pk)] = str(row)
    return names


def _figures(day: Day, figures: model.Figures | None) -> dict[str, Any] | None:
    if figures is None:
        return None
    out = figures.as_dict()
    end = figures.day_end
    out["day_end"] = day.instant(end).isoformat() if end is not None else None
    out["day_minutes"] = end - day.problem.opens if end is not None else None
    return out


def result_data(planned: Planned) -> dict[str, Any]:
    """The plan as the API and the page show it: ids, codes and times (in the site's zone)."""
    day, plan = planned.day, planned.plan
    cases = {case.ident: case for case in day.problem.cases}
    keys = {
        key
        for p in plan.placements.values()
        for key in p.keys.values()
        if key[0] in ("room", "equipment", "staff", "bay")
    }
    keys |= {key for case in cases.values() for key in case.current_keys.values()}
    names = _names(keys)
    rows = []
    for ident, placed in sorted(plan.placements.items(), key=lambda item: (item[1].start, item[0])):
        case = cases[ident]
        booking = day.bookings.get(ident)
        legs = []
        for pool in case.pools:
            key = placed.keys.get(pool.role)
            if key is None or pool.role not in LegRole.values or pool.role == LegRole.PATIENT:
                continue
            legs.append(
                {
                    "role": pool.role,
                    "resource": {"kind": kind_of_column(key[0]), "id": key[1], "name": names.get(key, "")},
                    "start": day.instant(placed.start + pool.offset).isoformat(),
                    "end": day.instant(placed.start + pool.offset + pool.minutes).isoformat(),
                }
            )
        changed = sorted(role for role, key in case.current_keys.items() if placed.keys.get(role) != key)
        rows.append(
            {
                "case": ident,
                "booking": booking.pk if booking else None,
                "waiting": int(ident[1:]) if ident.startswith("w") else None,
                "procedure_type": day.requests[ident].procedure_type.code,
                "from": day.instant(case.current).isoformat() if case.current is not None else None,
                "start": day.instant(placed.start).isoformat(),
                "moved_minutes": placed.start - case.current if case.current is not None else None,
                "changed": changed,
                "pins": pins_of(placed.keys),
                "legs": legs,
            }
        )
    unplaced = [
        {"case": ident, "waiting": int(ident[1:]) if ident.startswith("w") else None}
        for ident in plan.unplaced(day.problem)
    ]
    bound_end = plan.bound_day_end
    plan_end = plan.figures.day_end
    gap = None
    if bound_end is not None and plan_end is not None and bound_end > day.problem.opens:
        gap = round((plan_end - bound_end) / (bound_end - day.problem.opens), 4)
    return {
        "status": plan.status,
        "seconds": round(plan.seconds, 2),
        "opens": day.instant(day.problem.opens).isoformat(),
        "figures": {
            "plan": _figures(day, plan.figures),
            "first_come_first_served": _figures(day, planned.baseline.figures),
            "as_booked": _figures(day, planned.as_booked),
        },
        "bound": {
            "weight": plan.bound_weight,
            "day_end": day.instant(bound_end).isoformat() if bound_end is not None else None,
            "gap": gap,
            "gap_cases": round(max(0, (plan.bound_weight or 0) - plan.figures.weight) / plan.bound_weight, 4)
            if plan.bound_weight
            else 0.0,
        },
        "stages": [
            {"name": s.name, "status": s.status, "value": s.value, "bound": s.bound, "seconds": round(s.seconds, 2)}
            for s in plan.stages
        ],
        "cases": rows,
        "unplaced": unplaced,
        "snapshot": {str(pk): stamp for pk, stamp in day.snapshot.items()},
        "verified": planned.verified is None,
        "refused": planned.verified,
    }


# --- runs ---------------------------------------------------------------------------------------


def waiting_from(params: Mapping[str, Any]) -> list[Waiting]:
    """The waiting list of a run's parameters (ids and codes), read back as cases."""
    items = list(params.get("waiting_list", []))
    procedures = {p.code: p for p in ProcedureType.objects.filter(code__in={i["procedure_type"] for i in items})}
    patients = Patient.objects.in_bulk([i["patient"] for i in items])
    return [
        Waiting(
            procedure=procedures[item["procedure_type"]],
            patient=patients[item["patient"]],
            levels=item.get("levels", 1),
            sedation=item.get("sedation"),
            earliest=datetime.fromisoformat(item["earliest"]) if item.get("earliest") else None,
            latest=datetime.fromisoformat(item["latest"]) if item.get("latest") else None,
            physician=item.get("physician"),
            preferred_physician=item.get("preferred_physician"),
            priority=item.get("priority", 1),
        )
        for item in items
    ]


def plan_queue(*, actor: Any, site: Site, day: date, params: dict[str, Any]) -> PlanRun:
    """Ask for a plan; a worker solves it (``plans_run_queued``). ``params``: ``waiting_list``
    (ids and codes), ``budget_seconds``, ``seed``, ``max_move_minutes``, ``what_if``."""
    now = timezone.now()
    active = PlanRun.objects.filter(
        requested_by_id=getattr(actor, "pk", None), status__in=[PlanStatus.QUEUED, PlanStatus.RUNNING]
    )
    if active.count() >= ACTIVE_PLANS_PER_PERSON:
        raise InvalidTransition(
            f"You have {ACTIVE_PLANS_PER_PERSON} plans being made; wait for one to finish.",
            details={"active": active.count()},
        )
    run = PlanRun.objects.create(
        site=site,
        day=day,
        requested_by=actor,
        params=params,
        expires_at=now + timedelta(minutes=settings.PLAN_KEEP_MINUTES),
    )
    audit_record(actor=actor, action="plan.request", obj=run, details={"day": day.isoformat(), "site": site.pk})
    return run


# Capacity is measured, not a day to apply: booked cases may go anywhere in their day.
WHAT_IF_MOVE = 24 * 60
# Plans one person may have queued or running at once.
ACTIVE_PLANS_PER_PERSON = 3


def _budget(params: Mapping[str, Any]) -> float:
    return float(params.get("budget_seconds") or settings.PLAN_BUDGET_SECONDS)


def _what_if(
    run: PlanRun, params: Mapping[str, Any], change: model.WhatIf, changed: Planned, progress: Progress
) -> dict[str, Any]:
    """The day (or its week, Monday to Friday) planned as it is beside the plan with the
    change: how many more cases fit and how much earlier each day ends."""
    days = [run.day]
    if (params.get("what_if") or {}).get("week"):
        monday = run.day - timedelta(days=run.day.weekday())
        days = sorted({run.day, *(monday + timedelta(days=n) for n in range(5))})
    budget = _budget(params) / (2 if len(days) > 1 else 1)
    rows: list[dict[str, Any]] = []
    for number, day in enumerate(days, start=1):
        progress(min(99, 50 + 50 * number // (len(days) + 1)), f"Comparing {day:%A}")
        waiting = waiting_from(params) if day == run.day else []
        common: dict[str, Any] = {
            "site": run.site,
            "day": day,
            "waiting": waiting,
            "budget": budget,
            "seed": params.get("seed", 0),
            "max_move": WHAT_IF_MOVE,
        }
        base = plan_day(**common)
        with_change = changed if day == run.day else plan_day(**common, what_if=change)
        rows.append(
            {
                "date": day.isoformat(),
                "base": _figures(base.day, base.plan.figures),
                "changed": _figures(with_change.day, with_change.plan.figures),
            }
        )
    more = sum((row["changed"] or {}).get("fitted", 0) - (row["base"] or {}).get("fitted", 0) for row in rows)
    earlier = sum(
        (row["base"]["day_minutes"] or 0) - (row["changed"]["day_minutes"] or 0)
        for row in rows
        if row["base"] and row["changed"] and row["base"]["fitted"] == row["changed"]["fitted"]
    )
    return {
        "asked": change.as_dict(),
        "base": rows[days.index(run.day)]["base"],
        "days": rows,
        "more_cases": more,
        "earlier_minutes": earlier,
    }


def plan_execute(run: PlanRun) -> PlanRun:
    """Solve a claimed run and keep its result (or why it failed) on it."""

    def progress(percent: int, stage: str) -> None:
        PlanRun.objects.filter(pk=run.pk).update(progress=percent, stage=stage[:80])

    params = run.params or {}
    try:
        what_if = model.WhatIf.of(params["what_if"]) if params.get("what_if") else None
        week = bool((params.get("what_if") or {}).get("week"))
        planned = plan_day(
            site=run.site,
            day=run.day,
            waiting=waiting_from(params),
            budget=_budget(params) / (2 if week else 1),
            seed=params.get("seed", 0),
            max_move=WHAT_IF_MOVE if what_if is not None else params.get("max_move_minutes"),
            what_if=what_if,
            progress=progress,
        )
        data = result_data(planned)
        if what_if is not None:
            data["what_if"] = _what_if(run, params, what_if, planned, progress)
        run.result, run.status, run.error = data, PlanStatus.DONE, ""
    except model.Infeasible as exc:
        run.status = PlanStatus.FAILED
        run.error = (
            f"The day as booked breaks a rule for {len(exc.idents)} case(s) ({', '.join(exc.idents)}); "
            "look at them on the day board first."
        )[:500]
    except SchedulingError as exc:
        run.status, run.error = PlanStatus.FAILED, exc.message[:500]
    except Exception as exc:
        # The type only: a message could quote data. The run says it failed; the log says how.
        logger.error("plan %s failed (%s)", run.pk, type(exc).__name__)
        run.status, run.error = PlanStatus.FAILED, "The planner failed; try again, or with a larger budget."
    run.finished_at = timezone.now()
    run.progress = 100
    # Only while it is still this worker's: a run failed meanwhile as stuck stays failed.
    PlanRun.objects.filter(pk=run.pk, status=PlanStatus.RUNNING).update(
        result=run.result, status=run.status, error=run.error, finished_at=run.finished_at, progress=100
    )
    run.refresh_from_db()
    return run


def plans_run_queued(*, limit: int = 1) -> int:
    """Claim the oldest queued runs (one conditional UPDATE each, so two workers never take one)
    and solve them; returns how many. A run left running by a worker that died is failed."""
    now = timezone.now()
    PlanRun.objects.filter(status=PlanStatus.RUNNING, started_at__lt=now - timedelta(minutes=10)).update(
        status=PlanStatus.FAILED, error="The worker stopped while planning; run it again.", finished_at=now
    )
    done = 0
    for pk in (
        PlanRun.objects.filter(status=PlanStatus.QUEUED, expires_at__gt=now)
        .order_by("created_at")[: limit * 4]
        .values_list("pk", flat=True)
    ):
        if done >= limit:
            break
        claimed = PlanRun.objects.filter(pk=pk, status=PlanStatus.QUEUED).update(
            status=PlanStatus.RUNNING, started_at=timezone.now(), progress=1, stage="Starting"
        )
        if claimed:
            plan_execute(PlanRun.objects.select_related("site").get(pk=pk))
            done += 1
    return done


def plans_purge(*, now: datetime | None = None) -> int:
    """Delete runs past their keeping time; returns how many."""
    deleted, _ = PlanRun.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted


# --- applying -----------------------------------------------------------------------------------


def _steps_from(run: PlanRun) -> list[Step]:
    try:
        return _read_steps(run)
    except (KeyError, IndexError, ValueError) as exc:
        raise InvalidTransition(
            "Something the plan names no longer exists (a patient, a case or a procedure); plan the day again.",
            details={"status": run.status},
        ) from exc


def _read_steps(run: PlanRun) -> list[Step]:
    result = run.result or {}
    rows = [row for row in result.get("cases", []) if row["booking"] is None or row["moved_minutes"] or row["changed"]]
    bookings = Booking.objects.in_bulk([row["booking"] for row in rows if row["booking"] is not None])
    waiting = waiting_from(run.params or {})
    steps = []
    for row in rows:
        starts_at = datetime.fromisoformat(row["start"])
        pins = {name: int(pk) for name, pk in row["pins"].items()}
        if row["booking"] is not None:
            steps.append(Step(row["case"], starts_at, pins, booking=bookings[row["booking"]]))
        else:
            steps.append(Step(row["case"], starts_at, pins, request=waiting[row["waiting"] - 1].request(run.site)))
    return steps


def plan_apply(*, actor: Any, run: PlanRun, now: datetime | None = None) -> dict[str, list[int]]:
    """Carry the plan out in one transaction (see the module), audited. Refused with PlanStale,
    naming the cases, if any planned case changed since the plan was made; with
    InvalidTransition if the run is not a finished plan (or has expired); with what the booking
    services raise if the day changed around it. Nothing is written when refused."""
    now = now or timezone.now()
    with transaction.atomic():
        current = PlanRun.objects.select_for_update(of=("self",)).select_related("site").get(pk=run.pk)
        if current.status != PlanStatus.DONE or current.expires_at <= now:
            raise InvalidTransition(
                "Only a finished plan can be applied, within the hour it is kept.",
                details={"status": current.status},
            )
        if (current.params or {}).get("what_if"):
            raise InvalidTransition("A capacity what-if is not a plan to apply.", details={"status": current.status})
        if not (current.result or {}).get("verified"):
            raise InvalidTransition(
                "The booking rules refused this plan when it was made; plan the day again.",
                details={"status": current.status},
            )
        snapshot = {int(pk): was for pk, was in (current.result or {}).get("snapshot", {}).items()}
        locked = list(Booking.objects.select_for_update(of=("self",)).filter(pk__in=snapshot).order_by("pk"))
        legs: dict[int, list[Allocation]] = {pk: [] for pk in snapshot}
        for leg in Allocation.objects.filter(booking_id__in=snapshot, is_active=True):
            legs[leg.booking_id].append(leg)
        now_stamps = {b.pk: stamp(b, legs[b.pk]) for b in locked if movable(b, now)}
        changed = sorted(pk for pk, was in snapshot.items() if now_stamps.get(pk) != was)
        if changed:
            raise PlanStale(
                f"{len(changed)} case(s) changed since the plan was made ({', '.join(map(str, changed))}); "
                "plan the day again.",
                details={"changed": changed},
            )
        steps = _steps_from(current)
        waiting = {s.request.patient_id for s in steps if s.request is not None}
        midnight = datetime.combine(current.day, time(0), tzinfo=current.site.zone)
        already = sorted(
            set(
                Booking.objects.filter(patient_id__in=waiting, status__in=ACTIVE_STATUSES)
                .filter(starts_at__gte=midnight, starts_at__lt=midnight + timedelta(days=1))
                .values_list("patient_id", flat=True)
            )
        )
        if already:
            raise PlanStale(
                "A patient of the waiting list has been booked for that day since the plan was made; plan it again.",
                details={"changed": [], "patients_booked": already},
            )
        moved, created = carry_out(actor, steps)
        current.status = PlanStatus.APPLIED
        current.save(update_fields=["status"])
        applied = {"moved": [b.pk for b in moved], "created": [b.pk for b in created]}
        audit_record(actor=actor, action="plan.apply", obj=current, details=applied)
    return applied


__all__ = [
    "PlanStale",
    "Planned",
    "plan_apply",
    "plan_day",
    "plan_execute",
    "plan_queue",
    "plans_purge",
    "plans_run_queued",
    "result_data",
]
