"""The schema as an integration engineer uses it: a Python client generated afresh from the
schema the live server serves (openapi-python-client), with no hand-written HTTP, signs in,
searches, books, reschedules, reads the daily list and cancels. A schema that says other than
what the server does fails here: the generated models parse every answer by the schema."""

from __future__ import annotations

import datetime as dt
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import time_machine

from scheduling.models import Booking
from tests.conftest import MONDAY, NOW, build_clinic, local
from tests.test_browser_board import PASSWORD, user

PACKAGE = "fluoro_client"


def generator() -> str:
    found = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent)) or shutil.which(
        "openapi-python-client"
    )
    if found is None:
        pytest.fail("openapi-python-client is not installed (it is in requirements-dev.in)")
    return found


def generate_client(base_url: str, into: Path) -> Any:
    schema = httpx.get(f"{base_url}/api/schema/", params={"format": "json"}, timeout=30)
    assert schema.status_code == 200
    schema_file = into / "schema.json"
    schema_file.write_bytes(schema.content)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [generator(), "generate", "--path", str(schema_file), "--meta", "none", "--output-path", str(into / PACKAGE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # A generator that had to skip an operation or a model says so; the schema must not need it.
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    sys.path.insert(0, str(into))
    try:
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(into))


def test_a_client_generated_from_the_served_schema_books_moves_reads_and_cancels(live_server, tmp_path):
    with time_machine.travel(NOW, tick=True):
        clinic = build_clinic()
        user("scheduler", "ehr-scheduler")
        client_package = generate_client(live_server.url, tmp_path)
        sys.path.insert(0, str(tmp_path))
        try:
            run_the_flow(client_package, live_server.url, clinic)
        finally:
            sys.path.remove(str(tmp_path))


def run_the_flow(package: Any, base_url: str, clinic: Any) -> None:
    v1 = importlib.import_module(f"{PACKAGE}.api.v1")
    models = importlib.import_module(f"{PACKAGE}.models")
    endpoint = {
        name: importlib.import_module(f"{PACKAGE}.api.v1.{name}")
        for name in (
            "v1_auth_token_create",
            "v1_availability_retrieve",
            "v1_bookings_create",
            "v1_bookings_reschedule_create",
            "v1_daily_list_retrieve",
            "v1_bookings_cancel_create",
            "v1_bookings_retrieve",
        )
    }
    assert v1 is not None

    # Sign in.
    anonymous = package.Client(base_url=base_url, raise_on_unexpected_status=True)
    token = endpoint["v1_auth_token_create"].sync(
        client=anonymous, body=models.TokenInputRequest(username="ehr-scheduler", password=PASSWORD)
    )
    assert isinstance(token, models.TokenOutput)
    assert token.expires_at.utcoffset() == dt.timedelta(hours=-6)
    api = package.AuthenticatedClient(base_url=base_url, token=token.token, raise_on_unexpected_status=True)

    # Search the Monday for a vertebroplasty for the referred patient.
    patient = clinic.patients[0].pk
    found = endpoint["v1_availability_retrieve"].sync(
        client=api, procedure_type="VP", from_=MONDAY, to=MONDAY, patient=patient, limit=5
    )
    assert isinstance(found, models.AvailabilityResult)
    assert found.results
    first = found.results[0]

    # Book the first offer, pinning what it named.
    booked = endpoint["v1_bookings_create"].sync(
        client=api,
        body=models.BookingCreateInputRequest(
            patient=patient, procedure_type="VP", start=first.start, physician=clinic.physicians[0].pk
        ),
        idempotency_key="ehr-order-1",
    )
    assert isinstance(booked, models.Booking), booked
    assert booked.start == first.start
    assert booked.status.value == "scheduled"
    assert Booking.objects.get(pk=booked.id).starts_at == first.start

    # Move it to the afternoon.
    afternoon = local(MONDAY, 13)
    moved = endpoint["v1_bookings_reschedule_create"].sync(
        id=booked.id, client=api, body=models.RescheduleInputRequest(start=afternoon)
    )
    assert isinstance(moved, models.Booking), moved
    assert moved.start == afternoon

    # The physician's daily list shows it at its new time.
    daily = endpoint["v1_daily_list_retrieve"].sync(client=api, physician=clinic.physicians[0].pk, date=MONDAY)
    assert isinstance(daily, models.DailyList)
    assert [(case.booking, case.start) for case in daily.cases] == [(booked.id, afternoon)]

    # Cancel it; a read shows it cancelled, and a second cancel is a problem, not a crash.
    cancelled = endpoint["v1_bookings_cancel_create"].sync(
        id=booked.id,
        client=api,
        body=models.CancelInputRequest(reason=models.CancelInputReasonEnum("patient_request")),
    )
    assert isinstance(cancelled, models.Booking), cancelled
    assert cancelled.status.value == "cancelled"
    again = endpoint["v1_bookings_cancel_create"].sync_detailed(
        id=booked.id,
        client=package.AuthenticatedClient(base_url=base_url, token=token.token),
        body=models.CancelInputRequest(reason=models.CancelInputReasonEnum("patient_request")),
    )
    assert again.status_code == 409
    assert isinstance(again.parsed, models.Problem)
    assert again.parsed.code == "invalid_transition"
    read = endpoint["v1_bookings_retrieve"].sync(id=booked.id, client=api)
    assert read.status.value == "cancelled"
