"""The interval algebra against brute force over small integer timelines."""

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduling.availability import engine

spans = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)).map(lambda t: (min(t), max(t))), max_size=8)


def points(sp):
    return {m for s, e in sp for m in range(s, e)}


def closed_points(rs):
    return {m for lo, hi in rs for m in range(lo, hi + 1)}


@given(spans)
def test_merge_keeps_the_same_minutes_in_disjoint_sorted_spans(sp):
    merged = engine.merge(sp)
    assert points(merged) == points(sp)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(merged))


@given(spans, spans)
def test_subtract_is_set_difference(base, cuts):
    assert points(engine.subtract(base, cuts)) == points(base) - points(cuts)


@given(spans, spans)
def test_intersect_is_set_intersection(a, b):
    a_closed, b_closed = engine.merge_closed(a), engine.merge_closed(b)
    assert closed_points(engine.intersect(a_closed, b_closed)) == closed_points(a_closed) & closed_points(b_closed)


@given(spans, st.integers(0, 60), st.integers(1, 20))
def test_contains_means_one_free_span_covers_the_window(free, start, length):
    merged = engine.merge(free)
    expected = any(s <= start and start + length <= e for s, e in merged)
    assert engine.contains(merged, start, start + length) is expected


candidate = st.builds(lambda i, free: engine.Candidate(key=("r", i), free=engine.merge(free)), st.integers(0, 3), spans)
pools = st.lists(
    st.builds(
        lambda role, offset, minutes, cands: engine.LegPool(role, offset, minutes, cands),
        st.sampled_from(["a", "b", "c"]),
        st.integers(-5, 10),
        st.integers(1, 15),
        st.lists(candidate, min_size=1, max_size=3, unique_by=lambda c: c.key),
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda p: p.role,
)


@settings(max_examples=300)
@given(pools)
def test_search_finds_exactly_the_starts_brute_force_finds(leg_pools):
    window = (0, 60)
    found = engine.search(leg_pools, window, grid=1, count=1000)
    brute = [t for t in range(*window) if engine.assign(leg_pools, t) is not None]
    assert [a.start for a in found] == brute
    for assignment in found:
        keys = [c.key for c in assignment.resources.values()]
        assert len(keys) == len(set(keys))  # one resource never fills two legs
        for pool in leg_pools:
            chosen = assignment.resources[pool.role]
            lo = assignment.start + pool.offset
            assert engine.contains(chosen.free, lo, lo + pool.minutes)


def brute_assign(leg_pools, t):
    """Any assignment at all, by trying every combination."""
    from itertools import product

    options = []
    for pool in leg_pools:
        free = [c for c in pool.candidates if engine.contains(c.free, t + pool.offset, t + pool.offset + pool.minutes)]
        options.append(free)
    return any(len({c.key for c in combo}) == len(combo) for combo in product(*options))


@settings(max_examples=300)
@given(pools, st.integers(0, 59))
def test_assignment_backtracks_to_any_combination_that_exists(leg_pools, t):
    assert (engine.assign(leg_pools, t) is not None) == brute_assign(leg_pools, t)


def test_equipment_fixed_in_a_room_follows_the_room():
    room = engine.LegPool(
        "room", 0, 10, [engine.Candidate(("room", 1), [(0, 100)]), engine.Candidate(("room", 2), [(0, 100)])]
    )
    c_arm = engine.LegPool("c_arm", 0, 10, [engine.Candidate(("equipment", 7), [(0, 100)], room_id=2)])
    chosen = engine.assign([c_arm, room], 0)
    assert chosen is not None
    assert chosen["room"].key == ("room", 2)


def test_grid_points_start_at_the_origin():
    assert list(engine.grid_points([(3, 21)], 5, origin=1)) == [6, 11, 16, 21]
