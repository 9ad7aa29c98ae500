"""LLM rate limit shared through Redis: two worker PROCESSES, one provider budget.

    .venv/bin/python bench/llm_rate_limit.py [--limit 100] [--window 10] [--calls 150]

Each of two processes builds its own `RedisLlmLimiter` + `LLMClient` (as two ductwork
workers would) and fires `--calls` chat requests at once at the OpenAI stub served by
this process. The provider's limit is `--limit` requests per `--window` seconds (the
default, 100 per 10 s, is 600/minute scaled down to keep the run short). The stub records
when each request arrives. The table shows the most calls in any window-long span as
the limiter scheduled them (Redis's clock), as they started (each process's clock,
right after its limiter let it go) and as they arrived (at the stub), and how long
the batch took against the ideal schedule. The schedule is exact; starts and arrivals
can exceed the limit by what a busy machine adds: a call admitted at once is sent when
its event loop gets to it (late when a whole window's burst is admitted together),
while the next window's calls wake on time, which narrows the gap between them. Uses
DUCTWORK_TEST_REDIS_URL (default redis://127.0.0.1:6379/0) under a fresh namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_measures
from tests.support.openai_stub import OpenAIStub, RecordedRequest
from tests.support.redis_cache_bus import redis_url_for_tests

from ductwork.clients.llm import ChatMessage, ChatRequest, LLMClient
from ductwork.clients.llm_limits import RedisLlmLimiter
from ductwork.settings import LlmRateLimit, Settings

API_KEY = "bench-key"


async def _fire(args: dict[str, Any], barrier: Any) -> tuple[list[float], list[float]]:
    settings = Settings(
        **{"DUCTWORK_LLM_API_KEY": API_KEY},
        llm_base_url=args["base_url"],
        llm_max_retries=0,
    )
    limiter = RedisLlmLimiter(
        {"127.0.0.1": LlmRateLimit(requests_per_minute=args["limit"])},
        args["redis_url"],
        namespace=args["namespace"],
        window_seconds=args["window"],
    )
    # What `LLMClient.chat` does with a limiter, spelled out to record each start time.
    client = LLMClient(settings)
    client.warm_up()

    async def send(text: str) -> None:
        request = ChatRequest(
            model="bench/model", messages=[ChatMessage(role="user", content=text)], max_tokens=5
        )
        await client.chat(request)

    # Open the connections first, so connection setup does not smear the arrivals.
    await asyncio.gather(*(send(f"warm {i}") for i in range(args["limit"])))
    await asyncio.get_running_loop().run_in_executor(None, barrier.wait)
    starts: list[float] = []

    scheduled: list[float] = []

    async def one(index: int) -> None:
        reservation = await limiter.acquire(args["base_url"], 10)
        starts.append(time.time())
        assert reservation is not None, "Redis unavailable"
        scheduled.append(reservation.start)
        await send(f"{args['name']} {index}")

    await asyncio.gather(*(one(i) for i in range(args["calls"])))
    await client.close()
    await limiter.close()
    return scheduled, starts


def worker(args: dict[str, Any], barrier: Any, results: Any) -> None:
    """One worker process: its own limiter and client, the shared Redis."""
    results.put(asyncio.run(_fire(args, barrier)))


def most_in_window(times: list[float], window: float) -> int:
    """The most arrivals inside any half-open span [t, t + window)."""
    ordered = sorted(times)
    best = low = 0
    for high, moment in enumerate(ordered):
        while ordered[low] <= moment - window:
            low += 1
        best = max(best, high - low + 1)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=100, help="requests per window")
    parser.add_argument("--window", type=float, default=10.0, help="the window, seconds")
    parser.add_argument("--calls", type=int, default=150, help="requests per process")
    options = parser.parse_args()

    arrivals: list[tuple[float, str]] = []
    lock = threading.Lock()

    def record(request: RecordedRequest) -> str:
        who = request.user_message.split()[0]
        if who != "warm":
            with lock:
                arrivals.append((time.monotonic(), who))
        return "ok"

    with OpenAIStub(api_key=API_KEY, reply=record) as stub:
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(3)
        results = context.Queue()
        namespace = f"bench-{uuid.uuid4().hex}"
        processes = [
            context.Process(
                target=worker,
                args=(
                    {
                        "name": f"p{index}",
                        "base_url": stub.base_url,
                        "redis_url": redis_url_for_tests(),
                        "namespace": namespace,
                        "limit": options.limit,
                        "window": options.window,
                        "calls": options.calls,
                    },
                    barrier,
                    results,
                ),
            )
            for index in range(2)
        ]
        for process in processes:
            process.start()
        barrier.wait()
        began = time.monotonic()
        scheduled: list[float] = []
        starts: list[float] = []
        late_ms: list[float] = []
        for _ in processes:
            their_schedule, their_starts = results.get()
            scheduled += their_schedule
            starts += their_starts
            # Redis runs on this machine: its clock is the processes' clock.
            late_ms += [(b - a) * 1000 for a, b in zip(their_schedule, their_starts, strict=True)]
        for process in processes:
            process.join()
        elapsed = time.monotonic() - began

    total = 2 * options.calls
    times = [moment for moment, _ in arrivals]
    per_process = {name: sum(1 for _, who in arrivals if who == name) for name in ("p0", "p1")}
    ideal = (total - 1) // options.limit * options.window
    print_measures(
        [
            ("configured limit", f"{options.limit} / {options.window:g} s", "-"),
            ("requests answered", f"{len(arrivals)} of {total}", f"{total} (none failed)"),
            (
                "most reserved in any window (Redis clock)",
                str(most_in_window(scheduled, options.window)),
                f"<= {options.limit}",
            ),
            (
                "most starts in any window (client clocks)",
                str(most_in_window(starts, options.window)),
                f"<= {options.limit} + start lateness",
            ),
            (
                "most arrivals in any window (stub)",
                str(most_in_window(times, options.window)),
                f"<= {options.limit} + stub queueing",
            ),
            (
                "start lateness median / max",
                f"{statistics.median(late_ms):.0f} / {max(late_ms):.0f} ms",
                "small against the window",
            ),
            ("batch duration", f"{elapsed:.2f} s", f"~{ideal:g} s (ideal schedule)"),
            ("answered per process", f"{per_process['p0']} / {per_process['p1']}", "all of each"),
        ]
    )


if __name__ == "__main__":
    main()
