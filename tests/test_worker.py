"""A real Celery worker, a real Redis: tasks run end to end, and a worker killed mid-send
does not make a message go twice."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings
from django.db import connection

from config.celery import app
from outbox import tasks
from outbox.models import Notification
from outbox.relay import outbox_recover
from scheduling.models import Booking
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_create
from tests.conftest import NOW, Clinic, build_clinic, local

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(__file__).resolve().parent.parent
SOON = local(NOW.date(), 13)  # seven hours after the frozen "now": both reminders are due at once
# Tests share the Redis server with whatever else uses it: their own database numbers, and a
# queue name per test so that nothing else consumes their messages. Nothing is flushed.
WORKER_DB = 13


def redis_url(db: int) -> str:
    parts = urlsplit(os.environ["REDIS_URL"])
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))


def database_url() -> str:
    """The test database, as a URL a worker process can open."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Outboxes:
    """Where a worker's messages land: one SMS file per message, email files by Django's
    file backend; both name the notification id, never patient data."""

    sms: Path
    email: Path

    def sms_ids(self) -> Counter[int]:
        return Counter(int(path.name.split("-")[0]) for path in self.sms.glob("*.sms"))

    def email_ids(self) -> Counter[int]:
        found: Counter[int] = Counter()
        for path in self.email.glob("*.log"):
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.startswith("X-Notification-Id: "):
                    found[int(line.split(": ", 1)[1])] += 1
        return found

    def delivered(self) -> Counter[int]:
        return self.sms_ids() + self.email_ids()


@dataclass
class Broker:
    url: str
    queue: str


@pytest.fixture
def outboxes(tmp_path: Path) -> Outboxes:
    boxes = Outboxes(tmp_path / "sms", tmp_path / "mail")
    boxes.sms.mkdir()
    boxes.email.mkdir()
    return boxes


def use_broker(monkeypatch: pytest.MonkeyPatch, url: str, queue: str) -> None:
    """Point this process's Celery app at ``url``. The relay opens a connection per run from
    ``broker_url``, so no pooled connection to the old broker is left to reset."""
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.setitem(app.conf, "broker_url", url)
    monkeypatch.setitem(app.conf, "task_default_queue", queue)


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    assert "socket_timeout" in settings.CELERY_BROKER_TRANSPORT_OPTIONS, "Redis transport options expected"
    found = Broker(redis_url(WORKER_DB), f"test-{uuid.uuid4().hex[:12]}")
    use_broker(monkeypatch, found.url, found.queue)
    yield found
    forget_queue(found)


def forget_queue(found: Broker) -> None:
    """Remove the test queue and its bindings (their keys carry the unique queue name)."""
    client = redis.Redis.from_url(found.url, socket_timeout=2)
    for key in list(client.scan_iter(match=f"*{found.queue}*")):
        client.delete(key)
    for key in client.scan_iter(match="_kombu.binding.*"):
        for member in client.smembers(key):
            if found.queue.encode() in member:
                client.srem(key, member)


@contextmanager
def celery_worker(broker: Broker, outboxes: Outboxes, log: Path, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """A worker process on the test database and ``broker``; stopped (or killed) on exit."""
    environment = {
        **{k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(),
        "DATA_DIR": str(outboxes.sms.parent / "data"),
        "REDIS_URL": broker.url,
        "CELERY_QUEUE": broker.queue,
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(outboxes.email),
        "SMS_BACKEND": "outbox.sending.FileSmsBackend",
        "SMS_FILE_PATH": str(outboxes.sms),
        "SECRET_KEY": "worker-under-test",
        **env,
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--pool=solo",
        "--concurrency=1",
        "-Q",
        broker.queue,
        "-n",
        f"{broker.queue}-{uuid.uuid4().hex[:6]}@%h",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, cwd=BASE_DIR, env=environment, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for(lambda: " ready." in log.read_text(errors="replace"), timeout=30, what="the worker to start")
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def clinic_with_desk() -> Clinic:
    clinic = build_clinic()
    clinic.site.notify_email = "desk@clinic.example"
    clinic.site.save()
    return clinic


def book_soon(clinic: Clinic, patient: int = 0) -> Booking:
    return booking_create(
        request=CaseRequest(procedure_type=clinic.vp(), patient=clinic.patients[patient], pins=clinic.resources()),
        actor=None,
        starts_at=SOON,
    )


def test_a_real_worker_runs_the_relay_and_the_sends_through_redis(frozen_now, broker, outboxes, tmp_path):
    clinic = clinic_with_desk()
    booking = book_soon(clinic)
    ids = sorted(Notification.objects.filter(booking=booking).values_list("pk", flat=True))
    assert len(ids) == 2
    # The worker runs on the real clock, months before the frozen one: make the rows due there.
    Notification.objects.update(due_at=NOW.replace(year=2000))

    with celery_worker(broker, outboxes, tmp_path / "worker.log"):
        # What beat does every 30 s: publish the relay, which publishes the sends.
        with app.connection_for_write() as conn:
            tasks.relay_outbox.apply_async(connection=conn, retry=False)
        wait_for(
            lambda: Notification.objects.filter(pk__in=ids, status="sent").count() == 2,
            timeout=30,
            what="both reminders to be sent",
        )

    assert outboxes.delivered() == Counter(dict.fromkeys(ids, 1))
    text = next(outboxes.sms.glob(f"{ids[0]}-*.sms")).read_text()
    assert text.startswith(f"to: {clinic.patients[0].phone}\n")


def test_a_worker_killed_mid_send_does_not_send_twice(frozen_now, broker, outboxes, tmp_path):
    clinic = clinic_with_desk()
    booking = book_soon(clinic)
    prep = Notification.objects.get(booking=booking, kind="prep_reminder")
    Notification.objects.exclude(pk=prep.pk).update(status="skipped")
    # Redis hands an unacknowledged message to another worker after 3 s instead of an hour.
    redelivery = {"CELERY_VISIBILITY_TIMEOUT": "3"}
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"

    with celery_worker(broker, outboxes, first_log, SMS_FILE_DELAY_SECONDS="60", **redelivery) as first:
        assert tasks.relay_outbox() == 1
        # The message has gone out; the worker is still "sending" when it dies.
        wait_for(lambda: outboxes.sms_ids()[prep.pk] == 1, timeout=30, what="the first send")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    killed_at = time.monotonic()
    prep.refresh_from_db()
    assert prep.status == "sending"

    time.sleep(max(0.0, 3.5 - (time.monotonic() - killed_at)))
    with celery_worker(broker, outboxes, second_log, **redelivery):
        # The late-acknowledged message comes back to the new worker and runs to the end.
        wait_for(
            lambda: (
                "outbox.tasks.send_notification" in second_log.read_text(errors="replace")
                and " succeeded in " in second_log.read_text(errors="replace")
            ),
            timeout=30,
            what="the redelivered task to run",
        )

    # It found the row claimed and sent nothing.
    assert outboxes.sms_ids() == Counter({prep.pk: 1})
    assert f"notification {prep.pk} already claimed" in second_log.read_text()
    prep.refresh_from_db()
    assert (prep.status, prep.attempts) == ("sending", 1)
    # A person is told the outcome is unknown; the message is never resent.
    assert prep.claimed_at is not None
    assert outbox_recover(now=prep.claimed_at + dt.timedelta(minutes=16)) == (0, 1)
    prep.refresh_from_db()
    assert prep.status == "unknown"
