from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
import time_machine
from django.db import connection

from patients.drugs import install_default_drugs
from patients.models import Drug, Patient
from rooms.models import Equipment, ProcedureRoom, RecoveryBay, Site
from scheduling.catalogue import install_default_catalogue
from scheduling.models import Allocation, ProcedureType
from scheduling.request import pins_of
from staff.models import StaffMember
from tests import factories as f

# A Monday in January, far from DST changes, after the frozen "now" below.
MONDAY = dt.date(2027, 1, 11)
NOW = dt.datetime(2027, 1, 4, 12, 0, tzinfo=dt.UTC)


def pytest_configure(config: pytest.Config) -> None:
    from django.conf import settings

    # Hashing is deliberately slow; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    vendor = connection.vendor
    require_pg = os.environ.get("REQUIRE_POSTGRES") == "1"
    if require_pg and vendor != "postgresql":
        raise pytest.UsageError("REQUIRE_POSTGRES=1 but DATABASE_URL does not point at PostgreSQL.")
    redis_url = os.environ.get("REDIS_URL", "").strip()
    if os.environ.get("REQUIRE_REDIS") == "1":
        if not redis_url:
            raise pytest.UsageError("REQUIRE_REDIS=1 but REDIS_URL is not set.")
        if not redis_answers(redis_url):
            raise pytest.UsageError("REQUIRE_REDIS=1 but Redis at REDIS_URL does not answer.")
    # Engine-specific tests are deselected, not skipped, in the other engine's pass: CI runs
    # both passes, and a skip would hide a pass that never reached the engine. Tests that need
    # Redis are deselected the same way when REDIS_URL is unset.
    keep, drop = [], []
    for item in items:
        wanted = [
            engine
            for marker, engine in (("postgres", "postgresql"), ("sqlite", "sqlite"))
            if item.get_closest_marker(marker)
        ]
        no_redis = item.get_closest_marker("redis") is not None and not redis_url
        (drop if (wanted and vendor not in wanted) or no_redis else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(autouse=True)
def _fresh_throttles(request: pytest.FixtureRequest) -> None:
    """Sign-in counters live in a shared cache that outlives a test (Redis, or a table that
    transactional tests do not flush): every test starts with none."""
    marker = request.node.get_closest_marker("django_db")
    names = set(request.fixturenames)
    transactional = (
        "transactional_db" in names or "live_server" in names or bool(marker and marker.kwargs.get("transaction"))
    )
    if transactional:
        request.getfixturevalue("transactional_db")
    elif marker is not None or "db" in names:
        request.getfixturevalue("db")
    else:
        return
    clear_throttles()


def clear_throttles() -> None:
    from django.conf import settings
    from django.core.cache import caches

    from core.models import ThrottleCounter

    ThrottleCounter.objects.all().delete()
    client = getattr(caches["throttle"], "_cache", None)
    if client is not None and hasattr(client, "get_client"):
        # Only our keys: the same Redis holds the Celery queues.
        redis_client = client.get_client(write=True)
        prefix = settings.CACHES["throttle"].get("KEY_PREFIX", "")
        for key in redis_client.scan_iter(match=f"{prefix}:*throttle:*"):
            redis_client.delete(key)


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """A wall-clock time at the test site (America/Chicago), as an aware datetime."""
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=ZoneInfo("America/Chicago"))


@dataclass
class Clinic:
    site: Site
    rooms: list[ProcedureRoom]
    c_arms: list[Equipment]
    rf_generator: Equipment
    bays: list[RecoveryBay]
    physicians: list[StaffMember]
    techs: list[StaffMember]
    nurses: list[StaffMember]
    anesthesia: StaffMember
    rep: StaffMember
    patients: list[Patient]
    extra: dict[str, Any] = field(default_factory=dict)

    def vp(self) -> ProcedureType:
        return ProcedureType.objects.get(code="VP")

    def resources(self, **overrides: Any) -> dict[str, int]:
        """Pins of a valid set for a vertebroplasty under moderate sedation in the first room;
        an override of None leaves that role to the engine."""
        values: dict[str, Any] = dict(
            room=self.rooms[0],
            c_arm=self.c_arms[0],
            physician=self.physicians[0],
            rad_tech=self.techs[0],
            sedation_staff=self.nurses[0],
            recovery_bay=self.bays[0],
        )
        values.update(overrides)
        return pins_of(values)


