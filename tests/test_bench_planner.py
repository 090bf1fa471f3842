"""The planner benchmark runs at a tiny size and prints its table: for each run the cases fitted,
the end of the day against first come first served, the peak of bays, the gaps to the bound and
the seconds (the first-come time as the floor). Times are not asserted."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command

from rooms.models import Site

pytestmark = pytest.mark.django_db


def test_bench_prints_each_run_and_the_means(frozen_now) -> None:
    out = io.StringIO()
    call_command("bench_planner", "--sizes", "5,6", "--seeds", "2", "--budget", "1", "--allow-any-database", stdout=out)
    text = out.getvalue()
    assert "first come, first served (FCFS) is the floor" in text
    rows = re.findall(
        r"^\s+(\d+)\s+(\d+) \|\s+(\d+)/(\d+)\s+\| (\d\d:\d\d)/(\d\d:\d\d) .*\| (optimal|feasible)$", text, re.M
    )
    assert [(int(size), int(seed)) for size, seed, *_ in rows] == [(5, 1), (5, 2), (6, 1), (6, 2)]
    for _, _, plan_fitted, fcfs_fitted, plan_end, fcfs_end, _ in rows:
        assert int(plan_fitted) >= int(fcfs_fitted)
        if plan_fitted == fcfs_fitted:
            assert plan_end <= fcfs_end
    assert re.search(r"^\s+5 \|\s+\d+\.\d/\d+\.\d \|", text, re.M)
    assert re.search(r"^\s+6 \|\s+\d+\.\d/\d+\.\d \|", text, re.M)
    # The clinic was built once, in this database.
    assert Site.objects.count() == 1


def test_bench_refuses_a_database_not_named_for_it_and_bad_sizes() -> None:
    with pytest.raises(CommandError, match="bench"):
        call_command("bench_planner", stdout=io.StringIO())
    with pytest.raises(CommandError, match="sizes"):
        call_command("bench_planner", "--sizes", "x", "--allow-any-database", stdout=io.StringIO())
