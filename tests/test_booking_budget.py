"""The booking path does each piece of work once, and its statements are counted.

A transactional test, so that the statements are the ones a real request sends: BEGIN, the
locks, the reads, the insert, COMMIT (not the savepoints of a test wrapped in a transaction).
Each request is sent twice and the second one measured: the first of a token records its use.

- the legs are planned once;
- the inventory and the patient are read before the transaction, once; in it, the locks and one
  read of the window, then the writes: nothing the rules need is read again through the ORM;
- the answer is built from what was written: no read of the booking or its legs after the
  insert;
- a refusal's reasons and alternatives are worked out after the transaction has ended (its
  locks released);
- a pinned booking sends at most ``PINNED_BUDGET`` statements, transaction control included.
"""

from __future__ import annotations

import re
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scheduling.legs import plan_legs
from scheduling.models import Booking
from tests import factories as f
from tests.api_helpers import client_for, post
from tests.conftest import MONDAY, build_clinic, local

KEY = "Idempotency-Key"
PINNED_BUDGET = 15
AUTO_BUDGET = 15
REFUSED_BUDGET = 15

pytestmark = pytest.mark.django_db(transaction=True)

TRANSACTION_END = re.compile(r"^(COMMIT|ROLLBACK)\b", re.I)
TRANSACTION_START = re.compile(r"^(BEGIN)\b", re.I)


@pytest.fixture
def setup(frozen_now: Any) -> tuple[Any, Any]:
    clinic = build_clinic()
    client = client_for(f.UserFactory(username="budget-scheduler", groups=["scheduler"]))
    return clinic, client


