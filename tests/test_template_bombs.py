"""Template bombs and sandbox escapes: each ends in a clean TemplateFailure naming the limit.

Every case also checks that the process's peak RSS did not jump by more than
100 MB while it ran (the peak is reset first through /proc/self/clear_refs where
Linux allows it; otherwise `ru_maxrss` is compared, which can only under-report).
"""

from __future__ import annotations

import asyncio
import resource
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from ductwork.engine import templating
from ductwork.engine.templating import TemplateFailure, compile_expression, compile_template
from ductwork.models import NodeStatus, RunStatus
from ductwork.nodes.base import NodeError, NodeServices
from ductwork.nodes.filter import FilterConfig, FilterNode
from ductwork.nodes.transformer import TransformerConfig, TransformerNode
from tests.support.engine import definition, embedded
from tests.support.node_context import FakeNodeContext

RSS_JUMP_LIMIT = 100 * 1024 * 1024


def node_context(input_: Any) -> FakeNodeContext:
    return FakeNodeContext(services=cast(NodeServices, None), input=input_, names={"input": input_})


TIME = "time limit"
BYTES = "template limit"
REFUSED = "refused by the sandbox"
BITS = "bits"
RANGE = "exceeds the limit of"
# Copying 64 MB takes about as long as the time limit on a loaded machine: either may trip.
EITHER = "limit"
# Deep recursion is slow too: the recursion limit or the time limit, whichever comes first.
RECURSION = "recursion too deep|time limit"

LONG = "x" * 10_000
MEGA = "y" * 1_000_000


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@pytest.fixture
def rss_guard() -> Iterator[None]:
    """Fails the test if the peak RSS grew by more than RSS_JUMP_LIMIT while it ran."""
    if _reset_peak() and _status_kb("VmHWM") is not None:
        before = _status_kb("VmRSS") or 0
        yield
        peak = _status_kb("VmHWM") or 0
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        yield
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert peak - before < RSS_JUMP_LIMIT, f"peak RSS grew by {(peak - before) >> 20} MB"


