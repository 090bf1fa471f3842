"""Writing a row and the rows that hang on it in as few round trips as the database allows,
and reading one row by exact values without the query compiler.

The booking path writes one booking, its legs, its audit record and its reminders: on
PostgreSQL that is one statement (data-modifying CTEs, each table's rows passed as one JSON
parameter and read into its row type with ``jsonb_populate_recordset``, so the text is short
and the same for every booking of a shape), elsewhere one INSERT per table. Values go through
each model field's own preparation, so the columns and their conversions are the models', not
copies; the caller's instances get their primary keys.

Not a general ORM: no signals, no ``save()`` overrides, no ``full_clean``. For rows whose rules
a service has already checked.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from functools import cache
from typing import Any

from django.core.exceptions import MultipleObjectsReturned, ObjectDoesNotExist
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.expressions import Col
from django.db.models.lookups import Exact
from django.db.models.sql.where import AND


@dataclass(frozen=True)
class FromParent:
    """A child's value made from its parent's new primary key: the key itself (a foreign key)
    or ``template`` with ``{}`` replaced by it (text, e.g. an audit record's object id)."""

    template: str | None = None

    def value(self, key: Any) -> Any:
        return key if self.template is None else self.template.format(key)


PARENT_KEY = FromParent()


@dataclass
class Children:
    model: type[models.Model]
    objs: Sequence[models.Model]
    # attname -> FromParent for the values that come from the parent's key
    from_parent: dict[str, FromParent]


@cache
def _fields(model: type[models.Model]) -> tuple[models.Field, ...]:
    return tuple(f for f in model._meta.concrete_fields if not f.primary_key)


def _values(obj: models.Model, fields: Sequence[models.Field], conn: BaseDatabaseWrapper) -> list[Any]:
    return [f.get_db_prep_save(f.pre_save(obj, True), conn) for f in fields]


def _insert_sql(model: type[models.Model], fields: Sequence[models.Field], rows: int, conn: BaseDatabaseWrapper) -> str:
    quote = conn.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    one = "(" + ", ".join("%s" for _ in fields) + ")"
    pk = quote(model._meta.pk.column)
    return f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES {', '.join([one] * rows)} RETURNING {pk}"


def insert_tree(parent: models.Model, children: Sequence[Children]) -> None:
    """Insert ``parent`` and every child, setting each one's primary key (and the children's
    values taken from the parent's key). One statement on PostgreSQL, one per table otherwise."""
    conn = connections[DEFAULT_DB_ALIAS]
    groups = [group for group in children if group.objs]
    if conn.vendor == "postgresql":
        _insert_tree_postgresql(parent, groups, conn)
    else:
        _insert_tree_each(parent, groups, conn)
    for obj in [parent, *(obj for group in groups for obj in group.objs)]:
        obj._state.adding = False
        obj._state.db = conn.alias


def _insert_tree_each(parent: models.Model, groups: list[Children], conn: BaseDatabaseWrapper) -> None:
    fields = _fields(type(parent))
    with conn.cursor() as cursor:
        cursor.execute(_insert_sql(type(parent), fields, 1, conn), _values(parent, fields, conn))
        parent.pk = cursor.fetchone()[0]
        for group in groups:
            for obj in group.objs:
                for attname, source in group.from_parent.items():
                    setattr(obj, attname, source.value(parent.pk))
            child_fields = _fields(group.model)
            params = [value for obj in group.objs for value in _values(obj, child_fields, conn)]
            cursor.execute(_insert_sql(group.model, child_fields, len(group.objs), conn), params)
            for obj, (pk,) in zip(group.objs, cursor.fetchall(), strict=True):
                obj.pk = pk


class _RowEncoder(json.JSONEncoder):
    """Values as PostgreSQL reads them back into the row type: times with their full
    precision and offset, decimals exact."""

    def default(self, value: Any) -> Any:
        if isinstance(value, datetime | date | time):
            return value.isoformat()
        if isinstance(value, Decimal | uuid.UUID):
            return str(value)
        return super().default(value)


def _record(obj: models.Model, fields: Sequence[models.Field]) -> dict[str, Any]:
    return {f.column: f.pre_save(obj, True) for f in fields}


@cache
def _tree_sql(
    parent_model: type[models.Model], shape: tuple[tuple[type[models.Model], tuple[tuple[str, str | None], ...]], ...]
) -> str:
    """The statement for a parent and child groups of the given models and parent-taken
    values: the same short text, with one parameter per table, for every write of a shape
    (so the driver and the server keep its parsing and its plan)."""
    conn = connections[DEFAULT_DB_ALIAS]
    quote = conn.ops.quote_name
    pk = quote(parent_model._meta.pk.column)
    table = quote(parent_model._meta.db_table)
    columns = ", ".join(quote(f.column) for f in _fields(parent_model))
    sql = [
        f"WITH p AS (INSERT INTO {table} ({columns}) SELECT {columns} "
        f"FROM jsonb_populate_record(NULL::{table}, %s::jsonb) RETURNING {pk})"
    ]
    selects = [f"SELECT 0, p.{pk} FROM p"]
    for index, (model, taken) in enumerate(shape, start=1):
        from_parent = dict(taken)
        fields = _fields(model)
        select = []
        for f in fields:
            if f.attname not in from_parent:
                select.append(f"r.{quote(f.column)}")
            elif from_parent[f.attname] is None:
                select.append(f"p.{pk}")
            else:
                select.append(f"(%s || CAST(p.{pk} AS TEXT) || %s)")
        child = quote(model._meta.db_table)
        child_pk = quote(model._meta.pk.column)
        child_columns = ", ".join(quote(f.column) for f in fields)
        sql.append(
            f", c{index} AS (INSERT INTO {child} ({child_columns}) SELECT {', '.join(select)} "
            f"FROM p, jsonb_populate_recordset(NULL::{child}, %s::jsonb) WITH ORDINALITY AS r "
            f"ORDER BY r.ordinality RETURNING {child_pk})"
        )
        selects.append(f"SELECT {index}, {child_pk} FROM c{index}")
    return "".join(sql) + " " + " UNION ALL ".join(selects)


def _insert_tree_postgresql(parent: models.Model, groups: list[Children], conn: BaseDatabaseWrapper) -> None:
    parent_model = type(parent)
    shape = tuple(
        (group.model, tuple(sorted((name, source.template) for name, source in group.from_parent.items())))
        for group in groups
    )
    params: list[Any] = [json.dumps(_record(parent, _fields(parent_model)), cls=_RowEncoder)]
    for group in groups:
        fields = _fields(group.model)
        # The template pieces come first in the text (the SELECT list), then the rows.
        for f in fields:
            source = group.from_parent.get(f.attname)
            if source is not None and source.template is not None:
                head, _, tail = source.template.partition("{}")
                params += [head, tail]
        own = [f for f in fields if f.attname not in group.from_parent]
        params.append(json.dumps([_record(obj, own) for obj in group.objs], cls=_RowEncoder))
    with conn.cursor() as cursor:
        cursor.execute(_tree_sql(parent_model, shape), params)
        rows_back = cursor.fetchall()
    keys: dict[int, list[int]] = {}
    for index, key in rows_back:
        keys.setdefault(index, []).append(key)
    parent.pk = keys[0][0]
    for index, group in enumerate(groups, start=1):
        # A sequence hands out keys ascending in the order rows are inserted, which the ORDER BY
        # fixes; sorted, they pair with the objects.
        for obj, key in zip(group.objs, sorted(keys[index]), strict=True):
            obj.pk = key
            for attname, source in group.from_parent.items():
                setattr(obj, attname, source.value(parent.pk))


# --- reading one row by exact values --------------------------------------------------------


def simple_filters(queryset: models.QuerySet[Any]) -> dict[models.Field, Any] | None:
    """The filters of ``queryset`` as {field: value} when it is nothing but exact matches of
    its own columns on constants (``Model.objects.all()``, ``.filter(is_active=True)``), else
    None (joins, annotations, ``none()``, ordering by relations, anything else)."""
    query = queryset.query
    if (
        query.select_related
        or query.annotations
        or query.extra
        or query.distinct
        or query.is_sliced
        or query.combinator
        or not query.default_cols
        or query.deferred_loading[0]
        or query.where.negated
        or query.where.connector != AND
        or queryset._result_cache is not None
    ):
        return None
    filters: dict[models.Field, Any] = {}
    for child in query.where.children:
        if not (
            type(child) is Exact
            and isinstance(child.lhs, Col)
            and child.lhs.alias == query.base_table
            and not hasattr(child.rhs, "resolve_expression")
        ):
            return None
        filters[child.lhs.target] = child.rhs
    return filters


@cache
def _select_sql(model: type[models.Model], columns: tuple[str, ...], vendor: str) -> tuple[str, tuple[Any, ...]]:
    conn = connections[DEFAULT_DB_ALIAS]
    quote = conn.ops.quote_name
    fields = model._meta.concrete_fields
    where = " AND ".join(f"{quote(column)} = %s" for column in columns)
    select = ", ".join(quote(f.column) for f in fields)
    sql = f"SELECT {select} FROM {quote(model._meta.db_table)} WHERE {where} LIMIT 2"
    # The backend's converters, then the field's: what the ORM's compiler applies.
    cols = [f.get_col(model._meta.db_table) for f in fields]
    converters = tuple((col, tuple(conn.ops.get_db_converters(col) + col.get_db_converters(conn))) for col in cols)
    return sql, converters


def fetch_one(queryset: models.QuerySet[Any], field_name: str, value: Any) -> models.Model | None:
    """``queryset.get(<field_name>=value)`` without the query compiler when the queryset is a
    plain table with exact filters (``simple_filters``): one short statement whose text is the
    same every time, the row converted by each field's own converters. None when no row
    matches; MultipleObjectsReturned when more than one does. Any other queryset is asked as
    usual."""
    model: type[models.Model] = queryset.model
    filters = simple_filters(queryset)
    if filters is None or queryset.db != DEFAULT_DB_ALIAS:
        try:
            return queryset.get(**{field_name: value})
        except ObjectDoesNotExist:
            return None
    conn = connections[DEFAULT_DB_ALIAS]
    target = model._meta.pk if field_name == "pk" else model._meta.get_field(field_name)
    assert isinstance(target, models.Field)
    wanted = {**filters, target: target.get_prep_value(value)}
    columns = tuple(field.column for field in wanted)
    sql, converters = _select_sql(model, columns, conn.vendor)
    params = [field.get_db_prep_value(prepared, conn, prepared=True) for field, prepared in wanted.items()]
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not rows:
        return None
    if len(rows) > 1:
        raise MultipleObjectsReturned(f"More than one {model._meta.verbose_name} matches.")
    fields = model._meta.concrete_fields
    values = []
    for raw, (col, col_converters) in zip(rows[0], converters, strict=True):
        for convert in col_converters:
            raw = convert(raw, col, conn)
        values.append(raw)
    return model.from_db(conn.alias, [f.attname for f in fields], values)
