"""SQLite whose writers queue for the write lock instead of polling for it.

SQLite lets one writer in at a time; the others retry from its busy handler, which sleeps
longer the longer a writer has waited (up to 100 ms a try). Under a burst, newcomers retrying
every millisecond keep overtaking the writers that waited longest, and the slowest bookings
wait seconds. Here a write transaction first takes an exclusive lock on a file next to the
database, shared by every process that opens it, retrying every millisecond for as long as the
busy timeout allows: the waiters are treated alike and the lock is passed on as soon as it is
released. SQLite's own lock still decides; this only orders who asks for it.
"""

from __future__ import annotations

import fcntl
import os
import time
from typing import Any

from django.db import OperationalError
from django.db.backends.sqlite3 import base

RETRY_SECONDS = 0.001


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queue_fd: int | None = None
        self._queued = False

    def _queue_path(self) -> str | None:
        name = str(self.settings_dict["NAME"])
        if not name or name == ":memory:" or name.startswith("file:"):
            return None
        return f"{name}-writers"

    def _enter_queue(self) -> None:
        path = self._queue_path()
        if path is None or self._queued:
            return
        if self._queue_fd is None:
            try:
                self._queue_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise OperationalError(f"cannot open the writers' lock file: {exc.strerror}") from exc
        timeout = float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self._queue_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise OperationalError("database is locked") from None
                time.sleep(RETRY_SECONDS)
        self._queued = True

    def _leave_queue(self) -> None:
        if self._queued and self._queue_fd is not None:
            fcntl.flock(self._queue_fd, fcntl.LOCK_UN)
        self._queued = False

    def _start_transaction_under_autocommit(self) -> None:
        if getattr(self, "transaction_mode", None) in {"IMMEDIATE", "EXCLUSIVE"}:
            self._enter_queue()
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]
        except BaseException:
            self._leave_queue()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()  # type: ignore[misc]
        finally:
            self._leave_queue()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]
        finally:
            self._leave_queue()

    def close(self) -> None:
        self._leave_queue()
        if self._queue_fd is not None:
            os.close(self._queue_fd)
            self._queue_fd = None
        super().close()