BOMBS: list[tuple[str, str, dict[str, Any], str]] = [
    # id, template, names, what the message must name (a regular expression)
    (
        "nested-for-over-long-strings",
        "{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
        {"s": LONG},
        TIME,
    ),
    (
        "nested-for-with-output",
        "{% for a in s %}{% for b in s %}{{ a }}{% endfor %}{% endfor %}",
        {"s": LONG},
        EITHER,
    ),
    (
        "namespace-string-doubling",
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
        {},
        EITHER,
    ),
    (
        "namespace-plus-doubling",
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
        "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}",
        {},
        EITHER,
    ),
    (
        "namespace-squaring",
        "{% set ns = namespace(n=3) %}{% for i in range(40) %}"
        "{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n > 0 }}",
        {},
        BITS,
    ),
    (
        "namespace-list-doubling-literal",
        "{% set ns = namespace(l=[0]) %}{% for i in range(64) %}"
        "{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l | length }}",
        {},
        BYTES,
    ),
    (
        "list-doubling-plus",
        "{% set ns = namespace(l=[0]) %}{% for i in range(64) %}"
        "{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | length }}",
        {},
        EITHER,
    ),
    ("shared-reference-nest", "{{ ([[[0] * 1000] * 1000] * 1000) | length }}", {}, BYTES),
    (
        "shared-references-tojson",
        "{{ [s, s, s, s] | tojson }}",
        {"s": "y" * 12_000_000},
        BYTES,
    ),
    ("string-times-huge", "{{ 'a' * 10**9 }}", {}, BYTES),
    ("list-times-huge", "{{ [1] * 10**8 }}", {}, BYTES),
    ("power-tower", "{{ 9**(9**9) }}", {}, BITS),
    ("power-big", "{{ 2**100000 }}", {}, BITS),
    ("replace-method", "{{ s.replace('y', 'z' * 100) }}", {"s": MEGA}, BYTES),
    ("replace-filter", "{{ s | replace('y', 'z' * 100) }}", {"s": MEGA}, BYTES),
    ("replace-empty-old", "{{ s | replace('', 'z' * 100) }}", {"s": MEGA}, BYTES),
    (
        "join-filter-repeated-megabytes",
        "{{ [s, s, s, s, s, s, s] | join }}",
        {"s": MEGA * 10},
        BYTES,
    ),
    ("join-method-repeated-megabytes", "{{ s.join(['a'] * 100) }}", {"s": MEGA}, BYTES),
    (
        "join-of-generated",
        "{{ range(100) | map('string') | map('center', 10**6) | join }}",
        {},
        EITHER,
    ),
    ("indent-width", "{{ s | indent(1000) }}", {"s": "\n" * 100_000}, BYTES),
    ("indent-string", "{{ s | indent('x' * 1000) }}", {"s": "\n" * 100_000}, BYTES),
    ("format-method-width", "{{ '{:>300000000}'.format('a') }}", {}, BYTES),
    ("format-nested-width", "{{ '{0:{1}}'.format('a', 300000000) }}", {}, BYTES),
    ("format-precision", "{{ '{:.300000000f}'.format(1.0) }}", {}, BYTES),
    ("format-map-width", "{{ '{a:>300000000}'.format_map({'a': 1}) }}", {}, BYTES),
    ("printf-zero-pad", "{{ '%0300000000d' % 1 }}", {}, BYTES),
    ("printf-star-width", "{{ '%*d' % (300000000, 1) }}", {}, BYTES),
    ("printf-precision", "{{ '%.300000000f' % 1.0 }}", {}, BYTES),
    ("format-filter-printf", "{{ '%0300000000d' | format(1) }}", {}, BYTES),
    ("ljust", "{{ 'a'.ljust(300000000) }}", {}, BYTES),
    ("rjust", "{{ 'a'.rjust(300000000) }}", {}, BYTES),
    ("center-method", "{{ 'a'.center(300000000) }}", {}, BYTES),
    ("zfill", "{{ '1'.zfill(300000000) }}", {}, BYTES),
    ("expandtabs", "{{ s.expandtabs(1000) }}", {"s": "\t" * 100_000}, BYTES),
    ("center-filter", "{{ 'a' | center(300000000) }}", {}, BYTES),
    (
        "wordwrap-wrapstring",
        "{{ s | wordwrap(1, wrapstring='x' * 1000) }}",
        {"s": "a " * 100_000},
        BYTES,
    ),
    ("truncate-end", "{{ s | truncate(10, end='e' * 70000000) }}", {"s": LONG}, BYTES),
    ("sum-lists-global", "{{ sum([[0] * 1000] * 1000, []) | length }}", {}, EITHER),
    ("sum-lists-filter", "{{ ([[0] * 1000] * 1000) | sum(start=[]) | length }}", {}, EITHER),
    ("range-huge", "{{ range(10**9) | length }}", {}, RANGE),
    ("range-list", "{{ range(10**6) | list | length }}", {}, RANGE),
    ("list-of-huge-string", "{{ s | list | length }}", {"s": MEGA * 2}, BYTES),
    ("split-amplifies", "{{ s.split() | length }}", {"s": "ab " * 1_000_000}, BYTES),
    (
        "string-of-nest",
        "{% set ns = namespace(l=[0]) %}{% for i in range(30) %}"
        "{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | string | length }}",
        {},
        EITHER,
    ),
    ("wordcount-huge", "{{ s | wordcount }}", {"s": "ab " * 1_000_000}, BYTES),
    ("urlize-huge", "{{ s | urlize }}", {"s": "http://a.b " * 200_000}, BYTES),
    ("batch-fill", "{{ [1] | batch(10**9, fill_with=0) | list | length }}", {}, BYTES),
    ("slice-count", "{{ [1] | slice(10**9) | list | length }}", {}, BYTES),
    ("escape-huge", "{{ s | e | length }}", {"s": "<" * 12_000_000}, BYTES),
    ("round-digits", "{{ round(1, -10**9) }}", {}, r"round\(\) precision"),
    ("round-filter-digits", "{{ 1 | round(-10**9) }}", {}, r"round\(\) precision"),
    ("macro-recursion", "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}", {}, RECURSION),
    (
        "macro-doubling",
        "{% macro m(n) %}{% if n %}{% set x = m(n - 1) %}{{ x }}{{ x }}{% else %}"
        "xxxxxxxx{% endif %}{% endmacro %}{{ m(40) | length }}",
        {},
        EITHER,
    ),
    (
        "macro-fanout",
        "{% macro m(n) %}{% if n %}{{ m(n - 1) }}{{ m(n - 1) }}{% endif %}{% endmacro %}"
        "{{ m(40) }}",
        {},
        TIME,
    ),
    (
        "caller-recursion",
        "{% macro m() %}{{ caller() }}{% endmacro %}"
        "{% macro r() %}{% call m() %}{{ r() }}{% endcall %}{% endmacro %}{{ r() }}",
        {},
        RECURSION,
    ),
    (
        "recursive-loop",
        "{% for x in [[0]] recursive %}{{ loop([x]) }}{% endfor %}",
        {},
        RECURSION,
    ),
    (
        "loop-over-range-spin",
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        {},
        TIME,
    ),
    (
        "map-select-comprehension",
        "{{ range(100000) | map('string') | select('in', s) | list | length }}",
        {"s": MEGA},
        TIME,
    ),
    (
        "list-comprehension-by-loop",
        "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}"
        "{% set ns.l = ns.l + [s] %}{% endfor %}{{ ns.l | length }}",
        {"s": LONG},
        EITHER,
    ),
    (
        "dict-comprehension-by-loop",
        "{% set ns = namespace(d={}) %}{% for i in range(100000) %}"
        "{% set ns.d = dict(ns.d, **{'k' ~ i: s}) %}{% endfor %}{{ ns.d | length }}",
        {"s": LONG},
        TIME,
    ),
    ("dict-fromkeys", "{{ {}.fromkeys(range(100000), s) | length }}", {"s": MEGA}, REFUSED),
    ("translate", "{{ s.translate({121: 'z' * 1000}) }}", {"s": MEGA}, REFUSED),
    ("to-bytes", "{{ (1).to_bytes(10**9, 'big') | length }}", {}, REFUSED),
    ("encode", "{{ s.encode() }}", {"s": MEGA}, REFUSED),
    ("to-bytes-unbound", "{{ int.to_bytes(1, 10**9, 'big') | length }}", {}, REFUSED),
    (
        "fromkeys-classmethod",
        "{{ dict.fromkeys(range(100000), s) | length }}",
        {"s": MEGA},
        REFUSED,
    ),
    ("lipsum", "{{ lipsum(10**6) }}", {}, "undefined"),
    (
        "pprint-shared-references",
        "{% set a = [0] * 100000 %}{{ [a, a, a, a, a, a, a, a] | pprint }}",
        {},
        BYTES,
    ),
    # Escapes: attribute walking and format-string tricks.
    ("class-mro", "{{ ''.__class__.__mro__ }}", {}, REFUSED),
    ("subclasses", "{{ ().__class__.__base__.__subclasses__() }}", {}, REFUSED),
    ("cycler-globals", "{{ cycler.__init__.__globals__ }}", {}, REFUSED),
    ("joiner-globals", "{{ joiner.__init__.__globals__ }}", {}, REFUSED),
    ("namespace-globals", "{{ namespace.__init__.__globals__ }}", {}, REFUSED),
    ("namespace-attrs", "{% set ns = namespace(a=1) %}{{ ns._Namespace__attrs }}", {}, REFUSED),
    ("func-globals", "{{ range.func_globals }}", {}, "undefined"),
    ("range-globals", "{{ range.__globals__ }}", {}, REFUSED),
    ("loop-internals", "{% for x in [1] %}{{ loop._iterator }}{% endfor %}", {}, REFUSED),
    (
        "loop-globals",
        "{% for x in [1] %}{{ loop.cycle.__func__.__globals__ }}{% endfor %}",
        {},
        REFUSED,
    ),
    ("format-attribute-walk", "{{ '{0.__class__.__mro__}'.format(1) }}", {}, REFUSED),
    ("format-map-walk", "{{ '{a.__class__}'.format_map({'a': 1}) }}", {}, REFUSED),
    ("format-getitem-walk", "{{ '{0[__class__]}'.format(x) }}", {"x": {}}, REFUSED),
    (
        "cve-2024-56326-stored-format",
        "{% set ns = namespace(run='{0.__call__.__builtins__[__import__]}'.format) %}"
        "{{ ns.run(cycler) }}",
        {},
        REFUSED,
    ),
    (
        "cve-2024-56326-via-filter",
        "{% set f = ['{0.__class__.__mro__}'.format] | first %}{{ f(1) }}",
        {},
        REFUSED,
    ),
    (
        "cve-2024-56326-cycler",
        "{% set c = cycler('{0.__class__.__mro__}'.format) %}{{ c.next()(1) }}",
        {},
        REFUSED,
    ),
    (
        "cve-2025-27516-attr-filter",
        "{{ '{0.__call__.__builtins__[__import__]}' | attr('format')(cycler) }}",
        {},
        REFUSED,
    ),
    ("attr-filter-dunder", "{{ '' | attr('__class__') }}", {}, REFUSED),
    ("mutation", "{{ x.append(1) }}", {"x": []}, REFUSED),
    ("dict-mutation", "{{ d.update({'a': 1}) }}", {"d": {"k": 1}}, REFUSED),
]


