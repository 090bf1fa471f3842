"""Benchmark the day planner against first come, first served, on generated days.

The clinic is the demo clinic (3 rooms, 2 fixed C-arms and a mobile one, 8 recovery bays, the
demo staff), built once in the benchmark's own database. Each (size, seed) is a Wednesday with
no bookings and ``size`` requested cases drawn from the demo's case mix (procedures, levels,
sedation), each for a different patient who can come any time that day. Both methods place the
same cases over the same rulebook:

- first come, first served: each case in request order at the earliest start the availability
  engine finds around the cases placed before it; its time is the floor, measured in the run;
- the planner: CP-SAT with the time budget and the seed, in its three stages.

Printed per run: cases fitted, the end of the day (its length from opening), the peak of
recovery bays, the gap to the solver's proven bound on the end of the day, and the seconds;
then per size the means. Figures, not assertions: timing belongs in a report.
"""

from __future__ import annotations

import random
import statistics
import time as clock
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.utils import timezone

from devtools.management.commands import seed_demo
from patients.models import Patient
from planner import model
from planner.inputs import Waiting, load_day
from rooms.models import Site
from scheduling.models import ProcedureType

BENCH_SITE = "bench-planner"


@dataclass
class Run:
    size: int
    seed: int
    fcfs: model.Figures
    plan: model.Figures
    bound_end: int | None
    bound_weight: int | None
    opens: int
    fcfs_seconds: float
    plan_seconds: float
    status: str

    def length(self, figures: model.Figures) -> int | None:
        return figures.day_end - self.opens if figures.day_end is not None else None

    @property
    def earlier(self) -> float | None:
        """How much earlier the planned day ends, as a share of the first-come day's length."""
        fcfs, plan = self.length(self.fcfs), self.length(self.plan)
        if not fcfs or plan is None:
            return None
        return (fcfs - plan) / fcfs

    @property
    def gap(self) -> float | None:
        """How far the end of the day may be from the best possible, as a share of the day's
        length at the bound (with every case fitted that could be)."""
        plan = self.length(self.plan)
        if self.bound_end is None or plan is None or self.bound_end <= self.opens or self.gap_cases > 0:
            # With cases left out that the bound says might fit, the end of the day is not
            # what is being weighed.
            return None
        return (plan - (self.bound_end - self.opens)) / (self.bound_end - self.opens)

    @property
    def gap_cases(self) -> float:
        """How many more cases the bound says might fit, as a share of the bound."""
        if not self.bound_weight:
            return 0.0
        return max(0, self.bound_weight - self.plan.weight) / self.bound_weight


def database_name() -> str:
    return str(connection.settings_dict["NAME"])


def requests_for(
    rng: random.Random, size: int, patients: list[Patient], procedures: dict[str, ProcedureType]
) -> list[Waiting]:
    codes = [code for code, _ in seed_demo.CASE_MIX]
    weights = [weight for _, weight in seed_demo.CASE_MIX]
    chosen = rng.sample(patients, size)
    out = []
    for patient in chosen:
        code = rng.choices(codes, weights=weights)[0]
        level_weights = seed_demo.LEVEL_WEIGHTS.get(code, (1,))
        levels = rng.choices(range(1, len(level_weights) + 1), weights=level_weights)[0]
        options = seed_demo.SEDATION_WEIGHTS.get(code)
        sedation = rng.choices([s for s, _ in options], weights=[w for _, w in options])[0] if options else None
        out.append(Waiting(procedure=procedures[code], patient=patient, levels=levels, sedation=sedation))
    return out


