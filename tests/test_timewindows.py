"""Wall-clock rules stay at their local times across DST changes."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from core.timewindows import Interval, covered, expand_weekly, local_to_utc
from staff.models import shift_intervals
from tests import factories as f

CHICAGO = ZoneInfo("America/Chicago")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("day", "hours"),
    [(dt.date(2027, 3, 14), 10), (dt.date(2027, 11, 7), 10), (dt.date(2027, 1, 10), 10)],
    ids=["spring-forward", "fall-back", "ordinary-sunday"],
)
def test_shift_is_seven_to_five_local_on_dst_change_days(day, hours):
    site = f.SiteFactory(timezone="America/Chicago")
    shift = f.ShiftFactory(site=site, weekday=day.weekday(), starts_at=dt.time(7), ends_at=dt.time(17))
    window_start = dt.datetime.combine(day, dt.time(0), tzinfo=CHICAGO)
    [interval] = shift_intervals([shift], window_start, window_start + dt.timedelta(days=1))
    assert interval.start.tzinfo is not None
    assert interval.start.astimezone(CHICAGO).timetz().replace(tzinfo=None) == dt.time(7)
    assert interval.end.astimezone(CHICAGO).timetz().replace(tzinfo=None) == dt.time(17)
    assert interval.start.astimezone(CHICAGO).date() == day
    assert interval.end - interval.start == dt.timedelta(hours=hours)


def test_utc_offsets_differ_across_the_change():
    before = local_to_utc(dt.date(2027, 3, 13), dt.time(7), CHICAGO)
    after = local_to_utc(dt.date(2027, 3, 15), dt.time(7), CHICAGO)
    assert before.time() == dt.time(13)
    assert after.time() == dt.time(12)


def test_night_crossing_the_spring_gap_is_one_hour_shorter():
    [interval] = expand_weekly([(5, dt.time(22), dt.time(6))], CHICAGO, dt.date(2027, 3, 13), dt.date(2027, 3, 13))
    assert interval.end - interval.start == dt.timedelta(hours=7)


def test_skipped_wall_time_moves_forward_by_the_gap():
    moment = local_to_utc(dt.date(2027, 3, 14), dt.time(2, 30), CHICAGO)
    assert moment.astimezone(CHICAGO).time() == dt.time(3, 30)


def test_covered_needs_the_union_without_gaps():
    t = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    hour = dt.timedelta(hours=1)
    parts = [Interval(t, t + hour), Interval(t + hour, t + 3 * hour)]
    assert covered(parts, t, t + 3 * hour)
    assert not covered([Interval(t, t + hour), Interval(t + 2 * hour, t + 3 * hour)], t, t + 3 * hour)
    assert not covered([], t, t + hour)