@pytest.mark.parametrize(
    ("source", "names", "names_the"),
    [pytest.param(source, names, expected, id=case) for case, source, names, expected in BOMBS],
)
def test_bomb_fails_cleanly_naming_the_limit(
    rss_guard: None, source: str, names: dict[str, Any], names_the: str
) -> None:
    template = compile_template(source)
    with pytest.raises(TemplateFailure, match=names_the):
        template.render(names)


def test_corpus_is_large_enough() -> None:
    assert len(BOMBS) >= 40


@pytest.mark.parametrize(
    "source",
    [
        "9**(9**9)",
        "'a' * 10**9",
        "'a' | center(10**9)",
        "'%0300000000d' % 1",
        "[[[0] * 1000] * 1000] * 1000",
        "'{:>300000000}'.format('a')",
    ],
)
def test_compiling_a_bomb_runs_none_of_it(rss_guard: None, source: str) -> None:
    # What `POST /workflows/validate` does: compile only. No constant folding.
    compile_expression(source)
    compile_template("{{ " + source + " }} and text")
    with pytest.raises(TemplateFailure, match=r"limit|bits"):
        compile_expression(source).evaluate({})


def test_messages_name_the_configured_limits() -> None:
    with pytest.raises(TemplateFailure, match=r"template exceeded the 100 ms time limit"):
        compile_template("{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}").render(
            {"s": LONG}
        )
    with pytest.raises(TemplateFailure, match=r"would allocate [\d,]+ bytes, over the 64 MB"):
        compile_template("{{ 'a' * 10**9 }}").render({})


