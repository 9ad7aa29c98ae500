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
Counts live in memory in an embedded process and in Redis when
DUCTWORK_REDIS_URL is set, so every API process of a scaled-out deployment
shares them.
"""

from __future__ import annotations

import logging
import math
import time
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


class RateLimiter:
    """`hit` counts one attempt against a rule for a key; `clear` forgets a key's attempts."""

    def __init__(self, settings: Settings, *, check: bool = True) -> None:
        """Read the rates now (a bad one raises ValueError) unless `check` is False:
        then on first use, for processes that may never limit anyone."""
        self._settings = settings
        self._rules: dict[str, RateLimitItem] | None = None
        self._storage: Storage | None = None
        self._limiter: MovingWindowRateLimiter | None = None
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
    def storage(self) -> Storage:
        """Where the counts live: memory, or Redis when DUCTWORK_REDIS_URL is set."""
        if self._storage is None:
            from limits.aio.storage import MemoryStorage, RedisStorage

            settings = self._settings
            if settings.redis_url:
                # redis-py's asyncio client (a dependency already); keys under our namespace.
                self._storage = RedisStorage(
                    redis_storage_url(settings.redis_url),
                    implementation="redispy",
                    key_prefix=f"{settings.redis_namespace}:ratelimit",
                )
            else:
                self._storage = MemoryStorage()
        return self._storage

    @property
    def _strategy(self) -> MovingWindowRateLimiter:
        if self._limiter is None:
            from limits.aio.strategies import MovingWindowRateLimiter

            self._limiter = MovingWindowRateLimiter(self.storage)
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
        try:
            if await self._strategy.hit(item, rule, key):
                return None
            return await self._retry_after(item, rule, key)
        except Exception:
            log.warning("rate limiter unavailable; allowing %s", rule, exc_info=True)
            return None

    async def peek(self, rule: str, key: str) -> float | None:
        """Like `hit` without counting: None when `key` may go on now, else Retry-After."""
        item = self.rate(rule)
        try:
            if await self._strategy.test(item, rule, key):
                return None
            return await self._retry_after(item, rule, key)
        except Exception:
            log.warning("rate limiter unavailable; allowing %s", rule, exc_info=True)
            return None

    async def _retry_after(self, item: RateLimitItem, rule: str, key: str) -> float:
        stats = await self._strategy.get_window_stats(item, rule, key)
        # Whole seconds, at least 1: Retry-After carries an integer.
        return float(max(1, math.ceil(stats.reset_time - time.time())))

    async def clear(self, rule: str, key: str) -> None:
        """Forget `key`'s attempts under `rule` (e.g. after a successful login)."""
        try:
            await self._strategy.clear(self.rate(rule), rule, key)
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