def statements(client: Any, body: dict[str, Any], **headers: str) -> tuple[Any, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = post(client, "/api/v1/bookings/", body, **headers)
    return response, [q["sql"] for q in captured.captured_queries]


def body_for(clinic: Any, n: int, start: Any, **pins: Any) -> dict[str, Any]:
    return {"patient": clinic.patients[n].pk, "procedure_type": "VP", "start": start.isoformat(), **pins}


def tables(sql: str) -> set[str]:
    return {name for name in re.findall(r'(?:FROM|JOIN|INTO|UPDATE)\s+"?(\w+)"?', sql, re.I)}


def shape(sqls: list[str]) -> str:
    """One line per statement: its verb and tables, never a parameter."""
    lines = []
    for sql in sqls:
        verb = sql.lstrip().split(None, 1)[0].upper()
        lines.append(f"{verb} {' '.join(sorted(tables(sql)))}".strip())
    return "\n".join(lines)


def transaction_span(sqls: list[str]) -> tuple[int, int]:
    """Where the booking's transaction starts and ends in the statement list."""
    start = next(i for i, sql in enumerate(sqls) if TRANSACTION_START.match(sql.strip()))
    end = next(i for i, sql in enumerate(sqls) if i > start and TRANSACTION_END.match(sql.strip()))
    return start, end


def test_a_pinned_booking_reads_each_input_once_and_answers_from_what_it_wrote(setup):
    clinic, client = setup
    warm, _ = statements(client, body_for(clinic, 0, local(MONDAY, 8), **clinic.resources()))
    assert warm.status_code == 201, warm.json()

    response, sqls = statements(client, body_for(clinic, 1, local(MONDAY, 10), **clinic.resources()))

    assert response.status_code == 201, response.json()
    print(f"pinned booking: {len(sqls)} statements\n{shape(sqls)}")
    assert len(sqls) <= PINNED_BUDGET, shape(sqls)
    start, end = transaction_span(sqls)
    inside = sqls[start + 1 : end]
    # In the transaction: locks, one read of the window, the writes. No resource, patient or
    # procedure table is read there: the rules use what the inventory read brought.
    reads = [sql for sql in inside if sql.lstrip().upper().startswith(("SELECT", "WITH")) and "INSERT" not in sql]
    read_tables = set().union(*(tables(sql) for sql in reads)) if reads else set()
    assert not read_tables & {
        "rooms_procedureroom",
        "rooms_equipment",
        "rooms_recoverybay",
        "staff_staffmember",
        "staff_credential",
        "patients_patient",
        "scheduling_proceduretype",
    }, shape(inside)
    assert len([sql for sql in reads if "scheduling_allocation" in tables(sql)]) == 1, shape(inside)
    # After the transaction, nothing reads the booking or its legs back: the answer is built
    # from the rows the service wrote.
    after = sqls[end + 1 :]
    assert not any(tables(sql) & {"scheduling_booking", "scheduling_allocation"} for sql in after), shape(after)
    booking = Booking.objects.get(pk=response.json()["id"])
    assert response.json()["start"] == booking.starts_at.astimezone(clinic.site.zone).isoformat()
    assert {leg["role"] for leg in response.json()["legs"]} == set(booking.legs.values_list("role", flat=True))


def test_a_pinned_booking_with_an_idempotency_key_stays_within_the_budget(setup):
    clinic, client = setup
    warm, _ = statements(client, body_for(clinic, 0, local(MONDAY, 8), **clinic.resources()), **{KEY: "warm-up"})
    assert warm.status_code == 201, warm.json()

    body = body_for(clinic, 1, local(MONDAY, 10), **clinic.resources())
    response, sqls = statements(client, body, **{KEY: "booking-1"})

    assert response.status_code == 201, response.json()
    print(f"pinned booking with an Idempotency-Key: {len(sqls)} statements\n{shape(sqls)}")
    assert len(sqls) <= PINNED_BUDGET, shape(sqls)
    # The key is claimed before the booking's transaction and answered after it: the
    # transaction (and its locks) is the service's alone.
    start, end = transaction_span(sqls)
    assert not any("api_idempotencyrecord" in tables(sql) for sql in sqls[start : end + 1]), shape(sqls)
    assert any("api_idempotencyrecord" in tables(sql) for sql in sqls[:start]), shape(sqls)
    assert any("api_idempotencyrecord" in tables(sql) for sql in sqls[end:]), shape(sqls)
    replay, _ = statements(client, body, **{KEY: "booking-1"})
    assert replay.status_code == 201
    assert replay.json() == response.json()
    assert Booking.objects.count() == 2


@pytest.mark.parametrize("pinned", [True, False], ids=["pinned", "auto"])
def test_a_booking_plans_its_legs_once(setup, pinned):
    clinic, client = setup
    pins = clinic.resources() if pinned else {}
    with mock.patch("scheduling.request.plan_legs", wraps=plan_legs) as planned:
        response, _ = statements(client, body_for(clinic, 0, local(MONDAY, 8), **pins))
    assert response.status_code == 201, response.json()
    assert planned.call_count == 1


def test_an_auto_assigned_booking_stays_within_its_budget(setup):
    clinic, client = setup
    warm, _ = statements(client, body_for(clinic, 0, local(MONDAY, 8)))
    assert warm.status_code == 201, warm.json()

    response, sqls = statements(client, body_for(clinic, 1, local(MONDAY, 10)))

    assert response.status_code == 201, response.json()
    print(f"auto-assigned booking: {len(sqls)} statements\n{shape(sqls)}")
    assert len(sqls) <= AUTO_BUDGET, shape(sqls)


def test_a_refusal_works_out_its_alternatives_after_the_locks_are_released(setup):
    clinic, client = setup
    taken, _ = statements(client, body_for(clinic, 0, local(MONDAY, 9), **clinic.resources()))
    assert taken.status_code == 201, taken.json()
    warm, _ = statements(client, body_for(clinic, 1, local(MONDAY, 9), **clinic.resources()))
    assert warm.status_code == 409, warm.json()

    response, sqls = statements(client, body_for(clinic, 2, local(MONDAY, 9), **clinic.resources()))

    assert response.status_code == 409, response.json()
    assert response.json()["alternatives"], response.json()
    print(f"refused booking: {len(sqls)} statements\n{shape(sqls)}")
    assert len(sqls) <= REFUSED_BUDGET, shape(sqls)
    start, end = transaction_span(sqls)
    # The alternatives come from a search of their own, after the transaction: its read of the
    # window is there, and none is inside but the decision's.
    inside = sqls[start + 1 : end]
    after = sqls[end + 1 :]
    assert len([sql for sql in inside if "scheduling_allocation" in tables(sql)]) == 1, shape(inside)
    assert any("scheduling_allocation" in tables(sql) for sql in after), shape(after)
    assert not any("pg_advisory" in sql for sql in after), shape(after)
