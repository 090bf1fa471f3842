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
from core.validators import FIRST_YEAR, LAST_YEAR
from procedure_day.readiness import evaluate_with, load_readiness
from scheduling import policy
from scheduling.availability.search import SearchQuery, availability_search
from scheduling.legroles import LEG_ROLES, PIN_FIELDS, LegRole
from scheduling.models import Booking, BookingStatus
from scheduling.request import CaseRequest, request_of
from scheduling.selectors import alternatives_after, booking_rows_visible_to, bookings_visible_to, leg_views
from scheduling.services.bookings import CANCELLABLE, RESCHEDULABLE, booking_cancel, booking_reschedule, hold_confirm
from web.access import not_found, page
from web.forms import DEFAULT_RANGE_DAYS, CancelForm
from web.slots import by_day, slot_views

BOOKING_ROLES = policy.CASE_BOOKERS
BOOKING_OBJECT = Booking._meta.label_lower


def _case(request: HttpRequest, pk: int) -> Booking | None:
    return bookings_visible_to(request.user).filter(pk=pk).first()


def _request_of(booking: Booking) -> CaseRequest:
    physician = next((leg for leg in leg_views(booking) if leg.role == "physician"), None)
    return request_of(booking, {"physician": physician.resource_id} if physician is not None else {})


def _context(request: HttpRequest, booking: Booking, **extra: Any) -> dict[str, Any]:
    fields = set(policy.patient_fields(request.user))
    inputs = load_readiness(booking)
    items = evaluate_with(booking, inputs, now=timezone.now())
    clinical = policy.sees_clinical_records(request.user)
    history = AuditEvent.objects.filter(object_type=BOOKING_OBJECT, object_id=str(booking.pk)).order_by("at", "id")
    may_book = policy.may(request.user, BOOKING_ROLES)
    return {
        "case": booking,
        "zone": booking.site.zone,
        "patient": booking.patient,
        "fields": fields,
        "legs": [(LEG_ROLES[v.role].label, v) for v in leg_views(booking) if v.role != LegRole.PATIENT],
        "items": items,
        "clinical": clinical,
        "holds": inputs.holds if clinical else [],
        "labs": inputs.labs[:6] if clinical else [],
        "imaging": inputs.imaging[:6] if clinical else [],
        "history": list(history),
        "may_confirm": may_book and booking.status == BookingStatus.HOLD,
        "may_reschedule": may_book and booking.status in RESCHEDULABLE,
        "may_cancel": policy.may(request.user, policy.CANCELLERS) and booking.status in CANCELLABLE,
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


def chosen_slot(request: HttpRequest) -> tuple[datetime, dict[str, int]] | None:
    """The start and resources of the listed start chosen: a ``slot`` button's value
    ("<ISO start>|<pin>=<id>,...") or ``start`` with ``pin_<field>`` inputs. None if unreadable."""
    raw = request.POST.get("slot", "")
    if raw:
        start_text, _, pins_text = raw.partition("|")
        pins = {}
        for part in filter(None, pins_text.split(",")):
            name, _, value = part.partition("=")
            if name in PIN_FIELDS and value.isdigit():
                pins[name] = int(value)
    else:
        start_text, pins = request.POST.get("start", ""), posted_pins(request)
    try:
        start = datetime.fromisoformat(start_text)
    except ValueError:
        return None
    if timezone.is_naive(start) or not FIRST_YEAR <= start.year <= LAST_YEAR:
        return None
    return start, pins


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
        full = _case(request, pk)
        assert full is not None
        audit_patients(request.user, "booking.read", [full.patient_id], booking=full.pk)
        if isinstance(exc, BookingInvalid):
            # A rule now refuses the held time (downtime, time off, a medication hold recorded
            # since): the hold can still move to one of the next feasible starts.
            words = [p.message for p in exc.problems]
            alternatives = slot_views(alternatives_after(_request_of(full), max(full.starts_at, timezone.now())))
            extra = {"problems": words, "alternatives": alternatives}
        else:
            # The hold has run out: its resources may be gone, so the case is booked afresh.
            extra = {"problems": [exc.message], "book_again": True}
        return render(request, "web/case.html", _context(request, full, **extra), status=409)
    messages.success(request, "Booked. The patient's reminders are scheduled.")
    return redirect("web:case", pk=pk)


@page(policy.CANCELLERS)
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
    audit_patients(request.user, "booking.read", [full.patient_id], booking=full.pk)
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
        chosen = chosen_slot(request)
        if chosen is None:
            problems.append("Choose a new start from the list.")
        else:
            start, pins = chosen
            reason = request.POST.get("anticoagulant_override_reason", "").strip()[:255]
            try:
                booking_reschedule(
                    actor=request.user,
                    booking=booking,
                    starts_at=start,
                    pins=pins,
                    # Offered to the roles that may override only; anyone else's is ignored.
                    anticoagulant_override_reason=(reason or None) if policy.may_override(request.user) else None,
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
