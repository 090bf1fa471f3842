"""Downtime of a room or a C-arm, recorded on a page in the site's local time: the cases it hits,
each with the swaps the engine finds, applied with one click through the reschedule service."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.audit import audit_patients
from core.errors import BookingInvalid, SchedulingError, SlotUnavailable
from rooms.models import Downtime
from scheduling import policy
from scheduling.models import Booking
from scheduling.selectors import booking_rows_visible_to, bookings_hit_by
from scheduling.services.downtime import downtime_create
from scheduling.services.swaps import downtime_impact, parse_choice, swap_apply
from scheduling.words import local_hhmm
from web.access import not_found, page
from web.context import current_site
from web.forms import DowntimeForm


@page(policy.AVAILABILITY_EDITORS)
def downtime_list(request: HttpRequest) -> HttpResponse:
    """``/downtime/``: record a block; the site's current and coming blocks."""
    site = current_site(request)
    if site is None:
        return render(request, "web/downtime.html", {"form": None, "blocks": [], "title": "Downtime"})
    form = DowntimeForm(request.POST or None, site=site)
    if request.method == "POST" and form.is_valid():
        try:
            downtime = downtime_create(actor=request.user, data=form.record())
        except ValidationError as exc:
            for errors in exc.message_dict.values() if hasattr(exc, "message_dict") else [exc.messages]:
                for error in errors:
                    form.add_error(None, error)
        else:
            messages.success(request, "Downtime recorded. The cases it hits are below, with the swaps found.")
            return redirect("web:downtime_detail", pk=downtime.pk)
    now = timezone.now()
    blocks = (
        Downtime.objects.filter(Q(room__site=site) | Q(equipment__site=site), ends_at__gt=now - timedelta(days=1))
        .select_related("room", "equipment")
        .order_by("starts_at")[:50]
    )
    status = 422 if request.method == "POST" else 200
    return render(
        request,
        "web/downtime.html",
        {"form": form, "blocks": blocks, "zone": site.zone, "title": "Downtime"},
        status=status,
    )


def _block(pk: int) -> Downtime | None:
    return Downtime.objects.select_related("room__site", "equipment__site").filter(pk=pk).first()


@page(policy.AVAILABILITY_EDITORS)
def downtime_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """``/downtime/<id>/``: every active case the block hits, with its swaps."""
    downtime = _block(pk)
    if downtime is None:
        return not_found(request, "downtime")
    target = downtime.room or downtime.equipment
    assert target is not None
    site = target.site
    hit = downtime_impact(downtime)
    visible = set(
        booking_rows_visible_to(request.user).filter(pk__in=[h.booking.pk for h in hit]).values_list("pk", flat=True)
    )
    shown = [h.booking.patient_id for h in hit if h.booking.pk in visible]
    if shown:
        audit_patients(request.user, "downtime_impact.read", shown, downtime=downtime.pk)
    return render(
        request,
        "web/downtime_detail.html",
        {
            "downtime": downtime,
            "target": target,
            "zone": site.zone,
            "hit": hit,
            "visible": visible,
            "may_move": policy.may(request.user, policy.BOOKERS),
            "board_query": f"site={site.pk}&date={downtime.starts_at.astimezone(site.zone).date()}",
            "title": f"Downtime of {target}",
        },
    )


@require_POST
@page(policy.BOOKERS)
def downtime_swap(request: HttpRequest, pk: int) -> HttpResponse:
    """Apply one swap to one hit case, through the reschedule service."""
    downtime = _block(pk)
    if downtime is None:
        return not_found(request, "downtime")
    raw = request.POST.get("booking", "")
    booking = Booking.objects.filter(pk=int(raw)).select_related("site").first() if raw.isdigit() else None
    choice = parse_choice(request.POST.get("swap", ""))
    if booking is None or choice is None:
        messages.error(request, "That swap is no longer on the page; choose again.")
        return redirect("web:downtime_detail", pk=pk)
    if not bookings_hit_by(downtime, now=timezone.now()).filter(pk=booking.pk).exists():
        messages.error(request, f"Case {booking.pk} no longer needs {downtime.room or downtime.equipment} then.")
        return redirect("web:downtime_detail", pk=pk)
    start, pins = choice
    try:
        moved = swap_apply(actor=request.user, booking=booking, starts_at=start, pins=pins)
    except SlotUnavailable as exc:
        messages.error(request, "Taken meanwhile: " + "; ".join(c["message"] for c in exc.conflicts))
    except BookingInvalid as exc:
        messages.error(request, "; ".join(p.message for p in exc.problems))
    except SchedulingError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Case {moved.pk} moved: starts {local_hhmm(moved.starts_at, moved.site.zone)}.")
    return redirect("web:downtime_detail", pk=pk)
