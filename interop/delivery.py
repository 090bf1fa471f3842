"""Delivering change events to webhooks and HL7 interfaces, from the outbox.

- **Fan-out** turns each new ``ChangeEvent`` into one ``Delivery`` per destination that wants
  it (rows locked with SKIP LOCKED, so two relays split the work).
- **Sending** takes one destination at a time under a lease, so its deliveries leave in event
  order; a delivery waits while an earlier one of the same subject (case or downtime) is still
  pending or parked, or while an earlier event is still being fanned out, so each
  appointment's messages arrive in order even across retries.
- A failure is retried with exponential backoff. A destination that cannot be reached stops
  its run (everything waits for it and goes when it is back); a delivery that keeps failing,
  or that an HL7 receiver rejects (AR), is parked with an alert for a person, who redelivers it
  or skips it (the case's later messages wait until then).

Every attempt is logged (``DeliveryAttempt``): outcome, code, timing; never the payload, and
never a receiver's own words (an acknowledgement's text can quote the patient).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone

from core.audit import audit_record
from core.errors import InvalidTransition
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
from scheduling.events import resource_legs

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
                Delivery(event=event, webhook=hook, subject_key=key, next_attempt_at=now, queued_at=now)
                for hook in webhooks
                if hook.wants(event.kind)
            ]
            if hl7.trigger_of(event) is not None:
                rows += [
                    Delivery(event=event, interface=i, subject_key=key, next_attempt_at=now, queued_at=now)
                    for i in interfaces
                ]
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
                f"{delivery.attempts} attempt(s) ({delivery.last_error}). Later changes of the same case wait "
                "for it: redeliver it once the receiver is fixed, or skip it."
            ),
        )
    logger.error("delivery %s parked after %s attempts (%s)", delivery.pk, delivery.attempts, outcome.code)


def _failures(delivery: Delivery) -> int:
    """Error answers since the delivery was (re)queued; an unreachable receiver is not one."""
    return delivery.log.filter(outcome="retry", at__gte=delivery.queued_at).count()


def _apply(delivery: Delivery, outcome: Outcome, *, now: datetime, max_failures: int) -> None:
    delivery.attempts += 1
    if outcome.kind == "delivered":
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
        delivery.last_error = ""
        delivery.save(update_fields=["status", "delivered_at", "last_error", "attempts"])
        return
    too_old = now - delivery.queued_at > timedelta(hours=settings.DELIVERY_GIVE_UP_HOURS)
    counted = outcome.kind == "retry" and _failures(delivery) >= max_failures
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
            for leg in resource_legs(data)
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
    except http.client.HTTPException as exc:
        # An answer that is not HTTP (a wrong port, a proxy's garbage): retried like an error.
        return Outcome("retry", "", f"not an HTTP answer: {type(exc).__name__}")
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
        return Outcome("retry", ack.code, "the acknowledgement names another message")
    if ack.code in ("AA", "CA"):
        return Outcome("delivered", ack.code)
    # The acknowledgement's own text is not kept: a receiver may quote the field it disliked.
    if ack.code in ("AR", "CR"):
        return Outcome("park", ack.code, f"rejected ({ack.code})")
    return Outcome("retry", ack.code, f"error acknowledgement ({ack.code})")


# --- the run ------------------------------------------------------------------------------


Clock = Callable[[], datetime]


def _clock(now: datetime | None) -> Clock:
    """A run reads the clock at each step (a long run must not sign or log with a stale time);
    a caller may fix the time instead (tests, a replay of a past run)."""
    return (lambda: now) if now is not None else timezone.now


def _claim(model: type[WebhookSubscription] | type[Hl7Interface], pk: int, now: datetime) -> datetime | None:
    """Take the destination for ``DELIVERY_LEASE_SECONDS``; returns the lease, or None if
    another sender holds it."""
    lease = now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    taken = (
        model.objects.filter(pk=pk, is_active=True)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=lease)
    )
    return lease if taken else None


def _release(model: type[WebhookSubscription] | type[Hl7Interface], pk: int, lease: datetime) -> None:
    """Give the destination back, unless the lease ran out and another sender holds it now."""
    model.objects.filter(pk=pk, lease_until=lease).update(lease_until=None)


def _send(delivery: Delivery, destination: WebhookSubscription | Hl7Interface, now: datetime) -> Outcome:
    try:
        if isinstance(destination, WebhookSubscription):
            return _send_webhook(delivery, destination, now=now)
        return _send_hl7(delivery, destination, now=now)
    except Exception as exc:
        # Whatever went wrong, this delivery is retried and the others still go; the type only
        # is logged (a message can carry patient data).
        logger.error("delivery %s: sending failed (%s)", delivery.pk, type(exc).__name__)
        return Outcome("retry", "error", f"sending failed: {type(exc).__name__}")


def _deliver_to(destination: WebhookSubscription | Hl7Interface, *, clock: Clock) -> dict[str, int]:
    counts = {"delivered": 0, "retry": 0, "park": 0, "unreachable": 0}
    # Stop well inside the lease, so no second sender takes the destination while this one sends.
    deadline = time.monotonic() + settings.DELIVERY_LEASE_SECONDS / 2
    webhook = isinstance(destination, WebhookSubscription)
    mine = Delivery.objects.filter(**{"webhook" if webhook else "interface": destination})
    start = clock()
    due = mine.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=start)
    unfanned = ChangeEvent.objects.filter(fanned_out_at__isnull=True).aggregate(first=Min("id"))["first"]
    if unfanned is not None:
        # An event another relay is still fanning out may be an earlier change of a case here.
        due = due.filter(event_id__lt=unfanned)
    batch = list(due.select_related("event__booking__patient", "event__site").order_by("event_id", "id")[:SEND_BATCH])
    # A case's messages go in order: one waits while an earlier one is backing off or parked.
    held_back = dict(
        mine.filter(subject_key__in={d.subject_key for d in batch})
        .filter(Q(status=DeliveryStatus.PARKED) | Q(status=DeliveryStatus.PENDING, next_attempt_at__gt=start))
        .values("subject_key")
        .annotate(first=Min("event_id"))
        .values_list("subject_key", "first")
    )
    max_failures = settings.WEBHOOK_MAX_ATTEMPTS if webhook else settings.HL7_MAX_ATTEMPTS
    waiting: set[str] = set()
    for delivery in batch:
        if time.monotonic() > deadline:
            break
        earlier = held_back.get(delivery.subject_key)
        if delivery.subject_key in waiting or (earlier is not None and earlier < delivery.event_id):
            continue
        started = time.monotonic()
        now = clock()
        outcome = _send(delivery, destination, now)
        _record(delivery, outcome, now=now, started=started)
        _apply(delivery, outcome, now=now, max_failures=max_failures)
        counts[outcome.kind] += 1
        if delivery.status != DeliveryStatus.DELIVERED:
            waiting.add(delivery.subject_key)
        if outcome.kind == "unreachable":
            # The receiver is down: everything else waits for it rather than piling up retries.
            break
    return counts


def deliveries_send(*, now: datetime | None = None) -> dict[str, int]:
    """Send what is due to every destination nobody else is sending to; returns counts."""
    clock = _clock(now)
    totals = {"delivered": 0, "retry": 0, "park": 0, "unreachable": 0}
    due = Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=clock())
    destinations: list[WebhookSubscription | Hl7Interface] = [
        *WebhookSubscription.objects.filter(is_active=True, pk__in=due.values("webhook_id")),
        *Hl7Interface.objects.filter(is_active=True, pk__in=due.values("interface_id")),
    ]
    for destination in destinations:
        model = type(destination)
        lease = _claim(model, destination.pk, clock())
        if lease is None:
            continue
        try:
            for kind, n in _deliver_to(destination, clock=clock).items():
                totals[kind] += n
        except Exception as exc:
            # One destination's trouble must not stop the others.
            logger.error("deliveries to %s %s stopped (%s)", model.__name__, destination.pk, type(exc).__name__)
        finally:
            _release(model, destination.pk, lease)
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
    """Send a delivery again (parked, skipped, or delivered and lost at the receiver): it goes
    at the next run with the same event id (and MSH-10), so the receiver can tell a repeat, and
    with its attempts and give-up clock started afresh. Refused once a later change of the same
    case has reached that destination: the old message would put the receiver back in time."""
    current = Delivery.objects.select_for_update().select_related("event").get(pk=delivery.pk)
    later = Delivery.objects.filter(
        webhook_id=current.webhook_id,
        interface_id=current.interface_id,
        subject_key=current.subject_key,
        event_id__gt=current.event_id,
        status=DeliveryStatus.DELIVERED,
    )
    if later.exists():
        raise InvalidTransition(
            "A later change of this case has already been delivered there; sending this one again would "
            "undo it at the receiver.",
            details={"status": current.status},
        )
    previous = current.status
    now = timezone.now()
    current.status = DeliveryStatus.PENDING
    current.attempts = 0
    current.queued_at = now
    current.next_attempt_at = now
    current.last_error = ""
    current.save(update_fields=["status", "attempts", "queued_at", "next_attempt_at", "last_error"])
    audit_record(actor=actor, action="delivery.redeliver", obj=current, details={"from": previous})
    return current


@transaction.atomic
def delivery_skip(*, actor: Any, delivery: Delivery) -> Delivery:
    """Give up on a parked (or pending) delivery by hand, so the case's later messages go."""
    current = Delivery.objects.select_for_update().get(pk=delivery.pk)
    if current.status not in (DeliveryStatus.PARKED, DeliveryStatus.PENDING):
        raise InvalidTransition(
            f"A {current.get_status_display().lower()} delivery cannot be skipped.",
            details={"status": current.status, "allowed_from": [DeliveryStatus.PARKED, DeliveryStatus.PENDING]},
        )
    previous = current.status
    current.status = DeliveryStatus.SKIPPED
    current.save(update_fields=["status"])
    audit_record(actor=actor, action="delivery.skip", obj=current, details={"from": previous})
    return current
