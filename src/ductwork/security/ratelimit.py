"""Rate limits by rule and key, through the `limits` library.

MINIMAL VERSION written by the auth helper so sign-in throttling works before the
limits helper's branch lands; that branch owns this file and may replace it (keep
`hit`, `clear` and `peek`).

Rules: "login" (settings.login_rate_limit, keyed by client address; counts failed
sign-ins and failed API keys) and "execute" (settings.execute_rate_limit, keyed by
principal.actor). Memory storage in one process; Redis storage when
settings.redis_url is set, so every process counts together.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from ductwork.settings import Settings

log = logging.getLogger("ductwork.ratelimit")


class RateLimiter:
    """`hit` counts one event and says whether it went over the rule's limit."""

    def __init__(self, settings: Settings) -> None:
        self.rules: dict[str, RateLimitItem] = {
            "login": parse(settings.login_rate_limit),
            "execute": parse(settings.execute_rate_limit),
        }
        storage: Storage
        if settings.redis_url:
            url = settings.redis_url.replace("redis://", "async+redis://", 1).replace(
                "rediss://", "async+rediss://", 1
            )
            storage = storage_from_string(  # type: ignore[assignment]  # async+ gives aio
                url, implementation="redispy", key_prefix=f"{settings.redis_namespace}:limits"
            )
        else:
            storage = MemoryStorage()
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(storage)

    async def _retry_after(self, item: RateLimitItem, key: str) -> float:
        stats = await self.limiter.get_window_stats(item, key)
        return max(1.0, math.ceil(stats.reset_time - time.time()))

    async def hit(self, rule: str, key: str) -> float | None:
        """Count one event: None when within the limit, else seconds until retry."""
        item = self.rules[rule]
        try:
            if await self.limiter.hit(item, key):
                return None
            return await self._retry_after(item, key)
        except Exception:
            # A limiter outage must not lock everybody out (nor let it crash requests).
            log.warning("rate limiter unavailable; allowing", exc_info=True)
            return None

    async def peek(self, rule: str, key: str) -> float | None:
        """Like `hit` without counting: whether `key` is over the limit now."""
        item = self.rules[rule]
        try:
            if await self.limiter.test(item, key):
                return None
            return await self._retry_after(item, key)
        except Exception:
            log.warning("rate limiter unavailable; allowing", exc_info=True)
            return None

    async def clear(self, rule: str, key: str) -> None:
        """Forget `key`'s events for `rule`."""
        try:
            await self.limiter.clear(self.rules[rule], key)
        except Exception:
            log.warning("rate limiter unavailable; not cleared", exc_info=True)
