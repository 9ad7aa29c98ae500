"""Real store services for tests: SQLite files, PostgreSQL databases, a SecantusDB server.

A test module loads the fixtures with `pytest_plugins = ["tests.support.stores"]`
(tests/conftest.py does, for every module) and asks for `store`, a started store
of each kind in turn, or for `store_url_factory`, a function from a store kind to
a fresh URL (`store_kind` parametrises a test over all of them; a module overrides
`store_kind` to keep to fewer):

- "sqlite": a new file under the test's tmp_path;
- "postgresql": a new database on the local service (env
  `DUCTWORK_TEST_POSTGRES_URL`, default `postgresql://postgres@127.0.0.1:5432/test`),
  dropped when the test ends;
- "mongodb": a new database on a SecantusDB server (a MongoDB wire-protocol
  server) this session starts on a free port;
- "mongodb-real": a new database on the mongod at env `DUCTWORK_TEST_MONGODB_URL`
  (skipped when unset), dropped when the test ends.

A service that cannot be reached fails the test when env CI=true and skips it
otherwise. SecantusDB is GPL: it runs as a separate process, only in tests.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]
import pytest
from pymongo import MongoClient
from sqlalchemy.engine import make_url

from ductwork.store.base import Store
from ductwork.store.factory import create_store

STORE_KINDS = ("sqlite", "postgresql", "mongodb", "mongodb-real")
"""Every kind `store_url_factory` knows, for parametrising a contract suite."""

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"

_LISTENING = re.compile(r"listening on (\S+):(\d+)")
_names = itertools.count()


def service_unavailable(reason: str) -> NoReturn:
    """Fail on CI (where every service must be there), skip elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def unique_name(prefix: str) -> str:
    """A database name no other test or session uses."""
    return f"{prefix}_{os.getpid()}_{next(_names)}_{uuid.uuid4().hex[:8]}"


def _run_coroutine(coroutine: Coroutine[Any, Any, Any]) -> Any:
    # On a thread of its own, so it never meets the event loop of a running test.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def postgres_execute(url: str, sql: str) -> None:
    """Run one statement on PostgreSQL (outside any transaction, as CREATE DATABASE needs)."""

    async def run() -> None:
        connection = await asyncpg.connect(url, timeout=5)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    _run_coroutine(run())


# SecantusDB -------------------------------------------------------------------------


@dataclass
class SecantusServer:
    """A SecantusDB process listening on 127.0.0.1."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"mongodb://{self.host}:{self.port}/"

    def url_for(self, database: str) -> str:
        """A URL whose default database is `database`."""
        return f"mongodb://{self.host}:{self.port}/{database}"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server at once.

        SIGKILL rather than SIGTERM: its graceful shutdown waits seconds for idle
        connection threads, and its data is throwaway, kept in our temp directory.
        """
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=timeout)


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start_secantus(directory: Path, *, timeout: float = 30.0) -> SecantusServer:
    """Start `python -m secantus` (SecantusDB's `secantusd-py`) on a free port.

    Its data lives under `directory`. The server binds port 0 and logs the port
    it got; this waits, up to
    `timeout` seconds, for that line and then for the port to accept connections.
    Raises RuntimeError when the server exits or the deadline passes.
    """
    directory.mkdir(parents=True, exist_ok=True)
    # An explicit, empty config file turns off discovery of a stray secantusd.toml.
    config = directory / "secantusd.toml"
    config.write_text("")
    log_path = directory / "secantus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "secantus",
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--storage-path",
                str(directory / "data"),
                "--log-level",
                "INFO",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd=directory,
        )
    deadline = time.monotonic() + timeout
    try:
        host, port = _wait_for_port_line(process, log_path, deadline)
        _wait_for_connection(process, host, port, log_path, deadline)
    except BaseException:
        SecantusServer(process, "127.0.0.1", 0, log_path).stop()
        raise
    return SecantusServer(process, host, port, log_path)