class Command(BaseCommand):
    help = "Benchmark the day planner against first come, first served on generated days."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sizes", default="12,16,24,40", help="Requested cases per day, comma-separated.")
        parser.add_argument("--seeds", type=int, default=5, help="Days (and solver seeds) per size.")
        parser.add_argument("--budget", type=float, default=10.0, help="The planner's time budget, seconds.")
        parser.add_argument("--workers", type=int, default=2, help="Solver threads.")
        parser.add_argument(
            "--allow-any-database", action="store_true", help="Run on a database whose name lacks 'bench'."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if "bench" not in database_name().lower() and not options["allow_any_database"]:
            raise CommandError(
                f"Refusing to run on database {database_name()!r}: the benchmark builds a clinic of its own, so it "
                "runs on a database whose name contains 'bench' (bin/bench-planner sets one up)."
            )
        try:
            sizes = [int(s) for s in str(options["sizes"]).split(",") if s.strip()]
        except ValueError as exc:
            raise CommandError("--sizes takes whole numbers, e.g. 12,16,24,40.") from exc
        if not sizes or min(sizes) < 1 or options["seeds"] < 1 or options["budget"] <= 0:
            raise CommandError("--sizes, --seeds and --budget must be positive.")
        site, patients = self.clinic()
        if max(sizes) > len(patients):
            raise CommandError(f"At most {len(patients)} cases a day (one per patient).")
        procedures = {p.code: p for p in ProcedureType.objects.all()}
        day = self.bench_day(site)
        self.stdout.write(
            f"Day planner benchmark: {site.name}, {day:%A %Y-%m-%d}; budget {options['budget']:g} s, "
            f"{options['workers']} worker(s); first come, first served (FCFS) is the floor.\n"
        )
        header = (
            f"{'cases':>5} {'seed':>4} | {'fitted':>11} | {'day end plan/FCFS':>17} | {'earlier':>7} | "
            f"{'peak bays':>9} | {'gap cases/end':>12} | {'plan s':>6} | {'FCFS s':>6} | status"
        )
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        runs: list[Run] = []
        for size in sizes:
            for seed in range(1, options["seeds"] + 1):
                run = self.measure(site, day, size, seed, patients, procedures, options)
                runs.append(run)
                self.stdout.write(self.row(run, site.zone))
        self.stdout.write("")
        self.stdout.write(
            f"{'cases':>5} | {'fitted plan/FCFS':>16} | {'earlier mean (min..max)':>23} | {'gap cases/end':>13} | "
            f"{'peak bays':>9} | {'plan s mean/max':>15} | {'FCFS s':>6}"
        )
        for size in sizes:
            self.stdout.write(self.summary(size, [r for r in runs if r.size == size]))

    @staticmethod
    def summary(size: int, mine: list[Run]) -> str:
        mean = statistics.mean
        earlier = [r.earlier for r in mine if r.earlier is not None]
        gaps = [r.gap for r in mine if r.gap is not None]
        case_gap = _pct(mean(r.gap_cases for r in mine))
        fitted = f"{mean(r.plan.fitted for r in mine):.1f}/{mean(r.fcfs.fitted for r in mine):.1f}"
        spread = f"{_pct(mean(earlier))} ({_pct(min(earlier))}..{_pct(max(earlier))})" if earlier else "-"
        bays = f"{mean(r.plan.peak_bays for r in mine):.1f}/{mean(r.fcfs.peak_bays for r in mine):.1f}"
        seconds = f"{mean(r.plan_seconds for r in mine):.2f}/{max(r.plan_seconds for r in mine):.2f}"
        gap = f"{case_gap}/{_pct(mean(gaps)) if gaps else '-'}"
        return (
            f"{size:>5} | {fitted:>16} | {spread:>23} | {gap:>13} | {bays:>9} | {seconds:>15} | "
            f"{mean(r.fcfs_seconds for r in mine):>6.3f}"
        )

    def clinic(self) -> tuple[Site, list[Patient]]:
        """The demo clinic in the benchmark's database, built on first use."""
        zone = ZoneInfo(seed_demo.SITE_ZONE)
        site = Site.objects.filter(code=seed_demo.SITE_CODE).first()
        if site is None:
            today = timezone.now().astimezone(zone).date()
            with transaction.atomic():
                built = seed_demo.build_clinic(random.Random(7), today - timedelta(days=today.weekday()), zone)
            site = built.site
            self.stdout.write(f"Built the demo clinic in {database_name()}.")
        return site, list(seed_demo.demo_patients().order_by("pk"))

    @staticmethod
    def bench_day(site: Site) -> date:
        """A Wednesday three weeks ahead: every staff member but the device rep works, and no
        anticoagulant hold of the demo patients reaches it."""
        today = timezone.now().astimezone(site.zone).date()
        return today + timedelta(days=21 + (2 - today.weekday()) % 7)

    def measure(
        self,
        site: Site,
        day: date,
        size: int,
        seed: int,
        patients: list[Patient],
        procedures: dict[str, ProcedureType],
        options: dict[str, Any],
    ) -> Run:
        rng = random.Random(size * 1000 + seed)
        waiting = requests_for(rng, size, patients, procedures)
        loaded = load_day(site=site, day=day, waiting=waiting, now=timezone.now())
        problem = loaded.problem
        started = clock.perf_counter()
        fcfs = model.first_come_first_served(problem)
        fcfs_seconds = clock.perf_counter() - started
        plan = model.solve(
            problem, budget=options["budget"], seed=seed, workers=options["workers"], hint=fcfs.placements
        )
        return Run(
            size,
            seed,
            fcfs.figures,
            plan.figures,
            plan.bound_day_end,
            plan.bound_weight,
            problem.opens,
            fcfs_seconds,
            plan.seconds,
            plan.status,
        )

    @staticmethod
    def row(run: Run, zone: ZoneInfo) -> str:
        def hhmm(minutes: int | None) -> str:
            if minutes is None:
                return "--:--"
            return f"{minutes // 60:02d}:{minutes % 60:02d}"

        plan_len, fcfs_len = run.length(run.plan), run.length(run.fcfs)
        end = f"{hhmm(_local(run.plan.day_end, zone))}/{hhmm(_local(run.fcfs.day_end, zone))}"
        lengths = f"({hhmm(plan_len)}/{hhmm(fcfs_len)})"
        return (
            f"{run.size:>5} {run.seed:>4} | {run.plan.fitted:>5}/{run.fcfs.fitted:<5} | {end:>11} {lengths:>5} | "
            f"{_pct(run.earlier) if run.earlier is not None else '-':>7} | "
            f"{run.plan.peak_bays:>4}/{run.fcfs.peak_bays:<4} | {_pct(run.gap_cases):>5} "
            f"{_pct(run.gap) if run.gap is not None else '-':>6} | "
            f"{run.plan_seconds:>6.2f} | {run.fcfs_seconds:>6.3f} | {run.status}"
        )


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _local(minutes: int | None, zone: ZoneInfo) -> int | None:
    """Minutes since the epoch as minutes since the local midnight."""
    if minutes is None:
        return None
    from scheduling.rules.rulebook import from_min

    moment = from_min(minutes).astimezone(zone)
    return moment.hour * 60 + moment.minute
