"""Limits on password guessing, shared by every worker process.

Two counters: per client address (every attempt counts) and per username (failures count, and
past a limit the username is locked for a cool-off, whatever address the guesses come from).
Both live in the shared throttle cache (Redis when configured, the database otherwise), so three
gunicorn workers count as one. If Redis stops answering, the counters move to the database
rather than letting guesses through.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import caches

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _call(operation: Callable[[Any], T]) -> T:
    try:
        return operation(caches["throttle"])
    except Exception as exc:  # the Redis client raises its own error types
        if settings.CACHES["throttle"]["BACKEND"].endswith("DatabaseCache"):
            raise
        logger.warning("throttle cache unavailable, using the database: %s", type(exc).__name__)
        return operation(caches["throttle_fallback"])


def _digest(value: str) -> str:
    # Keys carry no username or address in clear: cache dumps and Redis MONITOR stay clean.
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _hit(key: str, window: int) -> int:
    def incr(cache: Any) -> int:
        cache.add(key, 0, timeout=window)
        try:
            return int(cache.incr(key))
        except ValueError:
            # The window expired between add and incr.
            cache.set(key, 1, timeout=window)
            return 1

    return _call(incr)


def address_attempt(scope: str, address: str) -> int:
    """Count one attempt from ``address``; returns seconds to wait if over the limit, else 0."""
    window = settings.LOGIN_THROTTLE_WINDOW_SECONDS
    attempts = _hit(f"throttle:addr:{scope}:{_digest(address)}", window)
    return window if attempts > settings.LOGIN_THROTTLE_ATTEMPTS else 0


def _lock_key(username: str) -> str:
    return f"throttle:lock:{_digest(username.strip().lower())}"


def _fail_key(username: str) -> str:
    return f"throttle:fail:{_digest(username.strip().lower())}"


def lockout_remaining(username: str) -> int:
    """Seconds left on a username's lockout, 0 when it may try."""
    if not username:
        return 0
    until = _call(lambda cache: cache.get(_lock_key(username)))
    return max(0, int(until - time.time())) if until else 0


def record_failure(username: str) -> None:
    if not username:
        return
    failures = _hit(_fail_key(username), settings.LOGIN_LOCKOUT_WINDOW_SECONDS)
    if failures >= settings.LOGIN_LOCKOUT_ATTEMPTS:
        seconds = settings.LOGIN_LOCKOUT_SECONDS
        until = time.time() + seconds
        _call(lambda cache: cache.set(_lock_key(username), until, timeout=seconds))
        _call(lambda cache: cache.delete(_fail_key(username)))
        logger.warning("sign-in locked for %s s after %s failures", seconds, failures)


def record_success(username: str) -> None:
    if username:
        _call(lambda cache: cache.delete(_fail_key(username)))