def test_limits_are_configurable() -> None:
    timeout_ms, max_bytes = templating.current_limits()
    try:
        templating.configure(timeout_ms=20, max_bytes=1024 * 1024)
        with pytest.raises(TemplateFailure, match="over the 1 MB template limit"):
            compile_template("{{ ('a' * 2000000) | length }}").render({})
        with pytest.raises(TemplateFailure, match="the 20 ms time limit"):
            compile_template("{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}").render(
                {"s": LONG}
            )
    finally:
        templating.configure(timeout_ms=timeout_ms, max_bytes=max_bytes)
    assert compile_template("{{ ('a' * 2000000) | length }}").render({}) == "2000000"


def test_byte_budget_is_shared_by_a_scope_not_reset_per_render() -> None:
    # 2,000 renders of 100 kB each: fine one at a time, over 64 MB together.
    template = compile_template("{{ 'x' * 100000 ~ value }}")
    for value in range(10):
        template.render({"value": value})
    with templating.limits(), pytest.raises(TemplateFailure, match=BYTES):
        for value in range(2000):
            template.render({"value": value})


def test_time_budget_is_shared_by_a_scope_until_it_breathes() -> None:
    # Each render spins for a while; many of them in one scope without yielding overrun.
    spin = compile_template("{% for i in range(20000) %}{% endfor %}")
    with templating.limits(), pytest.raises(TemplateFailure, match=TIME):
        for _ in range(100_000):
            spin.render({})


