"""The composition root: the one place adapters are chosen, from settings alone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from ductwork.cache.base import Cache
from ductwork.cache.memory import MemoryCache
from ductwork.clients.http import GuardedHttpClient
from ductwork.clients.llm import LLMClient
from ductwork.clients.llm_limits import build_llm_limiter
from ductwork.clients.mail import Mailer
from ductwork.clients.sql import SqlConnections
from ductwork.engine import templating
from ductwork.events.base import EventBus
from ductwork.events.memory import InProcessEventBus
from ductwork.nodes.base import NodeServices, NodeType
from ductwork.nodes.registry import REGISTRY
from ductwork.queue.base import Queue
from ductwork.queue.memory import InProcessQueue
from ductwork.security.audit import AuditLog
from ductwork.security.credentials import CredentialService
from ductwork.security.crypto import KeyRing
from ductwork.security.ratelimit import RateLimiter
from ductwork.service import Components, Ductwork, SweepLock
from ductwork.settings import Settings
from ductwork.store.factory import create_store
from ductwork.triggers.resume import ResumeLinks, base_url

Role = Literal["embedded", "api", "worker", "isolated"]
"""embedded: one process does everything; api: serves and enqueues; worker: advances runs;
isolated: advances only the runs it starts (the CLI's `run`): in-process queue and events
even when Redis is configured, and no background sweep (its owner sweeps its own run)."""


def build(
    settings: Settings | None = None,
    role: Role = "embedded",
    registry: Mapping[str, NodeType[Any]] | None = None,
) -> Ductwork:
    """Build a ductwork application with the adapters its settings call for.

    Without `DUCTWORK_REDIS_URL` everything is in-process (one process runs the
    API, the queue consumer and the sweep). With it, the LLM cache, the run queue
    and the event bus go through Redis; `api` processes only enqueue, `worker`
    processes consume and sweep (one sweeper at a time). An `isolated` process
    only shares the LLM cache: nobody else's run reaches its queue or its sweep.
    `registry` replaces the built-in node types (tests add their own).
    """
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    templating.configure(
        timeout_ms=settings.template_timeout_ms, max_bytes=settings.template_max_bytes
    )
    store = create_store(settings.resolved_store_url)
    cache: Cache
    queue: Queue
    bus: EventBus
    sweep_lock: SweepLock | None = None
    if settings.redis_url:
        from ductwork.cache.redis import RedisCache

        cache = RedisCache(settings.redis_url)
    else:
        cache = MemoryCache()
    if settings.redis_url and role != "isolated":
        from ductwork.events.redis import RedisEventBus
        from ductwork.queue.redis import RedisQueue, RedisSweepLock

        namespace = settings.redis_namespace
        bus = RedisEventBus(settings.redis_url, namespace=namespace)
        queue = RedisQueue(
            settings.redis_url,
            concurrency=settings.max_concurrent_runs,
            namespace=namespace,
            # A message taken by a worker that died before leasing its run is offered
            # again about as soon as a leased run of a dead worker would be.
            pending_mark_seconds=max(2.0, settings.lease_seconds * 2),
        )
        sweep_lock = RedisSweepLock(
            settings.redis_url,
            ttl_seconds=max(1.0, settings.sweep_interval_seconds * 3),
            namespace=namespace,
        )
    else:
        if role == "api":
            raise ValueError("an API-only process needs DUCTWORK_REDIS_URL to reach workers")
        bus = InProcessEventBus()
        queue = InProcessQueue(concurrency=settings.max_concurrent_runs)
    # Per-provider LLM rate limits: in Redis when configured, so every process shares them.
    llm = LLMClient(settings, build_llm_limiter(settings))
    mail = Mailer(settings)
    http = GuardedHttpClient(settings)
    sql = SqlConnections(settings)
    # Read (or create) the key before anything starts: a malformed key or a key file
    # others may read stops the process here, with a message saying what to fix.
    key_ring = KeyRing.from_settings(settings)
    # Resume links are signed with a key derived from the same ring (never stored).
    links = ResumeLinks(lambda: key_ring.keys, base_url(settings))
    services = NodeServices(
        settings=settings, cache=cache, llm=llm, mail=mail, http=http, sql=sql, resume_links=links
    )
    closers: list[Any] = [llm.close, mail.close, http.close, sql.close]
    if settings.code_node == "enabled":
        from ductwork.code.pool import CodePool, answer_limit

        # Workers start on the first `code` call, in the loop that makes it.
        pool = CodePool(
            size=settings.code_pool_size,
            memory_mb=settings.code_memory_mb,
            max_answer_bytes=answer_limit(settings.max_output_bytes),
        )
        services.code = pool
        closers.append(pool.close)
    registry = registry if registry is not None else REGISTRY
    credentials = CredentialService(
        store,
        key_ring,
        settings,
        registry,
        publish_control=bus.publish_control,
    )
    # Redis-backed whenever Redis is configured (even `isolated`): limits are per caller,
    # not per process. An `isolated` process serves no caller: it reads the rates (and
    # imports `limits`) only if something asks, instead of at startup.
    limiter = RateLimiter(settings, check=role != "isolated")
    components = Components(
        settings=settings,
        store=store,
        cache=cache,
        queue=queue,
        bus=bus,
        services=services,
        registry=registry,
        consume=role != "api",
        sweep=role not in ("api", "isolated"),
        sweep_lock=sweep_lock,
        closers=[*closers, limiter.close],
        credentials=credentials,
        audit=AuditLog(store.security),
        limiter=limiter,
    )
    return Ductwork(components)
