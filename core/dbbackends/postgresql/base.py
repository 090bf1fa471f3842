"""PostgreSQL with a client-side deadline on each round trip during web requests
(see core.dbtimeout), and whole numbers sent as bigint; otherwise Django's own backend.

With server-side binding psycopg types each Python int by its size (smallint for 5). Ids are
bigint, and a GiST index over a bigint column (the no-overlap constraints, ``btree_gist``) only
answers ``bigint = bigint``: ``room_id = $1::smallint`` makes the planner scan every leg of the
window instead of the room's. Sent as bigint, every id comparison can use its index; btree
indexes over smaller integer columns compare across integer types as before."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.backends.postgresql import base
from psycopg.types.numeric import Int8BinaryDumper, Int8Dumper

from core.dbtimeout import current_limit, guarded


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.execute_wrappers.append(self._deadline_wrapper)

    def get_new_connection(self, conn_params: Any) -> Any:
        connection = super().get_new_connection(conn_params)
        connection.adapters.register_dumper(int, Int8Dumper)
        connection.adapters.register_dumper(int, Int8BinaryDumper)
        return connection

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