async def test_breathing_scope_yields_and_keeps_counting_bytes() -> None:
    spin = compile_template("{% for i in range(2000) %}{% endfor %}{{ 'x' * 100000 }}")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.get_running_loop().create_task(tick())
    try:
        with templating.limits() as budget, pytest.raises(TemplateFailure, match=BYTES):
            for _ in range(2000):
                spin.render({})
                await budget.breathe()
    finally:
        ticker.cancel()
    assert budget.used_bytes > 60 * 1024 * 1024
    assert ticks > 0


async def test_heartbeats_keep_running_while_a_bomb_renders() -> None:
    """A task ticking every 10 ms is never starved for long while bombs are tried on the loop."""
    loop = asyncio.get_running_loop()
    gaps: list[float] = []
    stop = asyncio.Event()

    async def heartbeat() -> None:
        last = loop.time()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = loop.time()
            gaps.append(now - last)
            last = now

    beating = loop.create_task(heartbeat())
    await asyncio.sleep(0.05)
    bombs = [
        ("{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}", {"s": LONG}),
        (
            "{% macro m(n) %}{% if n %}{{ m(n-1) }}{{ m(n-1) }}{% endif %}{% endmacro %}"
            "{{ m(40) }}",
            {},
        ),
        ("{{ '{:>300000000}'.format('a') }}", {}),
    ]
    for source, names in bombs * 3:
        with pytest.raises(TemplateFailure, match="limit"):
            compile_template(source).render(names)
        await asyncio.sleep(0.02)
    stop.set()
    await beating
    # A bound on the mechanism (100 ms limit), not a timing of this machine: generous.
    assert max(gaps) < 1.0


def test_deadline_never_fires_after_a_render_returns() -> None:
    # Many renders that finish close to the deadline: none may leak an exception afterwards.
    templating.configure(timeout_ms=5)
    try:
        spin = compile_template("{% for i in range(3000) %}{% endfor %}done")
        outcomes = set()
        for _ in range(300):
            try:
                outcomes.add(spin.render({}))
            except TemplateFailure as exc:
                outcomes.add(str(exc))
            total = 0
            for i in range(2000):  # plain Python after the render: must never be interrupted
                total += i
    finally:
        templating.configure(timeout_ms=templating.DEFAULT_TIMEOUT_MS)
    assert outcomes <= {"done", "template exceeded the 5 ms time limit"}


def test_compiled_cache_is_bounded_by_source_size() -> None:
    big = "{{ a }}" + "x" * 100_000
    for i in range(200):
        compile_template(big + str(i))
    assert templating._CACHE.chars <= templating.MAX_CACHED_SOURCE


# End to end through the nodes ---------------------------------------------------------------


async def test_filter_node_range_budget_does_not_reset_per_item(rss_guard: None) -> None:
    node = FilterNode()
    config = FilterConfig(condition="('x' * 100000 ~ value) | length > 5", items="input")
    with pytest.raises(NodeError, match=r"config.condition: .*over the 64 MB template limit"):
        await node.run(config, node_context(list(range(2000))))


async def test_filter_node_bomb_condition_fails_on_time(rss_guard: None) -> None:
    node = FilterNode()
    config = FilterConfig(condition="s | map('string') | select('in', s) | list | length > 0")
    with pytest.raises(NodeError, match=r"config.condition: template exceeded the 100 ms"):
        await node.run(config, node_context([{"s": LONG * 100}]))


async def test_filter_node_large_legit_input_passes() -> None:
    node = FilterNode()
    result = await node.run(
        FilterConfig(condition="value % 2 == 0"), node_context(list(range(20_000)))
    )
    assert len(result.output) == 10_000


async def test_transformer_map_budget_spans_items(rss_guard: None) -> None:
    node = TransformerNode()
    config = TransformerConfig(transform_type="map", expression="'%0100000d' % value")
    with pytest.raises(NodeError, match=r"config.expression: .*over the 64 MB template limit"):
        await node.run(config, node_context(list(range(2000))))


