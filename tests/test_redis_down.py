"""Redis down: with nothing listening, and with a listener that accepts and never answers,
booking still answers promptly (the request never touches the broker) and the relay gives up
within its socket timeout. When the real Redis is back, every pending notification is
delivered exactly once by a real worker."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest

from outbox import tasks
from outbox.models import Notification
from scheduling.models import Booking
from tests.api_helpers import client_for, persona_users, post
from tests.conftest import NOW, local
from tests.test_worker import (
    SOON,
    Broker,
    Outboxes,
    celery_worker,
    clinic_with_desk,
    forget_queue,
    redis_url,
    use_broker,
    wait_for,
)

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

REDIS_DOWN_DB = 14
# The request path has no broker call at all; this bound is for a slow CI machine, far below
# the minutes a publish to a silent Redis can block for.
REQUEST_BOUND_SECONDS = 5.0
# One connection attempt, bounded by the 2 s socket timeouts of the transport options.
RELAY_BOUND_SECONDS = 5.0


class SilentListener:
    """Accepts connections on loopback and never answers, like a hung Redis."""

    def __init__(self) -> None:
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.server.getsockname()[1]}/{REDIS_DOWN_DB}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.accepted.append(client)

    def close(self) -> None:
        self.server.close()
        for client in self.accepted:
            client.close()
        self.thread.join(timeout=5)


def closed_port_url() -> str:
    """A loopback port with nothing listening: connections are refused, like a stopped Redis."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"redis://127.0.0.1:{port}/{REDIS_DOWN_DB}"


@pytest.fixture(params=["stopped", "silent"])
def dead_broker(request: pytest.FixtureRequest) -> Iterator[tuple[str, SilentListener | None]]:
    if request.param == "stopped":
        yield closed_port_url(), None
        return
    listener = SilentListener()
    try:
        yield listener.url, listener
    finally:
        listener.close()


def timed(action):
    started = time.monotonic()
    result = action()
    return result, time.monotonic() - started


def test_booking_works_while_redis_is_down_and_everything_goes_once_when_it_is_back(
    frozen_now, dead_broker, monkeypatch, tmp_path, request
):
    dead_url, listener = dead_broker
    queue = f"test-{uuid.uuid4().hex[:12]}"
    use_broker(monkeypatch, dead_url, queue)
    clinic = clinic_with_desk()
    scheduler = client_for(persona_users(clinic)["scheduler"])

    # Two requests that write outbox rows: a booking (two patient reminders, due at once)
    # and a C-arm downtime that hits it (a notice to the front desk).
    body = {"patient": clinic.patients[0].pk, "procedure_type": "VP", "start": SOON.isoformat()}
    booked, booking_seconds = timed(lambda: post(scheduler, "/api/v1/bookings/", body))
    downtime = {
        "equipment": clinic.c_arms[0].pk,
        "starts_at": local(NOW.date(), 12).isoformat(),
        "ends_at": local(NOW.date(), 14).isoformat(),
        "reason": "repair",
    }
    noticed, downtime_seconds = timed(lambda: post(scheduler, "/api/v1/downtime/", downtime))
    state = request.node.callspec.id
    print(f"\n[{state}] POST bookings/ {booking_seconds:.3f} s, POST downtime/ {downtime_seconds:.3f} s")

    assert booked.status_code == 201, booked.json()
    assert noticed.status_code == 201, noticed.json()
    assert booking_seconds < REQUEST_BOUND_SECONDS
    assert downtime_seconds < REQUEST_BOUND_SECONDS
    if listener is not None:
        assert listener.accepted == [], "a request opened a connection to the broker"
    booking = Booking.objects.get(pk=booked.json()["id"])
    ids = sorted(Notification.objects.values_list("pk", flat=True))
    assert Counter(Notification.objects.values_list("kind", flat=True)) == Counter(
        {"prep_reminder": 1, "day_before_reminder": 1, "downtime_impact": 1}
    )
    assert set(Notification.objects.values_list("booking_id", flat=True)) == {booking.pk}

    # The relay tries, gives up within its timeout, and leaves every row for the next run.
    published, relay_seconds = timed(tasks.relay_outbox)
    print(f"[{state}] relay against the dead broker {relay_seconds:.3f} s")
    assert published == 0
    assert relay_seconds < RELAY_BOUND_SECONDS
    assert set(Notification.objects.values_list("status", "attempts")) == {("pending", 1)}

    # Redis is back.
    live = Broker(redis_url(REDIS_DOWN_DB), queue)
    use_broker(monkeypatch, live.url, live.queue)
    outboxes = Outboxes(tmp_path / "sms", tmp_path / "mail")
    outboxes.sms.mkdir()
    outboxes.email.mkdir()
    try:
        with celery_worker(live, outboxes, tmp_path / "worker.log"):
            assert tasks.relay_outbox() == 3
            wait_for(
                lambda: Notification.objects.filter(status="sent").count() == 3,
                timeout=30,
                what="every notification to be sent",
            )
            # Another relay run (as beat would make) finds nothing left to publish.
            assert tasks.relay_outbox() == 0
    finally:
        forget_queue(live)

    assert outboxes.delivered() == Counter(dict.fromkeys(ids, 1))
    assert len(list(outboxes.sms.glob("*.sms"))) == 2
