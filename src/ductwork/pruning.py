"""The pruning job: deletes the finished runs the retention policy lets go.

It runs in the sweeping process (one at a time across a deployment: the sweep
lock), every DUCTWORK_PRUNE_INTERVAL_SECONDS, and from the CLI's `ductwork prune`.
Each pass reads the workflows' `settings.retention`, builds one `PrunePlan`
(`ductwork.retention.prune_plan`) and has the store delete batches of
DUCTWORK_PRUNE_BATCH_SIZE runs, one transaction each, pausing between batches as
long as the batch took, so live traffic keeps at least half the time. See
docs/retention.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from ductwork.models import Workflow, utcnow
from ductwork.retention import PrunePlan, needs_own_rule, prune_plan
from ductwork.settings import Settings
from ductwork.store.base import Store

log = logging.getLogger("ductwork.pruning")

_WORKFLOW_PAGE = 500


class Pruner:
    """Prunes runs by the retention settings and each workflow's override."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock

    async def plan(self) -> PrunePlan:
        """The plan as of now: global settings, overridden per stored workflow."""
        workflows: list[Workflow] = []
        offset = 0
        while True:
            page = await self.store.list_workflows(limit=_WORKFLOW_PAGE, offset=offset)
            workflows.extend(w for w in page if needs_own_rule(w))
            if len(page) < _WORKFLOW_PAGE:
                break
            offset += len(page)
        return prune_plan(
            self.settings.retention_days, self.settings.retention_runs, workflows, self.clock()
        )

    async def count(self) -> int:
        """How many runs a prune would delete now (nothing is deleted)."""
        plan = await self.plan()
        if not plan.deletes_anything:
            return 0
        return await self.store.count_prunable_runs(plan)

    async def prune_once(self) -> int:
        """Delete every run the policy lets go, batch by batch; how many were deleted."""
        plan = await self.plan()
        if not plan.deletes_anything:
            return 0
        batch = self.settings.prune_batch_size
        loop = asyncio.get_running_loop()
        total = 0
        while True:
            started = loop.time()
            deleted = await self.store.prune_runs(plan, batch)
            total += deleted
            if deleted < batch:
                break
            # Between batches, live traffic gets as long as the batch took: on SQLite
            # a batch holds the event loop and the one connection, and a mere
            # `sleep(0)` let a run advance one step per batch (bench/retention.py:
            # 2 executes in 5 s). Pruning thus takes at most half of the time.
            await asyncio.sleep(max(loop.time() - started, 0.001))
        if total:
            log.info("pruned %d finished run(s) past their retention", total)
        return total

    async def run_forever(self, may_prune: Callable[[], Awaitable[bool]]) -> None:
        """Prune every DUCTWORK_PRUNE_INTERVAL_SECONDS while `may_prune()` (the sweep lock)."""
        interval = self.settings.prune_interval_seconds
        while True:
            try:
                if await may_prune():
                    await self.prune_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pruning failed; trying again in %.1f s", interval)
            await asyncio.sleep(interval)
