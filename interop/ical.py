"""iCalendar feeds (RFC 5545, with RFC 7986's NAME and REFRESH-INTERVAL): a physician's cases
and a room's cases, for a calendar app to subscribe to.

Feeds end up in calendar clouds outside the clinic's agreements, so no property carries patient
data: an event names the room (and, in a room's feed, the case number and physician), never the
patient, the procedure or the indication. Each case keeps one UID; SEQUENCE counts the changes
recorded for it (the audit trail is append-only, so it only grows); a cancelled or no-show case
stays in the feed for a while as CANCELLED so subscribed calendars drop it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Count, Max
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from icalendar import Calendar, Event

from core.clients import feed_token_user
from core.models import AuditEvent
from core.roles import roles_of
from rooms.models import ProcedureRoom
from scheduling import policy
from scheduling.legroles import LegRole
from scheduling.models import Allocation, Booking, BookingStatus
from staff.models import StaffMember

PAST_DAYS = 30
FUTURE_DAYS = 180
CANCELLED = (BookingStatus.CANCELLED, BookingStatus.NO_SHOW)
BOOKING_OBJECT = Booking._meta.label_lower


def _domain() -> str:
    return urlsplit(settings.PUBLIC_URL).hostname or "clinic.invalid"


def uid_of(booking_id: int) -> str:
    return f"case-{booking_id}@{_domain()}"


def ical_status(status: str) -> str:
    if status == BookingStatus.HOLD:
        return "TENTATIVE"
    return "CANCELLED" if status in CANCELLED else "CONFIRMED"


def feed_legs(column: str, pk: int, *, now: datetime) -> list[Allocation]:
    """The latest leg of each case the resource is (or was, for a closed case) in, over the
    feed's window: a moved case's old legs are gone, a cancelled one's last legs remain."""
    role = {"staff": LegRole.PHYSICIAN, "room": LegRole.ROOM}[column]
    base = Allocation.objects.filter(
        role=role,
        **{f"{column}_id": pk},
        starts_at__gte=now - timedelta(days=PAST_DAYS),
        starts_at__lt=now + timedelta(days=FUTURE_DAYS),
    )
    latest = base.values("booking_id").annotate(last=Max("id")).values("last")
    legs = Allocation.objects.filter(pk__in=latest).select_related("booking__site", "room", "staff", "booking")
    kept = []
    for leg in legs:
        booking = leg.booking
        if leg.is_active or booking.status in CANCELLED:
            kept.append(leg)
    return sorted(kept, key=lambda leg: (leg.starts_at, leg.booking_id))


def _sequences(booking_ids: list[int]) -> dict[int, int]:
    counts = (
        AuditEvent.objects.filter(object_type=BOOKING_OBJECT, object_id__in=[str(i) for i in booking_ids])
        .values("object_id")
        .annotate(n=Count("id"))
    )
    return {int(row["object_id"]): max(0, row["n"] - 1) for row in counts}


def _room_names(booking_ids: list[int]) -> dict[int, str]:
    rooms = (
        Allocation.objects.filter(booking_id__in=booking_ids, role=LegRole.ROOM).select_related("room").order_by("id")
    )
    return {leg.booking_id: str(leg.room) for leg in rooms}


def _physicians(booking_ids: list[int]) -> dict[int, str]:
    legs = (
        Allocation.objects.filter(booking_id__in=booking_ids, role=LegRole.PHYSICIAN)
        .select_related("staff")
        .order_by("id")
    )
    return {leg.booking_id: str(leg.staff) for leg in legs}


def feed(column: str, pk: int, name: str, *, now: datetime | None = None) -> bytes:
    """The calendar of one physician (``staff``) or room, as RFC 5545 bytes."""
    now = now or timezone.now()
    legs = feed_legs(column, pk, now=now)
    ids = [leg.booking_id for leg in legs]
    sequences = _sequences(ids)
    rooms = _room_names(ids)
    physicians = _physicians(ids) if column == "room" else {}
    calendar = Calendar()
    calendar.add("prodid", "-//Pain clinic scheduling//Procedure feeds//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("name", name)
    calendar.add("x-wr-calname", name)
    calendar.add("refresh-interval", timedelta(minutes=15), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT15M")
    for leg in legs:
        booking = leg.booking
        room = rooms.get(booking.pk, "")
        if column == "staff":
            summary = f"Procedure – {room}" if room else "Procedure"
        else:
            summary = f"Case {booking.pk} – {physicians.get(booking.pk, 'no physician')}"
        event = Event.new(
            uid=uid_of(booking.pk),
            summary=summary,
            start=leg.starts_at,
            end=leg.ends_at,
            stamp=booking.updated_at,
            sequence=sequences.get(booking.pk, 0),
            status=ical_status(booking.status),  # type: ignore[arg-type]
            location=f"{room}, {booking.site.name}" if room else booking.site.name,
        )
        event.add("transp", "OPAQUE")
        event.add("class", "PRIVATE")
        event.add("last-modified", booking.updated_at)
        calendar.add_component(event)
    return bytes(calendar.to_ical())


FEEDS: dict[str, tuple[str, Any]] = {"physician": ("staff", StaffMember), "room": ("room", ProcedureRoom)}


def _may_read(user: Any, column: str, resource: Any) -> bool:
    if column == "staff":
        return resource.role == "physician" and policy.may_read_daily_list(user, resource)
    return bool(roles_of(user))


@require_GET
def calendar_feed(request: HttpRequest, token: str, kind: str, pk: int) -> HttpResponse:
    """``/ical/<token>/physician/<id>.ics`` and ``/ical/<token>/room/<id>.ics``. An unknown
    or revoked token, or a feed its owner may not read, is a plain 404 (nothing to guess from)."""
    user = feed_token_user(token)
    if user is None or kind not in FEEDS:
        raise Http404
    column, model = FEEDS[kind]
    resource = model.objects.filter(pk=pk).first()
    if resource is None or not _may_read(user, column, resource):
        raise Http404
    name = f"{resource} – procedures" if column == "staff" else f"{resource} – cases"
    body = feed(column, pk, name)
    AuditEvent.objects.create(
        actor=user,
        actor_label=user.get_username(),
        action="feed.read",
        object_type=model._meta.label_lower,
        object_id=str(pk),
        details={"kind": kind},
    )
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    response["Content-Disposition"] = f'inline; filename="{kind}-{pk}.ics"'
    return response
