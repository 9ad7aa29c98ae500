"""An in-memory `CredentialSource` and helpers to look for a secret everywhere a run leaves text."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from typing import Any

import asyncpg
import orjson

from ductwork.models import Event
from ductwork.security.credential_types import CREDENTIAL_TYPES, Credential
from ductwork.security.credentials import CredentialService
from ductwork.service import Ductwork


class MemoryCredentials:
    """Credentials held in a dict; records which names each run asked for."""

    def __init__(self, **credentials: tuple[str, dict[str, Any]]) -> None:
        self.items = {
            name: Credential(name, type_, CREDENTIAL_TYPES[type_].model_validate(data))
            for name, (type_, data) in credentials.items()
        }
        self.requests: list[set[str]] = []
        self.service: CredentialService | None = None

    async def load(self, names: Collection[str]) -> dict[str, Credential]:
        self.requests.append(set(names))
        if self.service is not None:
            return await self.service.load(names)
        return {name: self.items[name] for name in names if name in self.items}

    async def install(self, app: Ductwork) -> None:
        """Store these credentials through `app`'s real credentials service (encrypted, so
        saving a workflow that names them passes its check) and load runs' credentials
        through it, recording which names each run asked for."""
        service = app.credentials
        assert isinstance(service, CredentialService)
        for item in self.items.values():
            await service.create(item.name, item.type, item.data.model_dump())
        self.service = service
        app.executor.credentials = self


class LiveEvents:
    """Every event the app hands to its bus (stored ones and ephemeral token deltas)."""

    def __init__(self, app: Ductwork) -> None:
        self.events: list[Event] = []
        bus = app.bus
        publish, publish_many = bus.publish, bus.publish_many

        async def one(execution_id: str, event: Event) -> None:
            self.events.append(event)
            await publish(execution_id, event)

        async def many(execution_id: str, events: Sequence[Event]) -> None:
            self.events.extend(events)
            await publish_many(execution_id, events)

        bus.publish = one  # type: ignore[method-assign]
        bus.publish_many = many  # type: ignore[method-assign]

    def text(self) -> str:
        return orjson.dumps([event.model_dump(mode="json") for event in self.events]).decode()


def sqlite_rows(path: str) -> str:
    """Every row of every table of a SQLite file, as one text."""
    conn = sqlite3.connect(path)
    try:
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        rows = [repr(conn.execute(f'SELECT * FROM "{table}"').fetchall()) for table in tables]
    finally:
        conn.close()
    assert any("node_states" in t or "runs" in t or "executions" in t for t in tables), tables
    return "\n".join(rows)


async def postgres_rows(url: str) -> str:
    """Every row of every table in the public schema of a PostgreSQL database, as text."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        tables = [
            r["table_name"]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        ]
        rows = [
            str(await conn.fetch(f'SELECT t::text AS row FROM "{table}" AS t')) for table in tables
        ]
    finally:
        await conn.close()
    assert tables
    return "\n".join(rows)
