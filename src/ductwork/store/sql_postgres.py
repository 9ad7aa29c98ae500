"""PostgreSQL-only statements of the SQL store (`ductwork.store.sql`): fewer round trips.

A run read the portable way is five round trips on PostgreSQL (BEGIN, the run
row, its node states, its events, COMMIT: REPEATABLE READ, so the three reads
agree). Here it is one statement: the node states and events come along as JSON
arrays (`json_agg` of the rows), and one statement sees one snapshot, so they
still agree with the run row. JSON renders timestamps as text in the session's
time zone; `rows_from_json` turns them back into UTC datetimes, as
`UTCDateTime` does for columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Select, bindparam, func, literal_column, select, type_coerce

from ductwork.store.sql_schema import UTCDateTime, node_states, run_events, workflow_runs

_R = workflow_runs.c


def _timestamp_columns(columns: Iterable[Any]) -> frozenset[str]:
    return frozenset(column.name for column in columns if isinstance(column.type, UTCDateTime))


_STATE_TIMESTAMPS = _timestamp_columns(node_states.c)
_EVENT_TIMESTAMPS = _timestamp_columns(run_events.c)


def _rows_json(table: Any) -> Any:
    """The table's rows of the outer run, as one JSON array ('[]' when none)."""
    rows = (
        select(func.coalesce(func.json_agg(table.table_valued()), literal_column("'[]'::json")))
        .where(table.c.execution_id == _R.execution_id)
        .scalar_subquery()
    )
    return type_coerce(rows, JSON)


def _select_run(with_events: bool) -> Select[Any]:
    columns: list[Any] = [*workflow_runs.c, _rows_json(node_states).label("_states")]
    if with_events:
        columns.append(_rows_json(run_events).label("_events"))
    return select(*columns).where(_R.execution_id == bindparam("eid"))


# Built once: SQLAlchemy's compiled cache then finds them by identity-free cache key.
_SELECT_RUN = {True: _select_run(True), False: _select_run(False)}


def select_run_with_children(with_events: bool) -> Select[Any]:
    """The run row (bind `eid`) with `_states` and, when asked, `_events` JSON arrays."""
    return _SELECT_RUN[with_events]


def _utc(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def rows_from_json(items: Any, timestamps: frozenset[str]) -> list[dict[str, Any]]:
    """Rows of a `json_agg` array as the column values a normal read would give."""
    rows: list[dict[str, Any]] = []
    for item in items or ():
        row = dict(item)
        for key in timestamps:
            if row.get(key) is not None:
                row[key] = _utc(row[key])
        rows.append(row)
    return rows


def split_run_row(
    row: Mapping[Any, Any],
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """(run row, node state rows, event rows in seq order) of `select_run_with_children`."""
    run = dict(row)
    states = rows_from_json(run.pop("_states"), _STATE_TIMESTAMPS)
    events = rows_from_json(run.pop("_events", None), _EVENT_TIMESTAMPS)
    events.sort(key=lambda event: event["seq"])
    return run, states, events
