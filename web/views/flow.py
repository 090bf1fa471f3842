"""The patient flow for nurses and the front desk: the day's cases by state, each with the next
steps of the workflow as buttons, the readiness checklist, the recovery countdown and the
recorded step times, which can be corrected afterwards with a reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from core.audit import audit_patients
from core.errors import BookingInvalid, SchedulingError, SlotUnavailable
from procedure_day.board import day_delays
from procedure_day.projection import Delay
from procedure_day.readiness import (
    DUE_ON_DAY,
    escort_required,
    evaluate_with,
    load_readiness,
    pregnancy_screen_applies,
)
from procedure_day.recovery import RecoveryClock, recovery_clock
from procedure_day.selectors import DailyCase, cases_of_day, daily_case
from procedure_day.services.checklist import checklist_update
from procedure_day.services.common import next_steps
from procedure_day.services.corrections import recorded_steps, step_time_correct
from procedure_day.services.late import EndProcedureResult, booking_end_procedure
from procedure_day.services.transitions import (
    booking_check_in,
    booking_discharge,
    booking_mark_ready,
    booking_mark_ready_for_discharge,
    booking_no_show,
    booking_start_procedure,
    booking_start_recovery,
)
from scheduling import policy
from scheduling.models import Booking, BookingStatus
from scheduling.selectors import bookings_visible_to
from scheduling.words import local_hhmm
from web.access import not_found, page
from web.context import current_site
from web.forms import ChecklistForm, StepTimeForm
from web.views.board import day_query, is_fragment
from web.views.day import _day, _nav

S = BookingStatus
# The columns of the flow, in the order a patient moves through them.
STATES = (
    (S.SCHEDULED, "Expected"),
    (S.CHECKED_IN, "Checked in"),
    (S.READY, "Ready"),
    (S.IN_PROCEDURE, "In procedure"),
    (S.IN_RECOVERY, "In recovery"),
    (S.READY_FOR_DISCHARGE, "Ready for discharge"),
    (S.DISCHARGED, "Discharged"),
    (S.NO_SHOW, "No-show"),
)
STEP_LABELS = {
    "check_in": "Check in",
    "ready": "Mark ready",
    "start_procedure": "Start procedure",
    "end_procedure": "End procedure",
    "start_recovery": "Start recovery",
    "ready_for_discharge": "Ready for discharge",
    "discharge": "Discharge",
    "no_show": "No-show",
}


def recovery_of(booking: Booking) -> RecoveryClock | None:
    """The clock the flow shows: while the patient is in recovery or waiting to leave."""
    if booking.status not in (S.IN_RECOVERY, S.READY_FOR_DISCHARGE):
        return None
    return recovery_clock(booking)


@dataclass(frozen=True)
class FlowCard:
    case: DailyCase
    steps: list[str]
    delay: Delay | None
    recovery: RecoveryClock | None
    escort_needed: bool

    @property
    def booking(self) -> Booking:
        return self.case.booking


def _card(user: Any, case: DailyCase, delays: dict[int, Delay]) -> FlowCard:
    booking = case.booking
    steps = [step for step in next_steps(booking) if policy.may(user, policy.STEP_ROLES[step])]
    return FlowCard(case, steps, delays.get(booking.pk), recovery_of(booking), escort_required(booking))


@page(policy.FLOW_USERS)
def flow(request: HttpRequest) -> HttpResponse:
    """``/flow/?site=&date=``: the day's cases the user may see, by state."""
    site = current_site(request)
    day = _day(request, site)
    now = timezone.now()
    cases = cases_of_day(request.user, site, day) if site is not None else []
    delays = day_delays(site, day, now=now) if site is not None else {}
    cards = [_card(request.user, case, delays) for case in cases]
    columns = [(status, label, [c for c in cards if c.booking.status == status]) for status, label in STATES]
    audit_patients(
        request.user, "flow.read", [c.booking.patient_id for c in cards], site=site and site.pk, date=str(day)
    )
    context = {
        **_nav(day),
        "columns": columns,
        "count": len(cards),
        "title": "Patient flow",
        "zone": site.zone if site is not None else None,
        "now": now,
        "query": day_query(request, site, day),
        "day_links": [("Day board", f"{reverse('web:board')}?{day_query(request, site, day)}")],
        "refresh_seconds": settings.BOARD_REFRESH_SECONDS,
        "step_labels": STEP_LABELS,
        "may_override": policy.may_override(request.user),
    }
    template = "web/_flow.html" if is_fragment(request) else "web/flow.html"
    return render(request, template, context)


