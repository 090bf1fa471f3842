"""Webhooks: an administrator subscribes an endpoint; booking changes reach it from the outbox,
signed (HMAC-SHA256 over the timestamp and the body), with ids and times only; a receiver that
fails is retried with backoff and gets each event exactly once; a delivery given up is parked
with an alert and can be redelivered by hand; every attempt is in the delivery log."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine

from core.models import AuditEvent
from interop.delivery import deliveries_run, signature
from interop.models import Delivery, DeliveryAttempt, DeliveryStatus, WebhookSubscription
from outbox.models import Alert, AlertKind
from procedure_day.services.transitions import booking_check_in
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_cancel, booking_create, booking_reschedule
from tests.api_helpers import client_for, persona_users, post
from tests.conftest import MONDAY, NOW, local
from tests.receivers import webhook_receiver
from tests.servers import free_port

pytestmark = pytest.mark.django_db


def book(clinic, hour=9, patient=0, **pins):
    return booking_create(
        actor=None,
        request=CaseRequest(
            procedure_type=clinic.vp(), patient=clinic.patients[patient], pins=clinic.resources(**pins)
        ),
        starts_at=local(MONDAY, hour),
    )


def later(seconds: int) -> dt.datetime:
    return NOW + dt.timedelta(seconds=seconds)


def subscribe(admin, url: str, events: list[str] | None = None) -> dict:
    body = {"name": "Portal", "url": url, **({"events": events} if events is not None else {})}
    answer = post(client_for(admin), "/api/v1/webhooks/", body)
    assert answer.status_code == 201, answer.content
    return answer.json()


def test_the_signature_is_hmac_sha256_of_timestamp_and_body():
    # Known answer: computed independently of the module under test.
    import hashlib
    import hmac

    body = b'{"id":"evt_1"}'
    expected = hmac.new(b"whsec_test", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("whsec_test", 1700000000, body) == f"v1={expected}"


def test_booking_changes_reach_a_subscriber_signed_in_order_with_ids_and_times_only(clinic):
    users = persona_users(clinic)
    with webhook_receiver() as receiver:
        hook = subscribe(users["admin"], receiver.url)
        receiver.secret = hook["secret"]
        case = book(clinic)
        booking_reschedule(actor=None, booking=case, starts_at=local(MONDAY, 10), pins=clinic.resources())
        with time_machine.travel(local(MONDAY, 9, 35), tick=False):
            booking_check_in(actor=None, booking=case)
        booking_cancel(actor=None, booking=case, reason="pregnancy")
        deliveries_run(now=later(1))
    assert receiver.bad_signatures == 0
    assert [r["body"]["type"] for r in receiver.accepted] == [
        "booking.created",
        "booking.rescheduled",
        "booking.status_changed",
        "booking.cancelled",
    ]
    moved = receiver.accepted[1]["body"]
    assert moved["data"]["booking"] == case.pk
    assert dt.datetime.fromisoformat(moved["data"]["starts_at"]) == local(MONDAY, 10)
    assert dt.datetime.fromisoformat(moved["data"]["previous_starts_at"]) == local(MONDAY, 9)
    assert {leg["kind"] for leg in moved["data"]["legs"]} == {"room", "equipment", "staff", "recovery_bay"}
    assert receiver.accepted[2]["body"]["data"]["status"] == "checked_in"
    everything = json.dumps([r["body"] for r in receiver.requests])
    patient = clinic.patients[0]
    for value in (
        patient.first_name,
        patient.last_name,
        patient.mrn,
        patient.phone,
        patient.date_of_birth.isoformat(),
        "pregnancy",
        "Vertebroplasty",
    ):
        assert value not in everything
    assert len({r["id"] for r in receiver.accepted}) == 4


def test_a_subscriber_hears_only_the_kinds_it_names(clinic):
    users = persona_users(clinic)
    with webhook_receiver() as receiver:
        receiver.secret = subscribe(users["admin"], receiver.url, ["booking.cancelled"])["secret"]
        case = book(clinic)
        booking_cancel(actor=None, booking=case, reason="other")
        deliveries_run(now=later(1))
    assert [r["body"]["type"] for r in receiver.accepted] == ["booking.cancelled"]


def test_a_receiver_that_fails_twice_then_succeeds_gets_each_event_exactly_once(clinic):
    users = persona_users(clinic)
    with webhook_receiver(fail_first=2) as receiver:
        receiver.secret = subscribe(users["admin"], receiver.url)["secret"]
        case = book(clinic)
        booking_reschedule(actor=None, booking=case, starts_at=local(MONDAY, 10), pins=clinic.resources())
        deliveries_run(now=later(1))
        # Backoff: not due again after 5 s; due after 10 s, then after 20 more.
        deliveries_run(now=later(5))
        assert len(receiver.requests) == 1
        deliveries_run(now=later(12))
        deliveries_run(now=later(40))
        deliveries_run(now=later(80))
    assert [r["body"]["type"] for r in receiver.accepted] == ["booking.created", "booking.rescheduled"]
    assert len(receiver.requests) == 4
    first = Delivery.objects.order_by("id").first()
    assert [a.code for a in first.log.all()] == ["500", "500", "204"]
    assert first.status == DeliveryStatus.DELIVERED


def test_a_dead_endpoint_is_parked_with_an_alert_and_redelivered_by_hand(clinic, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    users = persona_users(clinic)
    port = free_port()
    hook = subscribe(users["admin"], f"http://127.0.0.1:{port}/hooks")
    book(clinic)
    for step in range(6):
        deliveries_run(now=later(1 + 200 * step))
    delivery = Delivery.objects.get()
    # Unreachable is retried until the give-up time, not by count; move the clock past it.
    deliveries_run(now=later(25 * 3600))
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PARKED
    assert Alert.objects.filter(kind=AlertKind.INTERFACE_FAILED).count() == 1
    log = client_for(users["admin"]).get(f"/api/v1/webhooks/{hook['id']}/deliveries/").json()
    assert log["results"][0]["status"] == "parked"
    assert len(log["results"][0]["log"]) == delivery.attempts
    with webhook_receiver() as receiver:
        receiver.secret = hook["secret"]
        WebhookSubscription.objects.filter(pk=hook["id"]).update(url=receiver.url)
        again = post(client_for(users["admin"]), f"/api/v1/deliveries/{delivery.pk}/redeliver/", {})
        assert again.status_code == 200
        deliveries_run()
    assert [r["body"]["type"] for r in receiver.accepted] == ["booking.created"]
    assert AuditEvent.objects.filter(action="delivery.redeliver").count() == 1


def test_an_error_status_is_retried_up_to_the_limit_then_parked(clinic, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    users = persona_users(clinic)
    with webhook_receiver(fail_first=10) as receiver:
        receiver.secret = subscribe(users["admin"], receiver.url)["secret"]
        book(clinic)
        deliveries_run(now=later(1))
        deliveries_run(now=later(30))
    assert Delivery.objects.get().status == DeliveryStatus.PARKED
    assert receiver.accepted == []


@pytest.mark.parametrize("persona", ["scheduler", "physician", "nurse", "tech"])
def test_only_an_admin_manages_webhooks(clinic, persona):
    users = persona_users(clinic)
    answer = post(client_for(users[persona]), "/api/v1/webhooks/", {"name": "X", "url": "https://example.org/h"})
    assert answer.status_code == 403
    assert not WebhookSubscription.objects.exists()


def test_bad_webhook_input_is_a_clear_error(clinic):
    users = persona_users(clinic)
    admin = client_for(users["admin"])
    bad = post(admin, "/api/v1/webhooks/", {"name": "X", "url": "ftp://example.org/h"})
    assert bad.status_code == 400
    unknown = post(
        admin, "/api/v1/webhooks/", {"name": "X", "url": "https://example.org/h", "events": ["booking.eaten"]}
    )
    assert unknown.status_code == 400
    assert not WebhookSubscription.objects.exists()


def test_a_rotated_secret_signs_beside_the_old_one_until_the_grace_period_ends(clinic, settings):
    settings.WEBHOOK_SECRET_GRACE_HOURS = 1
    users = persona_users(clinic)
    admin = client_for(users["admin"])
    with webhook_receiver() as receiver:
        hook = subscribe(users["admin"], receiver.url)
        old_secret = receiver.secret = hook["secret"]
        rotated = post(admin, f"/api/v1/webhooks/{hook['id']}/rotate-secret/", {})
        assert rotated.status_code == 200
        new_secret = rotated.json()["secret"]
        assert new_secret != old_secret
        assert dt.datetime.fromisoformat(rotated.json()["previous_secret_until"]) == NOW + dt.timedelta(hours=1)
        book(clinic)
        # Within the hour the receiver still holding the old secret accepts; so would the new.
        deliveries_run(now=later(1))
        assert len(receiver.accepted) == 1
        header = receiver.requests[0]["signature"]
        assert len(header.split(",")) == 2
        receiver.secret = new_secret
        case = Delivery.objects.get().event.booking
        booking_reschedule(actor=None, booking=case, starts_at=local(MONDAY, 10), pins=clinic.resources())
        # After the hour only the new secret signs: a receiver still on the old one refuses.
        deliveries_run(now=later(3601))
        assert len(receiver.accepted) == 2
        assert len(receiver.requests[1]["signature"].split(",")) == 1
        receiver.secret = old_secret
        booking_cancel(actor=None, booking=case, reason="other")
        deliveries_run(now=later(3602))
    assert receiver.bad_signatures == 1
    assert AuditEvent.objects.filter(action="webhook.rotate_secret").count() == 1


def test_events_whose_deliveries_are_through_are_purged_after_the_retention(clinic, settings):
    from interop.delivery import deliveries_purge
    from outbox.models import ChangeEvent

    settings.DELIVERY_LOG_DAYS = 30
    users = persona_users(clinic)
    with webhook_receiver() as receiver:
        receiver.secret = subscribe(users["admin"], receiver.url)["secret"]
        delivered = book(clinic)
        deliveries_run(now=later(1))
    # A second case whose delivery never got through (the receiver is gone) is kept.
    stuck = book(clinic, hour=13, patient=1, recovery_bay=clinic.bays[1])
    deliveries_run(now=later(2))
    assert deliveries_purge(now=later(29 * 86400)) == 0
    assert deliveries_purge(now=later(31 * 86400)) == 1
    assert list(ChangeEvent.objects.values_list("booking_id", flat=True)) == [stuck.pk]
    assert not Delivery.objects.filter(event__booking=delivered).exists()


def test_a_redirect_is_not_a_delivery(clinic):
    """Followed, the POST would become a GET of another page whose 200 would count as delivered."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    users = persona_users(clinic)
    seen: list[str] = []

    class Redirecting(BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append("POST")
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
            self.end_headers()

        def do_GET(self):
            seen.append("GET")
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        subscribe(users["admin"], f"http://127.0.0.1:{server.server_address[1]}/hooks")
        book(clinic)
        deliveries_run(now=later(1))
    finally:
        server.shutdown()
        server.server_close()
    delivery = Delivery.objects.get()
    assert seen == ["POST"]
    assert delivery.status == DeliveryStatus.PENDING
    assert [a.code for a in delivery.log.all()] == ["302"]


def test_a_parked_delivery_holds_back_the_cases_later_changes_until_skipped(clinic, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    users = persona_users(clinic)
    admin = client_for(users["admin"])
    with webhook_receiver(fail_first=1) as receiver:
        receiver.secret = subscribe(users["admin"], receiver.url)["secret"]
        case = book(clinic)
        other = book(clinic, hour=13, patient=1, recovery_bay=clinic.bays[1])
        deliveries_run(now=later(1))
        booking_reschedule(actor=None, booking=case, starts_at=local(MONDAY, 10), pins=clinic.resources())
        deliveries_run(now=later(60))
        parked = Delivery.objects.get(status=DeliveryStatus.PARKED)
        assert parked.event.booking_id == case.pk
        # The other case went; this case's move waits behind its parked creation.
        assert [r["body"]["data"]["booking"] for r in receiver.accepted] == [other.pk]
        assert "Later changes of the same case wait" in Alert.objects.get(kind=AlertKind.INTERFACE_FAILED).message
        skipped = post(admin, f"/api/v1/deliveries/{parked.pk}/skip/", {})
        assert skipped.status_code == 200
        assert skipped.json()["status"] == "skipped"
        deliveries_run(now=later(120))
        assert [r["body"]["type"] for r in receiver.accepted] == ["booking.created", "booking.rescheduled"]
        # The skipped creation cannot be sent now: the receiver already has the later move.
        refused = post(admin, f"/api/v1/deliveries/{parked.pk}/redeliver/", {})
        assert refused.status_code == 409
        assert post(admin, f"/api/v1/deliveries/{parked.pk}/skip/", {}).status_code == 409
    assert AuditEvent.objects.filter(action="delivery.skip").count() == 1


def test_a_redelivery_starts_its_attempts_and_give_up_clock_afresh(clinic, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    users = persona_users(clinic)
    port = free_port()
    hook = subscribe(users["admin"], f"http://127.0.0.1:{port}/hooks")
    book(clinic)
    deliveries_run(now=later(1))
    deliveries_run(now=later(25 * 3600))
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.PARKED
    with time_machine.travel(later(26 * 3600), tick=False):
        post(client_for(users["admin"]), f"/api/v1/deliveries/{delivery.pk}/redeliver/", {})
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 0)
    # Still down: an unreachable receiver a day after the event is waited for, not parked again.
    assert deliveries_run(now=later(26 * 3600 + 5))["unreachable"] == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    with webhook_receiver() as receiver:
        receiver.secret = hook["secret"]
        WebhookSubscription.objects.filter(pk=hook["id"]).update(url=receiver.url)
        deliveries_run(now=later(27 * 3600))
    assert len(receiver.accepted) == 1


def test_an_answer_that_is_not_http_is_retried_and_other_destinations_still_get_theirs(clinic):
    import socket
    import threading

    users = persona_users(clinic)
    garbage = socket.socket()
    garbage.bind(("127.0.0.1", 0))
    garbage.listen(4)

    def answer_nonsense() -> None:
        while True:
            try:
                connection, _ = garbage.accept()
            except OSError:
                return
            with connection:
                # Read the whole request (until the client pauses), then answer in HL7.
                connection.settimeout(0.3)
                try:
                    while connection.recv(65536):
                        pass
                except TimeoutError:
                    pass
                connection.sendall(b"\x0bMSH|^~\\&|not http\x1c\r")

    threading.Thread(target=answer_nonsense, daemon=True).start()
    try:
        subscribe(users["admin"], f"http://127.0.0.1:{garbage.getsockname()[1]}/hooks")
        with webhook_receiver() as receiver:
            receiver.secret = subscribe(users["admin"], receiver.url)["secret"]
            book(clinic)
            outcome = deliveries_run(now=later(1))
    finally:
        garbage.close()
    logs = [(a.outcome, a.code, a.detail) for a in DeliveryAttempt.objects.all()]
    assert (outcome["retry"], outcome["delivered"]) == (1, 1), logs
    assert len(receiver.accepted) == 1
    failed = Delivery.objects.get(status=DeliveryStatus.PENDING)
    assert failed.log.get().detail.startswith("not an HTTP answer")


def test_a_change_still_being_fanned_out_holds_back_later_ones(clinic):
    from interop.delivery import deliveries_fan_out, deliveries_send
    from outbox.models import ChangeEvent

    users = persona_users(clinic)
    with webhook_receiver() as receiver:
        receiver.secret = subscribe(users["admin"], receiver.url)["secret"]
        case = book(clinic)
        booking_reschedule(actor=None, booking=case, starts_at=local(MONDAY, 10), pins=clinic.resources())
        first, second = ChangeEvent.objects.order_by("id")
        # Another relay holds the creation while this one fans out (and would send) the move.
        ChangeEvent.objects.filter(pk=second.pk).update(fanned_out_at=later(0))
        Delivery.objects.create(
            event=second,
            webhook_id=WebhookSubscription.objects.get().pk,
            subject_key=f"booking:{case.pk}",
            next_attempt_at=later(0),
            queued_at=later(0),
        )
        deliveries_send(now=later(1))
        assert receiver.accepted == []
        deliveries_fan_out(now=later(2))
        deliveries_send(now=later(3))
    assert [r["body"]["type"] for r in receiver.accepted] == ["booking.created", "booking.rescheduled"]
    assert first.pk < second.pk


def test_a_sender_whose_lease_ran_out_does_not_release_the_next_senders_lease(clinic):
    from interop.delivery import _claim, _release

    users = persona_users(clinic)
    hook = WebhookSubscription.objects.get(pk=subscribe(users["admin"], "https://portal.example.org/h")["id"])
    first = _claim(WebhookSubscription, hook.pk, later(0))
    assert first is not None
    assert _claim(WebhookSubscription, hook.pk, later(10)) is None
    second = _claim(WebhookSubscription, hook.pk, later(200))
    assert second is not None
    _release(WebhookSubscription, hook.pk, first)
    hook.refresh_from_db()
    assert hook.lease_until == second
    _release(WebhookSubscription, hook.pk, second)
    hook.refresh_from_db()
    assert hook.lease_until is None
