"""The database refuses overlapping active legs of one resource, whatever wrote them."""

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction

from scheduling.models import Booking, ProcedureType
from tests import factories as f

pytestmark = pytest.mark.django_db
COLUMNS = ("patient", "room", "equipment", "staff", "bay")
T = dt.datetime(2027, 1, 11, 15, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


@pytest.mark.postgres
def test_postgres_has_btree_gist_and_an_exclusion_constraint_per_resource_column():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'btree_gist'")
        assert cursor.fetchone() == (1,)
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'scheduling_allocation'::regclass AND contype = 'x' ORDER BY conname"
        )
        rows = dict(cursor.fetchall())
    assert sorted(rows) == sorted(f"scheduling_allocation_{c}_no_overlap" for c in COLUMNS)
    for column in COLUMNS:
        definition = rows[f"scheduling_allocation_{column}_no_overlap"]
        assert f"{column}_id WITH =" in definition
        assert "tstzrange(starts_at, ends_at, '[)'::text) WITH &&" in definition
        assert "is_active" in definition


@pytest.mark.sqlite
def test_sqlite_has_insert_and_update_triggers_per_resource_column():
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'scheduling_allocation'")
        names = {row[0] for row in cursor.fetchall()}
    assert names == {f"scheduling_allocation_{c}_no_overlap_{op}" for c in COLUMNS for op in ("insert", "update")}


def make_booking() -> Booking:
    site = f.SiteFactory()
    return Booking.objects.create(
        patient=f.PatientFactory(),
        procedure_type=ProcedureType.objects.get(code="VP"),
        site=site,
        sedation="local",
        starts_at=T,
        ends_at=T + 4 * HOUR,
        arrival_at=T - HOUR,
    )


def raw_insert(
    booking: Booking,
    column: str,
    resource_id: int,
    start: dt.datetime,
    end: dt.datetime,
    *,
    active: bool = True,
    role: str = "room",
) -> None:
    ops = connection.ops
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO scheduling_allocation (booking_id, role, {column}_id, starts_at, ends_at, is_active) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [
                booking.pk,
                role,
                resource_id,
                ops.adapt_datetimefield_value(start),
                ops.adapt_datetimefield_value(end),
                active,
            ],
        )


@pytest.fixture
def resources():
    site = f.SiteFactory()
    return {
        "patient": ("patient", f.PatientFactory().pk),
        "room": ("room", f.RoomFactory(site=site).pk),
        "equipment": ("c_arm", f.EquipmentFactory(site=site).pk),
        "staff": ("physician", f.StaffFactory().pk),
        "bay": ("recovery_bay", f.BayFactory(site=site).pk),
    }


@pytest.mark.parametrize("column", COLUMNS)
def test_raw_overlapping_insert_is_rejected(column, resources):
    booking = make_booking()
    role, resource_id = resources[column]
    raw_insert(booking, column, resource_id, T, T + HOUR, role=role)
    with pytest.raises(IntegrityError, match="no_overlap"), transaction.atomic():
        raw_insert(booking, column, resource_id, T + dt.timedelta(minutes=59), T + 2 * HOUR, role=role)
    assert booking.legs.count() == 1


@pytest.mark.parametrize("column", COLUMNS)
def test_back_to_back_and_other_resources_are_accepted(column, resources):
    booking = make_booking()
    role, resource_id = resources[column]
    raw_insert(booking, column, resource_id, T, T + HOUR, role=role)
    raw_insert(booking, column, resource_id, T + HOUR, T + 2 * HOUR, role=role)
    raw_insert(booking, column, resource_id, T - HOUR, T, role=role)
    assert booking.legs.count() == 3


@pytest.mark.parametrize("column", COLUMNS)
def test_inactive_legs_block_nothing(column, resources):
    booking = make_booking()
    role, resource_id = resources[column]
    raw_insert(booking, column, resource_id, T, T + HOUR, role=role, active=False)
    raw_insert(booking, column, resource_id, T, T + HOUR, role=role)
    assert booking.legs.filter(is_active=True).count() == 1


def test_reactivating_a_leg_into_a_clash_is_rejected(resources):
    booking = make_booking()
    role, resource_id = resources["room"]
    raw_insert(booking, "room", resource_id, T, T + HOUR, role=role, active=False)
    raw_insert(booking, "room", resource_id, T, T + HOUR, role=role)
    with pytest.raises(IntegrityError, match="no_overlap"), transaction.atomic():
        booking.legs.filter(is_active=False).update(is_active=True)
    assert booking.legs.filter(is_active=True).count() == 1
