"""The product as it runs in production: gunicorn with several workers, a database that stops
answering, and the settings' refusal to start unsafely."""

from __future__ import annotations

import contextlib
import re
import secrets
import socket
import subprocess
import sys
import threading
import time

import pytest

from api.authentication import issue_token
from tests import factories as f
from tests.servers import ROOT, gunicorn, request, server_env, shared_database_url


def _server_env() -> dict[str, str]:
    return server_env(DATABASE_URL=shared_database_url())


def _csrf_login(port: int, username: str, forwarded_for: str) -> int:
    status, headers, body = request(port, "GET", "/admin/login/", headers={"X-Forwarded-For": forwarded_for})
    assert status == 200
    cookie = re.search(r"csrftoken=([^;]+)", headers["set-cookie"])
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    assert cookie is not None
    assert token is not None
    form = f"csrfmiddlewaretoken={token.group(1).decode()}&username={username}&password=wrong-{username}"
    status, _, _ = request(
        port,
        "POST",
        "/admin/login/",
        body=form,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={cookie.group(1)}",
            "X-Forwarded-For": forwarded_for,
        },
    )
    return status


@pytest.mark.django_db(transaction=True)
def test_three_workers_and_spoofed_addresses_still_throttle_token_requests():
    with gunicorn(_server_env(), workers=3) as port:
        codes = []
        for i in range(15):
            # A new name each time (no lockout) and a new spoofed address each time.
            status, headers, _ = request(
                port,
                "POST",
                "/api/v1/auth/token/",
                {"username": f"guess{i}", "password": "nope"},
                headers={"X-Forwarded-For": f"203.0.113.{i + 1}"},
            )
            codes.append(status)
        assert codes == [401] * 10 + [429] * 5
        assert int(headers["retry-after"]) > 0


@pytest.mark.django_db(transaction=True)
def test_three_workers_and_spoofed_addresses_still_throttle_admin_sign_in():
    with gunicorn(_server_env(), workers=3) as port:
        codes = [_csrf_login(port, f"guess{i}", f"198.51.100.{i + 1}") for i in range(30)]
        # The failed form comes back (200) ten times, then every worker refuses.
        assert codes == [200] * 10 + [429] * 20


@pytest.mark.django_db(transaction=True)
def test_three_workers_share_the_username_lockout():
    f.UserFactory(username="target")
    with gunicorn(_server_env(), workers=3) as port:
        codes = [
            request(
                port,
                "POST",
                "/api/v1/auth/token/",
                {"username": "target", "password": "wrong"},
                headers={"X-Forwarded-For": f"192.0.2.{i + 1}"},
            )[0]
            for i in range(8)
        ]
        assert codes == [401] * 5 + [429] * 3


class FreezableProxy:
    """A loopback TCP relay to PostgreSQL that can stop relaying while keeping every socket
    open: to its clients the database has stopped answering, not gone away."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.frozen = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.sockets: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(client)
            if self.frozen.is_set():
                continue  # accepted, never answered
            upstream = socket.create_connection(self.target)
            self.sockets.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                while self.frozen.is_set() and not self.closed:
                    time.sleep(0.05)
                if self.closed:
                    break
                sink.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self.closed = True
        self.frozen.clear()
        for sock in [self.listener, *self.sockets]:
            # shutdown() first: a close() alone leaves a connection open while another thread
            # is blocked reading it, and PostgreSQL would keep that session.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_frozen_database_answers_503_within_five_seconds():
    from django.db import connection

    user = f.UserFactory(username="reader", groups=["scheduler"])
    raw, _ = issue_token(user)
    auth = {"Authorization": f"Bearer {raw}"}
    settings = connection.settings_dict
    proxy = FreezableProxy((settings.get("HOST") or "127.0.0.1", int(settings.get("PORT") or 5432)))
    url = f"postgres://{settings.get('USER') or 'postgres'}@127.0.0.1:{proxy.port}/{settings['NAME']}"
    try:
        with gunicorn(server_env(DATABASE_URL=url), workers=1, threads=2) as port:
            assert request(port, "GET", "/api/v1/procedure-types/", headers=auth)[0] == 200
            proxy.frozen.set()
            for _ in range(2):  # a connection in use, then the fresh one that replaced it
                started = time.monotonic()
                status, headers, body = request(port, "GET", "/api/v1/procedure-types/", headers=auth, timeout=30)
                elapsed = time.monotonic() - started
                assert status == 503, body
                assert headers["content-type"] == "application/problem+json"
                assert b'"code": "unavailable"' in body or b'"code":"unavailable"' in body
                assert elapsed < 5, f"took {elapsed:.1f} s"
            # Liveness does not depend on the database; readiness says it is down.
            assert request(port, "GET", "/healthz")[0] == 200
            started = time.monotonic()
            assert request(port, "GET", "/readyz", timeout=30)[0] == 503
            assert time.monotonic() - started < 5
            proxy.frozen.clear()
            deadline = time.monotonic() + 15
            while request(port, "GET", "/api/v1/procedure-types/", headers=auth)[0] != 200:
                assert time.monotonic() < deadline, "did not recover once the database answered again"
                time.sleep(0.2)
    finally:
        proxy.close()
        _wait_for_other_sessions_to_end(settings["NAME"])


def _wait_for_other_sessions_to_end(name: str) -> None:
    # The relayed sessions end when their sockets close; the test database is dropped only
    # once nobody else is connected.
    from django.db import connection

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [name]
            )
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.2)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, state, application_name, client_port, left(query, 60) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        raise AssertionError(f"sessions still open: {cursor.fetchall()}")


def _settings_process(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_refuses_to_start_without_a_secret_key():
    env = server_env()
    del env["SECRET_KEY"]
    refused = _settings_process(env)
    assert refused.returncode != 0
    assert "SECRET_KEY is not set" in refused.stderr
    assert "started" not in refused.stdout
    assert _settings_process({**env, "DEBUG": "true"}).stdout.strip() == "started"
    assert _settings_process({**env, "SECRET_KEY": secrets.token_urlsafe(50)}).stdout.strip() == "started"


def test_check_deploy_is_clean_with_the_documented_production_settings():
    env = server_env(
        SECURE_SSL_REDIRECT="true",
        SECURE_COOKIES="true",
        ALLOWED_HOSTS="clinic.example.org",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
