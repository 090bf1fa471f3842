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
by the kind's builder, from the database, and handed to the backend; it is never logged.
"""

from __future__ import annotations

import logging
import time as time_module
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string

from core import metrics
from outbox.models import AlertKind, Channel, Notification, NotificationStatus
from outbox.registry import Message, NothingToSend, build_message
from outbox.services import alert_raise

logger = logging.getLogger(__name__)


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


def notification_finish(notification_id: int, status: str, **fields: object) -> None:
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
        notification_finish(notification_id, NotificationStatus.SKIPPED, last_error=str(reason))
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
            notification_finish(
                notification_id, NotificationStatus.PENDING, last_error=f"not sent: {cause}", queued_at=None
            )
            metrics.deliveries.labels("retry").inc()
            logger.warning("notification %s not sent (%s); will retry", notification_id, cause)
            return NotificationStatus.PENDING
        _fail(notification, f"not sent: {cause}")
        return NotificationStatus.FAILED
    except Exception as exc:
        # The server may have taken it: never resend, tell a person.
        _fail(notification, f"send: {type(exc).__name__}")
        return NotificationStatus.FAILED
    notification_finish(notification_id, NotificationStatus.SENT, sent_at=timezone.now(), last_error="")
    metrics.deliveries.labels("sent").inc()
    logger.info("notification %s sent (%s)", notification_id, notification.kind)
    return NotificationStatus.SENT


def _alert_site(notification: Notification) -> Any:
    if notification.site is not None:
        return notification.site
    return notification.booking.site if notification.booking is not None else None


def _fail(notification: Notification, error: str) -> None:
    with transaction.atomic():
        notification_finish(notification.pk, NotificationStatus.FAILED, last_error=error[:255])
        delivery_alert(notification, f"Message {notification.pk} ({notification.kind}) failed: {error}.")
    metrics.deliveries.labels("failed").inc()
    logger.error("notification %s failed: %s", notification.pk, error)


def delivery_alert(notification: Notification, message: str) -> None:
    site = _alert_site(notification)
    if site is None:
        logger.warning("notification %s: no site to alert", notification.pk)
        return
    alert_raise(site=site, booking=notification.booking, kind=AlertKind.DELIVERY_UNKNOWN, message=message)
