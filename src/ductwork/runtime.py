"""The composition root: the one place adapters are chosen, from settings alone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from ductwork.cache.memory import MemoryCache
from ductwork.clients.http import GuardedHttpClient
from ductwork.clients.llm import LLMClient
from ductwork.clients.mail import Mailer
from ductwork.clients.sql import SqlConnections
from ductwork.events.memory import InProcessEventBus
from ductwork.nodes.base import NodeServices, NodeType
from ductwork.nodes.registry import REGISTRY
from ductwork.queue.memory import InProcessQueue
from ductwork.service import Components, Ductwork
from ductwork.settings import Settings
from ductwork.store.factory import create_store

Role = Literal["embedded", "api", "worker"]
"""embedded: one process does everything; api: serves and enqueues; worker: advances runs."""


def build(
    settings: Settings | None = None,
    role: Role = "embedded",
    registry: Mapping[str, NodeType[Any]] | None = None,
) -> Ductwork:
    """Build a ductwork application with the adapters its settings call for.

    `registry` replaces the built-in node types (tests add their own).
    """
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = create_store(settings.resolved_store_url)
    cache = MemoryCache()
    queue = InProcessQueue(concurrency=settings.max_concurrent_runs)
    bus = InProcessEventBus()
    llm = LLMClient(settings)
    mail = Mailer(settings)
    http = GuardedHttpClient(settings)
    sql = SqlConnections(settings)
    services = NodeServices(settings=settings, cache=cache, llm=llm, mail=mail, http=http, sql=sql)
    components = Components(
        settings=settings,
        store=store,
        cache=cache,
        queue=queue,
        bus=bus,
        services=services,
        registry=registry if registry is not None else REGISTRY,
        consume=role != "api",
        sweep=True,
        closers=[llm.close, mail.close, http.close, sql.close],
    )
    return Ductwork(components)
