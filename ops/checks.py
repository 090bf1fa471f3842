"""What readiness means: the database answers, every migration is applied, the broker answers,
and the outbox is not falling behind. Each check returns (ok, detail) and never raises."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from outbox.models import Notification, NotificationStatus

logger = logging.getLogger(__name__)
Check = dict[str, Any]


def check_database() -> Check:
    started = time.perf_counter()
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "vendor": connections[DEFAULT_DB_ALIAS].vendor, "ms": _ms(started)}


def check_migrations() -> Check:
    try:
        connection = connections[DEFAULT_DB_ALIAS]
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": not plan, "unapplied": len(plan)}


def check_broker() -> Check:
    url = settings.CELERY_BROKER_URL
    started = time.perf_counter()
    if url.startswith("filesystem://"):
        folder = settings.BROKER_DIR / "in"
        ok = folder.is_dir()
        return {"ok": ok, "transport": "filesystem"} if ok else {"ok": False, "error": "broker folder missing"}
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
    except Exception as exc:
        return {"ok": False, "transport": "redis", "error": type(exc).__name__}
    return {"ok": True, "transport": "redis", "ms": _ms(started)}


def outbox_lag_seconds() -> float:
    """Age of the oldest notification that is due and not yet handed to the worker."""
    oldest = (
        Notification.objects.filter(
            status__in=[NotificationStatus.PENDING, NotificationStatus.QUEUED], due_at__lte=timezone.now()
        )
        .order_by("due_at")
        .values_list("due_at", flat=True)
        .first()
    )
    return max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0


def check_outbox() -> Check:
    try:
        lag = outbox_lag_seconds()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    limit = timedelta(minutes=settings.READY_OUTBOX_LAG_MINUTES).total_seconds()
    return {"ok": lag <= limit, "oldest_due_seconds": round(lag, 1), "limit_seconds": limit}


def readiness() -> dict[str, Check]:
    checks = {"database": check_database()}
    if checks["database"]["ok"]:
        checks["migrations"] = check_migrations()
        checks["outbox"] = check_outbox()
    checks["broker"] = check_broker()
    return checks


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