async def test_transformer_compose_nest_is_refused(rss_guard: None) -> None:
    node = TransformerNode()
    config = TransformerConfig(
        transform_type="compose", mapping={"nest": "[[[0] * 1000] * 1000] * 1000"}
    )
    with pytest.raises(NodeError, match=r"config.mapping.nest: .*template limit"):
        await node.run(config, node_context({}))


async def test_a_run_with_bombs_ends_failed_naming_the_limit(tmp_path: Path) -> None:
    """Through the engine: a filter bomb and a config-template bomb end in recorded failures."""
    nodes = [
        {"id": "start", "type": "start"},
        {
            "id": "spin",
            "type": "filter",
            "config": {"condition": "s | map('string') | reject('in', u) | list | length > 0"},
        },
        {
            "id": "pad",
            "type": "transformer",
            "config": {"transform_type": "compose", "mapping": {"x": "'{:>300000000}'.format(1)"}},
        },
    ]
    edges = [("start", "spin"), ("start", "pad")]
    async with embedded(tmp_path) as app:
        run = await app.execute_definition(
            definition(nodes, edges), {"rows": [{"s": "x" * 200_000, "u": "y" * 200_000}]}
        )
    assert run.status is RunStatus.ERROR
    failed = {n: s.error for n, s in run.node_states.items() if s.status is NodeStatus.FAILED}
    assert failed, run.node_states
    for error in failed.values():
        assert "time limit" in (error or "") or "template limit" in (error or ""), failed


def test_validate_endpoint_compiles_bombs_without_running_them(
    rss_guard: None, client: httpx.Client
) -> None:
    """`POST /workflows/validate` compiles: no constant folding, no cache of hundreds of MB."""
    sources = [
        "9**(9**9)",
        "'a' * 10**9",
        "'%0300000000d' % 1",
        "'{:>300000000}'.format('a')",
        "'a' | center(10**9)",
        "[[[0] * 1000] * 1000] * 1000",
        "range(10**9) | list",
    ]
    mapping = {f"m{i}": source for i, source in enumerate(sources)}
    body = {
        "name": "bombs",
        "nodes": [
            {
                "id": "t",
                "type": "transformer",
                "config": {"transform_type": "compose", "mapping": mapping},
            },
            {"id": "e", "type": "end", "config": {"output": "{{ 'x' * 10**9 }}{{ 9**(9**9) }}"}},
        ],
        "edges": [{"from": "t", "to": "e"}],
    }
    for _ in range(3):
        response = client.post("/workflows/validate", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["valid"] is True, response.text


def test_deadline_works_off_the_main_thread() -> None:
    """The server renders on uvicorn's loop thread, not the main thread: no signals there."""
    outcome: list[str] = []

    def render_bomb() -> None:
        try:
            compile_template("{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}").render(
                {"s": LONG}
            )
        except TemplateFailure as exc:
            outcome.append(str(exc))

    worker = threading.Thread(target=render_bomb)
    worker.start()
    worker.join(timeout=30)
    assert outcome == ["template exceeded the 100 ms time limit"]


def test_a_deadline_swallowed_once_fires_again() -> None:
    """Code run inside a render (a weakref callback, a __del__) may eat the exception."""
    import time as clock

    from ductwork.engine.templating import _WATCHDOG, _Deadline

    serial = _WATCHDOG.arm(clock.monotonic() + 0.01)
    swallowed = 0
    try:
        give_up = clock.monotonic() + 30  # a hang guard, not a timing
        while clock.monotonic() < give_up:
            try:
                while clock.monotonic() < give_up:
                    pass
            except _Deadline:
                swallowed += 1
                if swallowed == 2:
                    break
    finally:
        fired = _WATCHDOG.disarm_surely(serial)
    assert swallowed == 2 and fired


def test_no_garbage_collection_runs_finalizers_inside_a_render() -> None:
    """A deadline landing in another object's __del__ (run by a collection) would cut it short."""
    import gc

    assert gc.isenabled()
    assert templating._guarded(gc.isenabled) is False
    assert gc.isenabled()
