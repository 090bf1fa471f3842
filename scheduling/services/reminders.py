"""What is due to whom, written as outbox rows.

Two kinds of writers live here:

- ``reminders_schedule`` / ``reminders_withdraw`` run inside a booking's transaction and keep
  its patient reminders in step with it;
- the ``*_enqueue`` scans run from beat. Each row's ``dedupe_key`` names its subject and, for
  work lists, its day, so running a scan twice (or on two beat hosts) writes nothing new.

Times come from settings (clinic defaults): reminders at a fixed number of hours before the
case, work lists at a site-local time of day.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from outbox.models import Channel, Notification
from outbox.services import enqueue_notification, skip_pending
from patients.models import MedicationHold
from rooms.models import Site
from scheduling.holdrule import HoldRow, stop_notices
from scheduling.kinds import SchedulingMessage
from scheduling.models import Allocation, Booking, BookingStatus, LegRole
from staff.models import Credential, Shift, StaffMember

# Statuses of a case that is on the day's list (a hold is not a case yet).
ON_THE_LIST = frozenset(
    {
        BookingStatus.SCHEDULED,
        BookingStatus.CHECKED_IN,
        BookingStatus.READY,
        BookingStatus.IN_PROCEDURE,
        BookingStatus.IN_RECOVERY,
        BookingStatus.READY_FOR_DISCHARGE,
        BookingStatus.DISCHARGED,
    }
)
# The two warnings, widest first: a credential gets the warning of the window it is in when a
# scan first sees it, so one added with 20 days left gets only the 30-day warning.
CREDENTIAL_WARNINGS = ((60, SchedulingMessage.CREDENTIAL_EXPIRY_60), (30, SchedulingMessage.CREDENTIAL_EXPIRY_30))


def reminder_times(*, booking: Booking, holds: Sequence[HoldRow], now: datetime) -> dict[str, datetime]:
    """When each patient reminder of a case is due.

    The preparation reminder goes ``PREP_REMINDER_HOURS`` before the case, or earlier when the
    patient must stop a drug for it: on the day before the first last-dose day, at the site's
    ``PREP_REMINDER_LOCAL_TIME``, so the patient hears before they must stop. A time already
    past is due at once.
    """
    zone = booking.site.zone
    prep = booking.starts_at - timedelta(hours=settings.PREP_REMINDER_HOURS)
    case_day = booking.starts_at.astimezone(zone).date()
    notices = stop_notices(holds, booking.procedure_type.bleeding_risk, case_day)
    if notices:
        at = time.fromisoformat(settings.PREP_REMINDER_LOCAL_TIME)
        stop_notice = datetime.combine(notices[0].last_dose_day - timedelta(days=1), at, tzinfo=zone)
        prep = min(prep, stop_notice)
    day_before = booking.starts_at - timedelta(hours=settings.DAY_BEFORE_REMINDER_HOURS)
    return {
        SchedulingMessage.PREP_REMINDER: max(prep, now),
        SchedulingMessage.DAY_BEFORE_REMINDER: max(day_before, now),
    }


def patient_holds(patient_id: int) -> list[HoldRow]:
    return [HoldRow.of(hold) for hold in MedicationHold.objects.filter(patient_id=patient_id).select_related("drug")]


def booking_key(kind: str, booking_id: int | str) -> str:
    return f"{kind}:booking:{booking_id}"


def gets_reminders(booking: Booking, now: datetime) -> bool:
    """Only a scheduled case that has not started is reminded of (a hold is when confirmed)."""
    return booking.status == BookingStatus.SCHEDULED and booking.starts_at > now


def new_reminders(*, booking: Booking, holds: Sequence[HoldRow], now: datetime) -> list[tuple[Notification, str]]:
    """The reminder rows of a case being created (not yet saved, nor the case), each with its
    dedupe key as a template of the case's id: its writer inserts them with the case."""
    if not gets_reminders(booking, now):
        return []
    return [
        (
            Notification(kind=kind, due_at=due, site_id=booking.site_id, channel=Channel.SMS),
            booking_key(kind, "{}"),
        )
        for kind, due in reminder_times(booking=booking, holds=holds, now=now).items()
    ]


