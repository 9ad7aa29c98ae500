"""Per-provider LLM rate limits: requests and tokens per minute, waited for, never failed.

DUCTWORK_LLM_RATE_LIMITS maps a provider host (of the base URL a call goes to, e.g.
`openrouter.ai`; `host:port` is matched first) to `requests_per_minute` and
`tokens_per_minute`. A call past either limit *waits* its turn instead of failing;
the node's timeout bounds the wait (the engine cancels the node, and a cancelled
waiter gives its slot back).

The algorithm is a sliding-window log with reservations, one log per dimension:
every admitted call is an entry `(start time, cost)` (cost 1 for requests, the
estimated tokens for tokens). A new call gets the earliest start time `t`, no earlier
than now and than the newest entry, at which the entries inside `(t - 60 s, t]` plus
its own cost fit under the limit, in every dimension at once; its entries are written
at `t` and the caller sleeps until then. So callers are served in arrival order, each
with one round trip, and no 60-second window ever holds more than the limit. A call
asking for more tokens than a whole minute's budget is counted as the whole budget
(it goes alone) rather than waiting forever. Once the call answers, its token entry
is corrected to the tokens the provider reported (`settle`).

Two adapters, chosen by the composition root (runtime.py): in-process
(`MemoryLlmLimiter`) for an embedded process, and Redis (`RedisLlmLimiter`) when
DUCTWORK_REDIS_URL is set, where one Lua script does the whole reservation atomically
on Redis's clock, so every process of a deployment shares one budget per provider.

Why not `security/ratelimit.py` (the `limits` library): it answers "allowed or not"
and refuses the call; this needs a start time to wait for, two limits taken together
atomically, and a correction after the call, none of which `limits` offers.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from ductwork.settings import LlmRateLimit, Settings

log = logging.getLogger(__name__)

WINDOW_SECONDS: Final = 60.0
"""The limits are per minute."""


def provider_host(base_url: str) -> str:
    """The host of a base URL, lower-cased: the key of DUCTWORK_LLM_RATE_LIMITS."""
    return (urlsplit(base_url).hostname or "").lower()


def estimate_tokens(prompt_chars: int, max_tokens: int) -> int:
    """Tokens a call may use before it is made: the prompt at ~4 characters a token
    (the usual rule of thumb for English) plus everything the answer may take."""
    return prompt_chars // 4 + 1 + max_tokens


@dataclass(frozen=True, slots=True)
class Reservation:
    """A call's admitted place in a provider's windows."""

    key: str
    """The provider key the limits were found under."""
    entry_id: str
    tokens: int
    """The tokens counted for it (0 when the provider has no token limit)."""
    start: float
    """When the call may start, on the limiter's clock."""
    waited_seconds: float


def _fit(
    entries: list[tuple[float, int]], cost: int, limit: int, now: float, window: float
) -> float:
    """The earliest start >= now (and >= the newest entry) at which `cost` fits under
    `limit` with the entries inside the window ending there. `entries` are oldest first
    and already pruned of those at or before now - window."""
    cost = min(cost, limit)
    start = max([now, *(when for when, _ in entries[-1:])])
    total = sum(amount for _, amount in entries)
    if total + cost <= limit:
        return start
    for when, amount in entries:
        total -= amount
        if total + cost <= limit:
            return max(start, when + window)
    return start  # unreachable: an empty window always fits a capped cost


