"""Idempotency-Key on the FHIR writes ($hold, $book, cancelling by PATCH), with the same engine
and rules as the REST API (``core.idempotency``): a retry with the same key and request replays
the first answer and changes nothing; the same key with another request is a 422; a key whose
first request is still running is a 409. Refusals read as OperationOutcomes. A replayed answer
names Appointments: it is given only while the caller may still see them, and audited as a read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.http import HttpResponse, HttpResponseBase
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from core.audit import audit_patients
from core.idempotency import (
    HEADER,
    MAX_KEY_LENGTH,
    fingerprint,
    key_claim,
    key_run,
    valid_key,
)
from core.models import IdempotencyRecord
from interop.fhir.views import FHIR_JSON, FhirError, error_response
from scheduling.selectors import bookings_visible_to


def _appointment_ids(body: Any) -> set[int]:
    """The Appointments an answer shows (itself, or a Bundle's entries)."""
    if not isinstance(body, dict):
        return set()
    if body.get("resourceType") == "Appointment" and str(body.get("id", "")).isdigit():
        return {int(body["id"])}
    found: set[int] = set()
    for entry in body.get("entry", []) if body.get("resourceType") == "Bundle" else []:
        found |= _appointment_ids(entry.get("resource"))
    return found


def _replay(request: Request, record: IdempotencyRecord) -> HttpResponseBase:
    try:
        stored = json.loads(record.body) if record.body else None
    except ValueError:
        stored = None
    named = _appointment_ids(stored)
    if named:
        patients = dict(bookings_visible_to(request.user).filter(pk__in=named).values_list("pk", "patient_id"))
        if len(patients) < len(named):
            raise FhirError(404, "not-found", "The Appointment this key booked is not one you may read now.")
        audit_patients(request.user, "fhir.appointment.replay", sorted(set(patients.values())))
    response = HttpResponse(record.body, status=record.status_code, content_type=record.content_type)
    response["Idempotent-Replayed"] = "true"
    return response


def run_idempotent(request: Request, scope: str, handler: Callable[[], Response]) -> HttpResponseBase:
    """Run ``handler`` once per (user, Idempotency-Key); without the header, just run it."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return handler()
    key = valid_key(raw)
    if key is None:
        raise FhirError(400, "invalid", f"An Idempotency-Key is 1 to {MAX_KEY_LENGTH} printable characters.")
    scope = f"fhir.{scope}"
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    decision = key_claim(
        user_id=int(request.user.pk or 0),
        key=key,
        scope=scope,
        request_hash=fingerprint(scope, request.path, body),
    )
    if decision.kind == "reused":
        raise FhirError(422, "business-rule", "This Idempotency-Key was used with a different request; use a new key.")
    if decision.kind == "in_flight":
        raise FhirError(409, "conflict", "A request with this Idempotency-Key is still running.")
    if decision.kind == "replay":
        assert decision.record is not None
        return _replay(request, decision.record)
    record = decision.record_id
    assert record is not None

    def respond() -> tuple[int, bytes, str]:
        try:
            response = handler()
        except Exception as exc:
            rendered = error_response(exc)
            if rendered is None:
                raise
            response = rendered
        # Rendered once: the stored bytes are the bytes sent, now and on every replay.
        return response.status_code, JSONRenderer().render(response.data), f"{FHIR_JSON}; charset=utf-8"

    status, content, content_type = key_run(record, respond)
    return HttpResponse(content, status=status, content_type=content_type)