def reminders_schedule(
    *, booking: Booking, now: datetime | None = None, holds: Sequence[HoldRow] | None = None
) -> list[Notification]:
    """Write, or re-time, the patient reminders of a scheduled case.

    Call inside the booking's transaction. A case that has started gets none. Patients have no
    email address on file, so reminders go by SMS to ``Patient.phone``, read when the message
    is sent (a number added later is used; a case with none is skipped then). A reminder
    already handed to the broker keeps its time: it is built from the case as it stands when
    sent.

    ``holds``: the patient's medication holds as the booking's rulebook read them (read here
    when not given). A new case's rows are written with it (``new_reminders``).
    """
    now = now or timezone.now()
    if not gets_reminders(booking, now):
        return []
    if holds is None:
        holds = patient_holds(booking.patient_id)
    times = reminder_times(booking=booking, holds=holds, now=now)
    return [
        enqueue_notification(
            kind=kind,
            dedupe_key=booking_key(kind, booking.pk),
            due_at=due,
            booking=booking,
            site=booking.site,
            channel=Channel.SMS,
        )
        for kind, due in times.items()
    ]


def reminders_retime_for_patient(*, patient_id: int, now: datetime | None = None) -> int:
    """Re-time the reminders of the patient's scheduled cases after their holds changed (a
    drug added, a last dose recorded). Returns how many cases were looked at."""
    now = now or timezone.now()
    holds = patient_holds(patient_id)
    cases = list(
        Booking.objects.filter(patient_id=patient_id, status=BookingStatus.SCHEDULED, starts_at__gt=now)
        .select_related("site", "procedure_type")
        .order_by("starts_at", "pk")
    )
    for booking in cases:
        reminders_schedule(booking=booking, now=now, holds=holds)
    return len(cases)


def reminders_withdraw(*, booking: Booking) -> int:
    """Skip the case's messages that have not gone out (it was cancelled or not attended)."""
    return skip_pending(booking=booking)


# --- work lists -----------------------------------------------------------------------------


def local_midnight(day: date, site: Site) -> datetime:
    return datetime.combine(day, time(0), tzinfo=site.zone)


def _sites_at(local_time: time, now: datetime) -> Iterable[tuple[Site, date, datetime]]:
    """Active sites whose ``local_time`` today has passed, within the grace window: (site,
    site-local date, that moment). Beat runs the scans every few minutes, so a list is written
    on the first run after its time, and a scan that was down for hours does not send stale
    lists."""
    grace = timedelta(minutes=settings.WORK_LIST_GRACE_MINUTES)
    for site in Site.objects.filter(is_active=True).order_by("pk"):
        today = now.astimezone(site.zone).date()
        due = datetime.combine(today, local_time, tzinfo=site.zone)
        if due <= now < due + grace:
            yield site, today, due


@dataclass(frozen=True)
class Intent:
    """A row a scan wants to exist."""

    kind: str
    dedupe_key: str
    due_at: datetime
    staff: StaffMember | None = None
    site: Site | None = None
    subject_id: int | None = None


def _write_new(intents: list[Intent]) -> int:
    """Write the intents that have no row yet, by email; returns how many were new. Keys are
    checked in one query, and ``enqueue_notification`` still settles a raced duplicate."""
    existing = set(
        Notification.objects.filter(dedupe_key__in=[i.dedupe_key for i in intents]).values_list("dedupe_key", flat=True)
    )
    new = [i for i in intents if i.dedupe_key not in existing]
    for intent in new:
        enqueue_notification(
            kind=intent.kind,
            dedupe_key=intent.dedupe_key,
            due_at=intent.due_at,
            staff=intent.staff,
            site=intent.site,
            subject_id=intent.subject_id,
            channel=Channel.EMAIL,
        )
    return len(new)