class LlmRateLimiter(ABC):
    """Waits until a call to a provider is within its limits (see the module doc)."""

    def __init__(
        self, limits: Mapping[str, LlmRateLimit], *, window_seconds: float = WINDOW_SECONDS
    ) -> None:
        """`limits`: DUCTWORK_LLM_RATE_LIMITS (host or host:port -> per-minute limits).

        `window_seconds` is the minute; tests and the benchmark shrink it to keep short.
        """
        self._limits = {key.lower(): value for key, value in limits.items()}
        self.window = window_seconds

    def limits_for(self, base_url: str) -> tuple[str, LlmRateLimit] | None:
        """The configured limits of the provider at `base_url` (host:port first, then host)."""
        if not self._limits:
            return None
        parts = urlsplit(base_url)
        host = (parts.hostname or "").lower()
        for key in (f"{host}:{parts.port}" if parts.port else None, host):
            if key is not None and key in self._limits:
                return key, self._limits[key]
        return None

    async def acquire(
        self,
        base_url: str,
        tokens: int,
        on_wait: Callable[[float], None] | None = None,
    ) -> Reservation | None:
        """Reserve one request and `tokens` tokens at the provider of `base_url`, and
        return once the call may start (None: no limits configured for it).

        Cancelling the wait gives the reservation back.
        """
        found = self.limits_for(base_url)
        if found is None:
            return None
        key, limit = found
        requests = limit.requests_per_minute
        token_limit = limit.tokens_per_minute
        counted = min(tokens, token_limit) if token_limit is not None else 0
        reservation = await self._reserve(key, counted, requests, token_limit)
        if reservation is None or reservation.waited_seconds <= 0:
            return reservation
        if on_wait is not None:
            on_wait(reservation.waited_seconds)
        try:
            await asyncio.sleep(reservation.waited_seconds)
        except asyncio.CancelledError:
            # Not started: the slot goes to the next caller. Shielded so that the
            # release itself is not cut short by the same cancellation.
            await asyncio.shield(self._release(reservation))
            raise
        return reservation

    async def settle(self, reservation: Reservation | None, tokens: int) -> None:
        """Count the tokens the call really used instead of its estimate."""
        if reservation is None or reservation.tokens == 0 or tokens == reservation.tokens:
            return
        limit = self._limits[reservation.key].tokens_per_minute
        if limit is not None:
            await self._settle(reservation, min(tokens, limit))

    @abstractmethod
    async def _reserve(
        self, key: str, tokens: int, requests_limit: int | None, tokens_limit: int | None
    ) -> Reservation | None: ...

    @abstractmethod
    async def _release(self, reservation: Reservation) -> None: ...

    @abstractmethod
    async def _settle(self, reservation: Reservation, tokens: int) -> None: ...

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""


@dataclass(slots=True)
class _Entry:
    when: float
    cost: int
    entry_id: str


class MemoryLlmLimiter(LlmRateLimiter):
    """The limits of one process (embedded deployments)."""

    def __init__(
        self,
        limits: Mapping[str, LlmRateLimit],
        clock: Callable[[], float] = time.monotonic,
        *,
        window_seconds: float = WINDOW_SECONDS,
    ) -> None:
        """`clock`: seconds, monotonic (tests pass their own)."""
        super().__init__(limits, window_seconds=window_seconds)
        self._clock = clock
        self._logs: dict[tuple[str, str], deque[_Entry]] = {}

    def _log(self, key: str, dimension: str) -> deque[_Entry]:
        entries = self._logs.setdefault((key, dimension), deque())
        horizon = self._clock() - self.window
        while entries and entries[0].when <= horizon:
            entries.popleft()
        return entries

    async def _reserve(
        self, key: str, tokens: int, requests_limit: int | None, tokens_limit: int | None
    ) -> Reservation:
        # No await from here to the end: the reservation is atomic within the process.
        now = self._clock()
        wanted = [("req", 1, requests_limit), ("tok", tokens, tokens_limit)]
        start = now
        for dimension, cost, limit in wanted:
            if limit is not None:
                log_ = [(e.when, e.cost) for e in self._log(key, dimension)]
                start = max(start, _fit(log_, cost, limit, now, self.window))
        entry_id = uuid.uuid4().hex
        for dimension, cost, limit in wanted:
            if limit is not None:
                self._log(key, dimension).append(_Entry(start, cost, entry_id))
        return Reservation(key, entry_id, tokens if tokens_limit else 0, start, start - now)

    async def _release(self, reservation: Reservation) -> None:
        for dimension in ("req", "tok"):
            entries = self._logs.get((reservation.key, dimension))
            if entries:
                kept = [e for e in entries if e.entry_id != reservation.entry_id]
                entries.clear()
                entries.extend(kept)

    async def _settle(self, reservation: Reservation, tokens: int) -> None:
        for entry in self._logs.get((reservation.key, "tok"), ()):
            if entry.entry_id == reservation.entry_id:
                entry.cost = tokens

    async def close(self) -> None:
        """Nothing to release in memory."""


# KEYS: request log, token log (sorted sets: score = start time, member = "id:cost").
# ARGV: entry id, tokens, requests limit ("" = none), tokens limit ("" = none), window.
# Returns {start, now} as strings (Lua numbers would be truncated to integers).
_RESERVE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[5])
local wanted = {{KEYS[1], 1, tonumber(ARGV[3])}, {KEYS[2], tonumber(ARGV[2]), tonumber(ARGV[4])}}
local start = now
for _, want in ipairs(wanted) do
  local key, cost, limit = want[1], want[2], want[3]
  if limit then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    local entries = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
    if cost > limit then cost = limit end
    local total = 0
    local last = now
    for i = 1, #entries, 2 do
      total = total + tonumber(string.match(entries[i], ':(%d+)$'))
      last = math.max(last, tonumber(entries[i + 1]))
    end
    local fit = last
    if total + cost > limit then
      for i = 1, #entries, 2 do
        total = total - tonumber(string.match(entries[i], ':(%d+)$'))
        if total + cost <= limit then
          fit = math.max(last, tonumber(entries[i + 1]) + window)
          break
        end
      end
    end
    if fit > start then start = fit end
  end
