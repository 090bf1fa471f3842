"""Idempotency-Key on POSTs that change bookings.

The first request with a key claims it, runs, and stores its status and body; a repeat with the
same body replays them and changes nothing; a repeat with another body is refused with 422. A
concurrent duplicate waits for the first one's answer, then replays it.

A stored body is a booking with its patient, so records are kept for ``RETENTION`` only: long
enough for any client's retries, short enough that patient data does not pile up in a side
table. An older record counts as absent (its key may be used again) and beat purges it.

A replay is a read of the booking it names. It is re-checked against what the caller may see
now (a physician moved off the case gets a 404, as for any case not theirs), cut to the patient
fields the caller's role allows now, and audited.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.http import HttpResponse, HttpResponseBase
from django.utils import timezone
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from api.errors import problem
from api.models import IdempotencyRecord
from core.audit import audit_read
from core.roles import primary_role
from scheduling.models import Booking
from scheduling.policy import patient_fields_of_role

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
RETENTION = timedelta(hours=24)
PURGE_BATCH = 1000
# A request with a key that is in flight is waited for this long before a 409.
IN_FLIGHT_WAIT_SECONDS = 15.0
IN_FLIGHT_POLL_SECONDS = 0.02
# Longer than any request may run (the database deadlines stop one well before).
IN_FLIGHT_STALE = timedelta(minutes=2)


def request_fingerprint(request: Request, scope: str) -> str:
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{scope}\n{request.path}\n{body}".encode()).hexdigest()


def is_expired(record: IdempotencyRecord, now: datetime) -> bool:
    return record.created_at < now - RETENTION


def idempotency_records_purge(*, now: datetime | None = None) -> int:
    """Delete every record older than ``RETENTION``; returns how many went.

    In batches, so a backlog (beat was down) never holds one long lock on the table while
    requests are inserting keys.
    """
    cutoff = (now or timezone.now()) - RETENTION
    total = 0
    while True:
        batch = list(
            IdempotencyRecord.objects.filter(created_at__lt=cutoff)
            .order_by("pk")
            .values_list("pk", flat=True)[:PURGE_BATCH]
        )
        if not batch:
            return total
        deleted, _ = IdempotencyRecord.objects.filter(pk__in=batch).delete()
        total += deleted


def _stored_booking_id(body: Any) -> int | None:
    """The booking a stored success body shows, if it is one (it then carries its patient)."""
    if isinstance(body, dict) and isinstance(body.get("patient"), dict) and isinstance(body.get("id"), int):
        return int(body["id"])
    return None


def _narrowed(body: Any, role: str | None) -> Any:
    """The stored body without patient fields the caller's role no longer allows, or None if
    nothing had to go (the stored bytes are then replayed as they are)."""
    if _stored_booking_id(body) is None:
        return None
    allowed = set(patient_fields_of_role(role))
    patient = body["patient"]
    if set(patient) <= allowed:
        return None
    return {**body, "patient": {name: value for name, value in patient.items() if name in allowed}}


def _replay(
    request: Request,
    record: IdempotencyRecord,
    fingerprint: str,
    *,
    visible: Callable[[], QuerySet[Booking]],
    booking_id: int | None,
    render_error: Callable[[Exception], Response | None],
) -> HttpResponseBase:
    if record.request_hash != fingerprint:
        return problem(
            422, "idempotency_key_reused", "This Idempotency-Key was used with a different request; use a new key."
        )
    if record.status_code is None:
        return problem(409, "idempotency_key_in_flight", "A request with this Idempotency-Key is still running.")
    try:
        stored = json.loads(record.body) if record.body else None
    except ValueError:
        stored = None
    named = {pk for pk in (booking_id, _stored_booking_id(stored)) if pk is not None}
    if named:
        patients = dict(visible().filter(pk__in=named).values_list("pk", "patient_id"))
        if len(patients) < len(named):
            return render_error(NotFound()) or problem(404, "not_found", "Not found.")
        audit_read(
            actor=request.user,
            action="booking.replay",
            object_type="patients.patient",
            object_ids=sorted(set(patients.values())),
            details={"bookings": sorted(patients)},
        )
    narrowed = _narrowed(stored, primary_role(request.user))
    body = record.body if narrowed is None else JSONRenderer().render(narrowed).decode()
    response = HttpResponse(body, status=record.status_code, content_type=record.content_type)
    response["Idempotent-Replayed"] = "true"
    return response


_COLUMNS = {f.name: f.column for f in IdempotencyRecord._meta.concrete_fields}


def _claim(user_id: int, key: str, scope: str, fingerprint: str) -> int | None:
    """Insert the key's record (in flight: no status yet) in its own autocommit statement, so
    that it is visible to every other request at once; returns its id, or None if another
    request holds the key. A held key is no error (``ON CONFLICT DO NOTHING``), so a caller's
    transaction (a test, a job) is not spoilt by it."""
    meta = IdempotencyRecord._meta
    quote = connection.ops.quote_name
    names = ("user", "key", "scope", "request_hash", "body", "content_type", "created_at")
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(_COLUMNS[name]) for name in names)}) "
        f"VALUES ({', '.join(['%s'] * len(names))}) "
        f"ON CONFLICT ({quote(_COLUMNS['user'])}, {quote(_COLUMNS['key'])}) DO NOTHING "
        f"RETURNING {quote(_COLUMNS['id'])}"
    )
    created = next(f for f in meta.concrete_fields if f.name == "created_at")
    stamp = created.get_db_prep_save(timezone.now(), connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_id, key, scope, fingerprint, "", "", stamp])
        row = cursor.fetchone()
    return int(row[0]) if row else None


def _answer(record_id: int, status: int, body: str, content_type: str) -> None:
    """Store the answer on the claimed record: one UPDATE."""
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(_COLUMNS[name])} = %s" for name in ("status_code", "body", "content_type"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(IdempotencyRecord._meta.db_table)} SET {assignments} WHERE {quote(_COLUMNS['id'])} = %s",
            [status, body, content_type, record_id],
        )


def _release(record_id: int) -> None:
    """Give the key back: nothing was done, the client may retry with it."""
    IdempotencyRecord.objects.filter(pk=record_id).delete()


def _settled(user_id: int, key: str) -> IdempotencyRecord | None:
    """The key's record once its request has answered (a short wait while it is in flight), or
    None while it is still running."""
    deadline = time.monotonic() + IN_FLIGHT_WAIT_SECONDS
    while True:
        record = IdempotencyRecord.objects.filter(user_id=user_id, key=key).first()
        if record is None or record.status_code is not None or time.monotonic() >= deadline:
            return record
        time.sleep(IN_FLIGHT_POLL_SECONDS)


def run_idempotent(
    request: Request,
    scope: str,
    handler: Callable[[], Response],
    render_error: Callable[[Exception], Response | None],
    *,
    visible: Callable[[], QuerySet[Booking]],
    booking_id: str | int | None = None,
) -> HttpResponseBase:
    """Run ``handler`` once per (user, Idempotency-Key); without the header, just run it.

    The key is claimed before the handler runs and its answer stored after, each in a
    statement of its own: the handler's service keeps its own transaction (its locks end when
    it commits, not when the answer is stored). A concurrent request with the same key waits
    for the first one's answer and replays it. A claim left in flight by a request that died
    (its process killed between the commit and the answer) is taken over after
    ``IN_FLIGHT_STALE``; the database's guarantees (one leg per resource, per patient) keep a
    case that was in fact booked from being booked twice.

    ``visible`` gives the bookings the caller may see now and ``booking_id`` the one the URL
    names (None for a create): a replay is refused unless both it and the booking in the
    stored body are among them.
    """
    key = request.headers.get(HEADER)
    if key is None:
        return handler()
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        return problem(
            400, "invalid_idempotency_key", f"An Idempotency-Key is 1 to {MAX_KEY_LENGTH} printable characters."
        )
    fingerprint = request_fingerprint(request, scope)
    user_id = int(request.user.pk or 0)
    subject = int(booking_id) if booking_id is not None else None

    def replay(record: IdempotencyRecord) -> HttpResponseBase:
        return _replay(request, record, fingerprint, visible=visible, booking_id=subject, render_error=render_error)

    record = _claim(user_id, key, scope, fingerprint)
    if record is None:
        existing = _settled(user_id, key)
        now = timezone.now()
        if existing is not None and (is_expired(existing, now) or _abandoned(existing, now)):
            # Gone for the client (expired), or left in flight by a request that died: the
            # key may be used again, once.
            IdempotencyRecord.objects.filter(pk=existing.pk, created_at=existing.created_at).delete()
            record = _claim(user_id, key, scope, fingerprint)
            existing = None if record is not None else _settled(user_id, key)
        if record is None:
            if existing is None:
                return problem(
                    409, "idempotency_key_in_flight", "A request with this Idempotency-Key is still running."
                )
            return replay(existing)
    try:
        response = handler()
    except Exception as exc:
        rendered = render_error(exc)
        if rendered is None:
            _release(record)
            raise
        response = rendered
    if response.status_code >= 500:
        _release(record)
        return response
    # Rendered once: the stored bytes are the bytes sent.
    body = JSONRenderer().render(response.data)
    content_type = response.content_type or "application/json"
    _answer(record, response.status_code, body.decode(), content_type)
    answered = HttpResponse(body, status=response.status_code, content_type=content_type)
    for name, value in response.items():
        if name.lower() != "content-type":
            answered[name] = value
    return answered


def _abandoned(record: IdempotencyRecord, now: datetime) -> bool:
    return record.status_code is None and record.created_at < now - IN_FLIGHT_STALE
