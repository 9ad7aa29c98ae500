"""Overhead of authentication on a cached-key request (target: at most 50 µs).

Times the AuthGuard middleware around a no-op ASGI app for a GET of a
parametrised route with a verified (cached) API key, against the same request
with no guard; the Authenticator's cached look-up alone; and, end to end
through the whole ASGI app (host check, guard, routing, the store read),
`GET /workflows/{id}` with a key against the same app with auth disabled.
Prints a table.

    python bench/auth.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ductwork.api.app import create_app
from ductwork.api.guard import AuthGuard
from ductwork.runtime import build
from ductwork.security.models import SYSTEM
from ductwork.settings import Settings

ROUNDS = 20_000
HTTP_ROUNDS = 2_000


async def _http_ms(on: Path, off: Path) -> tuple[float, float]:
    """Median ms of GET /workflows/{id} through the whole app (in process, no socket):
    (with an API key, with auth disabled). Requests to the two apps alternate, so
    machine noise lands on both alike."""
    import contextlib
    import statistics

    import httpx

    from ductwork.models import WorkflowDefinition

    definition = WorkflowDefinition.model_validate(
        {"name": "w", "nodes": [{"id": "start", "type": "start"}], "edges": []}
    )
    samples: dict[bool, list[float]] = {True: [], False: []}
    async with contextlib.AsyncExitStack() as stack:
        clients: dict[bool, tuple[httpx.AsyncClient, str]] = {}
        for keyed, settings in (
            (True, Settings(data_dir=on, auth_cache_seconds=600)),
            (False, Settings(data_dir=off, auth="disabled")),
        ):
            app = build(settings)
            api = create_app(app)
            await app.start()
            stack.push_async_callback(app.close)
            key = (await app.accounts.create_key(SYSTEM, "bench", SYSTEM.role))[1]
            workflow = await app.create_workflow(definition)
            client = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=api, client=("127.0.0.1", 5000)),
                    base_url="http://127.0.0.1",
                    headers={"Authorization": f"Bearer {key}"} if keyed else {},
                )
            )
            clients[keyed] = (client, workflow.id)
        for round_ in range(HTTP_ROUNDS + 50):
            for keyed in (True, False) if round_ % 2 else (False, True):
                client, workflow_id = clients[keyed]
                started = time.perf_counter()
                response = await client.get(f"/workflows/{workflow_id}")
                elapsed = time.perf_counter() - started
                assert response.status_code == 200, response.text
                if round_ >= 50:  # warm-up
                    samples[keyed].append(elapsed)
    return statistics.median(samples[True]) * 1000, statistics.median(samples[False]) * 1000


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

            async def send(message: MutableMapping[str, Any]) -> None:
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
    with tempfile.TemporaryDirectory() as on, tempfile.TemporaryDirectory() as off:
        with_key, disabled = await _http_ms(Path(on), Path(off))
    rows = [
        ("guard overhead, cached-key request", f"{(guarded - bare) * 1e6:.1f} µs", "<= 50 µs"),
        ("Authenticator.from_bearer, cached", f"{lookup * 1e6:.1f} µs", "-"),
        ("GET /workflows/{id}, auth disabled (median)", f"{disabled * 1000:.0f} µs", "-"),
        ("GET /workflows/{id}, API key (median)", f"{with_key * 1000:.0f} µs", "-"),
        ("difference end to end", f"{(with_key - disabled) * 1000:+.0f} µs", "<= 50 µs"),
    ]
    width = max(len(row[0]) for row in rows)
    print(f"{'measure':<{width}}  {'result':>10}  target")
    for name, result, target in rows:
        print(f"{name:<{width}}  {result:>10}  {target}")


if __name__ == "__main__":
    asyncio.run(main())
