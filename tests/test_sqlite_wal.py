"""The SQLite store checkpoints its write-ahead log on a thread, not inside commits
(src/ductwork/store/sqlite_wal.py): the commits on the event loop never sync the file."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ductwork.models import Run, RunStatus, WorkflowDefinition
from ductwork.store.sql import SqlStore
from tests.support.polling import eventually

DEFINITION = WorkflowDefinition.model_validate(
    {"name": "w", "nodes": [{"id": "a", "type": "transformer", "config": {}}], "edges": []}
)


def _run(execution_id: str) -> Run:
    return Run(
        execution_id=execution_id,
        workflow_id="w",
        workflow_version=1,
        status=RunStatus.QUEUED,
        definition=DEFINITION,
        variables={"padding": "x" * 2000},
        created_at=datetime.now(UTC),
    )


def _checkpointer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ductwork-sqlite-checkpoint"]


async def test_commits_leave_checkpoints_to_a_thread_that_stops_with_the_store(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.sqlite"
    store = SqlStore(f"sqlite:///{path}")
    await store.start()
    try:
        db = store._backend._db  # type: ignore[attr-defined]
        # The store's own commits never run a checkpoint (it would sync on the loop).
        assert db.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
        assert len(_checkpointer_threads()) == 1
        for i in range(300):
            await store.create_run(_run(f"r{i}"))
    finally:
        await store.close()
    assert _checkpointer_threads() == []
    # Everything committed is in the file for a fresh connection.
    check = sqlite3.connect(path)
    assert check.execute("SELECT count(*) FROM workflow_runs").fetchone() == (300,)
    check.close()


async def test_the_thread_checkpoints_without_help(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = SqlStore(f"sqlite:///{path}")
    await store.start()
    try:
        for i in range(50):
            await store.create_run(_run(f"r{i}"))
        # The database file grows as the thread copies the log's pages into it; nothing
        # else here checkpoints (automatic checkpoints are off, no other connection).
        size_before = path.stat().st_size
        await eventually(
            lambda: path.stat().st_size > size_before, what="a checkpoint by the thread"
        )
    finally:
        await store.close()


def _synchronous(store: SqlStore) -> int:
    db = store._backend._db  # type: ignore[attr-defined]
    return int(db.execute("PRAGMA synchronous").fetchone()[0])


@pytest.mark.parametrize(
    ("query", "level"), [("", 1), ("?synchronous=off", 0), ("?synchronous=FULL", 2)]
)
async def test_a_sqlite_url_says_how_commits_sync(tmp_path: Path, query: str, level: int) -> None:
    # NORMAL unless the URL asks (`ductwork run` asks for OFF on its scratch file).
    store = SqlStore(f"sqlite:///{tmp_path / 'db.sqlite'}{query}")
    await store.start()
    try:
        assert _synchronous(store) == level
        assert store._backend._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)  # type: ignore[attr-defined]
        await store.create_run(_run("r1"))
        # The option is the store's, not the driver's (nor part of the file's name).
        assert store._backend._url.query == {}  # type: ignore[attr-defined]
    finally:
        await store.close()


def test_a_sqlite_url_with_an_unknown_synchronous_level_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        SqlStore(f"sqlite:///{tmp_path / 'db.sqlite'}?synchronous=0;DROP")
