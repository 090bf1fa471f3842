"""Sending outbox rows: build each message from the database when it goes out, send it at
most once, and keep the row's status honest about what happened.

At most once rests on one conditional UPDATE: a sender moves the row from pending/queued to
``sending`` before it touches the mail server or SMS gateway, and only the sender whose UPDATE
changed the row goes on. A redelivered task message (a worker killed mid-send, a publish
repeated after a timeout) finds the row already claimed and does nothing. A row whose sender
died while it was ``sending`` is never retried: after a while it is marked ``unknown`` and a
person is alerted. Only a failure that certainly happened before anything left goes back to
pending.

Privacy: task arguments, logs and alerts carry ids, never patient data. Message text is built
here, from the database, and handed to the backend; it is never logged.
"""

from __future__ import annotations

import logging
import time as time_module
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import ClassVar, Protocol
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string

from core import metrics
from rooms.models import Downtime, Site
from scheduling.models import (
    ACTIVE_STATUSES,
    Alert,
    AlertKind,
    BleedingRisk,
    Booking,
    BookingStatus,
    Channel,
    LegRole,
    Notification,
    NotificationKind,
    NotificationStatus,
    Sedation,
)
from scheduling.services.downtime import downtime_span
from scheduling.services.reminders import ON_THE_LIST, discharged_on, local_midnight
from staff.models import Credential

logger = logging.getLogger(__name__)

API = "/api/v1"


# --- SMS backends -----------------------------------------------------------------------------


class SmsNotSent(Exception):
    """The gateway certainly did not take the message (e.g. it refused the connection), so it
    may be tried again. Any other exception from a backend means the outcome is unknown."""


class SmsBackend(Protocol):
    def send(self, *, notification_id: int, to: str, text: str) -> None: ...


def mask_phone(number: str) -> str:
    digits = [c for c in number if c.isdigit()]
    return "*" * max(len(digits) - 2, 0) + "".join(digits[-2:])


class LoggingSmsBackend:
    """The default: logs that a message would go out, with the number masked and no text."""

    def send(self, *, notification_id: int, to: str, text: str) -> None:
        logger.info("sms notification=%s to=%s chars=%d", notification_id, mask_phone(to), len(text))


@dataclass(frozen=True)
class SentSms:
    notification_id: int
    to: str
    text: str


class LocmemSmsBackend:
    """For tests in one process: keeps every message in ``outbox``."""

    outbox: ClassVar[list[SentSms]] = []

    def send(self, *, notification_id: int, to: str, text: str) -> None:
        self.outbox.append(SentSms(notification_id, to, text))


class FileSmsBackend:
    """For tests across processes: one file per message in ``SMS_FILE_PATH``, named by the
    notification id, written before an optional pause (``SMS_FILE_DELAY_SECONDS``) so a test
    can kill the worker after the message has gone out but before the row says so."""

    def send(self, *, notification_id: int, to: str, text: str) -> None:
        folder = Path(settings.SMS_FILE_PATH)
        folder.mkdir(parents=True, exist_ok=True)
        name = folder / f"{notification_id}-{uuid.uuid4().hex}.sms"
        name.write_text(f"to: {to}\n\n{text}\n", encoding="utf-8")
        if settings.SMS_FILE_DELAY_SECONDS:
            time_module.sleep(settings.SMS_FILE_DELAY_SECONDS)


def get_sms_backend() -> SmsBackend:
    backend: SmsBackend = import_string(settings.SMS_BACKEND)()
    return backend


# --- building messages ------------------------------------------------------------------------


class NothingToSend(Exception):
    """The message is moot (the case was cancelled, there is no address): the row is skipped."""


@dataclass(frozen=True)
class Message:
    channel: str
    to: str
    subject: str
    body: str


def _when(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%A %d %B at %H:%M}"


def _active_booking(notification: Notification, *statuses: str) -> Booking:
    booking = notification.booking
    if booking is None or booking.status not in statuses:
        raise NothingToSend("case_status")
    return booking


def _site_address(site: Site | None) -> str:
    if site is None or not site.notify_email:
        raise NothingToSend("no_address")
    return site.notify_email


def _needs_escort(booking: Booking) -> bool:
    return booking.sedation != Sedation.LOCAL or booking.procedure_type.requires_escort


