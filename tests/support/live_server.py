"""Serve the real ASGI app with uvicorn on 127.0.0.1 in a background thread."""

from __future__ import annotations

import asyncio
import threading
import time
from types import TracebackType

import uvicorn

from ductwork.api.app import create_app
from ductwork.runtime import build
from ductwork.service import Ductwork
from ductwork.settings import Settings
from tests.support.smtp_server import free_port


class LiveServer:
    """A ductwork API server for one test: `url` is its base URL, `app` the service behind it."""

    def __init__(self, settings: Settings, role: str = "embedded") -> None:
        self.port = free_port()
        self.app: Ductwork = build(settings, role=role)  # type: ignore[arg-type]
        config = uvicorn.Config(
            create_app(self.app),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            ws="websockets-sansio",
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
