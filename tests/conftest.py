"""Shared fixtures: the real local servers the integration tests talk to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ductwork.settings import Settings
from tests.support.http_servers import RecordingHttpServer
from tests.support.live_server import LiveServer
from tests.support.openai_stub import OpenAIStub
from tests.support.processes import RedisServer
from tests.support.smtp_server import SmtpTestServer

# Service fixtures (PostgreSQL databases, SecantusDB, Redis) for every test module.
pytest_plugins = ["tests.support.stores", "tests.support.redis_cache_bus"]


@pytest.fixture(scope="session")
def llm_server() -> Iterator[OpenAIStub]:
    with OpenAIStub() as server:
        yield server


@pytest.fixture
def llm(llm_server: OpenAIStub) -> OpenAIStub:
    """The OpenAI-compatible stub, reset for this test."""
    llm_server.reset()
    return llm_server


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpTestServer]:
    server = SmtpTestServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp(smtp_server: SmtpTestServer) -> SmtpTestServer:
    """The aiosmtpd server, emptied for this test."""
    smtp_server.clear()
    return smtp_server


@pytest.fixture(scope="session")
def http_server_session() -> Iterator[RecordingHttpServer]:
    with RecordingHttpServer() as server:
        yield server


@pytest.fixture
def http_server(http_server_session: RecordingHttpServer) -> RecordingHttpServer:
    """The recording HTTP server, reset for this test."""
    http_server_session.reset()
    return http_server_session


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def full_settings(
    tmp_path: Path, llm: OpenAIStub, smtp: SmtpTestServer, http_server: RecordingHttpServer
) -> Settings:
    """Settings wiring every node type to a real local server."""
    return Settings(
        data_dir=tmp_path,
        llm_base_url=llm.base_url,
        llm_api_key="test-key",
        email_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        http_allow_private_networks=True,
        sql_connections={"shop": f"sqlite:///{EXAMPLES / 'shop.db'}"},
        sync_wait_seconds=20,
    )


@pytest.fixture
def server(full_settings: Settings) -> Iterator[LiveServer]:
    """A live embedded ductwork server wired to the local test servers."""
    with LiveServer(full_settings) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client for `server`, sending its admin API key."""
    with server.client(timeout=30) as http:
        yield http


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server for one test (scale-out tests kill and inspect it)."""
    server = RedisServer(tmp_path).start()
    yield server
    server.kill()