def _patient_reminder(notification: Notification, now: datetime) -> Message:
    booking = _active_booking(notification, BookingStatus.SCHEDULED)
    if booking.starts_at <= now:
        raise NothingToSend("case_started")
    patient, site = booking.patient, booking.site
    if not patient.phone:
        raise NothingToSend("no_phone")
    zone = site.zone
    if notification.kind == NotificationKind.DAY_BEFORE_REMINDER:
        lines = [
            f"{site.name}: a reminder of your procedure on {_when(booking.starts_at, zone)}.",
            f"Please arrive at {booking.arrival_at.astimezone(zone):%H:%M}.",
        ]
        if _needs_escort(booking):
            lines.append("Bring the adult who will drive you home.")
    else:
        lines = [f"{site.name}: your {booking.procedure_type.name} is on {_when(booking.starts_at, zone)}."]
        if _needs_escort(booking):
            lines.append("You will not be allowed to drive: arrange a responsible adult to take you home.")
        if booking.procedure_type.bleeding_risk == BleedingRisk.HIGH:
            day = booking.starts_at.astimezone(zone).date()
            for hold in patient.medication_holds.all():
                last_dose = day - timedelta(days=hold.hold_days + 1)
                lines.append(f"Take your last dose of {hold.medication} on {last_dose:%A %d %B} at the latest.")
        if booking.sedation != Sedation.LOCAL:
            lines.append(
                f"Eat nothing for {site.npo_solids_hours} hours before your procedure; clear liquids are fine "
                f"until {site.npo_clears_hours} hours before."
            )
    lines.append("To change or cancel, call the clinic.")
    return Message(Channel.SMS, patient.phone, "", " ".join(lines))