def build_clinic() -> Clinic:
    # Transactional tests flush the tables, data migrations included.
    install_default_catalogue(ProcedureType)
    install_default_drugs(Drug)
    site = f.SiteFactory(name="Main", code="main")
    for weekday in range(5):
        f.OpeningHoursFactory(site=site, weekday=weekday, opens_at=dt.time(7), closes_at=dt.time(18))
    rooms = [f.RoomFactory(site=site, name=f"Fluoro {i}") for i in (1, 2)]
    rooms[0].capabilities = ["fluoroscopy", "sterile_field", "anesthesia"]
    rooms[0].save()
    c_arms = [
        f.EquipmentFactory(site=site, name="C-arm 1", room=rooms[0]),
        f.EquipmentFactory(site=site, name="C-arm 2", room=None),
    ]
    rf = f.EquipmentFactory(site=site, name="RF 1", kind="rf_generator", room=None)
    bays = [f.BayFactory(site=site, name=f"Bay {i}") for i in (1, 2, 3)]
    physicians = [
        f.StaffFactory(role="physician", first_name="Ana", last_name="Reyes"),
        f.StaffFactory(role="physician", first_name="Ben", last_name="Okafor"),
    ]
    for code in ("VP", "KP", "RFA"):
        f.CredentialFactory(staff=physicians[0], kind="privilege", procedure_code=code)
    f.CredentialFactory(staff=physicians[1], kind="privilege", procedure_code="ESI-IL")
    techs = [f.StaffFactory(role="rad_tech", first_name="Tia", last_name=f"Tech{i}") for i in (1, 2)]
    for tech in techs:
        f.CredentialFactory(
            staff=tech, kind="fluoroscopy", procedure_code="", jurisdiction="TX", expires_on=dt.date(2028, 1, 1)
        )
    nurses = [
        f.StaffFactory(role="nurse", first_name="Nia", last_name="Sedation", sedation_capable=True),
        f.StaffFactory(role="nurse", first_name="Ned", last_name="Recovery", sedation_capable=False),
    ]
    anesthesia = f.StaffFactory(role="anesthesia", first_name="Ada", last_name="Crna")
    rep = f.StaffFactory(role="device_rep", first_name="Rex", last_name="Rep")
    for member in [*physicians, *techs, *nurses, anesthesia, rep]:
        for weekday in range(5):
            f.ShiftFactory(staff=member, site=site, weekday=weekday)
    patients = [f.PatientFactory() for _ in range(20)]
    return Clinic(site, rooms, c_arms, rf, bays, physicians, techs, nurses, anesthesia, rep, patients)


@pytest.fixture
def frozen_now() -> Iterator[dt.datetime]:
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def clinic(db: None, frozen_now: dt.datetime) -> Clinic:
    return build_clinic()


def overlapping_active_legs() -> list[tuple[int, int]]:
    """Pairs of active legs holding one resource at once, found in Python so the check does
    not lean on the mechanism under test."""
    pairs = []
    legs = list(Allocation.objects.filter(is_active=True).order_by("starts_at"))
    by_resource: dict[tuple[str, int], list[Allocation]] = {}
    for leg in legs:
        by_resource.setdefault((leg.resource_column, leg.resource_id), []).append(leg)
    for held in by_resource.values():
        for i, a in enumerate(held):
            for b in held[i + 1 :]:
                if a.starts_at < b.ends_at and b.starts_at < a.ends_at:
                    pairs.append((a.pk, b.pk))
    return pairs
