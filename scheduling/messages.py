"""What scheduling's outbox rows say, built when each is sent (registered with the outbox).

Privacy: patient reminders go to the patient's own phone; email to staff carries counts,
places, ids and times, never a patient's name (lists are behind sign-in).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from outbox.models import Channel, Notification
from outbox.registry import Message, NothingToSend, register
from rooms.models import Downtime, Site
from scheduling.holdrule import HoldRow, stop_notices
from scheduling.kinds import SchedulingMessage
from scheduling.models import ACTIVE_STATUSES, Booking, BookingStatus, LegRole, Sedation
from scheduling.services.downtime import downtime_span
from scheduling.services.reminders import ON_THE_LIST, discharged_on, local_midnight
from staff.models import Credential

API = "/api/v1"


def when(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%A %d %B at %H:%M}"


def active_booking(notification: Notification, *statuses: str) -> Booking:
    booking = notification.booking
    if booking is None or booking.status not in statuses:
        raise NothingToSend("case_status")
    return booking


def site_address(site: Site | None) -> str:
    if site is None or not site.notify_email:
        raise NothingToSend("no_address")
    return site.notify_email


def _needs_escort(booking: Booking) -> bool:
    return booking.sedation != Sedation.LOCAL or booking.procedure_type.requires_escort


def _patient_reminder(notification: Notification, now: datetime) -> Message:
    booking = active_booking(notification, BookingStatus.SCHEDULED)
    if booking.starts_at <= now:
        raise NothingToSend("case_started")
    patient, site = booking.patient, booking.site
    if not patient.phone:
        raise NothingToSend("no_phone")
    zone = site.zone
    if notification.kind == SchedulingMessage.DAY_BEFORE_REMINDER:
        lines = [
            f"{site.name}: a reminder of your procedure on {when(booking.starts_at, zone)}.",
            f"Please arrive at {booking.arrival_at.astimezone(zone):%H:%M}.",
        ]
        if _needs_escort(booking):
            lines.append("Bring the adult who will drive you home.")
    else:
        lines = [f"{site.name}: your {booking.procedure_type.name} is on {when(booking.starts_at, zone)}."]
        if _needs_escort(booking):
            lines.append("You will not be allowed to drive: arrange a responsible adult to take you home.")
        case_day = booking.starts_at.astimezone(zone).date()
        today = now.astimezone(zone).date()
        holds = [HoldRow.of(hold) for hold in patient.medication_holds.select_related("drug")]
        for notice in stop_notices(holds, booking.procedure_type.bleeding_risk, case_day):
            name = notice.hold.medication
            if notice.last_dose_day >= today:
                lines.append(
                    f"Take your last dose of {name} on {notice.last_dose_day:%A %d %B} at the latest; check with "
                    "the doctor who prescribes it before you stop."
                )
            else:
                lines.append(f"Do not take {name} again before your procedure unless the clinic tells you otherwise.")
        if booking.sedation != Sedation.LOCAL:
            lines.append(
                f"Eat nothing for {site.npo_solids_hours} hours before your procedure; clear liquids are fine "
                f"until {site.npo_clears_hours} hours before."
            )
    lines.append("To change or cancel, call the clinic.")
    return Message(Channel.SMS, patient.phone, "", " ".join(lines))


def _list_day(notification: Notification, site: Site) -> date:
    """Work lists are due at a site-local time on the day they are for."""
    return notification.due_at.astimezone(site.zone).date()


def _daily_list(notification: Notification, now: datetime) -> Message:
    physician, site = notification.staff, notification.site
    if physician is None or site is None:
        raise NothingToSend("subject_gone")
    if not physician.email:
        raise NothingToSend("no_address")
    day = _list_day(notification, site)
    cases = list(
        Booking.objects.filter(
            site=site,
            status__in=ON_THE_LIST,
            starts_at__gte=local_midnight(day, site),
            starts_at__lt=local_midnight(day + timedelta(days=1), site),
            legs__role=LegRole.PHYSICIAN,
            legs__staff=physician,
            legs__is_active=True,
        )
        .prefetch_related("legs__room")
        .order_by("starts_at", "pk")
        .distinct()
    )
    if not cases:
        raise NothingToSend("no_cases")
    rooms = sorted({str(leg.room) for case in cases for leg in case.legs.all() if leg.room_id and leg.is_active})
    first = cases[0].starts_at.astimezone(site.zone)
    body = (
        f"{len(cases)} case{'s' if len(cases) != 1 else ''} at {site.name} on {day:%A %d %B}.\n"
        f"First start: {first:%H:%M}.\n"
        f"Rooms: {', '.join(rooms)}.\n\n"
        f"Your list (sign in to open it): {settings.PUBLIC_URL}/day/?date={day.isoformat()}"
    )
    return Message(Channel.EMAIL, physician.email, f"Your cases on {day:%a %d %b}: {len(cases)}", body)


def _follow_up_calls(notification: Notification, now: datetime) -> Message:
    site = notification.site
    if site is None:
        raise NothingToSend("subject_gone")
    day = _list_day(notification, site) - timedelta(days=1)
    count = discharged_on(site, day).count()
    if not count:
        raise NothingToSend("no_cases")
    body = (
        f"{count} patient{'s' if count != 1 else ''} discharged from {site.name} on {day:%A %d %B} "
        f"{'are' if count != 1 else 'is'} due a next-day call.\n\n"
        f"The list: {API}/bookings/?site={site.pk}&status=discharged&date_from={day.isoformat()}"
        f"&date_to={(day + timedelta(days=1)).isoformat()}"
    )
    return Message(Channel.EMAIL, site_address(site), f"Follow-up calls for {day:%a %d %b}: {count}", body)


def _credential_expiry(notification: Notification, now: datetime) -> Message:
    if notification.subject_id is None:
        raise NothingToSend("subject_gone")
    credential = Credential.objects.select_related("staff").filter(pk=notification.subject_id).first()
    if credential is None or credential.expires_on is None or not credential.staff.is_active:
        raise NothingToSend("subject_gone")
    if not notification.dedupe_key.endswith(f":{credential.expires_on.isoformat()}"):
        raise NothingToSend("renewed")
    staff = credential.staff
    to = staff.email or site_address(notification.site)
    days = (credential.expires_on - timezone.localdate(now)).days
    body = (
        f"{staff}: your {credential} expires on {credential.expires_on:%d %B %Y}, in {days} days. "
        "Send the renewal to the clinic office so that cases can still be booked with you after that date."
    )
    return Message(Channel.EMAIL, to, f"Credential expires on {credential.expires_on:%d %b %Y}", body)


def _downtime_impact(notification: Notification, now: datetime) -> Message:
    booking = active_booking(notification, *ACTIVE_STATUSES)
    if notification.subject_id is None:
        raise NothingToSend("subject_gone")
    downtime = Downtime.objects.select_related("room", "equipment").filter(pk=notification.subject_id).first()
    if downtime is None:
        raise NothingToSend("subject_gone")
    zone = booking.site.zone
    body = (
        f"{downtime.target} is down {downtime_span(downtime, zone)} ({downtime.get_reason_display().lower()}).\n"
        f"Booking {booking.pk} ({booking.procedure_type.code}) on {when(booking.starts_at, zone)} needs it: "
        f"reschedule or cancel it.\n\n{API}/bookings/{booking.pk}/"
    )
    return Message(Channel.EMAIL, site_address(booking.site), f"Downtime affects booking {booking.pk}", body)


for _kind, _builder in (
    (SchedulingMessage.PREP_REMINDER, _patient_reminder),
    (SchedulingMessage.DAY_BEFORE_REMINDER, _patient_reminder),
    (SchedulingMessage.DAILY_LIST, _daily_list),
    (SchedulingMessage.FOLLOW_UP_CALLS, _follow_up_calls),
    (SchedulingMessage.CREDENTIAL_EXPIRY_60, _credential_expiry),
    (SchedulingMessage.CREDENTIAL_EXPIRY_30, _credential_expiry),
    (SchedulingMessage.DOWNTIME_IMPACT, _downtime_impact),
):
    register(_kind.value, _kind.label, _builder)
