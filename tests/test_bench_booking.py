"""The booking load benchmark runs end to end at a tiny size and prints its tables.

It starts the real server (gunicorn) against this test's database, so the test needs committed
data another process can read: a transactional test, on the test database's file or PostgreSQL
database. Times are not asserted: they belong in the benchmark's report, not in a test on a busy
machine. What is asserted is that every scenario ran with every request answered as planned, and
that the contention ended with exactly one winner.
"""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command

from scheduling.models import Allocation, Booking, BookingStatus
from tests.conftest import overlapping_active_legs

NUMBER = r"\d+\.\d+"


@pytest.mark.django_db(transaction=True)
def test_bench_prints_every_scenario_and_one_racer_wins() -> None:
    out = io.StringIO()
    call_command(
        "bench_booking",
        "--requests",
        "4",
        "--clients",
        "1,3",
        "--contenders",
        "5",
        "--allow-any-database",
        stdout=out,
    )
    text = out.getvalue()

    assert re.search(
        r"^scenario\s+clients\s+requests\s+ok/s\s+p50 ms\s+p95 ms\s+p99 ms\s+answers\s+conn err", text, re.M
    )
    expected = {
        "pinned booking": "201:4",
        "auto-assigned booking": "201:4",
        "floor: raw SQL": "ok:4",
        "floor: GET site": "200:4",
    }
    for label, answers in expected.items():
        for clients in (1, 3):
            row = rf"^{re.escape(label)}\s+{clients}\s+4\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{answers}\s+0$"
            assert re.search(row, text, re.M), (label, clients, text)
    contention = re.search(
        rf"^contention: one start\s+5\s+5\s+{NUMBER}(\s+{NUMBER}){{3}}\s+(.+?)\s+0\s+(.+)$", text, re.M
    )
    assert contention, text
    assert contention.group(2) == "201:1 409:4"
    assert contention.group(3) == "exactly one 201: ok"

    for label in ("pinned booking", "auto-assigned booking", "refused booking", "GET site"):
        assert re.search(rf"^  {label}\s+\d{{3}}\s+{NUMBER}\s+{NUMBER}\s+\d+", text, re.M), (label, text)
    for label in ("pinned booking, 1 client", "auto-assigned booking, 3 clients"):
        assert re.search(rf"^{label}(\s+{NUMBER}x){{6}}$", text, re.M), (label, text)

    assert re.search(
        rf"^  pinned booking p50 at 1 client: {NUMBER} ms = {NUMBER} x the GET's {NUMBER} ms \(goal: at most 3 x\)$",
        text,
        re.M,
    ), text

    # What the server wrote is there: 2 x 4 profiled, 2 x 8 warm-up, 2 x 2 x 4 measured, 1
    # race winner, and the floor's 2 x 4 raw transactions, none overlapping another.
    assert Booking.objects.filter(status=BookingStatus.SCHEDULED).count() == 4 * 2 + 8 * 2 + 16 + 1 + 8
    assert Allocation.objects.filter(is_active=True).count() == 7 * Booking.objects.count()
    assert overlapping_active_legs() == []


def test_bench_refuses_a_database_not_named_bench() -> None:
    with pytest.raises(CommandError, match="contains 'bench'"):
        call_command("bench_booking", "--requests", "1")