def _visible(request: HttpRequest, pk: int) -> Booking | None:
    return bookings_visible_to(request.user).filter(pk=pk).first()


@page(policy.FLOW_USERS)
def flow_case(request: HttpRequest, pk: int) -> HttpResponse:
    """``/flow/<id>/``: one case's day: the checklist, the steps, the countdown, the times."""
    booking = _visible(request, pk)
    if booking is None:
        return not_found(request, "case")
    return render(request, "web/flow_case.html", _case_context(request, booking))


def _case_context(request: HttpRequest, booking: Booking, **extra: Any) -> dict[str, Any]:
    now = timezone.now()
    zone = booking.site.zone
    inputs = load_readiness(booking)
    items = evaluate_with(booking, inputs, now=now)
    checklist = inputs.checklist
    pregnancy = pregnancy_screen_applies(booking)
    initial: dict[str, Any] = {}
    if checklist is not None:
        for name in ("consent_signed_at", "last_solids_at", "last_clears_at"):
            value = getattr(checklist, name)
            if value is not None:
                initial[name] = value.astimezone(zone).replace(tzinfo=None)
        initial.update(
            escort_confirmed=checklist.escort_confirmed,
            allergies_reviewed=checklist.allergies_reviewed,
            pregnancy_status=checklist.pregnancy_status,
        )
    day = booking.starts_at.astimezone(zone).date()
    delays = day_delays(booking.site, day, now=now)
    audit_patients(request.user, "flow_case.read", [booking.patient_id], booking=booking.pk)
    steps = [
        (
            step,
            when,
            StepTimeForm(initial={"step": step.field, "at": when.astimezone(zone).replace(tzinfo=None)}),
            policy.may(request.user, policy.STEP_ROLES[step.action]),
        )
        for step, when in recorded_steps(booking)
    ]
    return {
        "case": booking,
        "zone": zone,
        "patient": booking.patient,
        "fields": set(policy.patient_fields(request.user)),
        "items": items,
        "missing": [item for item in items if not item.passes and item.status != DUE_ON_DAY],
        "due": [item for item in items if item.status == DUE_ON_DAY],
        "checklist": checklist,
        "checklist_form": extra.pop("checklist_form", None)
        or ChecklistForm(initial=initial, zone=zone, pregnancy=pregnancy),
        "may_record": policy.may(request.user, policy.STEP_ROLES["checklist"])
        and booking.status in (S.SCHEDULED, S.CHECKED_IN, S.READY),
        "card": _card(request.user, daily_case(booking, inputs, now=now), delays),
        "steps": steps,
        "may_correct": policy.may(request.user, policy.STEP_TIME_CORRECTORS),
        "step_labels": STEP_LABELS,
        "may_override": policy.may_override(request.user),
        "now": now,
        "title": f"Case {booking.pk} on the day",
        "flow_query": f"site={booking.site_id}&date={day.isoformat()}",
        **extra,
    }


def _back(request: HttpRequest, pk: int) -> HttpResponse:
    target = request.POST.get("next", "")
    if (
        target
        and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()})
        and target.startswith("/")
    ):
        return redirect(target)
    return redirect("web:flow_case", pk=pk)


def _say_refusal(request: HttpRequest, exc: SchedulingError) -> None:
    if isinstance(exc, BookingInvalid):
        for problem in exc.problems:
            messages.error(request, problem.message)
    elif isinstance(exc, SlotUnavailable):
        for conflict in exc.conflicts:
            messages.error(request, conflict["message"])
    elif exc.code == "readiness_not_met":
        items = exc.details.get("items", [])
        words = "; ".join(f"{i['label']}: {i['detail'] or i['status']}" for i in items)
        messages.error(request, f"Not ready: {words or exc.message}")
    else:
        messages.error(request, exc.message)


