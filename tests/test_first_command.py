"""The README's first command, run as a newcomer runs it (embedded defaults, demo data), under 32
clients at once: one wins each start, the rest get a clean 409, nobody's connection is reset;
and a SIGTERM stops every process it started."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.servers import ROOT, free_port, processes_in_group, request, server_env, stop_group, wait_for

CLIENTS = 32
RUNS = 10
PIN_FIELDS = {
    "room": "room",
    "c_arm": "c_arm",
    "rf_generator": "rf_generator",
    "physician": "physician",
    "rad_tech": "rad_tech",
    "sedation_nurse": "sedation_staff",
    "anesthesia": "sedation_staff",
    "device_rep": "device_rep",
    "recovery_bay": "recovery_bay",
}


def _json(raw: bytes) -> Any:
    return json.loads(raw.decode())


def _pinned_body(slot: dict[str, Any], patient: int) -> dict[str, Any]:
    body: dict[str, Any] = {"patient": patient, "procedure_type": "VP", "levels": 1, "start": slot["start"]}
    for leg in slot["legs"]:
        field = PIN_FIELDS.get(leg["role"])
        if field:
            body[field] = leg["resource"]["id"]
    return body


def _race(port: int, auth: dict[str, str], bodies: list[dict[str, Any]]) -> list[int | str]:
    """Every client opens its connection, waits at a barrier, then posts at once."""
    barrier = threading.Barrier(len(bodies))
    outcomes: list[int | str] = ["not run"] * len(bodies)

    def client(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            outcomes[i] = request(port, "POST", "/api/v1/bookings/", bodies[i], headers=auth, timeout=60)[0]
        except Exception as exc:
            outcomes[i] = type(exc).__name__

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


@pytest.mark.sqlite
def test_first_command_holds_32_clients_on_one_start_ten_runs_in_a_row(tmp_path: Path):
    port = free_port()
    env = server_env(DATA_DIR=str(tmp_path), PORT=str(port), DEMO_PASSWORD="demo-" + os.urandom(6).hex())
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SECRET_KEY", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    log = (tmp_path / "run.log").open("w")
    process = subprocess.Popen(
        ["bash", "bin/run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_for(port, "/healthz", timeout=240, process=process)
        # The product, not a development server: gunicorn's workers and the worker are running.
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in processes_in_group(process.pid)]
        assert any(b"gunicorn" in c for c in commands)
        assert any(b"celery" in c for c in commands)
        assert not any(b"runserver" in c for c in commands)

        status, _, body = request(
            port, "POST", "/api/v1/auth/token/", {"username": "scheduler", "password": env["DEMO_PASSWORD"]}
        )
        assert status == 200, body
        auth = {"Authorization": f"Bearer {_json(body)['token']}"}
        patients = []
        for i in range(CLIENTS):
            status, _, body = request(
                port,
                "POST",
                "/api/v1/patients/",
                {
                    "mrn": f"LOAD{os.getpid()}{i:03d}",
                    "first_name": "Load",
                    "last_name": f"Client{i}",
                    "date_of_birth": "1950-01-01",
                },
                headers=auth,
            )
            assert status == 201, body
            patients.append(_json(body)["id"])

        today = dt.datetime.now(tz=dt.UTC).date()
        for run in range(RUNS):
            query = (
                f"/api/v1/availability/?procedure_type=VP&levels=1&limit=1"
                f"&from={today + dt.timedelta(days=1)}&to={today + dt.timedelta(days=28)}"
            )
            status, _, body = request(port, "GET", query, headers=auth)
            assert status == 200, body
            slot = _json(body)["results"][0]
            outcomes = _race(port, auth, [_pinned_body(slot, patient) for patient in patients])
            assert sorted(outcomes, key=str) == sorted([201] + [409] * (CLIENTS - 1), key=str), (run, outcomes)

        # Ctrl-C's cousin from a supervisor: SIGTERM to the script alone stops all it started.
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        deadline = time.monotonic() + 30
        while processes_in_group(process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processes_in_group(process.pid) == []
    finally:
        stop_group(process)
        log.close()
