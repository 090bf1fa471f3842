"""Limits on password guessing, shared by every worker process.

Two counters, both of failures: per client address (10 a minute), and per username (5 in 15
minutes lock the name for a cool-off, whatever address the guesses come from). A successful
sign-in costs nothing, so a clinic behind one office address is not throttled at 08:00.

Counters live in Redis when it is configured, otherwise in the ``core_throttlecounter`` table,
incremented with one atomic upsert so that parallel guesses on every worker all count; if Redis
stops answering they move to the table rather than letting guesses through. Keys are digests of
the normalised username (Unicode NFKC, case-folded, as Django normalises it before checking a
password, so a full-width or capital letter names the same account) or of the address (an IPv6 client by its /64).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import time
import unicodedata
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import caches
from django.db import connection

from core.models import ThrottleCounter

logger = logging.getLogger(__name__)
T = TypeVar("T")
TABLE = ThrottleCounter._meta.db_table


# --- keys -----------------------------------------------------------------------------------


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:40]


def normalise_username(username: str) -> str:
    return unicodedata.normalize("NFKC", username).strip().casefold()


def _address_key(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"throttle:addr:{_digest(address)}"
    if ip.version == 6:
        # One subscriber gets a whole /64: counting single addresses would be no limit at all.
        return f"throttle:addr:{_digest(str(ipaddress.ip_network(f'{ip}/64', strict=False)))}"
    return f"throttle:addr:{_digest(str(ip))}"


def _fail_key(username: str) -> str:
    return f"throttle:fail:{_digest(normalise_username(username))}"


def _lock_key(username: str) -> str:
    return f"throttle:lock:{_digest(normalise_username(username))}"


# --- storage: Redis, or the table -----------------------------------------------------------


def _redis_configured() -> bool:
    return settings.CACHES["throttle"]["BACKEND"].endswith("RedisCache")


def _with_fallback(redis_op: Callable[[Any], T], table_op: Callable[[], T]) -> T:
    if not _redis_configured():
        return table_op()
    try:
        return redis_op(caches["throttle"])
    except Exception as exc:  # the Redis client raises its own error types
        logger.warning("throttle cache unavailable, using the database: %s", type(exc).__name__)
        return table_op()


def _table_hit(key: str, window: float) -> int:
    now = time.time()
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO {TABLE} ("key", "count", "until") VALUES (%s, 1, %s) '
            f'ON CONFLICT ("key") DO UPDATE SET '
            f'"count" = CASE WHEN {TABLE}."until" <= %s THEN 1 ELSE {TABLE}."count" + 1 END, '
            f'"until" = CASE WHEN {TABLE}."until" <= %s THEN excluded."until" ELSE {TABLE}."until" END '
            f'RETURNING "count"',
            [key, now + window, now, now],
        )
        return int(cursor.fetchone()[0])


def _table_value(key: str) -> tuple[int, float]:
    row = ThrottleCounter.objects.filter(key=key, until__gt=time.time()).values_list("count", "until").first()
    return (int(row[0]), float(row[1])) if row else (0, 0.0)


def _table_set(key: str, count: int, seconds: float) -> None:
    ThrottleCounter.objects.update_or_create(key=key, defaults={"count": count, "until": time.time() + seconds})


def _hit(key: str, window: int) -> int:
    def redis_hit(cache: Any) -> int:
        cache.add(key, 0, timeout=window)
        try:
            # Redis INCR keeps the key's expiry, so the window stays where add() put it.
            return int(cache.incr(key))
        except ValueError:
            cache.set(key, 1, timeout=window)
            return 1

    return _with_fallback(redis_hit, lambda: _table_hit(key, window))


def _count(key: str) -> int:
    return _with_fallback(lambda cache: int(cache.get(key) or 0), lambda: _table_value(key)[0])


def _remaining(key: str) -> int:
    def redis_remaining(cache: Any) -> int:
        until = cache.get(key)
        return max(0, int(until - time.time())) if until else 0

    def table_remaining() -> int:
        count, until = _table_value(key)
        return max(0, int(until - time.time())) if count else 0

    return _with_fallback(redis_remaining, table_remaining)


def _set_lock(key: str, seconds: int) -> None:
    until = time.time() + seconds
    _with_fallback(lambda cache: cache.set(key, until, timeout=seconds), lambda: _table_set(key, 1, seconds))


def _delete(key: str) -> None:
    _with_fallback(lambda cache: cache.delete(key), lambda: ThrottleCounter.objects.filter(key=key).delete())


# --- the rules ------------------------------------------------------------------------------


def address_wait(address: str) -> int:
    """Seconds this address must wait before another sign-in attempt, 0 when it may try."""
    over = _count(_address_key(address)) >= settings.LOGIN_THROTTLE_ATTEMPTS
    return settings.LOGIN_THROTTLE_WINDOW_SECONDS if over else 0


def lockout_remaining(username: str) -> int:
    """Seconds left on a username's lockout, 0 when it may try."""
    return _remaining(_lock_key(username)) if username else 0


def record_failure(username: str, address: str | None) -> None:
    if address:
        _hit(_address_key(address), settings.LOGIN_THROTTLE_WINDOW_SECONDS)
    if not username:
        return
    failures = _hit(_fail_key(username), settings.LOGIN_LOCKOUT_WINDOW_SECONDS)
    if failures >= settings.LOGIN_LOCKOUT_ATTEMPTS:
        _set_lock(_lock_key(username), settings.LOGIN_LOCKOUT_SECONDS)
        _delete(_fail_key(username))
        logger.warning("sign-in locked for %s s after %s failures", settings.LOGIN_LOCKOUT_SECONDS, failures)


def record_success(username: str) -> None:
    if username:
        _delete(_fail_key(username))


def sign_in_wait(username: str, address: str) -> int:
    """The one check every sign-in path makes before checking a password."""
    return address_wait(address) or lockout_remaining(username)


def purge_expired(*, older_than_seconds: float = 3600) -> int:
    deleted, _ = ThrottleCounter.objects.filter(until__lt=time.time() - older_than_seconds).delete()
    return deleted
