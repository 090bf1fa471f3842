"""Delivering change events to webhooks and HL7 interfaces, from the outbox.

- **Fan-out** turns each new ``ChangeEvent`` into one ``Delivery`` per destination that wants
  it (rows locked with SKIP LOCKED, so two relays split the work).
- **Sending** takes one destination at a time under a lease, so its deliveries leave in event
  order; a delivery waits while an earlier one of the same subject (case or downtime) is still
  pending, so each appointment's messages arrive in order even across retries.
- A failure is retried with exponential backoff. A destination that cannot be reached stops
  its run (everything waits for it and goes when it is back); a delivery that keeps failing,
  or that an HL7 receiver rejects (AR), is parked with an alert for a person, who may redeliver.

Every attempt is logged (``DeliveryAttempt``): outcome, code, timing; never the payload.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.audit import audit_record
from interop import hl7, mllp
from interop.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Hl7Interface,
    WebhookSubscription,
    new_secret,
)
from outbox.models import AlertKind, ChangeEvent
from outbox.services import alert_raise

logger = logging.getLogger(__name__)
FAN_OUT_BATCH = 500
SEND_BATCH = 200


def subject_key(event: ChangeEvent) -> str:
    return f"booking:{event.booking_id}" if event.booking_id is not None else f"downtime:{event.subject_id}"


def deliveries_fan_out(*, now: datetime | None = None) -> int:
    """One delivery per (new event, destination that wants it); returns how many."""
    now = now or timezone.now()
    with transaction.atomic():
        pending = list(
            ChangeEvent.objects.select_for_update(skip_locked=True)
            .filter(fanned_out_at__isnull=True)
            .order_by("id")[:FAN_OUT_BATCH]
        )
        if not pending:
            return 0
        webhooks = list(WebhookSubscription.objects.filter(is_active=True))
        interfaces = list(Hl7Interface.objects.filter(is_active=True))
        rows = []
        for event in pending:
            key = subject_key(event)
            rows += [
                Delivery(event=event, webhook=hook, subject_key=key, next_attempt_at=now)
                for hook in webhooks
                if hook.wants(event.kind)
            ]
            if hl7.trigger_of(event) is not None:
                rows += [Delivery(event=event, interface=i, subject_key=key, next_attempt_at=now) for i in interfaces]
        Delivery.objects.bulk_create(rows, ignore_conflicts=True)
        ChangeEvent.objects.filter(pk__in=[e.pk for e in pending]).update(fanned_out_at=now)
    return len(rows)


# --- outcomes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    kind: str  # delivered, retry, park, unreachable
    code: str = ""
    detail: str = ""


def backoff(attempts: int) -> timedelta:
    seconds = settings.DELIVERY_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1)
    return timedelta(seconds=min(seconds, settings.DELIVERY_RETRY_MAX_SECONDS))


def _record(delivery: Delivery, outcome: Outcome, *, now: datetime, started: float) -> None:
    DeliveryAttempt.objects.create(
        delivery=delivery,
        at=now,
        outcome=outcome.kind,
        code=outcome.code[:10],
        detail=outcome.detail[:255],
        duration_ms=int((time.monotonic() - started) * 1000),
    )


def _park(delivery: Delivery, outcome: Outcome, *, now: datetime) -> None:
    delivery.status = DeliveryStatus.PARKED
    delivery.last_error = (outcome.detail or outcome.code)[:255]
    delivery.save(update_fields=["status", "last_error", "attempts"])
    destination = delivery.webhook or delivery.interface
    event = delivery.event
    site = event.site
    if site is not None:
        alert_raise(
            site=site,
            booking=event.booking,
            kind=AlertKind.INTERFACE_FAILED,
            message=(
                f"Delivery {delivery.pk} of {event.kind} #{event.pk} to {destination} was given up after "
                f"{delivery.attempts} attempt(s): {delivery.last_error}. Redeliver it once the receiver is fixed."
            ),
        )
    logger.error("delivery %s parked after %s attempts (%s)", delivery.pk, delivery.attempts, outcome.code)


def _apply(delivery: Delivery, outcome: Outcome, *, now: datetime, max_attempts: int) -> None:
    delivery.attempts += 1
    if outcome.kind == "delivered":
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
        delivery.last_error = ""
        delivery.save(update_fields=["status", "delivered_at", "last_error", "attempts"])
        return
    too_old = now - delivery.event.occurred_at > timedelta(hours=settings.DELIVERY_GIVE_UP_HOURS)
    counted = outcome.kind == "retry" and delivery.attempts >= max_attempts
    if outcome.kind == "park" or counted or too_old:
        with transaction.atomic():
            _park(delivery, outcome, now=now)
        return
    delivery.next_attempt_at = now + backoff(delivery.attempts)
    delivery.last_error = (outcome.detail or outcome.code)[:255]
    delivery.save(update_fields=["next_attempt_at", "last_error", "attempts"])


# --- webhooks -----------------------------------------------------------------------------

BOOKING_FIELDS = ("status", "previous_status", "starts_at", "ends_at", "previous_starts_at")


def webhook_payload(event: ChangeEvent) -> dict[str, Any]:
    """Ids, codes and times only: what changed, not who it is about."""
    data = event.data
    body: dict[str, Any] = {"site": event.site_id}
    if event.booking_id is not None:
        body["booking"] = event.booking_id
        body.update({name: data[name] for name in BOOKING_FIELDS if name in data})
        body["legs"] = [
            {"role": leg["role"], "kind": leg["kind"], "id": leg["id"], "start": leg["start"], "end": leg["end"]}
            for leg in data.get("legs", [])
            if leg["kind"] != "patient"
        ]
    else:
        body["downtime"] = event.subject_id
        body["resource"] = {"kind": data["resource"]["kind"], "id": data["resource"]["id"]}
        body["starts_at"], body["ends_at"] = data["starts_at"], data["ends_at"]
    return {"id": f"evt_{event.pk}", "type": event.kind, "created": event.occurred_at.isoformat(), "data": body}


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=`` and the hex HMAC-SHA256 of ``<timestamp>.<body>`` under the subscription's secret."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def signatures(hook: WebhookSubscription, timestamp: int, body: bytes, now: datetime) -> str:
    """The signature header: one ``v1=`` per secret in use (two while a rotation settles),
    comma-separated; a receiver accepts the request if any of them matches its secret."""
    return ",".join(signature(secret, timestamp, body) for secret in hook.signing_secrets(now))


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a delivery: followed, a POST would turn into a GET of some
    other page and its 200 would count as delivered. It is retried like any other non-2xx."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _send_webhook(delivery: Delivery, hook: WebhookSubscription, *, now: datetime) -> Outcome:
    body = json.dumps(webhook_payload(delivery.event), separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(now.timestamp())
    request = urllib.request.Request(  # noqa: S310 - the URL is an https/http endpoint an admin configured
        hook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "pain-clinic-scheduling-webhooks/1",
            "X-Webhook-Id": f"evt_{delivery.event_id}",
            "X-Webhook-Delivery": str(delivery.pk),
            "X-Webhook-Timestamp": str(timestamp),
            "X-Webhook-Signature": signatures(hook, timestamp, body, now),
        },
    )
    try:
        with _opener.open(request, timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as answer:
            code = answer.status
    except urllib.error.HTTPError as exc:
        return Outcome("retry", str(exc.code), f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Outcome("unreachable", "", f"not reached: {type(reason).__name__}")
    if 200 <= code < 300:
        return Outcome("delivered", str(code))
    return Outcome("retry", str(code), f"HTTP {code}")


# --- HL7 ----------------------------------------------------------------------------------


def _send_hl7(delivery: Delivery, interface: Hl7Interface, *, now: datetime) -> Outcome:
    if not delivery.control_id:
        delivery.control_id = f"PS{delivery.pk:012d}"
        Delivery.objects.filter(pk=delivery.pk).update(control_id=delivery.control_id)
    try:
        message = hl7.build_siu(
            delivery.event,
            hl7.Interface(
                interface.sending_application,
                interface.sending_facility,
                interface.receiving_application,
                interface.receiving_facility,
                interface.processing_id,
            ),
            delivery.control_id,
            now=now,
        )
    except Exception as exc:  # a message we cannot build is ours to fix: parked, not retried
        # The type only: a validation error quotes the field's value, which can be the patient's.
        logger.error("delivery %s: SIU not built (%s)", delivery.pk, type(exc).__name__)
        return Outcome("park", "build", f"message not built: {type(exc).__name__}")
    try:
        ack = mllp.send(interface.host, interface.port, message, timeout=interface.timeout_seconds)
    except mllp.NotSent as exc:
        return Outcome("unreachable", "", f"not reached: {exc}")
    except mllp.NoAck as exc:
        return Outcome("unreachable", "", f"no acknowledgement: {exc}")
    if ack.control_id != delivery.control_id:
        return Outcome("retry", ack.code, f"acknowledgement of {ack.control_id!r}, not {delivery.control_id!r}")
    if ack.code in ("AA", "CA"):
        return Outcome("delivered", ack.code)
    if ack.code in ("AR", "CR"):
        return Outcome("park", ack.code, f"rejected: {ack.text}"[:255])
    return Outcome("retry", ack.code, f"error: {ack.text}"[:255])


# --- the run ------------------------------------------------------------------------------


def _claim(model: type[WebhookSubscription] | type[Hl7Interface], pk: int, now: datetime) -> bool:
    lease = now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    return bool(
        model.objects.filter(pk=pk, is_active=True)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=lease)
    )


def _deliver_to(destination: WebhookSubscription | Hl7Interface, *, now: datetime) -> dict[str, int]:
    counts = {"delivered": 0, "retry": 0, "park": 0, "unreachable": 0}
    # Stop well inside the lease, so no second sender takes the destination while this one sends.
    deadline = time.monotonic() + settings.DELIVERY_LEASE_SECONDS / 2
    field = "webhook" if isinstance(destination, WebhookSubscription) else "interface"
    pending = list(
        Delivery.objects.filter(**{field: destination}, status=DeliveryStatus.PENDING)
        .select_related("event__booking__patient", "event__site")
        .order_by("event_id", "id")[:SEND_BATCH]
    )
    waiting: set[str] = set()
    for delivery in pending:
        if time.monotonic() > deadline:
            break
        if delivery.subject_key in waiting:
            continue
        if delivery.next_attempt_at > now:
            # An earlier message of this case is not through yet: the later ones wait for it.
            waiting.add(delivery.subject_key)
            continue
        started = time.monotonic()
        if isinstance(destination, WebhookSubscription):
            outcome = _send_webhook(delivery, destination, now=now)
            max_attempts = settings.WEBHOOK_MAX_ATTEMPTS
        else:
            outcome = _send_hl7(delivery, destination, now=now)
            max_attempts = settings.HL7_MAX_ATTEMPTS
        _record(delivery, outcome, now=now, started=started)
        _apply(delivery, outcome, now=now, max_attempts=max_attempts)
        counts[outcome.kind] += 1
        if delivery.status == DeliveryStatus.PENDING:
            waiting.add(delivery.subject_key)
        if outcome.kind == "unreachable":
            # The receiver is down: everything else waits for it rather than piling up retries.
            break
    return counts


def deliveries_send(*, now: datetime | None = None) -> dict[str, int]:
    """Send what is due to every destination nobody else is sending to; returns counts."""
    now = now or timezone.now()
    totals = {"delivered": 0, "retry": 0, "park": 0, "unreachable": 0}
    due = Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
    destinations: list[WebhookSubscription | Hl7Interface] = [
        *WebhookSubscription.objects.filter(is_active=True, pk__in=due.values("webhook_id")),
        *Hl7Interface.objects.filter(is_active=True, pk__in=due.values("interface_id")),
    ]
    for destination in destinations:
        if not _claim(type(destination), destination.pk, now):
            continue
        try:
            for kind, n in _deliver_to(destination, now=now).items():
                totals[kind] += n
        finally:
            type(destination).objects.filter(pk=destination.pk).update(lease_until=None)
    return totals


def deliveries_run(*, now: datetime | None = None) -> dict[str, int]:
    """Fan out new events, then send what is due."""
    fanned = deliveries_fan_out(now=now)
    totals = deliveries_send(now=now)
    return {"fanned_out": fanned, **totals}


@transaction.atomic
def webhook_rotate_secret(*, actor: Any, hook: WebhookSubscription, now: datetime | None = None) -> WebhookSubscription:
    """Give the subscription a new secret. The old one keeps signing beside it for
    ``WEBHOOK_SECRET_GRACE_HOURS``, so the receiver can take the new one without losing events."""
    now = now or timezone.now()
    current = WebhookSubscription.objects.select_for_update().get(pk=hook.pk)
    current.previous_secret = current.secret
    current.previous_secret_until = now + timedelta(hours=settings.WEBHOOK_SECRET_GRACE_HOURS)
    current.secret = new_secret()
    current.save(update_fields=["secret", "previous_secret", "previous_secret_until"])
    audit_record(actor=actor, action="webhook.rotate_secret", obj=current)
    return current


def deliveries_purge(*, now: datetime | None = None) -> int:
    """Forget change events handed out more than ``DELIVERY_LOG_DAYS`` ago whose deliveries are
    all done (delivered or skipped), with their deliveries and log; returns how many events went.
    A pending or parked delivery keeps its event until it is through."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.DELIVERY_LOG_DAYS)
    unfinished = Delivery.objects.filter(status__in=[DeliveryStatus.PENDING, DeliveryStatus.PARKED])
    old = ChangeEvent.objects.filter(fanned_out_at__lt=cutoff).exclude(pk__in=unfinished.values("event_id"))
    deleted = 0
    for chunk_ids in _chunks(list(old.values_list("pk", flat=True)), 500):
        deleted += ChangeEvent.objects.filter(pk__in=chunk_ids).delete()[1].get(ChangeEvent._meta.label, 0)
    return deleted


def _chunks(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


@transaction.atomic
def delivery_redeliver(*, actor: Any, delivery: Delivery) -> Delivery:
    """Send a delivery again (parked, or delivered and lost at the receiver): it goes at the
    next run, with the same event id (and MSH-10), so the receiver can tell a repeat."""
    current = Delivery.objects.select_for_update().get(pk=delivery.pk)
    previous = current.status
    current.status = DeliveryStatus.PENDING
    current.next_attempt_at = timezone.now()
    current.last_error = ""
    current.save(update_fields=["status", "next_attempt_at", "last_error"])
    audit_record(actor=actor, action="delivery.redeliver", obj=current, details={"from": previous})
    return current
