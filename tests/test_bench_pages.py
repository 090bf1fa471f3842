"""The page benchmark runs at a tiny size, prints its table and cleans up after itself. Times
are not asserted (they belong in the report); the statement counts, which must not grow with
the cases, are."""

import io
import re

import pytest
from django.core.management import call_command

from rooms.models import Site
from scheduling.models import Booking


@pytest.mark.django_db
def test_bench_pages_prints_each_page_with_the_same_statements_for_1_and_n_cases():
    out = io.StringIO()
    call_command("bench_pages", "--cases", "4", "--board-cases", "9", "--runs", "2", stdout=out)
    text = out.getvalue()
    rows = {
        match.group(1).strip(): int(match.group(2))
        for match in re.finditer(r"^(.+?)\s+\d+\.\d+\s+\d+\.\d+\s+\d+\.\d\s+(\d+)$", text, re.M)
    }
    assert set(rows) == {
        "floor: authenticated GET / (302)",
        "physician's day, 1 case",
        "physician's day, 4 cases",
        "slot finder, 3 weeks, 1 case",
        "slot finder, 3 weeks, 4 cases",
        "day board, 1 case",
        "day board, 4 cases",
        "day board, 9 cases",
    }
    assert rows["physician's day, 1 case"] == rows["physician's day, 4 cases"]
    assert rows["slot finder, 3 weeks, 1 case"] == rows["slot finder, 3 weeks, 4 cases"]
    assert rows["day board, 1 case"] == rows["day board, 4 cases"] == rows["day board, 9 cases"]
    assert not Site.objects.filter(code="bench-pages").exists()
    assert Booking.objects.count() == 0
