"""Idempotency-Key: one answer per (user, key), whichever face the request came through.

The first request with a key claims it (an autocommit INSERT, visible to every other request
at once), runs, and stores its status and body; a repeat with the same request replays them
and changes nothing; a repeat with another request is refused; a concurrent duplicate waits
for the first one's answer, then replays it. The faces (the REST API, the FHIR operations)
decide how a refusal reads and what a replay may show the caller now; this module decides
whether to run, replay or refuse.

A stored body can name a patient, so records are kept for ``RETENTION`` only: long enough
for any client's retries, short enough that patient data does not pile up in a side table. An
older record counts as absent (its key may be used again) and beat purges it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from core.models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
RETENTION = timedelta(hours=24)
PURGE_BATCH = 1000
# A request with a key that is in flight is waited for this long before it is refused.
IN_FLIGHT_WAIT_SECONDS = 15.0
IN_FLIGHT_POLL_SECONDS = 0.02
# Longer than any request may run (the database deadlines stop one well before).
IN_FLIGHT_STALE = timedelta(minutes=2)


# What the schemas say of a key: printable ASCII, not only spaces.
KEY_PATTERN = r"^[ -~]*[!-~][ -~]*$"


def valid_key(raw: str) -> str | None:
    """The key as it is used (trimmed), or None if it is not 1 to 255 printable ASCII
    characters (``KEY_PATTERN``)."""
    key = raw.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not all(" " <= char <= "~" for char in key):
        return None
    return key


def fingerprint(scope: str, path: str, body: str) -> str:
    """What makes two requests "the same": the operation, its URL and its canonical body."""
    return hashlib.sha256(f"{scope}\n{path}\n{body}".encode()).hexdigest()


@dataclass(frozen=True)
class Decision:
    """``run`` (the record is claimed: run, then ``key_answer`` or ``key_release``), ``replay``
    (the stored answer), ``reused`` (the key came with another request) or ``in_flight`` (the
    first request with it is still running)."""

    kind: str
    record_id: int | None = None
    record: IdempotencyRecord | None = None


def key_claim(*, user_id: int, key: str, scope: str, request_hash: str) -> Decision:
    """Claim ``key`` for this user, or say what to do instead.

    A claim left in flight by a request that died (its process killed between its commit and
    its answer) is taken over after ``IN_FLIGHT_STALE``; the database's guarantees (one leg per
    resource, per patient) keep a case that was in fact booked from being booked twice.
    """
    claimed = _claim(user_id, key, scope, request_hash)
    if claimed is not None:
        return Decision("run", record_id=claimed)
    existing = _settled(user_id, key)
    now = timezone.now()
    if existing is not None and (_expired(existing, now) or _abandoned(existing, now)):
        # Gone for the client (expired), or left in flight by a request that died: the key
        # may be used again, once.
        IdempotencyRecord.objects.filter(pk=existing.pk, created_at=existing.created_at).delete()
        claimed = _claim(user_id, key, scope, request_hash)
        if claimed is not None:
            return Decision("run", record_id=claimed)
        existing = _settled(user_id, key)
    if existing is None:
        return Decision("in_flight")
    if existing.request_hash != request_hash:
        return Decision("reused", record=existing)
    if existing.status_code is None:
        return Decision("in_flight")
    return Decision("replay", record=existing)


def key_answer(record_id: int, *, status: int, body: str, content_type: str) -> None:
    """Store the answer on the claimed record: one UPDATE, after the change has committed."""
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(_COLUMNS[name])} = %s" for name in ("status_code", "body", "content_type"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(IdempotencyRecord._meta.db_table)} SET {assignments} WHERE {quote(_COLUMNS['id'])} = %s",
            [status, body, content_type, record_id],
        )


Answer = tuple[int, bytes, str]


def key_run(record_id: int, respond: Callable[[], Answer]) -> Answer:
    """Answer the request that claimed the key: ``respond()`` does the work and gives (status,
    body, content type). The answer is stored for replays, unless it is a server error or
    ``respond`` raises: then the key is given back, nothing having been done."""
    try:
        status, body, content_type = respond()
    except BaseException:
        key_release(record_id)
        raise
    if status >= 500:
        key_release(record_id)
    else:
        key_answer(record_id, status=status, body=body.decode(), content_type=content_type)
    return status, body, content_type


def key_release(record_id: int) -> None:
    """Give the key back: nothing was done, the client may retry with it."""
    IdempotencyRecord.objects.filter(pk=record_id).delete()


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


def _expired(record: IdempotencyRecord, now: datetime) -> bool:
    return record.created_at < now - RETENTION


def _abandoned(record: IdempotencyRecord, now: datetime) -> bool:
    return record.status_code is None and record.created_at < now - IN_FLIGHT_STALE


_COLUMNS = {f.name: f.column for f in IdempotencyRecord._meta.concrete_fields}


def _claim(user_id: int, key: str, scope: str, request_hash: str) -> int | None:
    """Insert the key's record (in flight: no status yet) in its own autocommit statement;
    returns its id, or None if another request holds the key. A held key is no error
    (``ON CONFLICT DO NOTHING``), so a caller's transaction (a test, a job) is not spoilt."""
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
        cursor.execute(sql, [user_id, key, scope, request_hash, "", "", stamp])
        row = cursor.fetchone()
    return int(row[0]) if row else None


def _settled(user_id: int, key: str) -> IdempotencyRecord | None:
    """The key's record once its request has answered (a short wait while it is in flight), or
    as it is when the wait is over."""
    deadline = time.monotonic() + IN_FLIGHT_WAIT_SECONDS
    while True:
        record = IdempotencyRecord.objects.filter(user_id=user_id, key=key).first()
        if record is None or record.status_code is not None or time.monotonic() >= deadline:
            return record
        time.sleep(IN_FLIGHT_POLL_SECONDS)