def _ready_for_discharge(notification: Notification, now: datetime) -> Message:
    booking = _active_booking(notification, BookingStatus.READY_FOR_DISCHARGE)
    site = booking.site
    if notification.channel == Channel.SMS:
        # To the escort: no clinical detail, only that it is time to come.
        if not booking.patient.escort_phone:
            raise NothingToSend("no_phone")
        text = f"{site.name}: the person you are collecting is ready to go home. Please come to the recovery area."
        return Message(Channel.SMS, booking.patient.escort_phone, "", text)
    bay = next((leg for leg in booking.legs.all() if leg.role == LegRole.RECOVERY_BAY and leg.is_active), None)
    where = f" in {bay.bay}" if bay is not None and bay.bay is not None else ""
    at = booking.ready_for_discharge_at or now
    return Message(
        Channel.EMAIL,
        _site_address(site),
        f"Booking {booking.pk} ready for discharge",
        f"Booking {booking.pk} ({booking.procedure_type.code}){where} reached the end of its minimum recovery "
        f"at {at.astimezone(site.zone):%H:%M}. Confirm the escort is present before discharge.\n\n"
        f"{API}/bookings/{booking.pk}/",
    )


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
    # Counts and places only: email is not the place for patient names; the list is behind sign-in.
    body = (
        f"{len(cases)} case{'s' if len(cases) != 1 else ''} at {site.name} on {day:%A %d %B}.\n"
        f"First start: {first:%H:%M}.\n"
        f"Rooms: {', '.join(rooms)}.\n\n"
        f"Your list: {API}/daily-list/?physician={physician.pk}&date={day.isoformat()}"
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
    return Message(Channel.EMAIL, _site_address(site), f"Follow-up calls for {day:%a %d %b}: {count}", body)


def _credential_expiry(notification: Notification, now: datetime) -> Message:
    if notification.subject_id is None:
        raise NothingToSend("subject_gone")
    credential = Credential.objects.select_related("staff").filter(pk=notification.subject_id).first()
    if credential is None or credential.expires_on is None or not credential.staff.is_active:
        raise NothingToSend("subject_gone")
    if not notification.dedupe_key.endswith(f":{credential.expires_on.isoformat()}"):
        raise NothingToSend("renewed")
    staff = credential.staff
    to = staff.email or _site_address(notification.site)
    days = (credential.expires_on - timezone.localdate(now)).days
    body = (
        f"{staff}: your {credential} expires on {credential.expires_on:%d %B %Y}, in {days} days. "
        "Send the renewal to the clinic office so that cases can still be booked with you after that date."
    )
    return Message(Channel.EMAIL, to, f"Credential expires on {credential.expires_on:%d %b %Y}", body)


def _downtime_impact(notification: Notification, now: datetime) -> Message:
    booking = _active_booking(notification, *ACTIVE_STATUSES)
    if notification.subject_id is None:
        raise NothingToSend("subject_gone")
    downtime = Downtime.objects.select_related("room", "equipment").filter(pk=notification.subject_id).first()
    if downtime is None:
        raise NothingToSend("subject_gone")
    zone = booking.site.zone
    body = (
        f"{downtime.target} is down {downtime_span(downtime, zone)} ({downtime.get_reason_display().lower()}).\n"
        f"Booking {booking.pk} ({booking.procedure_type.code}) on {_when(booking.starts_at, zone)} needs it: "
        f"reschedule or cancel it.\n\n{API}/bookings/{booking.pk}/"
    )
    return Message(Channel.EMAIL, _site_address(booking.site), f"Downtime affects booking {booking.pk}", body)


def _recovery_clash(notification: Notification, now: datetime) -> Message:
    booking = notification.booking
    if booking is None:
        raise NothingToSend("subject_gone")
    body = (
        f"A late case pushes the recovery of booking {booking.pk} into another leg; see the site's open alerts."
        f"\n\n{API}/bookings/{booking.pk}/"
    )
    return Message(Channel.EMAIL, _site_address(booking.site), f"Recovery clash: booking {booking.pk}", body)


BUILDERS = {
    NotificationKind.PREP_REMINDER: _patient_reminder,
    NotificationKind.DAY_BEFORE_REMINDER: _patient_reminder,
    NotificationKind.READY_FOR_DISCHARGE: _ready_for_discharge,
    NotificationKind.DAILY_LIST: _daily_list,
    NotificationKind.FOLLOW_UP_CALLS: _follow_up_calls,
    NotificationKind.CREDENTIAL_EXPIRY_60: _credential_expiry,
    NotificationKind.CREDENTIAL_EXPIRY_30: _credential_expiry,
    NotificationKind.DOWNTIME_IMPACT: _downtime_impact,
    NotificationKind.RECOVERY_CLASH: _recovery_clash,
}


def build_message(notification: Notification, *, now: datetime | None = None) -> Message:
    """The message for a row as things stand now; raises NothingToSend if it is moot."""
    builder = BUILDERS.get(NotificationKind(notification.kind))
    if builder is None:
        raise NothingToSend("unknown_kind")
    return builder(notification, now or timezone.now())


# --- sending ----------------------------------------------------------------------------------


class NotSent(Exception):
    """Raised before anything left: the row may go back to pending."""


def _send(notification_id: int, message: Message) -> None:
    if message.channel == Channel.SMS:
        try:
            get_sms_backend().send(notification_id=notification_id, to=message.to, text=message.body)
        except SmsNotSent as exc:
            raise NotSent(type(exc).__name__) from exc
        return
    connection = get_connection(fail_silently=False)
    try:
        # Opening first separates "never connected" (safe to retry) from a failure while the
        # server had the message (maybe delivered: never retried).
        connection.open()
    except Exception as exc:
        raise NotSent(type(exc).__name__) from exc
    try:
        EmailMessage(
            subject=message.subject,
            body=message.body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[message.to],
            headers={"X-Notification-Id": str(notification_id)},
            connection=connection,
        ).send()
    finally:
        connection.close()


def _finish(notification_id: int, status: str, **fields: object) -> None:
    Notification.objects.filter(pk=notification_id, status=NotificationStatus.SENDING).update(status=status, **fields)


def notification_claim(notification_id: int, *, now: datetime) -> bool:
    """Move the row to ``sending`` if nobody has; True if this caller now owns it."""
    claimed = Notification.objects.filter(
        pk=notification_id, status__in=[NotificationStatus.PENDING, NotificationStatus.QUEUED]
    ).update(status=NotificationStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    return claimed == 1


def notification_send(notification_id: int, *, now: datetime | None = None) -> str:
    """Send one outbox row at most once; returns what happened (a status or "already_handled").

    Precondition: called outside any transaction (as a task is), so that the claim is
    committed before the message goes and every later sender sees it.
    """
    now = now or timezone.now()
    if not notification_claim(notification_id, now=now):
        logger.info("notification %s already claimed or gone: not sent again", notification_id)
        return "already_handled"
    notification = Notification.objects.select_related(
        "booking__patient", "booking__site", "booking__procedure_type", "staff", "site"
    ).get(pk=notification_id)
    try:
        message = build_message(notification, now=now)
    except NothingToSend as reason:
        _finish(notification_id, NotificationStatus.SKIPPED, last_error=str(reason))
        logger.info("notification %s skipped: %s", notification_id, reason)
        return NotificationStatus.SKIPPED
    except Exception as exc:
        _fail(notification, f"build: {type(exc).__name__}")
        return NotificationStatus.FAILED
    try:
        _send(notification_id, message)
    except NotSent as exc:
        # Retried on later relay runs (a mail server down for an hour is not a reason to drop
        # the message), until it is too stale to be worth sending. Only the error's type is
        # kept: a server's message can quote the recipient.
        cause = type(exc.__cause__ or exc).__name__
        if now - notification.due_at < timedelta(hours=settings.OUTBOX_RETRY_HOURS):
            _finish(notification_id, NotificationStatus.PENDING, last_error=f"not sent: {cause}", queued_at=None)
            metrics.deliveries.labels("retry").inc()
            logger.warning("notification %s not sent (%s); will retry", notification_id, cause)
            return NotificationStatus.PENDING
        _fail(notification, f"not sent: {cause}")
        return NotificationStatus.FAILED
    except Exception as exc:
        # The server may have taken it: never resend, tell a person.
        _fail(notification, f"send: {type(exc).__name__}")
        return NotificationStatus.FAILED
    _finish(notification_id, NotificationStatus.SENT, sent_at=timezone.now(), last_error="")
    metrics.deliveries.labels("sent").inc()
    logger.info("notification %s sent (%s)", notification_id, notification.kind)
    return NotificationStatus.SENT


def _alert_site(notification: Notification) -> Site | None:
    if notification.site is not None:
        return notification.site
    return notification.booking.site if notification.booking is not None else None


def _fail(notification: Notification, error: str) -> None:
    with transaction.atomic():
        _finish(notification.pk, NotificationStatus.FAILED, last_error=error[:255])
        _alert(notification, f"Message {notification.pk} ({notification.kind}) failed: {error}.")
    metrics.deliveries.labels("failed").inc()
    logger.error("notification %s failed: %s", notification.pk, error)


def _alert(notification: Notification, message: str) -> None:
    site = _alert_site(notification)
    if site is None:
        logger.warning("notification %s: no site to alert", notification.pk)
        return
    Alert.objects.create(site=site, booking=notification.booking, kind=AlertKind.DELIVERY_UNKNOWN, message=message)


# --- the relay's bookkeeping (the publishing itself is in scheduling.tasks) --------------------


def outbox_take_due(*, now: datetime, limit: int) -> list[int]:
    """Mark up to ``limit`` due pending rows queued and return their ids, oldest first.

    Concurrent relays take disjoint rows: FOR UPDATE SKIP LOCKED on PostgreSQL; on SQLite the
    IMMEDIATE transaction runs one relay at a time.
    """
    with transaction.atomic():
        ids = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(status=NotificationStatus.PENDING, due_at__lte=now)
            .order_by("due_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            Notification.objects.filter(pk__in=ids).update(status=NotificationStatus.QUEUED, queued_at=now)
    return ids


def outbox_put_back(ids: list[int], *, error: str) -> int:
    """Return rows whose publish failed to pending, for the next relay run."""
    return Notification.objects.filter(pk__in=ids, status=NotificationStatus.QUEUED).update(
        status=NotificationStatus.PENDING, queued_at=None, attempts=F("attempts") + 1, last_error=error[:255]
    )


def outbox_recover(*, now: datetime) -> tuple[int, int]:
    """Repair rows stuck in flight; returns (requeued, marked unknown).

    - queued for longer than ``OUTBOX_REQUEUE_AFTER_MINUTES``: the publish was lost (a crash
      after the relay's commit, a broker that dropped it); back to pending. If the message
      was only slow, the second copy finds the row claimed.
    - sending for longer than ``OUTBOX_UNKNOWN_AFTER_MINUTES``: the sender died and may or may
      not have sent it. Marked unknown with an alert instead of sending again.
    """
    requeued = Notification.objects.filter(
        status=NotificationStatus.QUEUED,
        queued_at__lt=now - timedelta(minutes=settings.OUTBOX_REQUEUE_AFTER_MINUTES),
    ).update(status=NotificationStatus.PENDING, queued_at=None)
    with transaction.atomic():
        stuck = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                status=NotificationStatus.SENDING,
                claimed_at__lt=now - timedelta(minutes=settings.OUTBOX_UNKNOWN_AFTER_MINUTES),
            )
            .select_related("site", "booking__site")
            .order_by("pk")
        )
        for notification in stuck:
            _finish(notification.pk, NotificationStatus.UNKNOWN, last_error="sender stopped mid-send")
            _alert(
                notification,
                f"Message {notification.pk} ({notification.kind}) may not have been sent: its sender stopped "
                "mid-send. Check with the recipient; it will not be sent again automatically.",
            )
    if stuck:
        logger.warning("%d notifications marked unknown: %s", len(stuck), [n.pk for n in stuck])
    return requeued, len(stuck)
