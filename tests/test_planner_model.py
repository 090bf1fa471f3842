"""The planner's model on generated days (Hypothesis): whatever the cases and resources, a plan
places each leg on a candidate free for it, never two legs on one resource at once, equipment
fixed in a room only with that room, one person in one role per case, every case within its
allowed starts (a booked one within its allowed move), and it fits at least what first come
first served fits."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner import model
from scheduling.availability import engine

DAY = (420, 1080)


@st.composite
def days(draw: st.DrawFn) -> model.DayProblem:
    rooms = draw(st.integers(1, 2))
    bays = draw(st.integers(1, 3))
    staff = draw(st.integers(1, 3))
    blocked = draw(st.lists(st.tuples(st.integers(420, 1000), st.integers(10, 90)), max_size=3))

    def free(key: tuple[str, int]) -> list[tuple[int, int]]:
        cuts = [(s, s + d) for (s, d), k in zip(blocked, range(len(blocked)), strict=True) if k % 4 == key[1] % 4]
        return engine.subtract([DAY], cuts)

    cases = []
    for index in range(draw(st.integers(1, 6))):
        minutes = draw(st.sampled_from([30, 45, 60]))
        recovery = draw(st.sampled_from([30, 60, 120]))
        pools = (
            engine.LegPool(
                "room",
                0,
                minutes + 10,
                [engine.Candidate(("room", r), free(("room", r))) for r in range(1, rooms + 1)],
            ),
            engine.LegPool(
                "c_arm",
                0,
                minutes,
                [
                    engine.Candidate(("equipment", 1), free(("equipment", 1)), room_id=1),
                    engine.Candidate(("equipment", 2), free(("equipment", 2))),
                ],
            ),
            engine.LegPool(
                "physician",
                10,
                minutes - 10,
                [engine.Candidate(("staff", s), free(("staff", s))) for s in range(1, staff + 1)],
            ),
            engine.LegPool(
                "rad_tech",
                0,
                minutes,
                [engine.Candidate(("staff", s), free(("staff", s))) for s in range(1, staff + 1)],
            ),
            engine.LegPool(
                "recovery_bay",
                minutes,
                recovery,
                [engine.Candidate(("bay", b), [DAY]) for b in range(1, bays + 1)],
            ),
        )
        cases.append(model.PlanCase(f"w{index}", pools, (DAY,), weight=draw(st.integers(1, 3))))
    return model.DayProblem(tuple(cases), (0, 1440), 420)


def legs_of(problem: model.DayProblem, result: model.Result) -> list[tuple[tuple[str, int], int, int, str, str]]:
    cases = {case.ident: case for case in problem.cases}
    out = []
    for ident, placed in result.placements.items():
        for pool in cases[ident].pools:
            key = placed.keys[pool.role]
            out.append((key, placed.start + pool.offset, placed.start + pool.offset + pool.minutes, ident, pool.role))
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(problem=days())
def test_every_plan_keeps_every_rule_the_model_is_given_and_fits_at_least_first_come(problem):
    result = model.solve(problem, budget=1.0, seed=1, workers=1)
    baseline = model.first_come_first_served(problem)
    assert result.figures.weight >= baseline.figures.weight
    cases = {case.ident: case for case in problem.cases}
    legs = legs_of(problem, result)
    for key, start, end, ident, role in legs:
        pool = next(p for p in cases[ident].pools if p.role == role)
        candidate = next(c for c in pool.candidates if c.key == key)
        assert engine.contains(candidate.free, start, end), (ident, role, key)
    by_key: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for key, start, end, _, _ in legs:
        by_key.setdefault(key, []).append((start, end))
    for spans in by_key.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    for ident, placed in result.placements.items():
        assert any(lo <= placed.start <= hi for lo, hi in cases[ident].allowed)
        if placed.keys["c_arm"] == ("equipment", 1):
            assert placed.keys["room"] == ("room", 1)
        assert placed.keys["physician"] != placed.keys["rad_tech"]
    assert result.figures == model.figures(problem, result.placements)


def test_a_booked_case_stays_within_its_move_and_keeps_what_it_can():
    day = (420, 1080)
    pools = (
        engine.LegPool("room", 0, 70, [engine.Candidate(("room", 1), [day]), engine.Candidate(("room", 2), [day])]),
        engine.LegPool(
            "recovery_bay", 60, 60, [engine.Candidate(("bay", 1), [day]), engine.Candidate(("bay", 2), [day])]
        ),
    )
    booked = model.PlanCase(
        "b1",
        pools,
        ((600 - 15, 600 + 15),),
        required=True,
        current=600,
        current_keys={"room": ("room", 2), "recovery_bay": ("bay", 2)},
    )
    waiting = model.PlanCase("w1", pools, (day,))
    result = model.solve(model.DayProblem((booked, waiting), (0, 1440), 420), budget=2.0, seed=0, workers=1)
    placed = result.placements["b1"]
    assert abs(placed.start - 600) <= 15
    assert placed.keys["room"] == ("room", 2)
    assert result.figures.fitted == 2


def test_one_patient_in_two_cases_is_never_in_both_at_once():
    day = (420, 1080)

    def case(ident: str, patient: int) -> model.PlanCase:
        pools = (
            engine.LegPool("patient", -30, 120, [engine.Candidate(("patient", patient), [(0, 1440)])]),
            engine.LegPool("room", 0, 40, [engine.Candidate(("room", 1), [day]), engine.Candidate(("room", 2), [day])]),
            engine.LegPool("recovery_bay", 30, 60, [engine.Candidate(("bay", b), [day]) for b in (1, 2, 3)]),
        )
        return model.PlanCase(ident, pools, (day,))

    problem = model.DayProblem((case("w1", 7), case("w2", 7), case("w3", 8)), (0, 1440), 420)
    result = model.solve(problem, budget=2.0, seed=0, workers=1)
    assert result.figures.fitted == 3
    first, second = sorted(result.placements[i].start for i in ("w1", "w2"))
    assert second - 30 >= first + 90
