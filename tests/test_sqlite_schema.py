"""A new SQLite database gets its tables from frozen SQL text (store/sqlite_ddl.py), not
from SQLAlchemy's DDL compiler (~8-10 ms of every cold `ductwork run`): the text must be
exactly what `metadata.create_all` would have made."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine

from ductwork.store import sqlite_ddl
from ductwork.store.sql import SCHEMA_VERSION, SqlStore
from ductwork.store.sql_schema import metadata


def test_the_frozen_schema_is_the_tables_of_sql_schema() -> None:
    assert sqlite_ddl.render() == sqlite_ddl.SQLITE_SCHEMA, (
        "the tables in sql_schema changed: regenerate SQLITE_SCHEMA with "
        "`PYTHONPATH=src python -m ductwork.store.sqlite_ddl`"
    )


def _schema(path: Path) -> list[tuple[str, str, str, str]]:
    """What the database holds: every table and index, with its SQL (blanks collapsed)."""
    db = sqlite3.connect(path)
    try:
        rows = db.execute(
            "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master ORDER BY name"
        ).fetchall()
        return [(t, n, tbl, re.sub(r"\s+", " ", sql).replace("( ", "(")) for t, n, tbl, sql in rows]
    finally:
        db.close()


async def test_a_new_database_gets_what_create_all_makes_without_compiling_ddl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = tmp_path / "reference.db"
    engine = create_engine(f"sqlite:///{reference}")
    with engine.begin() as connection:
        metadata.create_all(connection)
    engine.dispose()

    def compiled(*_: object, **__: object) -> None:
        raise AssertionError("a new SQLite database compiled its DDL")

    monkeypatch.setattr(MetaData, "create_all", compiled)
    path = tmp_path / "new.db"
    store = SqlStore(f"sqlite:///{path}")
    await store.start()
    await store.close()

    version = sqlite3.connect(path).execute("SELECT id, version FROM schema_version").fetchall()
    assert version == [(1, SCHEMA_VERSION)]
    assert len(_schema(reference)) > 34  # tables, indexes and SQLite's own autoindexes
    assert _schema(path) == _schema(reference)


async def test_a_database_with_tables_is_migrated_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not empty: the text is not for it (create_all checks what exists first).
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE someone_elses (id INTEGER PRIMARY KEY)")
    db.commit()
    db.close()
    used: list[bool] = []
    monkeypatch.setattr(sqlite_ddl, "statements", lambda: used.append(True) or [])
    store = SqlStore(f"sqlite:///{path}")
    await store.start()
    await store.close()
    assert used == []
    names = {row[1] for row in _schema(path)}
    assert {"someone_elses", "workflow_runs", "schema_version"} <= names