def _wait_for_port_line(
    process: subprocess.Popen[bytes], log_path: Path, deadline: float
) -> tuple[str, int]:
    while True:
        match = _LISTENING.search(log_path.read_text(errors="replace"))
        if match:
            return match.group(1), int(match.group(2))
        _wait_a_little(process, log_path, deadline)


def _wait_for_connection(
    process: subprocess.Popen[bytes], host: str, port: int, log_path: Path, deadline: float
) -> None:
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            _wait_a_little(process, log_path, deadline)


def _wait_a_little(process: subprocess.Popen[bytes], log_path: Path, deadline: float) -> None:
    """Between two polls: notice the server dying or the deadline passing."""
    if time.monotonic() > deadline:
        raise RuntimeError(f"SecantusDB did not come up in time:\n{_log_tail(log_path)}")
    try:
        code = process.wait(timeout=0.02)
    except subprocess.TimeoutExpired:
        return
    raise RuntimeError(f"SecantusDB exited with status {code}:\n{_log_tail(log_path)}")


# Fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def secantus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecantusServer]:
    """One SecantusDB server for the session (started on first use)."""
    if importlib.util.find_spec("secantus") is None:
        service_unavailable("SecantusDB is not installed (pip install secantusdb)")
    try:
        server = start_secantus(tmp_path_factory.mktemp("secantus"))
    except RuntimeError as exc:
        service_unavailable(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """A PostgreSQL URL allowed to create databases; the service answered once."""
    url = os.environ.get("DUCTWORK_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        postgres_execute(url, "SELECT 1")
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        service_unavailable(f"PostgreSQL at {url} is unreachable: {exc}")
    return url


@pytest.fixture(scope="session")
def real_mongodb_url() -> str:
    """The mongod named by DUCTWORK_TEST_MONGODB_URL (skipped when it is not set)."""
    url = os.environ.get("DUCTWORK_TEST_MONGODB_URL")
    if not url:
        pytest.skip("set DUCTWORK_TEST_MONGODB_URL to test against a real MongoDB")
    client: MongoClient[dict[str, Any]] = MongoClient(url, serverSelectionTimeoutMS=5000)
    try:
        client.admin.command("ping")
    except Exception as exc:
        service_unavailable(f"MongoDB at {url} is unreachable: {exc}")
    finally:
        client.close()
    return url


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    """Each store kind in turn: parametrises a test over every store."""
    kind: str = request.param
    return kind


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


@pytest.fixture
def store_url_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str], str]]:
    """`make(kind) -> url`: a fresh, empty store of that kind, cleaned up after the test."""
    cleanups: list[Callable[[], None]] = []

    def make(kind: str) -> str:
        if kind == "sqlite":
            path = tmp_path / "stores" / f"{unique_name('store')}.db"
            return f"sqlite:///{path}"
        if kind == "postgresql":
            admin: str = request.getfixturevalue("postgres_admin_url")
            name = unique_name("ductwork_test")
            postgres_execute(admin, f'CREATE DATABASE "{name}"')
            cleanups.append(
                lambda: postgres_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            )
            return make_url(admin).set(database=name).render_as_string(hide_password=False)
        if kind == "mongodb":
            server: SecantusServer = request.getfixturevalue("secantus_server")
            return server.url_for(unique_name("ductwork_test"))
        if kind == "mongodb-real":
            base: str = request.getfixturevalue("real_mongodb_url")
            name = unique_name("ductwork_test")

            def drop() -> None:
                client: MongoClient[dict[str, Any]] = MongoClient(base)
                try:
                    client.drop_database(name)
                finally:
                    client.close()

            cleanups.append(drop)
            return _with_database(base, name)
        raise ValueError(f"unknown store kind {kind!r}; known: {', '.join(STORE_KINDS)}")

    yield make
    for cleanup in reversed(cleanups):
        cleanup()


@pytest.fixture
async def store(store_kind: str, store_url_factory: Callable[[str], str]) -> AsyncIterator[Store]:
    """A fresh, started store of `store_kind` (each kind in turn), closed after the test."""
    store = create_store(store_url_factory(store_kind))
    await store.start()
    try:
        yield store
    finally:
        await store.close()
