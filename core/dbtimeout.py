"""A client-side deadline on every database round trip made while serving a web request.

A database that stops answering (a frozen proxy, a half-dead network path) leaves the socket
open and silent: server-side ``statement_timeout`` never fires because the statement never
arrives, and TCP keepalives are answered by whatever still holds the other end. Without a
deadline the request waits until gunicorn kills the worker, and the client gets no answer at
all. One watchdog thread per process shuts the socket of any call past its deadline; the
driver then raises OperationalError, which the API answers as a 503 problem.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

logger = logging.getLogger(__name__)

_state = threading.local()
_lock = threading.Lock()
# thread id -> (deadline on the monotonic clock, socket file descriptor)
_calls: dict[int, tuple[float, int]] = {}
_watchdog: threading.Thread | None = None
_watchdog_pid = 0
TICK_SECONDS = 0.1


def _watch() -> None:
    while True:
        time.sleep(TICK_SECONDS)
        now = time.monotonic()
        with _lock:
            # Shut while holding the lock: the caller deregisters under it before it can close
            # its connection, so the descriptor cannot have been reused for another socket.
            for ident, (deadline, fd) in list(_calls.items()):
                if deadline <= now:
                    _calls.pop(ident, None)
                    _shut(fd)


def _shut(fd: int) -> None:
    # shutdown() acts on the socket itself, so a duplicate descriptor reaches the one the
    # driver is blocked on, without closing a descriptor the driver still owns.
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
        logger.warning("database call passed its deadline; connection shut")
    except OSError:
        pass


def _after_fork_in_child() -> None:
    # A lock held by another thread at fork time would never be released in the child.
    global _lock, _watchdog
    _lock = threading.Lock()
    _calls.clear()
    _watchdog = None


os.register_at_fork(after_in_child=_after_fork_in_child)


def _ensure_watchdog() -> None:
    global _watchdog, _watchdog_pid
    # A forked worker inherits the variable but not the thread.
    if _watchdog is not None and _watchdog_pid == os.getpid() and _watchdog.is_alive():
        return
    with _lock:
        if _watchdog is None or _watchdog_pid != os.getpid() or not _watchdog.is_alive():
            _watchdog = threading.Thread(target=_watch, name="db-deadline", daemon=True)
            _watchdog.start()
            _watchdog_pid = os.getpid()


@contextlib.contextmanager
def request_deadlines(seconds: float) -> Iterator[None]:
    """Within this block, every round trip of this thread's connections has ``seconds``."""
    previous = getattr(_state, "seconds", None)
    _state.seconds = seconds if seconds > 0 else None
    try:
        yield
    finally:
        _state.seconds = previous


def current_limit() -> float | None:
    return getattr(_state, "seconds", None)


def guarded(fd_of: Callable[[], int | None], call: Callable[[], Any], *, seconds: float | None = None) -> Any:
    """Run ``call`` under the thread's deadline (or ``seconds``), if one is set."""
    limit = seconds if seconds is not None else current_limit()
    if not limit:
        return call()
    fd = fd_of()
    if fd is None or fd < 0:
        return call()
    _ensure_watchdog()
    ident = threading.get_ident()
    with _lock:
        _calls[ident] = (time.monotonic() + limit, fd)
    try:
        return call()
    finally:
        with _lock:
            _calls.pop(ident, None)
