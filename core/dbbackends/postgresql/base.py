"""PostgreSQL with a client-side deadline on each round trip during web requests
(see core.dbtimeout); otherwise Django's own backend."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.backends.postgresql import base

from core.dbtimeout import current_limit, guarded


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.execute_wrappers.append(self._deadline_wrapper)

    def _socket(self) -> int | None:
        raw = self.connection
        if raw is None or raw.closed:
            return None
        return int(raw.pgconn.socket)

    def _deadline_wrapper(self, execute: Any, sql: Any, params: Any, many: bool, context: Any) -> Any:
        return guarded(self._socket, lambda: execute(sql, params, many, context))

    def _commit(self) -> None:
        guarded(self._socket, super()._commit)  # type: ignore[misc]

    def _rollback(self) -> None:
        guarded(self._socket, super()._rollback)  # type: ignore[misc]

    def is_usable(self) -> bool:
        # The health check at the start of a request gets a short deadline of its own: a
        # connection that cannot answer SELECT 1 quickly is replaced, not waited on.
        if current_limit():
            return bool(guarded(self._socket, super().is_usable, seconds=settings.DB_HEALTH_CHECK_SECONDS))
        return bool(super().is_usable())