def _run_step(request: HttpRequest, booking: Booking, step: str) -> str:
    """Run one step through its service; returns what to tell the user."""
    actor = request.user
    zone = booking.site.zone
    actions: dict[str, Callable[[], Any]] = {
        "check_in": lambda: booking_check_in(actor=actor, booking=booking),
        "ready": lambda: booking_mark_ready(
            actor=actor, booking=booking, override_reason=request.POST.get("override_reason") or None
        ),
        "start_procedure": lambda: booking_start_procedure(actor=actor, booking=booking),
        "end_procedure": lambda: booking_end_procedure(actor=actor, booking=booking),
        "start_recovery": lambda: booking_start_recovery(actor=actor, booking=booking),
        "ready_for_discharge": lambda: booking_mark_ready_for_discharge(actor=actor, booking=booking),
        "discharge": lambda: booking_discharge(
            actor=actor, booking=booking, escort_present=request.POST.get("escort_present") == "on"
        ),
        "no_show": lambda: booking_no_show(actor=actor, booking=booking),
    }
    result = actions[step]()
    said = f"{STEP_LABELS[step]}: recorded at {local_hhmm(timezone.now(), zone)}."
    if isinstance(result, EndProcedureResult) and result.alerts:
        said += " " + " ".join(alert.message for alert in result.alerts)
    return said


@require_POST
@page(policy.FLOW_USERS)
def flow_step(request: HttpRequest, pk: int, step: str) -> HttpResponse:
    """A workflow button: one step through its service, then back to where it was pressed."""
    booking = _visible(request, pk)
    if booking is None or step not in STEP_LABELS:
        return not_found(request, "case")
    if not policy.may(request.user, policy.STEP_ROLES[step]):
        messages.error(request, f"Your role does not record “{STEP_LABELS[step]}”.")
        return _back(request, pk)
    try:
        messages.success(request, _run_step(request, booking, step))
    except SchedulingError as exc:
        _say_refusal(request, exc)
    return _back(request, pk)


@require_POST
@page(policy.FLOW_USERS)
def flow_checklist(request: HttpRequest, pk: int) -> HttpResponse:
    booking = _visible(request, pk)
    if booking is None:
        return not_found(request, "case")
    if not policy.may(request.user, policy.STEP_ROLES["checklist"]):
        messages.error(request, "Your role does not record the checklist.")
        return _back(request, pk)
    form = ChecklistForm(request.POST, zone=booking.site.zone, pregnancy=pregnancy_screen_applies(booking))
    if not form.is_valid():
        return render(request, "web/flow_case.html", _case_context(request, booking, checklist_form=form), status=422)
    try:
        checklist_update(actor=request.user, booking=booking, **form.changes())
    except SchedulingError as exc:
        _say_refusal(request, exc)
    else:
        messages.success(request, "Checklist saved.")
    return _back(request, pk)


@require_POST
@page(policy.STEP_TIME_CORRECTORS)
def flow_correct(request: HttpRequest, pk: int) -> HttpResponse:
    """Correct a step's recorded time, with a reason."""
    booking = _visible(request, pk)
    if booking is None:
        return not_found(request, "case")
    form = StepTimeForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return _back(request, pk)
    zone = booking.site.zone
    try:
        at = form.aware(zone)
    except ValidationError as exc:
        for error in exc.messages:
            messages.error(request, error)
        return _back(request, pk)
    try:
        step_time_correct(
            actor=request.user,
            booking=booking,
            step=form.cleaned_data["step"],
            at=at,
            reason=form.cleaned_data["reason"],
        )
    except SchedulingError as exc:
        _say_refusal(request, exc)
    else:
        messages.success(
            request, f"Time corrected to {local_hhmm(at, zone)}; the correction and its reason are in the history."
        )
    return _back(request, pk)
