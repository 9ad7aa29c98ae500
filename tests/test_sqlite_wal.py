"""The SQLite store checkpoints its write-ahead log on a thread, not inside commits
(src/ductwork/store/sqlite_wal.py): the commits on the event loop never sync the file."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from ductwork.models import Run, RunStatus, WorkflowDefinition
from ductwork.store.sql import SqlStore

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


async def test_commits_leave_checkpoints_to_the_thread_which_copies_the_log_back(
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
        # The thread copies the log back: a passive checkpoint from another connection
        # soon finds nothing left to copy.
        reader = sqlite3.connect(path)
        deadline = time.monotonic() + 30
        while True:
            _busy, frames, copied = reader.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            # Polled on the reader, which copies too: look at what the thread left.
            if frames == copied:
                break
            assert time.monotonic() < deadline, (frames, copied)
            await asyncio.sleep(0.05)
        reader.close()
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
        deadline = time.monotonic() + 30
        while path.stat().st_size <= size_before:
            assert time.monotonic() < deadline, "the WAL was never checkpointed"
            await asyncio.sleep(0.05)
    finally:
        await store.close()
