"""Serve the real ASGI app with uvicorn on 127.0.0.1 in a background thread.

Every server has an admin API key (`ADMIN_KEY` unless the settings bring their
own): tests send `server.headers` (or use `server.client()`), since every route
but /health needs credentials.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

import httpx
import uvicorn
from pydantic import SecretStr

from ductwork.api.app import create_app
from ductwork.runtime import build
from ductwork.service import Ductwork
from ductwork.settings import Settings
from tests.support.smtp_server import free_port

T = TypeVar("T")

ADMIN_KEY = "dw_testadminkey_" + "k" * 40
"""The admin API key of every LiveServer whose settings do not set one."""


def with_admin_key(settings: Settings) -> Settings:
    """`settings`, with ADMIN_KEY as DUCTWORK_ADMIN_API_KEY unless one is set."""
    if settings.admin_api_key is not None:
        return settings
    return settings.model_copy(update={"admin_api_key": SecretStr(ADMIN_KEY)})


def auth_headers(key: str) -> dict[str, str]:
    """The header that authenticates with an API key."""
    return {"Authorization": f"Bearer {key}"}


class LiveServer:
    """A ductwork API server for one test: `url` is its base URL, `app` the service behind it,
    `headers` the admin key's Authorization header."""

    def __init__(self, settings: Settings, role: str = "embedded", root_path: str = "") -> None:
        settings = with_admin_key(settings)
        self.admin_key = (
            settings.admin_api_key.get_secret_value() if settings.admin_api_key else ADMIN_KEY
        )
        self.headers = auth_headers(self.admin_key)
        self.port = free_port()
        # The port it really listens on: links the server makes (resume links) use it.
        settings = settings.model_copy(update={"port": self.port})
        self.app: Ductwork = build(settings, role=role)  # type: ignore[arg-type]
        config = uvicorn.Config(
            create_app(self.app),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            ws="websockets-sansio",
            root_path=root_path,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None

    def _serve(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.server.serve())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def client(self, timeout: float = 30, **options: object) -> httpx.Client:
        """An HTTP client for this server sending the admin key."""
        return httpx.Client(base_url=self.url, timeout=timeout, headers=self.headers, **options)  # type: ignore[arg-type]

    def async_client(self, timeout: float = 30, **options: object) -> httpx.AsyncClient:
        """An async HTTP client for this server sending the admin key."""
        return httpx.AsyncClient(
            base_url=self.url,
            timeout=timeout,
            headers=self.headers,
            **options,  # type: ignore[arg-type]
        )

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the server's own loop (its store connections live there)."""
        assert self.loop is not None, "the server is not started"
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=timeout)

    def start(self, timeout: float = 10.0) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("ductwork test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
