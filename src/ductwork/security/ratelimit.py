"""Named rate limits over the maintained `limits` library.

Two rules, each a setting in `limits` notation (`10/minute`, `600 per hour`):

- `login`: failed logins and failed API keys per client address
  (DUCTWORK_LOGIN_RATE_LIMIT), so passwords and keys cannot be guessed fast;
- `execute`: execute, retry and generate calls per key or user
  (DUCTWORK_EXECUTE_RATE_LIMIT), so one caller cannot flood the workers or
  spend the LLM budget.

Callers with rates of their own use `hit_rate` (inbound webhooks count calls per
path at the trigger's `rate_limit`, else DUCTWORK_HOOK_RATE_LIMIT).

The window is a moving window (every hit's time is kept, so a burst at the
end of one minute and the start of the next is still one minute's worth).
Counts live in memory in an embedded process (`MemoryWindows`) and in Redis
when DUCTWORK_REDIS_URL is set (`limits`' Redis storage), so every API process
of a scaled-out deployment shares them.

`MemoryWindows` replaces `limits`' asyncio memory storage, whose clean-up task
ran after every hit and moved a bisect onto a thread each time: a thread
hop on every execute call (about 0.2 ms of CPU, more under load). The moving
window itself is the same: a hit is allowed while fewer than `amount` hits
fall within the last `expiry` seconds.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    # `limits` takes ~0.15 s to import: it loads when the rates are first read (at
    # construction unless `check=False`, as in `ductwork run`, which serves nobody).
    from limits import RateLimitItem
    from limits.aio.storage import Storage
    from limits.aio.strategies import MovingWindowRateLimiter

    from ductwork.settings import Settings

log = logging.getLogger("ductwork.security")

RULES: Final = {"login": "login_rate_limit", "execute": "execute_rate_limit"}
"""Rule name -> the setting holding its rate."""


class UnknownRule(KeyError):
    """A rule name the limiter has no rate for (a programming error)."""


def redis_storage_url(redis_url: str) -> str:
    """`redis://h:6379/0` -> `async+redis://h:6379/0` (the scheme `limits` maps to asyncio)."""
    return redis_url if redis_url.startswith("async+") else f"async+{redis_url}"


class MemoryWindows:
    """Moving windows in this process's memory, without threads or tasks.

    Per counted key, the monotonic times of the hits still in its window (oldest
    first; never more than the rate's amount). Keys whose window has emptied are
    dropped by a sweep that runs when the number of keys has doubled since the
    last one, so memory stays bounded by the keys active within a window.
    """

    SWEEP_MIN_KEYS: Final = 1024

    def __init__(self) -> None:
        self._hits: dict[str, tuple[float, deque[float]]] = {}
        self._sweep_at = self.SWEEP_MIN_KEYS

    def _window(self, item: RateLimitItem, rule: str, key: str, now: float) -> deque[float]:
        slot = item.key_for(rule, key)
        found = self._hits.get(slot)
        if found is None:
            if len(self._hits) >= self._sweep_at:
                self._sweep(now)
            hits: deque[float] = deque()
            self._hits[slot] = (float(item.get_expiry()), hits)
            return hits
        expiry, hits = found
        cutoff = now - expiry
        while hits and hits[0] <= cutoff:
            hits.popleft()
        return hits

    def _sweep(self, now: float) -> None:
        # Keep the keys with a hit still inside their window.
        self._hits = {
            slot: (expiry, hits)
            for slot, (expiry, hits) in self._hits.items()
            if hits and hits[-1] > now - expiry
        }
        self._sweep_at = max(self.SWEEP_MIN_KEYS, 2 * len(self._hits))

    @staticmethod
    def _retry_after(item: RateLimitItem, hits: deque[float], now: float) -> float:
        # The oldest hit in the window leaves it first; whole seconds, at least 1.
        return float(max(1, math.ceil(hits[0] + item.get_expiry() - now)))

    def hit(self, item: RateLimitItem, rule: str, key: str) -> float | None:
        """Count one hit: None when allowed, else the seconds until one is."""
        now = time.monotonic()
        hits = self._window(item, rule, key, now)
        if len(hits) >= item.amount:
            return self._retry_after(item, hits, now)
        hits.append(now)
        return None

    def peek(self, item: RateLimitItem, rule: str, key: str) -> float | None:
        """Like `hit` without counting."""
        now = time.monotonic()
        hits = self._window(item, rule, key, now)
        if len(hits) >= item.amount:
            return self._retry_after(item, hits, now)
        return None

    def clear(self, item: RateLimitItem, rule: str, key: str) -> None:
        """Forget a key's hits."""
        self._hits.pop(item.key_for(rule, key), None)

    @property
    def keys(self) -> int:
        """Counted keys held now (tests)."""
        return len(self._hits)


class RateLimiter:
    """`hit` counts one attempt against a rule for a key; `clear` forgets a key's attempts."""

    def __init__(self, settings: Settings, *, check: bool = True) -> None:
        """Read the rates now (a bad one raises ValueError) unless `check` is False:
        then on first use, for processes that may never limit anyone."""
        self._settings = settings
        self._rules: dict[str, RateLimitItem] | None = None
        self._storage: Storage | None = None
        self._limiter: MovingWindowRateLimiter | None = None
        self.memory: MemoryWindows | None = None if settings.redis_url else MemoryWindows()
        """The counts of an embedded process (None when they live in Redis)."""
        self.checked = check
        """True when the rates were read at construction (so a bad one stopped it)."""
        if check:
            self._parsed_rules()

    def _parsed_rules(self) -> dict[str, RateLimitItem]:
        if self._rules is None:
            from limits import parse

            rules: dict[str, RateLimitItem] = {}
            for rule, setting in RULES.items():
                text = getattr(self._settings, setting)
                try:
                    rules[rule] = parse(text)
                except ValueError as exc:
                    raise ValueError(
                        f"DUCTWORK_{setting.upper()} {text!r} is not a rate in `limits` notation "
                        "(e.g. `10/minute`, `600 per hour`)"
                    ) from exc
            self._rules = rules
        return self._rules

    @property
    def storage(self) -> Storage | None:
        """`limits`' Redis storage when DUCTWORK_REDIS_URL is set; None when the counts
        live in this process (`memory`)."""
        if self.memory is not None:
            return None
        if self._storage is None:
            from limits.aio.storage import RedisStorage

            # redis-py's asyncio client (a dependency already); keys under our namespace.
            self._storage = RedisStorage(
                redis_storage_url(self._settings.redis_url or ""),
                implementation="redispy",
                key_prefix=f"{self._settings.redis_namespace}:ratelimit",
            )
        return self._storage

    @property
    def _redis(self) -> MovingWindowRateLimiter:
        if self._limiter is None:
            storage = self.storage
            if storage is None:
                raise RuntimeError("this rate limiter counts in memory")
            from limits.aio.strategies import MovingWindowRateLimiter

            self._limiter = MovingWindowRateLimiter(storage)
        return self._limiter

    def rate(self, rule: str) -> RateLimitItem:
        """The configured rate of a rule."""
        try:
            return self._parsed_rules()[rule]
        except KeyError:
            raise UnknownRule(rule) from None

    async def hit(self, rule: str, key: str) -> float | None:
        """Count one attempt. None: allowed; else the seconds until one is allowed again.

        A limiter whose storage is down (Redis) allows: a rate limit must not take the
        API down with it. The failure is logged.
        """
        return await self.hit_rate(self.rate(rule), rule, key)

    async def hit_rate(self, item: RateLimitItem, rule: str, key: str) -> float | None:
        """`hit` with a rate of the caller's own (e.g. a webhook trigger's `rate_limit`,
        parsed once by the caller); `rule` namespaces the counts."""
        if self.memory is not None:
            return self.memory.hit(item, rule, key)
        try:
            if await self._redis.hit(item, rule, key):
                return None
            return await self._retry_after(item, rule, key)
        except Exception:
            log.warning("rate limiter unavailable; allowing %s", rule, exc_info=True)
            return None

    async def peek(self, rule: str, key: str) -> float | None:
        """Like `hit` without counting: None when `key` may go on now, else Retry-After."""
        item = self.rate(rule)
        if self.memory is not None:
            return self.memory.peek(item, rule, key)
        try:
            if await self._redis.test(item, rule, key):
                return None
            return await self._retry_after(item, rule, key)
        except Exception:
            log.warning("rate limiter unavailable; allowing %s", rule, exc_info=True)
            return None

    async def _retry_after(self, item: RateLimitItem, rule: str, key: str) -> float:
        stats = await self._redis.get_window_stats(item, rule, key)
        # Whole seconds, at least 1: Retry-After carries an integer.
        return float(max(1, math.ceil(stats.reset_time - time.time())))

    async def clear(self, rule: str, key: str) -> None:
        """Forget `key`'s attempts under `rule` (e.g. after a successful login)."""
        if self.memory is not None:
            self.memory.clear(self.rate(rule), rule, key)
            return
        try:
            await self._redis.clear(self.rate(rule), rule, key)
        except Exception:
            log.warning("rate limiter unavailable; %s not cleared", rule, exc_info=True)

    async def close(self) -> None:
        """Release the Redis connections (nothing to do in memory)."""
        if self._storage is None:
            return
        from limits.aio.storage import RedisStorage

        if isinstance(self._storage, RedisStorage):
            client = getattr(self._storage.bridge, "storage", None)
            if client is not None:
                await client.aclose()
