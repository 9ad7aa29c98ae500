"""Overhead of authentication on a cached-key request (target: at most 50 µs).

Times the AuthGuard middleware around a no-op ASGI app for a GET of a
parametrised route with a verified (cached) API key, against the same request
with no guard; and the Authenticator's cached look-up alone.

    python bench/auth.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ductwork.api.app import create_app
from ductwork.api.guard import AuthGuard
from ductwork.runtime import build
from ductwork.security.models import SYSTEM
from ductwork.settings import Settings

ROUNDS = 20_000


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = build(Settings(data_dir=Path(tmp), auth_cache_seconds=600))
        api = create_app(app)
        await app.start()
        try:
            _, key = await app.accounts.create_key(SYSTEM, "bench", SYSTEM.role)

            async def noop(scope: Any, receive: Any, send: Any) -> None:
                return None

            guard = AuthGuard(noop, ductwork=app, routes=api.router.routes)
            scope = {
                "type": "http",
                "method": "GET",
                "path": "/workflows/executions/abc123",
                "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {key}".encode())],
                "client": ("127.0.0.1", 5000),
            }

            async def receive() -> dict[str, Any]:
                return {"type": "http.request"}

            async def send(message: dict[str, Any]) -> None:
                raise AssertionError(f"refused: {message}")

            await guard(dict(scope), receive, send)  # warm: verified once, then cached
            started = time.perf_counter()
            for _ in range(ROUNDS):
                await guard(dict(scope), receive, send)
            guarded = (time.perf_counter() - started) / ROUNDS
            started = time.perf_counter()
            for _ in range(ROUNDS):
                await noop(dict(scope), receive, send)
            bare = (time.perf_counter() - started) / ROUNDS
            started = time.perf_counter()
            for _ in range(ROUNDS):
                await app.authenticator.from_bearer(key)
            lookup = (time.perf_counter() - started) / ROUNDS
        finally:
            await app.close()
    print(f"guard overhead per cached-key request: {(guarded - bare) * 1e6:.1f} µs (target ≤ 50)")
    print(f"Authenticator.from_bearer, cached:     {lookup * 1e6:.1f} µs")


if __name__ == "__main__":
    asyncio.run(main())
