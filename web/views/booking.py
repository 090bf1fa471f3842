"""The booking workspace: the order form, the slot finder over a range of days, the reasons a
typed start is not feasible, and a hold on a chosen start. Every decision is the services'
and the rulebook's; these views turn forms into their arguments and answers into pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from core.audit import audit_patients
from core.errors import BookingInvalid, Problem, SlotUnavailable
from core.validators import FIRST_YEAR, LAST_YEAR
from scheduling import policy
from scheduling.availability.search import MAX_COUNT, SearchQuery, availability_search, explain_start
from scheduling.models import Booking, BookingStatus
from scheduling.request import CaseRequest
from scheduling.selectors import alternatives_after, patients_shown_for_booking
from scheduling.services.bookings import booking_create
from web.access import page
from web.context import current_site
from web.forms import BookingForm, PatientSearchForm, StartForm
from web.slots import by_day, slot_views
from web.views.cases import posted_pins

BOOKING_ROLES = policy.CASE_BOOKERS
STARTS_PER_DAY = 2


def booking_form(request: HttpRequest, data: Any = None, initial: dict[str, Any] | None = None) -> BookingForm:
    is_physician_only = not policy.may(request.user, policy.BOOKERS)
    return BookingForm(
        data,
        initial=initial,
        patients=patients_shown_for_booking(request.user),
        may_override=policy.may_override(request.user),
        own_physician=getattr(request.user, "staff_member", None) if is_physician_only else None,
    )


def case_of(form: BookingForm, **pins: int) -> CaseRequest:
    data = form.cleaned_data
    return CaseRequest(
        procedure_type=data["procedure_type"],
        levels=data["levels"],
        sedation=data.get("sedation") or None,
        patient=data["patient"],
        site_id=data["site"].pk,
        pins={**form.pins(), **pins},
    )


def _render(request: HttpRequest, form: BookingForm, **extra: Any) -> HttpResponse:
    """The workspace; the patient it names is a read of their record, audited."""
    patient = form.initial.get("patient") if not form.is_bound else form.cleaned_data.get("patient")
    if patient is not None:
        audit_patients(request.user, "booking_workspace.read", [patient.pk])
    context = {
        "form": form,
        "start_form": extra.pop("start_form", StartForm()),
        "patient": patient,
        "title": "Book a case",
        "may_override": policy.may_override(request.user),
        **extra,
    }
    return render(request, "web/book.html", context)


def _problems_words(problems: list[Problem]) -> list[str]:
    return [p.message for p in problems]


@page(BOOKING_ROLES)
def workspace(request: HttpRequest) -> HttpResponse:
    """Without a patient: find or register one. With one: the order form and the finder."""
    wanted = request.GET.get("patient", "")
    patient = patients_shown_for_booking(request.user).filter(pk=int(wanted)).first() if wanted.isdigit() else None
    if patient is None:
        return render(
            request,
            "web/book_patient.html",
            {
                "form": PatientSearchForm(),
                "title": "Book a case",
                "may_register": policy.may(request.user, policy.PATIENT_REGISTRARS),
            },
        )
    site = current_site(request)
    today = timezone.now().astimezone(site.zone).date() if site is not None else timezone.now().date()
    form = booking_form(request, initial={"patient": patient, "site": site, **BookingForm.initial_range(today)})
    return _render(request, form)


def _bound(request: HttpRequest) -> BookingForm | None:
    if request.method != "POST":
        return None
    return booking_form(request, request.POST)


@page(BOOKING_ROLES)
def search(request: HttpRequest) -> HttpResponse:
    form = _bound(request)
    if form is None:
        return redirect("web:book")
    if not form.is_valid():
        return _render(request, form)
    data = form.cleaned_data
    try:
        slots = availability_search(
            SearchQuery(
                request=case_of(form),
                date_from=data["date_from"],
                date_to=data["date_to"],
                earliest=data["earliest"],
                latest=data["latest"],
                count=MAX_COUNT,
                per_day=STARTS_PER_DAY,
            )
        )
    except BookingInvalid as exc:
        return _render(request, form, problems=_problems_words(exc.problems))
    return _render(request, form, days=by_day(slot_views(slots)), searched=True)


@page(BOOKING_ROLES)
def check(request: HttpRequest) -> HttpResponse:
    """A start typed by hand: the rule's reasons in words, or an offer to hold it."""
    form = _bound(request)
    if form is None:
        return redirect("web:book")
    start_form = StartForm(request.POST)
    if not (form.is_valid() and start_form.is_valid()):
        return _render(request, form, start_form=start_form)
    # The typed wall-clock time is read in the chosen site's zone.
    site = form.cleaned_data["site"]
    start = start_form.aware(site.zone)
    try:
        reasons = explain_start(case_of(form), start)
    except BookingInvalid as exc:
        reasons = exc.problems
    checked = {"start": start, "zone": site.zone, "reasons": _problems_words(reasons), "iso": start.isoformat()}
    return _render(request, form, start_form=start_form, checked=checked)


@page(BOOKING_ROLES)
def hold(request: HttpRequest) -> HttpResponse:
    """Hold the chosen start with the resources shown; a clash shows what clashed and the next
    feasible starts."""
    form = _bound(request)
    if form is None:
        return redirect("web:book")
    if not form.is_valid():
        return _render(request, form)
    try:
        start = datetime.fromisoformat(request.POST.get("start", ""))
    except ValueError:
        return _render(request, form, problems=["Choose a start from the list, or type one and check it."])
    if timezone.is_naive(start) or not FIRST_YEAR <= start.year <= LAST_YEAR:
        return _render(request, form, problems=["Choose a start from the list, or type one and check it."])
    case = case_of(form, **posted_pins(request))
    try:
        booking: Booking = booking_create(
            actor=request.user,
            request=case,
            starts_at=start,
            status=BookingStatus.HOLD,
            anticoagulant_override_reason=form.cleaned_data.get("anticoagulant_override_reason") or None,
            order=form.order,
        )
    except SlotUnavailable as exc:
        # Another booking took part of it since the list was shown: the same case without the
        # resources that clashed, from that start on.
        alternatives = alternatives_after(case_of(form), start, count=3)
        return _render(
            request,
            form,
            clash=[c["message"] for c in exc.conflicts],
            alternatives=slot_views(alternatives),
        )
    except BookingInvalid as exc:
        return _render(request, form, problems=_problems_words(exc.problems))
    return redirect("web:case", pk=booking.pk)
