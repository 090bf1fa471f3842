"""SQLite writers queue for the write lock (core.dbbackends.sqlite3): a second writer waits while
the first holds it, goes in as soon as it commits, and gives up with "database is locked" at the
busy timeout, as SQLite itself would."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError, connections, transaction

pytestmark = [pytest.mark.sqlite, pytest.mark.django_db(transaction=True)]


def _second_writer(result: dict[str, object], *, timeout: float | None = None) -> None:
    from django.db import connection

    if timeout is not None:
        connection.settings_dict["OPTIONS"] = {**connection.settings_dict["OPTIONS"], "timeout": timeout}
        connection.close()
    started = time.monotonic()
    try:
        with transaction.atomic():
            result["entered_after"] = time.monotonic() - started
    except OperationalError as exc:
        result["error"] = str(exc)
        result["gave_up_after"] = time.monotonic() - started
    finally:
        connections.close_all()


def test_a_second_writer_waits_for_the_first_and_enters_when_it_commits():
    result: dict[str, object] = {}
    with transaction.atomic():
        worker = threading.Thread(target=_second_writer, args=(result,))
        worker.start()
        time.sleep(0.5)
        assert result == {}, "the second writer got in while the first held the lock"
    worker.join(timeout=10)
    assert 0.4 < float(result["entered_after"]) < 2  # type: ignore[arg-type]


def test_a_writer_gives_up_at_the_busy_timeout():
    result: dict[str, object] = {}
    with transaction.atomic():
        worker = threading.Thread(target=_second_writer, args=(result,), kwargs={"timeout": 0.5})
        worker.start()
        worker.join(timeout=10)
    assert result["error"] == "database is locked"
    assert 0.4 < float(result["gave_up_after"]) < 2  # type: ignore[arg-type]


def _queue_is_held(path: str) -> bool:
    import fcntl
    import os

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def test_the_queue_is_held_exactly_for_a_write_transaction():
    from django.db import connection

    path = f"{connection.settings_dict['NAME']}-writers"
    assert not _queue_is_held(path)
    with transaction.atomic():
        assert _queue_is_held(path)
        with transaction.atomic():  # a savepoint keeps it
            assert _queue_is_held(path)
    assert not _queue_is_held(path)
    held_inside: list[bool] = []

    def failing_write() -> None:
        with transaction.atomic():
            held_inside.append(_queue_is_held(path))
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        failing_write()
    assert held_inside == [True]
    assert not _queue_is_held(path)
