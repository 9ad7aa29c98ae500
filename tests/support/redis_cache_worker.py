"""One "process" of the cross-process single-flight test, run as `python -m` by it.

Usage: `python -m tests.support.redis_cache_worker URL KEY COUNTER READY PARTIES REQUESTS`.
Waits until PARTIES workers have INCRed READY (so they fire together), then
fires REQUESTS concurrent identical `get_or_compute(KEY)` calls whose compute
INCRs COUNTER and takes 0.3 s, and prints `[[value, was_cached], ...]` as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import redis.asyncio as aioredis

from ductwork.cache.redis import RedisCache

COMPUTE_SECONDS = 0.3


async def main(url: str, key: str, counter: str, ready: str, parties: int, requests: int) -> None:
    """Fire the requests once every party is ready; print the results."""
    raw = aioredis.Redis.from_url(url)
    cache = RedisCache(url)

    async def compute() -> bytes:
        await raw.incr(counter)
        await asyncio.sleep(COMPUTE_SECONDS)
        return b"computed"

    try:
        await raw.incr(ready)
        deadline = time.monotonic() + 20
        while int(await raw.get(ready) or 0) < parties:
            if time.monotonic() > deadline:
                raise SystemExit("the other workers never got ready")
            await asyncio.sleep(0.002)
        results = await asyncio.gather(
            *(cache.get_or_compute(key, compute, 60) for _ in range(requests))
        )
        print(json.dumps([[value.decode(), cached] for value, cached in results]))
    finally:
        await cache.close()
        await raw.aclose()


if __name__ == "__main__":
    url, key, counter, ready, parties, requests = sys.argv[1:7]
    asyncio.run(main(url, key, counter, ready, int(parties), int(requests)))
