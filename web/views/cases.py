"""One case: its order, legs, readiness, holds, labs, imaging, escort and history, with the
hold's countdown and confirmation, reschedule and cancel for the roles allowed them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from core.audit import audit_patients
from core.errors import BookingInvalid, InvalidTransition, NotPermitted, SlotUnavailable
from core.models import AuditEvent
from procedure_day.readiness import evaluate_with, load_readiness
from scheduling import policy
from scheduling.availability.search import SearchQuery, availability_search
from scheduling.legroles import LEG_ROLES, PIN_FIELDS, LegRole
from scheduling.models import Booking, BookingStatus
from scheduling.request import CaseRequest
from scheduling.selectors import alternatives_after, booking_rows_visible_to, bookings_visible_to, leg_views
from scheduling.services.bookings import CANCELLABLE, RESCHEDULABLE, booking_cancel, booking_reschedule, hold_confirm
from web.access import not_found, page
from web.forms import DEFAULT_RANGE_DAYS, CancelForm
from web.slots import by_day, slot_views

BOOKING_ROLES = policy.BOOKERS | policy.OWN_CASE_BOOKERS
BOOKING_OBJECT = Booking._meta.label_lower


def _case(request: HttpRequest, pk: int) -> Booking | None:
    return bookings_visible_to(request.user).filter(pk=pk).first()


def _request_of(booking: Booking) -> CaseRequest:
    physician = next((leg for leg in leg_views(booking) if leg.role == "physician"), None)
    pins = {"physician": physician.resource_id} if physician is not None else {}
    return CaseRequest(
        procedure_type=booking.procedure_type,
        levels=booking.levels,
        sedation=booking.sedation,
        patient=booking.patient,
        site_id=booking.site_id,
        pins=pins,
    )


def _context(request: HttpRequest, booking: Booking, **extra: Any) -> dict[str, Any]:
    fields = set(policy.patient_fields(request.user))
    inputs = load_readiness(booking)
    items = evaluate_with(booking, inputs, now=timezone.now())
    history = AuditEvent.objects.filter(object_type=BOOKING_OBJECT, object_id=str(booking.pk)).order_by("at", "id")
    may_book = policy.may(request.user, BOOKING_ROLES)
    return {
        "case": booking,
        "zone": booking.site.zone,
        "patient": booking.patient,
        "fields": fields,
        "legs": [(LEG_ROLES[v.role].label, v) for v in leg_views(booking) if v.role != LegRole.PATIENT],
        "items": items,
        "holds": inputs.holds,
        "labs": inputs.labs[:6],
        "imaging": inputs.imaging[:6],
        "history": list(history),
        "may_confirm": may_book and booking.status == BookingStatus.HOLD,
        "may_reschedule": may_book and booking.status in RESCHEDULABLE,
        "may_cancel": may_book and booking.status in CANCELLABLE,
        "cancel_form": extra.pop("cancel_form", CancelForm()),
        "hold_live": booking.status == BookingStatus.HOLD
        and booking.hold_expires_at is not None
        and booking.hold_expires_at > timezone.now(),
        "title": f"Case {booking.pk}",
        **extra,
    }


@page()
def case_page(request: HttpRequest, pk: int) -> HttpResponse:
    booking = _case(request, pk)
    if booking is None:
        return not_found(request, "case")
    audit_patients(request.user, "booking.read", [booking.patient_id], booking=booking.pk)
    return render(request, "web/case.html", _context(request, booking))


def posted_pins(request: HttpRequest) -> dict[str, int]:
    """The resources a listed start was shown with (``pin_<field>``), to hold exactly those."""
    pins = {}
    for name in PIN_FIELDS:
        raw = request.POST.get(f"pin_{name}", "")
        if raw.isdigit():
            pins[name] = int(raw)
    return pins


def _row(request: HttpRequest, pk: int) -> Booking | None:
    return booking_rows_visible_to(request.user).filter(pk=pk).first()


@page(BOOKING_ROLES)
def confirm(request: HttpRequest, pk: int) -> HttpResponse:
    booking = _row(request, pk)
    if booking is None or request.method != "POST":
        return not_found(request, "case") if booking is None else redirect("web:case", pk=pk)
    try:
        hold_confirm(actor=request.user, booking=booking)
    except (InvalidTransition, BookingInvalid) as exc:
        # The hold ran out or a rule now refuses it: what went wrong and the next starts.
        full = _case(request, pk)
        assert full is not None
        words = [p.message for p in exc.problems] if isinstance(exc, BookingInvalid) else [exc.message]
        alternatives = slot_views(alternatives_after(_request_of(full), max(full.starts_at, timezone.now())))
        audit_patients(request.user, "booking.read", [full.patient_id], booking=full.pk)
        return render(
            request, "web/case.html", _context(request, full, problems=words, alternatives=alternatives), status=409
        )
    messages.success(request, "Booked. The patient's reminders are scheduled.")
    return redirect("web:case", pk=pk)


@page(BOOKING_ROLES)
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    booking = _row(request, pk)
    if booking is None:
        return not_found(request, "case")
    if request.method != "POST":
        return redirect("web:case", pk=pk)
    form = CancelForm(request.POST)
    if form.is_valid():
        try:
            booking_cancel(
                actor=request.user, booking=booking, reason=form.cleaned_data["reason"], note=form.cleaned_data["note"]
            )
        except (InvalidTransition, BookingInvalid) as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Cancelled; its room, staff and bay are free again.")
        return redirect("web:case", pk=pk)
    full = _case(request, pk)
    assert full is not None
    return render(request, "web/case.html", _context(request, full, cancel_form=form), status=400)


@page(BOOKING_ROLES)
def reschedule(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the first feasible starts of each day for this case (same physician). POST: move it."""
    booking = _case(request, pk)
    if booking is None:
        return not_found(request, "case")
    audit_patients(request.user, "booking.read", [booking.patient_id], booking=booking.pk)
    problems: list[str] = []
    if request.method == "POST":
        try:
            start = datetime.fromisoformat(request.POST.get("start", ""))
            if timezone.is_naive(start):
                raise ValueError("naive")
        except ValueError:
            problems.append("Choose a new start from the list.")
        else:
            try:
                booking_reschedule(
                    actor=request.user,
                    booking=booking,
                    starts_at=start,
                    pins=posted_pins(request),
                    anticoagulant_override_reason=request.POST.get("anticoagulant_override_reason") or None,
                )
            except SlotUnavailable as exc:
                problems.extend(c["message"] for c in exc.conflicts)
            except (BookingInvalid, InvalidTransition, NotPermitted) as exc:
                problems.extend([p.message for p in exc.problems] if isinstance(exc, BookingInvalid) else [exc.message])
            else:
                messages.success(request, "Moved. The patient's reminders follow the new time.")
                return redirect("web:case", pk=pk)
    today = timezone.now().astimezone(booking.site.zone).date()
    slots = availability_search(
        SearchQuery(
            request=_request_of(booking),
            date_from=today,
            date_to=today + timedelta(days=DEFAULT_RANGE_DAYS),
            count=200,
            per_day=2,
        )
    )
    context = {
        "case": booking,
        "zone": booking.site.zone,
        "days": by_day(slot_views(slots)),
        "problems": problems,
        "may_override": policy.may_override(request.user),
        "title": f"Move case {booking.pk}",
    }
    return render(request, "web/reschedule.html", context, status=409 if problems else 200)