end
for _, want in ipairs(wanted) do
  local key, cost, limit = want[1], want[2], want[3]
  if limit then
    if cost > limit then cost = limit end
    redis.call('ZADD', key, start, ARGV[1] .. ':' .. cost)
    redis.call('EXPIRE', key, math.ceil(start - now + window) + 1)
  end
end
return {tostring(start), tostring(now)}
"""

# KEYS: token log. ARGV: old member, new member. Keeps the entry's start time.
_SETTLE_SCRIPT = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZADD', KEYS[1], score, ARGV[2])
end
return 0
"""


class RedisLlmLimiter(LlmRateLimiter):
    """Limits shared by every process using the same Redis (scaled-out deployments).

    A Redis that is down or erroring lets calls through (logged): a rate limiter
    must not stop every LLM call with it; the provider's own 429s, retried by the
    SDK, are the fallback.
    """

    def __init__(
        self,
        limits: Mapping[str, LlmRateLimit],
        redis_url: str,
        *,
        namespace: str,
        window_seconds: float = WINDOW_SECONDS,
    ) -> None:
        """Connect lazily to `redis_url`; keys live under `{namespace}:llm:rate:`."""
        super().__init__(limits, window_seconds=window_seconds)
        self._url = redis_url
        self._prefix = f"{namespace}:llm:rate:"
        self._redis: Redis | None = None

    def _client(self) -> Redis:
        if self._redis is None:
            from redis.asyncio import Redis

            from ductwork.events.redis import redis_pool

            self._redis = Redis(
                connection_pool=redis_pool(
                    self._url, max_connections=16, client_name="ductwork-llm-limits"
                )
            )
        return self._redis

    def _keys(self, key: str) -> list[str]:
        return [f"{self._prefix}{key}:req", f"{self._prefix}{key}:tok"]

    async def _reserve(
        self, key: str, tokens: int, requests_limit: int | None, tokens_limit: int | None
    ) -> Reservation | None:
        from ductwork.events.redis import REDIS_ERRORS

        entry_id = uuid.uuid4().hex
        args: list[str | int | float] = [
            entry_id,
            tokens,
            "" if requests_limit is None else requests_limit,
            "" if tokens_limit is None else tokens_limit,
            self.window,
        ]
        try:
            reply = await self._client().eval(_RESERVE_SCRIPT, 2, *self._keys(key), *args)  # type: ignore[no-untyped-call]
        except REDIS_ERRORS:
            log.warning("LLM rate limiter unavailable; letting a call to %s through", key)
            return None
        start, now = (float(part) for part in reply)
        return Reservation(key, entry_id, tokens if tokens_limit else 0, start, start - now)

    async def _release(self, reservation: Reservation) -> None:
        from ductwork.events.redis import REDIS_ERRORS

        request_key, token_key = self._keys(reservation.key)
        try:
            await self._client().zrem(request_key, f"{reservation.entry_id}:1")
            await self._client().zrem(token_key, f"{reservation.entry_id}:{reservation.tokens}")
        except REDIS_ERRORS:
            log.warning("LLM rate limiter unavailable; a released slot stays counted")

    async def _settle(self, reservation: Reservation, tokens: int) -> None:
        from ductwork.events.redis import REDIS_ERRORS

        old = f"{reservation.entry_id}:{reservation.tokens}"
        new = f"{reservation.entry_id}:{tokens}"
        try:
            await self._client().eval(_SETTLE_SCRIPT, 1, self._keys(reservation.key)[1], old, new)  # type: ignore[no-untyped-call]
        except REDIS_ERRORS:
            log.warning("LLM rate limiter unavailable; a call's token count stays estimated")

    async def close(self) -> None:
        """Release the connection pool."""
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()


def build_llm_limiter(settings: Settings) -> LlmRateLimiter:
    """The limiter the settings call for: Redis-backed when DUCTWORK_REDIS_URL is set."""
    if settings.redis_url:
        return RedisLlmLimiter(
            settings.llm_rate_limits, settings.redis_url, namespace=settings.redis_namespace
        )
    return MemoryLlmLimiter(settings.llm_rate_limits)