def daily_lists_enqueue(*, now: datetime | None = None) -> int:
    """One email per physician with cases at a site today, due at the site's list time.

    The list's day is the site-local date of the row's ``due_at``; the message is built when
    sent, so it counts the cases booked by then. Returns how many rows were created.
    """
    now = now or timezone.now()
    at = time.fromisoformat(settings.DAILY_LIST_LOCAL_TIME)
    intents: list[Intent] = []
    for site, today, due in _sites_at(at, now):
        staff_ids = (
            Allocation.objects.filter(
                role=LegRole.PHYSICIAN,
                is_active=True,
                booking__site=site,
                booking__status__in=ON_THE_LIST,
                booking__starts_at__gte=local_midnight(today, site),
                booking__starts_at__lt=local_midnight(today + timedelta(days=1), site),
            )
            .values_list("staff_id", flat=True)
            .distinct()
        )
        intents += [
            Intent(
                kind=SchedulingMessage.DAILY_LIST,
                dedupe_key=f"daily_list:staff:{physician.pk}:site:{site.pk}:date:{today.isoformat()}",
                due_at=due,
                staff=physician,
                site=site,
            )
            for physician in StaffMember.objects.filter(pk__in=staff_ids).order_by("pk")
        ]
    with transaction.atomic():
        return _write_new(intents)


def follow_up_lists_enqueue(*, now: datetime | None = None) -> int:
    """One email per site listing yesterday's discharges for the next-day call, due at the
    site's follow-up time; nothing for a day without discharges."""
    now = now or timezone.now()
    at = time.fromisoformat(settings.FOLLOW_UP_LIST_LOCAL_TIME)
    intents: list[Intent] = []
    for site, today, due in _sites_at(at, now):
        yesterday = today - timedelta(days=1)
        if discharged_on(site, yesterday).exists():
            intents.append(
                Intent(
                    kind=SchedulingMessage.FOLLOW_UP_CALLS,
                    dedupe_key=f"follow_up_calls:site:{site.pk}:date:{yesterday.isoformat()}",
                    due_at=due,
                    site=site,
                )
            )
    with transaction.atomic():
        return _write_new(intents)


def discharged_on(site: Site, day: date) -> QuerySet[Booking]:
    """Cases discharged at ``site`` on its local ``day``: the next-day call list."""
    return Booking.objects.filter(
        site=site,
        status=BookingStatus.DISCHARGED,
        discharged_at__gte=local_midnight(day, site),
        discharged_at__lt=local_midnight(day + timedelta(days=1), site),
    )


def credential_warnings_enqueue(*, now: datetime | None = None) -> int:
    """Warn active staff of credentials expiring within 60 and within 30 days.

    The key names the expiry date as well as the credential, so a renewed credential (same
    row, new date) is warned about again before its next expiry. "Today" is the UTC date:
    staff are not tied to one site's zone, and a day either way does not matter at 30 days.
    """
    now = now or timezone.now()
    today = timezone.localdate(now, timezone=UTC)
    intents: list[Intent] = []
    for i, (days, kind) in enumerate(CREDENTIAL_WARNINGS):
        narrower = CREDENTIAL_WARNINGS[i + 1][0] if i + 1 < len(CREDENTIAL_WARNINGS) else None
        lower = today + timedelta(days=narrower + 1) if narrower is not None else today
        credentials = list(
            Credential.objects.filter(
                staff__is_active=True, expires_on__gte=lower, expires_on__lte=today + timedelta(days=days)
            )
            .select_related("staff")
            .order_by("pk")
        )
        # A site where they work: the fallback address, and where an alert would show.
        site_of: dict[int, int] = {}
        shifts = Shift.objects.filter(staff_id__in={c.staff_id for c in credentials}).order_by("pk")
        for staff_id, site_id in shifts.values_list("staff_id", "site_id"):
            site_of.setdefault(staff_id, site_id)
        sites = Site.objects.in_bulk(set(site_of.values()))
        for credential in credentials:
            assert credential.expires_on is not None
            intents.append(
                Intent(
                    kind=kind,
                    dedupe_key=f"{kind}:credential:{credential.pk}:{credential.expires_on.isoformat()}",
                    due_at=now,
                    staff=credential.staff,
                    site=sites.get(site_of.get(credential.staff_id, 0)),
                    subject_id=credential.pk,
                )
            )
    with transaction.atomic():
        return _write_new(intents)
