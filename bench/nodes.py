"""Node hot paths measured on their own, outside the executor. Prints a table.

    .venv/bin/python bench/nodes.py [--rounds 1000]

1. a cached ai-processor run: render the prompt, hash it, read the in-process cache;
2. one SMTP send on the mail client's reused connection (aiosmtpd on 127.0.0.1).

These timings used to be assertions in tests/test_ai_processor.py and
tests/test_email_node.py; on a loaded CI machine they failed for reasons that had
nothing to do with the code, so the tests now check what the fast path does (no
upstream request, one connection) and this script measures how fast it is.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_measures
from tests.support.node_context import FakeNodeContext
from tests.support.openai_stub import OpenAIStub
from tests.support.smtp_server import running_smtp_server

from ductwork.cache.memory import MemoryCache
from ductwork.clients.llm import LLMClient
from ductwork.clients.mail import Mailer, build_message
from ductwork.nodes.ai_processor import AiProcessorConfig, AiProcessorNode
from ductwork.nodes.base import NodeServices
from ductwork.settings import Settings

SENDER = "bench@example.com"


def percentile(samples: list[float], pct: int) -> float:
    return statistics.quantiles(samples, n=100)[pct - 1]


async def cached_ai_run_us(rounds: int) -> tuple[float, float]:
    """(median, p99) microseconds of an ai-processor run answered from the cache."""
    with OpenAIStub(api_key="bench", reply=lambda request: "word " * 200) as stub:
        settings = Settings(llm_base_url=stub.base_url, llm_api_key="bench")
        services = NodeServices(
            settings=settings,
            cache=MemoryCache(),
            llm=LLMClient(settings),
            mail=cast(Any, None),
            http=cast(Any, None),
            sql=cast(Any, None),
        )
        node = AiProcessorNode()
        config = AiProcessorConfig.model_validate({"prompt": "Say hello to {{ name }}"})
        ctx = FakeNodeContext(services=services, names={"name": "Ann"})
        try:
            await node.run(config, ctx)  # fills the cache
            samples = []
            for _ in range(rounds):
                started = time.perf_counter()
                result = await node.run(config, ctx)
                samples.append((time.perf_counter() - started) * 1e6)
                assert result.cached
            assert stub.calls == 1
        finally:
            await services.llm.close()
            await services.cache.close()
    return statistics.median(samples), percentile(samples, 99)


async def smtp_send_ms(rounds: int) -> tuple[float, float]:
    """(median, p99) milliseconds of one send on the already open SMTP connection."""
    with running_smtp_server() as server:
        settings = Settings(
            email_backend="smtp",
            email_from=SENDER,
            smtp_host="127.0.0.1",
            smtp_port=server.port,
        )
        mailer = Mailer(settings)
        try:
            warm_up = build_message(to=["ann@example.com"], subject="w", body="b", sender=SENDER)
            await mailer.send(warm_up)  # opens the connection
            samples = []
            for i in range(rounds):
                message = build_message(
                    to=["ann@example.com"], subject=f"m{i}", body="b", sender=SENDER
                )
                started = time.perf_counter()
                await mailer.send(message)
                samples.append((time.perf_counter() - started) * 1000)
            assert server.connection_count == 1
        finally:
            await mailer.close()
    return statistics.median(samples), percentile(samples, 99)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1000)
    args = parser.parse_args()
    median, p99 = await cached_ai_run_us(args.rounds)
    rows = [
        (
            "cached ai-processor run, node alone (median / p99)",
            f"{median:.1f} / {p99:.1f} us",
            "<= 1000 us",
        )
    ]
    median, p99 = await smtp_send_ms(max(args.rounds // 5, 10))
    rows.append(
        (
            "SMTP send on a reused connection (median / p99)",
            f"{median:.3f} / {p99:.3f} ms",
            "< 50 ms",
        )
    )
    print_measures(rows)


if __name__ == "__main__":
    asyncio.run(main())
