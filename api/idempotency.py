"""Idempotency-Key on POSTs that change bookings, over the engine in ``core.idempotency``.

A replay is a read of the booking it names. It is re-checked against what the caller may see
now (a physician moved off the case gets a 404, as for any case not theirs), cut to the patient
fields the caller's role allows now, and audited.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse, HttpResponseBase
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from api.errors import problem
from core.audit import audit_read
from core.idempotency import (
    HEADER,
    MAX_KEY_LENGTH,
    fingerprint,
    idempotency_records_purge,
    key_claim,
    key_run,
    valid_key,
)
from core.models import IdempotencyRecord
from core.roles import primary_role
from scheduling.models import Booking
from scheduling.policy import patient_fields_of_role

__all__ = ["HEADER", "idempotency_records_purge", "request_fingerprint", "run_idempotent"]


def request_fingerprint(request: Request, scope: str) -> str:
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return fingerprint(scope, request.path, body)


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
    *,
    visible: Callable[[], QuerySet[Booking]],
    booking_id: int | None,
    render_error: Callable[[Exception], Response | None],
) -> HttpResponseBase:
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
    raw = request.headers.get(HEADER)
    if raw is None:
        return handler()
    key = valid_key(raw)
    if key is None:
        return problem(
            400, "invalid_idempotency_key", f"An Idempotency-Key is 1 to {MAX_KEY_LENGTH} printable characters."
        )
    decision = key_claim(
        user_id=int(request.user.pk or 0), key=key, scope=scope, request_hash=request_fingerprint(request, scope)
    )
    if decision.kind == "reused":
        return problem(
            422, "idempotency_key_reused", "This Idempotency-Key was used with a different request; use a new key."
        )
    if decision.kind == "in_flight":
        return problem(409, "idempotency_key_in_flight", "A request with this Idempotency-Key is still running.")
    if decision.kind == "replay":
        assert decision.record is not None
        subject = int(booking_id) if booking_id is not None else None
        return _replay(request, decision.record, visible=visible, booking_id=subject, render_error=render_error)
    record = decision.record_id
    assert record is not None
    headers: dict[str, str] = {}

    def respond() -> tuple[int, bytes, str]:
        try:
            response = handler()
        except Exception as exc:
            rendered = render_error(exc)
            if rendered is None:
                raise
            response = rendered
        headers.update((name, value) for name, value in response.items() if name.lower() != "content-type")
        # Rendered once: the stored bytes are the bytes sent.
        return response.status_code, JSONRenderer().render(response.data), response.content_type or "application/json"

    status, body, content_type = key_run(record, respond)
    answered = HttpResponse(body, status=status, content_type=content_type)
    for name, value in headers.items():
        answered[name] = value
    return answered
