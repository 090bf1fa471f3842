"""Gunicorn settings for every production-shaped start: bin/run, the Dockerfile, docker-compose
and the booking benchmark. Read from the environment so one file serves them all."""

from __future__ import annotations

import os
from typing import Any

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# Two cores: two processes with a few threads each. Threads suit this app: a request spends
# most of its time waiting on the database, and SQLite serialises writers anyway.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
# Connections wait in the kernel's queue while every thread is busy, instead of being reset.
backlog = int(os.environ.get("WEB_BACKLOG", "2048"))
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# Request bodies are small JSON; a header section this large is already hostile.
limit_request_line = 8190
limit_request_fields = 100
# The app writes one JSON line per request itself (with the request id and no query string,
# which can carry an MRN), so gunicorn's own access log stays off.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Heartbeat files in memory, not on a disk that can stall the arbiter.
_SHM = "/dev/shm"  # noqa: S108 (gunicorn only writes its heartbeat files there)
worker_tmp_dir = _SHM if os.path.isdir(_SHM) else None
preload_app = False
# One fixed control socket per user would make a second server on the same machine (tests, the
# benchmark) fight over it; nothing here uses it.
control_socket_disable = True


def child_exit(server: Any, worker: Any) -> None:
    # Metrics of a finished worker must not linger as live series (Prometheus multiprocess mode).
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
