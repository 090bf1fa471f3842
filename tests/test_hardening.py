"""What an attacker or a careless client meets: throttles that hold, tokens that end, bodies
and parameters that are refused cleanly, headers that keep patient data out of caches, logs
without patient data, and the operations endpoints."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
import time_machine
from django.test import Client

from api.authentication import issue_token
from api.models import ApiToken
from core.models import AuditEvent
from scheduling.models import Booking
from tests import factories as f
from tests.api_helpers import client_for, field_errors, post

TOKEN_URL = "/api/v1/auth/token/"


def token_attempt(client, username, password, address="10.0.0.1", **headers):
    return client.post(
        TOKEN_URL,
        data=json.dumps({"username": username, "password": password}),
        content_type="application/json",
        REMOTE_ADDR=address,
        **headers,
    )


# --- throttles ------------------------------------------------------------------------------


def test_a_spoofed_forwarded_for_does_not_buy_more_guesses(db):
    client = Client()
    codes = [token_attempt(client, f"u{i}", "x", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code for i in range(15)]
    assert codes == [401] * 10 + [429] * 5


def test_forwarded_for_is_believed_from_a_trusted_proxy_only(db, settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1/32"]
    client = Client()
    # Behind our proxy, each real client has its own budget ...
    for i in range(12):
        response = token_attempt(client, f"a{i}", "x", address="127.0.0.1", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")
        assert response.status_code == 401
    # ... and a client cannot pose as another by prepending hops: the proxy's last entry counts.
    codes = [
        token_attempt(
            client, f"b{i}", "x", address="127.0.0.1", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}, 198.51.100.200"
        ).status_code
        for i in range(12)
    ]
    assert codes == [401] * 10 + [429] * 2


def test_a_username_is_locked_after_five_failures_from_anywhere_then_cools_off(db):
    user = f.UserFactory(username="dr.who")
    client = Client()
    codes = [token_attempt(client, "dr.who", "wrong", address=f"10.1.0.{i}").status_code for i in range(5)]
    assert codes == [401] * 5
    # Even the right password is refused while the lockout lasts, from a fresh address.
    locked = token_attempt(client, "DR.WHO", "pw-for-tests-only", address="10.9.9.9")
    assert locked.status_code == 429
    assert locked["Content-Type"] == "application/problem+json"
    assert int(locked["Retry-After"]) > 800
    assert not ApiToken.objects.filter(user=user).exists()
    with time_machine.travel(dt.datetime.now(tz=dt.UTC) + dt.timedelta(minutes=16)):
        assert token_attempt(client, "dr.who", "pw-for-tests-only", address="10.9.9.9").status_code == 200


def test_the_lockout_says_the_same_for_a_name_that_does_not_exist(db):
    client = Client()
    for i in range(5):
        token_attempt(client, "nobody-here", "wrong", address=f"10.2.0.{i}")
    response = token_attempt(client, "nobody-here", "wrong", address="10.3.0.1")
    assert response.status_code == 429


def test_admin_sign_in_shares_the_username_lockout(db):
    f.UserFactory(username="boss", is_staff=True, is_superuser=True)
    client = Client()
    for i in range(5):
        response = client.post("/admin/login/", {"username": "boss", "password": "wrong"}, REMOTE_ADDR=f"10.4.0.{i}")
        assert response.status_code == 200
    response = client.post(
        "/admin/login/", {"username": "boss", "password": "pw-for-tests-only"}, REMOTE_ADDR="10.5.0.1"
    )
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


# --- tokens ---------------------------------------------------------------------------------


def bearer(raw):
    client = Client()
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    return client


def test_changing_a_password_revokes_every_token(db):
    user = f.UserFactory(groups=["scheduler"])
    raw, _ = issue_token(user)
    issue_token(user)
    assert bearer(raw).get("/api/v1/sites/").status_code == 200
    user.set_password("a-new-long-passphrase")
    user.save()
    assert ApiToken.objects.filter(user=user).count() == 0
    assert bearer(raw).get("/api/v1/sites/").status_code == 401


def test_deactivating_a_user_revokes_their_tokens(db):
    user = f.UserFactory(groups=["scheduler"])
    raw, _ = issue_token(user)
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert not ApiToken.objects.filter(user=user).exists()
    assert bearer(raw).get("/api/v1/sites/").status_code == 401


def test_signing_in_again_does_not_revoke_tokens(db):
    user = f.UserFactory(groups=["scheduler"])
    issue_token(user)
    client = Client()
    assert client.login(username=user.username, password="pw-for-tests-only")
    assert ApiToken.objects.filter(user=user).count() == 1


def test_an_idle_token_expires(db):
    user = f.UserFactory(groups=["scheduler"])
    start = dt.datetime(2027, 1, 4, 8, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        raw, token = issue_token(user)
    with time_machine.travel(start + dt.timedelta(minutes=50), tick=False):
        assert bearer(raw).get("/api/v1/sites/").status_code == 200
    # Used 50 minutes in: still alive 100 minutes in (idle 50), dead after 61 idle minutes.
    with time_machine.travel(start + dt.timedelta(minutes=100), tick=False):
        assert bearer(raw).get("/api/v1/sites/").status_code == 200
    with time_machine.travel(start + dt.timedelta(minutes=162), tick=False):
        response = bearer(raw).get("/api/v1/sites/")
    assert response.status_code == 401
    assert not ApiToken.objects.filter(pk=token.pk).exists()


# --- bodies and parameters ------------------------------------------------------------------


@pytest.fixture
def scheduler_client(db):
    return client_for(f.UserFactory(groups=["scheduler"]))


def test_a_deeply_nested_body_is_a_400_problem(scheduler_client):
    response = scheduler_client.post("/api/v1/bookings/", data="[" * 100_000, content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "malformed"
    nested: object = {"patient": 1}
    for _ in range(40):
        nested = {"x": nested}
    response = post(scheduler_client, "/api/v1/bookings/", nested)
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]
    assert Booking.objects.count() == 0


def test_malformed_json_is_a_400_problem(scheduler_client):
    for body in ('{"patient": ', "NaN", '{"a": Infinity}', b"\xff\xfe{"):
        response = scheduler_client.post("/api/v1/bookings/", data=body, content_type="application/json")
        assert response.status_code == 400, body
        assert response["Content-Type"] == "application/problem+json"


def test_an_oversized_body_is_a_413_problem(scheduler_client):
    huge = json.dumps({"note": "x" * (2 * 1024 * 1024)})
    response = scheduler_client.post("/api/v1/bookings/", data=huge, content_type="application/json")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "payload_too_large"
    assert Booking.objects.count() == 0


def test_an_unknown_query_parameter_on_a_list_is_a_400(scheduler_client):
    response = scheduler_client.get("/api/v1/bookings/", {"stauts": "scheduled"})
    assert response.status_code == 400
    assert "stauts" in field_errors(response)
    assert scheduler_client.get("/api/v1/bookings/", {"status": "scheduled", "page_size": 5}).status_code == 200
    assert scheduler_client.get("/api/v1/patients/", {"mrn": "X", "colour": "red"}).status_code == 400


# --- headers and logs -----------------------------------------------------------------------


def test_patient_data_is_never_cached_and_pages_carry_a_policy(scheduler_client):
    patient = f.PatientFactory()
    response = scheduler_client.get(f"/api/v1/patients/{patient.pk}/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert len(response["X-Request-ID"]) == 32


def test_hsts_over_https(db, settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    response = Client().get("/healthz", secure=True)
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")


def test_access_log_has_request_id_and_user_but_no_query_string(scheduler_client, caplog):
    patient = f.PatientFactory(mrn="MRN-SECRET-77")
    with caplog.at_level(logging.INFO, logger="access"):
        response = scheduler_client.get("/api/v1/patients/", {"mrn": patient.mrn}, HTTP_X_REQUEST_ID="req-123")
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-123"
    records = [r for r in caplog.records if r.name == "access"]
    assert len(records) == 1
    record = records[0]
    assert record.path == "/api/v1/patients/"
    assert record.request_id == "req-123"
    assert record.user_id != "-"
    assert "MRN-SECRET-77" not in caplog.text


def test_json_log_lines_carry_the_request_context():
    from core import logs

    formatter = logs.JsonFormatter()
    token = logs.request_id.set("abc")
    try:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("there",), None)
        logs.RequestContextFilter().filter(record)
        line = json.loads(formatter.format(record))
    finally:
        logs.request_id.reset(token)
    assert line["message"] == "hello there"
    assert line["request_id"] == "abc"
    assert line["level"] == "INFO"


# --- operations -----------------------------------------------------------------------------


def test_healthz_and_readyz(db):
    client = Client()
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.json()
    checks = ready.json()["checks"]
    assert set(checks) == {"database", "migrations", "outbox", "broker"}
    assert all(check["ok"] for check in checks.values())


def test_readyz_fails_when_the_outbox_falls_behind(clinic):
    from outbox.models import Notification

    Notification.objects.create(
        kind="downtime_impact",
        channel="email",
        dedupe_key="lagging",
        due_at=dt.datetime.now(tz=dt.UTC) - dt.timedelta(hours=1),
        site=clinic.site,
    )
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["outbox"]["ok"] is False
    assert response.json()["checks"]["outbox"]["oldest_due_seconds"] >= 3600


def test_metrics_are_served_to_loopback_or_with_the_token(db, settings):
    client = Client()
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    text = response.content.decode()
    for name in ("clinic_bookings", "clinic_outbox_lag_seconds", "clinic_outbox_delivery_failures"):
        assert name in text
    assert "django_http_requests" in text
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1").status_code == 403
    settings.METRICS_TOKEN = "scrape-me"
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_AUTHORIZATION="Bearer scrape-me").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403


def test_conflicts_and_bookings_are_counted(clinic, django_capture_on_commit_callbacks):
    from prometheus_client import REGISTRY

    from tests.conftest import MONDAY, local

    def value(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    user = f.UserFactory(groups=["scheduler"])
    client = client_for(user)
    body = {
        "patient": clinic.patients[0].pk,
        "procedure_type": "VP",
        "start": local(MONDAY, 9).isoformat(),
        "room": clinic.rooms[0].pk,
        "physician": clinic.physicians[0].pk,
    }
    booked, conflicts = value("clinic_bookings_total", action="create"), value("clinic_booking_conflicts_total")
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, "/api/v1/bookings/", body).status_code == 201
    assert post(client, "/api/v1/bookings/", {**body, "patient": clinic.patients[1].pk}).status_code == 409
    assert value("clinic_bookings_total", action="create") == booked + 1
    assert value("clinic_booking_conflicts_total") == conflicts + 1
    assert AuditEvent.objects.filter(action="booking.create").count() == 1


def test_throttles_hold_when_redis_stops_answering(db, settings, caplog):
    # A shared cache that refuses connections: the counters move to the database instead of
    # letting guesses through or failing the sign-in.
    settings.CACHES = {
        **settings.CACHES,
        "throttle": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        },
    }
    client = Client()
    codes = [token_attempt(client, f"r{i}", "x").status_code for i in range(12)]
    assert codes == [401] * 10 + [429] * 2
    f.UserFactory(username="still-locks")
    codes = [token_attempt(client, "still-locks", "x", address=f"10.7.0.{i}").status_code for i in range(6)]
    assert codes == [401] * 5 + [429]
    assert "throttle cache unavailable, using the database: ConnectionError" in caplog.text


def test_api_docs_load_only_the_apps_own_files(scheduler_client):
    # The CSP allows 'self' only: Swagger UI must come from the app, with no inline script.
    page = scheduler_client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "http://" not in html
    assert "https://" not in html
    assert "<script>" not in html
    script = scheduler_client.get("/api/docs/", {"script": ""})
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert b"/api/schema/" in script.content


def test_a_full_width_or_capital_username_shares_the_lockout(db):
    f.UserFactory(username="boss", is_staff=True, is_superuser=True)
    client = Client()
    for i in range(5):
        client.post("/admin/login/", {"username": "boss", "password": "wrong"}, REMOTE_ADDR=f"10.6.0.{i}")
    for variant in ("\uff42oss", "BOSS", " boss "):
        response = client.post(
            "/admin/login/", {"username": variant, "password": "pw-for-tests-only"}, REMOTE_ADDR="10.6.1.1"
        )
        assert response.status_code == 429, variant
    assert "_auth_user_id" not in client.session


def test_a_successful_sign_in_does_not_use_up_the_address(db):
    user = f.UserFactory(username="frontdesk")
    client = Client()
    # A clinic behind one office address: twenty staff signing in at 08:00 are not throttled.
    for _ in range(20):
        assert token_attempt(client, "frontdesk", "pw-for-tests-only", address="10.8.0.1").status_code == 200
    assert ApiToken.objects.filter(user=user).count() == 20


@pytest.mark.django_db(transaction=True)
def test_concurrent_failures_all_count_in_the_table(settings):
    import threading

    # The table is where counters live without Redis (and when Redis stops answering).
    settings.CACHES = {**settings.CACHES, "throttle": {"BACKEND": "django.core.cache.backends.db.DatabaseCache"}}

    from django.db import connections

    from core import throttle
    from core.models import ThrottleCounter

    barrier = threading.Barrier(8)

    def guess(i):
        barrier.wait()
        for _ in range(5):
            throttle.record_failure("", f"10.9.{i}.1")
            throttle.record_failure("", "10.9.0.99")
        connections.close_all()

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shared = ThrottleCounter.objects.get(key=throttle._address_key("10.9.0.99"))
    assert shared.count == 40
    assert throttle.address_wait("10.9.0.99") == 60


def test_an_ipv6_client_is_counted_by_its_64(db):
    client = Client()
    codes = [token_attempt(client, f"v{i}", "x", address=f"2001:db8:1:2::{i + 1:x}").status_code for i in range(11)]
    assert codes == [401] * 10 + [429]
    assert token_attempt(client, "w", "x", address="2001:db8:1:3::1").status_code == 401


def test_a_body_in_a_charset_that_is_not_text_is_a_400(scheduler_client):
    for charset in ("rot13", "hex", "zlib", "no-such-charset"):
        response = scheduler_client.post(
            "/api/v1/bookings/", data=b'{"patient": 1}', content_type=f"application/json; charset={charset}"
        )
        assert response.status_code in (400, 415), charset
        assert response["Content-Type"] == "application/problem+json"


def test_log_lines_never_carry_the_query_string_or_an_error_message():
    from django.test import RequestFactory

    from core import logs

    mrn = "MRN-LOGGED-1"
    request = RequestFactory().get("/api/v1/patients/", {"mrn": mrn})
    try:
        raise ValueError(f"duplicate key value (mrn)=({mrn})")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "django.request", logging.ERROR, __file__, 1, "Internal Server Error: %s", (request.path,), sys.exc_info()
        )
    record.request = request
    record.status_code = 500
    line = logs.JsonFormatter().format(record)
    assert "MRN-LOGGED-1" not in line
    parsed = json.loads(line)
    assert parsed["path"] == "/api/v1/patients/"
    assert parsed["exception"] == "ValueError"
    assert "raise ValueError" in parsed["traceback"]
    assert "request" not in parsed


def test_log_lines_of_a_request_carry_its_user(db, caplog):
    user = f.UserFactory(groups=["scheduler"])
    raw, _ = issue_token(user)
    with caplog.at_level(logging.INFO, logger="access"):
        assert bearer(raw).get("/api/v1/sites/").status_code == 200
    (record,) = [r for r in caplog.records if r.name == "access"]
    assert record.user_id == str(user.pk)
    session = Client()
    session.force_login(user)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="access"):
        assert session.get("/api/v1/sites/").status_code == 200
    (record,) = [r for r in caplog.records if r.name == "access"]
    assert record.user_id == str(user.pk)


def test_expired_throttle_counters_are_purged(db):
    import time

    from core.models import ThrottleCounter
    from core.tasks import purge_throttle_counters

    ThrottleCounter.objects.create(key="throttle:addr:old", count=3, until=time.time() - 7200)
    ThrottleCounter.objects.create(key="throttle:addr:new", count=3, until=time.time() + 30)
    assert purge_throttle_counters() == 1
    assert list(ThrottleCounter.objects.values_list("key", flat=True)) == ["throttle:addr:new"]
