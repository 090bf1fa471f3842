"""The availability benchmark runs end to end at a tiny size and prints its figures.

Times are not asserted: they belong in the benchmark's report, not in a test on a busy machine.
"""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command

from scheduling.models import RESOURCE_COLUMNS, Allocation


def overlaps_by_sweep() -> int:
    """Active legs that start before an earlier leg of their resource ends, found in Python so
    the check does not lean on the command's own SQL check."""
    found = 0
    for column in RESOURCE_COLUMNS:
        legs = (
            Allocation.objects.filter(is_active=True, **{f"{column}__isnull": False})
            .order_by(column, "starts_at")
            .values_list(column, "starts_at", "ends_at")
        )
        resource, latest_end = None, None
        for rid, starts, ends in legs:
            if rid != resource:
                resource, latest_end = rid, ends
                continue
            assert latest_end is not None
            found += starts < latest_end
            latest_end = max(latest_end, ends)
    return found


@pytest.mark.django_db(transaction=True)
def test_bench_prints_percentiles_and_query_count() -> None:
    out = io.StringIO()
    call_command("bench_availability", "--legs", "3000", "--runs", "3", "--allow-any-database", stdout=out)
    text = out.getvalue()

    for label in ("week search", "28-day search", "week floor", "28-day floor"):
        assert re.search(rf"^{label}\s+\d+\.\d+\s+\d+\.\d+\s+\d+\.\d+", text, re.M), text
    assert re.search(r"^measurement\s+p50 ms\s+p95 ms\s+p99 ms", text, re.M), text
    queries = re.search(r"^queries per search: (\d+)", text, re.M)
    assert queries, text
    assert int(queries.group(1)) <= 2
    assert Allocation.objects.count() >= 3000
    assert overlaps_by_sweep() == 0

    # A second run reuses the data instead of generating it again.
    again = io.StringIO()
    call_command("bench_availability", "--legs", "3000", "--runs", "1", "--allow-any-database", stdout=again)
    assert "data: reused" in again.getvalue()


def test_bench_refuses_a_database_not_named_bench() -> None:
    with pytest.raises(CommandError, match="contains 'bench'"):
        call_command("bench_availability", "--legs", "10", "--runs", "1")
