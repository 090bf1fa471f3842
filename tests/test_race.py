"""Raced bookings on real connections: one winner per window, losers get the typed conflict."""

import datetime as dt
import threading
from collections import Counter

import pytest
from django.db import connection

from core.errors import SlotUnavailable
from scheduling.models import Allocation, Booking, ProcedureType
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_create
from tests.conftest import MONDAY, build_clinic, local, overlapping_active_legs

THREADS = 16
VP_LEGS = 7  # patient, room, C-arm, physician, tech, sedation nurse, recovery bay


def race(targets: list[tuple[object, dt.datetime, object]]) -> tuple[list[int], list[BaseException]]:
    """Run one booking per target in its own thread and connection, all released at once."""
    barrier = threading.Barrier(len(targets))
    won: list[int] = []
    lost: list[BaseException] = []
    lock = threading.Lock()
    vp = ProcedureType.objects.get(code="VP")

    def attempt(patient, start, resources):
        try:
            barrier.wait(timeout=30)
            booking = booking_create(
                request=CaseRequest(procedure_type=vp, patient=patient, pins=resources), actor=None, starts_at=start
            )
            with lock:
                won.append(booking.pk)
        except BaseException as exc:
            with lock:
                lost.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return won, lost


@pytest.mark.django_db(transaction=True)
def test_sixteen_threads_racing_for_one_set_of_resources(frozen_now):
    clinic = build_clinic()
    # Every start lies within 75 minutes of the others, so every pair of cases clashes on the
    # room (80-minute leg) and on the physician, tech, nurse and C-arm.
    targets = [
        (clinic.patients[i], local(MONDAY, 9) + dt.timedelta(minutes=5 * i), clinic.resources()) for i in range(THREADS)
    ]
    won, lost = race(targets)

    assert len(won) == 1
    assert len(lost) == THREADS - 1
    assert all(isinstance(exc, SlotUnavailable) for exc in lost), [repr(e) for e in lost]
    assert all(
        exc.conflicts and exc.conflicts[0]["resource"]["kind"] for exc in lost if isinstance(exc, SlotUnavailable)
    )
    assert overlapping_active_legs() == []
    assert Booking.objects.count() == 1
    assert Allocation.objects.filter(booking_id=won[0], is_active=True).count() == VP_LEGS


@pytest.mark.django_db(transaction=True)
def test_raced_bookings_on_partly_shared_resources_keep_every_booking_whole(frozen_now):
    clinic = build_clinic()
    # Two rooms, two C-arms, two techs, one physician: windows an hour apart overlap on the
    # physician only when closer than 40 minutes, so several win and the rest lose.
    targets = []
    for i in range(THREADS):
        resources = clinic.resources(
            room=clinic.rooms[i % 2],
            c_arm=clinic.c_arms[i % 2],
            rad_tech=clinic.techs[i % 2],
            sedation_staff=clinic.nurses[0],
            recovery_bay=clinic.bays[i % 3],
        )
        targets.append((clinic.patients[i], local(MONDAY, 8, 0) + dt.timedelta(minutes=20 * i), resources))
    won, lost = race(targets)

    assert won
    assert lost
    assert all(isinstance(exc, SlotUnavailable) for exc in lost), [repr(e) for e in lost]
    assert overlapping_active_legs() == []
    legs_per_booking = Counter(Allocation.objects.filter(is_active=True).values_list("booking_id", flat=True))
    assert set(legs_per_booking) == set(won)
    assert set(legs_per_booking.values()) == {VP_LEGS}
    assert Booking.objects.count() == len(won)
