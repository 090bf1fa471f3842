"""Idempotency-Key on POSTs that change bookings.

The first request with a key stores its status and body in the same transaction as the change;
a repeat with the same body replays them and changes nothing; a repeat with another body is
refused with 422. A concurrent duplicate blocks on the key's unique index until the first
commits, then replays its answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.http import HttpResponse, HttpResponseBase
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from api.errors import problem
from api.models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def request_fingerprint(request: Request, scope: str) -> str:
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{scope}\n{request.path}\n{body}".encode()).hexdigest()


def _replay(record: IdempotencyRecord, fingerprint: str) -> HttpResponseBase:
    if record.request_hash != fingerprint:
        return problem(
            422, "idempotency_key_reused", "This Idempotency-Key was used with a different request; use a new key."
        )
    if record.status_code is None:
        return problem(409, "idempotency_key_in_flight", "A request with this Idempotency-Key is still running.")
    response = HttpResponse(record.body, status=record.status_code, content_type=record.content_type)
    response["Idempotent-Replayed"] = "true"
    return response


def run_idempotent(
    request: Request, scope: str, handler: Callable[[], Response], render_error: Callable[[Exception], Response | None]
) -> HttpResponseBase:
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
    with transaction.atomic():
        existing = IdempotencyRecord.objects.filter(user_id=user_id, key=key).first()
        if existing is not None:
            return _replay(existing, fingerprint)
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    user_id=user_id, key=key, scope=scope, request_hash=fingerprint
                )
        except IntegrityError:
            # A concurrent request with this key committed first: answer as it did.
            return _replay(IdempotencyRecord.objects.get(user_id=user_id, key=key), fingerprint)
        try:
            response = handler()
        except Exception as exc:
            rendered = render_error(exc)
            if rendered is None:
                raise
            response = rendered
        if response.status_code >= 500:
            transaction.set_rollback(True)
            return response
        record.status_code = response.status_code
        record.body = JSONRenderer().render(response.data).decode()
        record.content_type = response.content_type or "application/json"
        record.save(update_fields=["status_code", "body", "content_type"])
        return response
