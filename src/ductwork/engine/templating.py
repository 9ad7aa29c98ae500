"""Templates (`{{ }}`) and expressions (`value > 10`) in one hardened Jinja2 sandbox, with limits.

The stock `ImmutableSandboxedEnvironment` blocks attribute walking, mutation
of data and `str.format` tricks (jinja2 >= 3.1.6 also closes CVE-2024-56326 and
CVE-2025-27516). On top of it this module makes two hard promises, whatever a
template does:

- **time**: template code never holds the thread (the event loop) longer than
  `timeout_ms` (default 100 ms) without yielding;
- **memory**: the template work of one scope never allocates more than
  `max_bytes` (default 64 MB).

How, and why this way:

1. *Budgets checked before allocating.* Every operator, filter, method and
   global that can build something bigger than its inputs computes the size of
   its result first and charges it to the current `Budget`; over the limit it
   raises before a byte is allocated. That covers `*`, `+`, `~`, `%`, `**`,
   `str.format` / `format` widths and precisions, `ljust`/`rjust`/`center`/
   `zfill`/`expandtabs`/`replace`/`join`/`split`, the padding filters, `join`,
   `replace`, `sum(lists, [])`, `|list`, `|string`, `|tojson`, `|batch`/`|slice`,
   `|wordcount`/`|urlize` and every value written by `{{ }}` (through
   `finalize`). Sizes of nested values are *weights* - leaves counted with
   shared references expanded (`[[[0]*1000]*1000]*1000` weighs 10^9 slots, not
   3,000), memoised per object so the check costs O(distinct objects). List,
   tuple and dict literals are checked the same way, so a nest heavier than the
   budget cannot even be built, and C-level work over any value that exists
   (comparing, sorting, serialising) is bounded by the memory limit. Templates
   are compiled with Jinja's optimizer off and every guarded filter marked
   `pass_context`, so nothing a user wrote is evaluated at compile time:
   `POST /workflows/validate` with a bomb compiles, it never runs it.
2. *A hard wall-clock deadline.* Python-level work (loops, macros, recursion)
   allocates little per step but can spin forever. A single watchdog thread
   raises `_Deadline` into the rendering thread with
   `ctypes.pythonapi.PyThreadState_SetAsyncExc` when a render overruns. A
   SIGALRM / `setitimer` deadline was rejected: signals are only delivered to
   the main thread and the server renders on uvicorn's loop, which is not the
   main thread in tests or under `serve`. Rendering in a subprocess that can be
   killed was rejected too: pickling names and results costs far more than the
   1 ms per-node target. The async exception is only delivered between
   bytecodes, so one long C call could outlive the deadline - which is why (1)
   bounds every C call that is not linear in an existing value's size.
   Disarming is race-free: the watchdog fires under a lock and forgets the
   arming, and `disarm` (under the same lock) clears an exception that was
   fired but not yet delivered. `_Deadline` derives from `BaseException`, so no
   `except Exception` inside Jinja swallows it. Arming costs two lock round
   trips and a dict write (0.8 µs of CPU); with the size checks a render or an
   evaluation costs about 2.5 µs more than without limits (bench/engine.py).
   The watchdog wakes at most once per deadline and sleeps while idle.

A `Budget` is a *scope*: every render inside `with limits():` shares its byte
budget, so a filter over 2,000 items cannot reset it per item. Time is
counted as render time since the scope last yielded the loop: a node that
evaluates per item calls `await budget.breathe()` between items, which yields
when the loop has been held for a while and starts a new time slice; without
it, all renders of the scope share one slice. A render outside any scope gets
a fresh budget of its own. See docs/templates-sandbox.md.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import functools
import gc
import math
import operator
import os
import re
import threading
import time
import types
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, UndefinedError, pass_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.nodes import Concat, Dict, List, Tuple
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from jinja2.utils import Namespace, _PassArg
from markupsafe import EscapeFormatter, Markup

DEFAULT_TIMEOUT_MS = 100
"""How long template code may hold the thread without yielding (`configure` overrides)."""
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""How much one budget scope may allocate (`configure` overrides)."""
MAX_INT_BITS = 4096
"""Largest integer (in bits) that `*` or `**` may build."""
MAX_RANGE = 100_000
"""Longest `range()`."""
MAX_ROUND_DIGITS = 400
"""Largest `round()` precision: `round(1, -10**9)` would compute 10**(10**9) in C."""
DEFAULT_MAX_OUTPUT = 1_000_000
"""Longest rendered template, in characters."""
MAX_CACHED_SOURCE = 2_000_000
"""Characters of template source the compiled caches may hold (compiled code is ~20x)."""
BREATHE_AFTER_SECONDS = 0.01
"""`Budget.breathe` yields to the loop once the scope has held it this long."""

_SLOT = 8  # bytes per reference in a list, tuple or dict slot
_OBJECT = 16  # fixed cost of a container
_STR_PIECE = 56  # a small str object, as `split` or `wordcount` make one per word

_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\{\{|\}\}|\{%|%\}).)*)\}\}\s*$", re.S)


class TemplateFailure(Exception):
    """A template or expression could not be compiled or evaluated (message is user-facing)."""


class LimitExceeded(SecurityError):
    """A template hit the time or memory limit (message names the limit)."""


class _Deadline(BaseException):
    """Raised into the rendering thread by the watchdog; a BaseException so Jinja can't catch it."""


_R = TypeVar("_R")

# Limits -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Limits:
    timeout: float = DEFAULT_TIMEOUT_MS / 1000
    max_bytes: int = DEFAULT_MAX_BYTES


_LIMITS = _Limits()


def configure(*, timeout_ms: float | None = None, max_bytes: int | None = None) -> None:
    """Set the process-wide limits (settings `DUCTWORK_TEMPLATE_TIMEOUT_MS` / `..._MAX_BYTES`)."""
    if timeout_ms is not None:
        if timeout_ms <= 0:
            raise ValueError("timeout_ms must be positive")
        _LIMITS.timeout = timeout_ms / 1000
    if max_bytes is not None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        _LIMITS.max_bytes = max_bytes


def current_limits() -> tuple[float, int]:
    """(timeout in ms, max bytes) as configured."""
    return _LIMITS.timeout * 1000, _LIMITS.max_bytes


def _megabytes(size: int) -> str:
    mb = size / (1024 * 1024)
    return f"{mb:g} MB" if mb >= 1 else f"{size} bytes"


# The watchdog -------------------------------------------------------------------------------

_set_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)
# The same function with a NULL exception clears one that was set but not delivered yet.
_clear_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)


REFIRE_SECONDS = 0.02
"""After a deadline fires, how often it fires again until the render gives up."""


class _Watchdog:
    """One daemon thread that raises `_Deadline` into threads whose render overran."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._armed: dict[int, tuple[float, int]] = {}  # thread id -> (deadline, serial)
        self._fired: dict[int, int] = {}  # thread id -> serial fired but maybe not delivered
        self._serial = 0
        self._sleeping_until: float | None = None  # None: idle (or not started)
        self._thread: threading.Thread | None = None

    def arm(self, deadline: float) -> int:
        """Watch the calling thread until `disarm`; returns the arming's serial."""
        thread_id = threading.get_ident()
        with self._lock:
            if self._fired.pop(thread_id, None) is not None:
                # A stale firing whose disarm was cut short: make sure nothing is pending.
                _clear_async_exc(thread_id, None)
            self._serial += 1
            serial = self._serial
            self._armed[thread_id] = (deadline, serial)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="ductwork-template-watchdog", daemon=True
                )
                self._thread.start()
            elif self._sleeping_until is None or deadline < self._sleeping_until:
                self._wake.notify()
        return serial

    def disarm(self, serial: int) -> bool:
        """Stop watching; True when the deadline fired for this arming. Idempotent."""
        thread_id = threading.get_ident()
        with self._lock:
            armed = self._armed.get(thread_id)
            if armed is not None and armed[1] == serial:
                del self._armed[thread_id]
            if self._fired.get(thread_id) == serial:
                del self._fired[thread_id]
                # Fired but perhaps not delivered yet: it must not land in unrelated code.
                _clear_async_exc(thread_id, None)
                return True
            return False

    def disarm_surely(self, serial: int) -> bool:
        """`disarm`, even when a re-fired deadline lands while it runs."""
        while True:
            try:
                return self.disarm(serial)
            except _Deadline:
                continue

    def _watch(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                for thread_id, (deadline, serial) in list(self._armed.items()):
                    if deadline <= now:
                        # Fire again until disarmed: code run during the render (a
                        # weakref callback, a __del__) may swallow one exception.
                        self._armed[thread_id] = (now + REFIRE_SECONDS, serial)
                        self._fired[thread_id] = serial
                        _set_async_exc(thread_id, _Deadline)
                if self._armed:
                    self._sleeping_until = min(deadline for deadline, _ in self._armed.values())
                    self._wake.wait(max(self._sleeping_until - now, 0.0005))
                else:
                    self._sleeping_until = None
                    self._wake.wait()

    def _after_fork(self) -> None:
        self.__init__()  # type: ignore[misc]


_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WATCHDOG._after_fork)


# Budgets ------------------------------------------------------------------------------------


class Budget:
    """The limits one scope of template work shares: bytes allocated, time holding the loop.

    Create it with `limits()`; renders inside the scope charge it. `used_bytes`
    never goes down; `held_seconds` (render time since the scope last yielded
    the loop) goes back to 0 when `breathe()` yields.
    """

    __slots__ = (
        "_depth",
        "_last_yield",
        "_weights",
        "held_seconds",
        "max_bytes",
        "timeout",
        "used_bytes",
    )

    def __init__(self, *, timeout_ms: float | None = None, max_bytes: int | None = None) -> None:
        self.timeout = _LIMITS.timeout if timeout_ms is None else timeout_ms / 1000
        self.max_bytes = _LIMITS.max_bytes if max_bytes is None else max_bytes
        self.used_bytes = 0
        self.held_seconds = 0.0
        self._depth = 0
        self._last_yield = time.monotonic()
        # id -> (object, weight): the object is kept so its id cannot be reused meanwhile.
        self._weights: dict[int, tuple[Any, int]] = {}

    def charge(self, size: int, what: str = "") -> None:
        """Count `size` bytes about to be allocated; raise before allocating if over the limit."""
        total = self.used_bytes + size
        if total > self.max_bytes:
            doing = f"{what} " if what else ""
            raise LimitExceeded(
                f"{doing}would allocate {total:,} bytes, over the "
                f"{_megabytes(self.max_bytes)} template limit"
            )
        self.used_bytes = total

    def check(self, size: int, what: str) -> None:
        """Refuse a value of `size` bytes (a weight) without charging it."""
        if size > self.max_bytes:
            raise LimitExceeded(
                f"{what} would be {size:,} bytes, over the "
                f"{_megabytes(self.max_bytes)} template limit"
            )

    def time_limit_message(self) -> str:
        """The user-facing message for a render that ran out of time."""
        return f"template exceeded the {self.timeout * 1000:g} ms time limit"

    async def breathe(self) -> None:
        """Between items: yield to the loop if this scope has held it a while (new time slice).

        Bytes keep counting; only the time slice starts again, so heartbeats
        and other runs go on while a long filter works through its items.
        """
        now = time.monotonic()
        if now - self._last_yield >= BREATHE_AFTER_SECONDS:
            await asyncio.sleep(0)
            self._last_yield = time.monotonic()
            self.held_seconds = 0.0

    # Sizes ---------------------------------------------------------------------------------
    def weight(self, value: Any, limit: int | None = None) -> int:
        """Bytes `value` takes once expanded (stringified, serialised, or copied), shared refs
        counted each time; raises as soon as it is over the limit (default: the byte limit,
        with `limit`: a smaller one, worded as the output limit). Memoised per object."""
        scalar = _scalar_weight(value)
        if scalar is not None:
            return scalar
        cached = self._weights.get(id(value))
        if cached is not None and cached[0] is value:
            return cached[1]
        return self._walk(value, limit)

    def remember(self, value: _R, weight: int) -> _R:
        """Record the weight of a value just built from weighed parts (no walk needed later)."""
        self._weights[id(value)] = (value, weight)
        return value

    def _walk(self, root: Any, output_limit: int | None) -> int:
        limit = self.max_bytes if output_limit is None else min(output_limit, self.max_bytes)
        memo = self._weights
        namespaces: list[int] = []  # they change, so they are not remembered past this walk
        on_path = {id(root)}
        children = _children(root)
        if _SLOT * len(children) > limit:
            self._over(limit)
        # Depth first with one iterator per open container, so a wide value is abandoned as
        # soon as what was seen of it is over the limit rather than after listing it all.
        stack: list[list[Any]] = [[root, iter(children), _OBJECT]]
        seen = 0  # each distinct container's contents counted once: a lower bound of the total
        while stack:
            frame = stack[-1]
            child = next(frame[1], _DONE)
            if child is _DONE:
                stack.pop()
                value, _, total = frame
                on_path.discard(id(value))
                memo[id(value)] = (value, total)
                if isinstance(value, Namespace):
                    namespaces.append(id(value))
                if stack:
                    stack[-1][2] += _SLOT + total
                    if stack[-1][2] > limit:
                        self._over(limit)
                continue
            child_weight = _scalar_weight(child)
            if child_weight is None:
                cached = memo.get(id(child))
                if cached is not None and cached[0] is child:
                    child_weight = cached[1]
                elif id(child) in on_path:
                    child_weight = _OBJECT  # a cycle (a namespace holding itself) prints `...`
                else:
                    children = _children(child)
                    if seen + _SLOT * len(children) > limit:  # too wide: no need to look inside
                        self._over(limit)
                    on_path.add(id(child))
                    stack.append([child, iter(children), _OBJECT])
                    continue
            frame[2] += _SLOT + child_weight
            seen += _SLOT + child_weight
            if frame[2] > limit or seen > limit:
                self._over(limit)
        result: int = memo[id(root)][1]
        for key in namespaces:
            memo.pop(key, None)
        return result

    def _over(self, limit: int) -> None:
        if limit != self.max_bytes:
            raise LimitExceeded(f"output exceeds {limit} characters")
        raise LimitExceeded(
            f"a value of over {limit:,} bytes (shared references expanded) is over "
            f"the {_megabytes(limit)} template limit"
        )


_DONE = object()


def _scalar_weight(value: Any) -> int | None:
    if isinstance(value, str):
        return len(value)
    if value is None or isinstance(value, bool | float):
        return _SLOT
    if isinstance(value, int):
        return _SLOT + value.bit_length() // 3
    if isinstance(value, list | tuple | dict | set | frozenset | Namespace):
        return None
    return 64  # other objects (dates, undefined, loop helpers) print short


def _children(value: Any) -> Collection[Any]:
    if isinstance(value, dict):
        return [item for pair in value.items() for item in pair]
    if isinstance(value, Namespace):
        attrs: dict[str, Any] = object.__getattribute__(value, "_Namespace__attrs")
        return [item for pair in attrs.items() for item in pair]
    if isinstance(value, list | tuple | set | frozenset):
        return value
    return ()


_current: contextvars.ContextVar[Budget] = contextvars.ContextVar("ductwork_template_budget")


def current_budget() -> Budget | None:
    """The budget of the enclosing `limits()` scope, if any."""
    return _current.get(None)


def _budget() -> Budget:
    budget = _current.get(None)
    # Outside any render (Jinja folding a constant at compile time): a fresh, strict budget.
    return budget if budget is not None else Budget()


@contextmanager
def limits(*, timeout_ms: float | None = None, max_bytes: int | None = None) -> Iterator[Budget]:
    """A budget scope shared by every template render and expression evaluation inside.

    Hold one around a node's config rendering, or around all items of a node
    run, so the limits cannot be reset per item. Inside an enclosing scope it
    joins that scope (limits given here are then ignored). Example::

        with templating.limits() as budget:
            for item in items:
                compile_expression(condition).evaluate({"item": item})
                await budget.breathe()
    """
    outer = _current.get(None)
    if outer is not None:
        yield outer
        return
    budget = Budget(timeout_ms=timeout_ms, max_bytes=max_bytes)
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)


def _guarded(work: Callable[[], _R]) -> _R:
    """Run one render or evaluation under the scope's time and byte limits."""
    budget = _current.get(None)
    token = None
    if budget is None:
        budget = Budget()
        token = _current.set(budget)
    try:
        if budget._depth:  # a render inside a render: the outer one is timing
            return _translated(work)
        if budget.held_seconds >= budget.timeout:
            raise TemplateFailure(budget.time_limit_message())
        started = time.monotonic()
        budget._depth = 1
        serial = 0
        # No cyclic garbage collection during a render: a collection runs other objects'
        # finalizers (a connection pool's __del__), which the deadline must not cut short.
        collecting = gc.isenabled()
        gc.disable()
        try:
            try:
                serial = _WATCHDOG.arm(started + budget.timeout - budget.held_seconds)
                return work()
            finally:
                # First thing: after this no deadline can land outside the render.
                if _WATCHDOG.disarm_surely(serial):
                    raise _Deadline
        except _Deadline:
            _WATCHDOG.disarm_surely(serial)  # a re-fire may have cut the `finally` short
            raise TemplateFailure(budget.time_limit_message()) from None
        except TemplateFailure:
            raise
        except Exception as exc:
            raise TemplateFailure(_describe(exc)) from None
        finally:
            if collecting:
                gc.enable()
            budget._depth = 0
            budget.held_seconds += time.monotonic() - started
    finally:
        if token is not None:
            _current.reset(token)


def _translated(work: Callable[[], _R]) -> _R:
    try:
        return work()
    except TemplateFailure:
        raise
    except Exception as exc:
        raise TemplateFailure(_describe(exc)) from None


# Checked operations -------------------------------------------------------------------------


def _str_size(value: Any) -> int:
    """Characters `str(value)` would produce (weight for containers)."""
    if isinstance(value, str):
        return len(value)
    return _budget().weight(value)


def _checked_mul(left: Any, right: Any) -> Any:
    budget = _budget()
    for seq, count in ((left, right), (right, left)):
        if isinstance(count, int) and not isinstance(seq, int | float):
            if isinstance(seq, str):
                budget.charge(len(seq) * max(count, 0), "'*'")
            elif isinstance(seq, list | tuple):
                count = max(count, 0)
                weight = (budget.weight(seq) - _OBJECT) * count + _OBJECT
                budget.check(weight, "'*' result")
                budget.charge(_OBJECT + _SLOT * len(seq) * count, "'*'")
                return budget.remember(operator.mul(left, right), weight)
            return operator.mul(left, right)
    if isinstance(left, int) and isinstance(right, int):
        bits = left.bit_length() + right.bit_length()
        if bits > MAX_INT_BITS:
            raise LimitExceeded(f"'*' result would exceed {MAX_INT_BITS} bits")
        budget.charge(bits // 8, "'*'")
    return operator.mul(left, right)


def _checked_add(left: Any, right: Any) -> Any:
    if isinstance(left, str) and isinstance(right, str):
        _budget().charge(len(left) + len(right), "'+'")
    elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
        budget = _budget()
        weight = budget.weight(left) + budget.weight(right) - _OBJECT
        budget.check(weight, "'+' result")
        budget.charge(_OBJECT + _SLOT * (len(left) + len(right)), "'+'")
        return budget.remember(operator.add(left, right), weight)
    return operator.add(left, right)


def _checked_pow(base: Any, exponent: Any) -> Any:
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and abs(base) > 1
        and exponent * math.log2(abs(base)) > MAX_INT_BITS
    ):
        raise LimitExceeded(f"'**' result would exceed {MAX_INT_BITS} bits")
    if isinstance(base, float) or isinstance(exponent, float):
        try:
            return math.pow(base, exponent)
        except (OverflowError, ValueError) as exc:
            raise SecurityError(f"'**' failed: {exc}") from None
    return operator.pow(base, exponent)


_PRINTF = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[#0\- +]*(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d+))?[hlL]?(?P<conv>.)",
    re.S,
)


def _printf_size(fmt: str, args: Any) -> int:
    """An upper bound on the length of `fmt % args` (widths and precisions included)."""
    if isinstance(args, tuple):
        positional = list(args)
    elif isinstance(args, Mapping):
        positional = []
    else:
        positional = [args]
    size = len(fmt)
    index = 0

    def take() -> Any:
        nonlocal index
        value = positional[index] if index < len(positional) else None
        index += 1
        return value

    for spec in _PRINTF.finditer(fmt):
        if spec["conv"] == "%":
            continue
        width = take() if spec["width"] == "*" else int(spec["width"] or 0)
        precision = take() if spec["prec"] == "*" else int(spec["prec"] or 0)
        if spec["key"] is not None and isinstance(args, Mapping):
            value = args.get(spec["key"])
        else:
            value = take()
        width = width if isinstance(width, int) else 0
        precision = precision if isinstance(precision, int) else 0
        size += max(abs(width), _str_size(value) + abs(precision) + 32)
    return size


def _checked_mod(left: Any, right: Any) -> Any:
    if isinstance(left, str):
        _budget().charge(_printf_size(left, right), "'%' formatting")
    return operator.mod(left, right)


_FORMAT_SPEC = re.compile(
    r"^(?:.?[<>=^])?[+\- ]?z?#?0?(?P<width>\d+)?[_,]?(?:\.(?P<prec>\d+))?[a-zA-Z%]?$", re.S
)


def _format_size(value: Any, spec: str) -> int:
    match = _FORMAT_SPEC.match(spec)
    if match is None:  # a strftime-style spec: each directive prints a few characters
        return _str_size(value) + 16 * len(spec)
    width = int(match["width"] or 0)
    precision = int(match["prec"] or 0)
    return max(width, _str_size(value) + precision + 32)


class _CheckedFormatter(SandboxedFormatter):
    """`str.format` in the sandbox, with widths, precisions and conversions charged first."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        _budget().charge(_format_size(value, format_spec), "format()")
        return super().format_field(value, format_spec)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion is not None:
            _budget().charge(_str_size(value) * (6 if conversion in "ra" else 1), "format()")
        return super().convert_field(value, conversion)


class _CheckedEscapeFormatter(_CheckedFormatter, EscapeFormatter):
    """The same for `Markup.format`, which escapes what it inserts."""


def _checked_format(env: HardenedEnvironment, f_self: str, name: str) -> Callable[..., str]:
    formatter: _CheckedFormatter
    if isinstance(f_self, Markup):
        formatter = _CheckedEscapeFormatter(env, escape=f_self.escape)
    else:
        formatter = _CheckedFormatter(env)
    is_format_map = name == "format_map"

    def format_(*args: Any, **kwargs: Any) -> str:
        if is_format_map:
            if kwargs or len(args) != 1:
                raise TypeError("format_map() takes exactly one argument")
            kwargs, args = args[0], ()
        result = formatter.vformat(f_self, args, kwargs)
        return Markup(result) if isinstance(f_self, Markup) else result

    return format_


def _text_method_cost(s: str, name: str, args: tuple[Any, ...]) -> int:
    """Bytes a str method would allocate (an upper bound), computed without calling it."""
    if name in ("center", "ljust", "rjust", "zfill"):
        width = args[0] if args else 0
        return max(len(s), width if isinstance(width, int) else 0)
    if name == "expandtabs":
        tabsize = args[0] if args else 8
        return len(s) + s.count("\t") * max(tabsize if isinstance(tabsize, int) else 8, 0)
    if name == "replace":
        return _replace_size(s, *args[:3])
    if name == "join":
        return 0  # charged by the wrapper once the items are known
    if name in ("split", "rsplit", "splitlines", "partition", "rpartition"):
        return len(s) + (len(s) // 2 + 2) * (_STR_PIECE + _SLOT)
    if name in ("upper", "lower", "title", "capitalize", "swapcase", "casefold"):
        return 3 * len(s)  # case mappings can triple a string ('ﬃ'.upper() == 'FFI')
    if name.startswith("is") or name in _COUNTING_METHODS:
        return 0
    return len(s)


_COUNTING_METHODS = frozenset(
    {"find", "rfind", "index", "rindex", "count", "startswith", "endswith", "__len__"}
)


def _replace_size(s: str, old: Any = "", new: Any = "", count: Any = -1) -> int:
    if not isinstance(old, str) or not isinstance(new, str):
        return len(s)
    occurrences = s.count(old) if old else len(s) + 1
    if isinstance(count, int) and count >= 0:
        occurrences = min(occurrences, count)
    return len(s) + occurrences * max(len(new) - len(old), 0)


_UNBOUND_METHODS = (
    types.MethodDescriptorType,
    types.ClassMethodDescriptorType,
    types.WrapperDescriptorType,
)

_REFUSED_METHODS = frozenset({"translate", "maketrans", "encode", "to_bytes", "fromkeys"})
"""Methods whose result size depends on a table or a count we don't bound: not needed."""


def _checked_text_method(method: Any, s: str, name: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        if name == "join":
            items = list(args[0]) if args else []
            budget.charge(
                _SLOT * len(items) + sum(_str_size(i) for i in items) + len(s) * len(items),
                "join()",
            )
            return method(items)
        budget.charge(_text_method_cost(s, name, args), f"{name}()")
        return method(*args, **kwargs)

    return functools.update_wrapper(call, method)


def _safe_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise LimitExceeded(f"range() of {len(result)} items exceeds the limit of {MAX_RANGE}")
    return result


def _checked_sum(iterable: Iterable[Any], start: Any = 0) -> Any:
    total = start
    for item in iterable:
        total = _checked_add(total, item)
    return total


def _checked_list(value: Any = ()) -> list[Any]:
    return _materialise(value, "list()")


def _materialise(value: Any, what: str) -> list[Any]:
    budget = _budget()
    if isinstance(value, str):
        budget.charge(_OBJECT + len(value) * (_SLOT + _STR_PIECE), what)
        return list(value)
    if isinstance(value, list | tuple | dict | set | frozenset | range):
        budget.charge(_OBJECT + _SLOT * len(value), what)
        return list(value)
    items: list[Any] = []
    for item in value:  # an iterator: count as it goes (a Python loop, so the deadline applies)
        budget.charge(_SLOT, what)
        items.append(item)
    return items


def _checked_sorted(value: Any, *args: Any, **kwargs: Any) -> list[Any]:
    return sorted(_materialise(value, "sorted()"), *args, **kwargs)


def _checked_str(value: Any = "") -> str:
    _budget().charge(_str_size(value), "str()")
    return str(value)


def _check_round_digits(ndigits: Any) -> None:
    if isinstance(ndigits, int) and abs(ndigits) > MAX_ROUND_DIGITS:
        raise LimitExceeded(f"round() precision {ndigits} exceeds {MAX_ROUND_DIGITS}")


def _checked_round(number: Any, ndigits: Any = None) -> Any:
    _check_round_digits(ndigits)
    return round(number, ndigits)


def _now() -> datetime:
    return datetime.now(UTC)


# Filters ------------------------------------------------------------------------------------

_Estimate = Callable[..., int]


def _after_str(factor: int) -> _Estimate:
    def estimate(value: Any, *args: Any, **kwargs: Any) -> int:
        return factor * _str_size(value)

    return estimate


def _pad_estimate(value: Any, width: Any = 80, *args: Any, **kwargs: Any) -> int:
    return max(_str_size(value), width if isinstance(width, int) else 0)


def _indent_estimate(value: Any, width: Any = 4, *args: Any, **kwargs: Any) -> int:
    prefix = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    text = _str_size(value)
    lines = value.count("\n") + 1 if isinstance(value, str) else text
    return text + lines * max(prefix, 0)


def _wordwrap_estimate(
    value: Any,
    width: Any = 79,
    break_long_words: Any = True,
    wrapstring: Any = None,
    *args: Any,
    **kwargs: Any,
) -> int:
    wrap = kwargs.get("wrapstring", wrapstring)
    wrap_len = len(wrap) if isinstance(wrap, str) else 1
    columns = width if isinstance(width, int) and width > 0 else 1
    text = _str_size(value)
    lines: int = text // columns + (value.count("\n") if isinstance(value, str) else 0) + 1
    # textwrap splits into word/space chunks first: one small str per chunk.
    return text * (_STR_PIECE + _SLOT) + lines * wrap_len


def _truncate_estimate(
    value: Any, length: Any = 255, killwords: Any = False, end: Any = "...", *a: Any, **k: Any
) -> int:
    end = k.get("end", end)
    return _str_size(value) + (len(end) if isinstance(end, str) else 0)


def _replace_estimate(value: Any, old: Any = "", new: Any = "", count: Any = None) -> int:
    return _replace_size(
        value if isinstance(value, str) else str(value), old, new, -1 if count is None else count
    )


def _format_filter_estimate(value: Any, *args: Any, **kwargs: Any) -> int:
    return _printf_size(value if isinstance(value, str) else "", kwargs or args)


def _batch_estimate(value: Any, linecount: Any = 1, fill_with: Any = None) -> int:
    size = _OBJECT + 2 * _SLOT * _length(value)
    if fill_with is not None and isinstance(linecount, int):
        size += _SLOT * max(linecount, 0)
    return size


def _slice_estimate(value: Any, slices: Any = 1, fill_with: Any = None) -> int:
    count = slices if isinstance(slices, int) else 0
    return _OBJECT + 2 * _SLOT * _length(value) + (_OBJECT + _SLOT) * max(count, 0)


def _round_estimate(value: Any, precision: Any = 0, *args: Any, **kwargs: Any) -> int:
    _check_round_digits(precision)
    return _SLOT


def _length(value: Any) -> int:
    try:
        return len(value)
    except TypeError:
        return 0


def _copy_estimate(value: Any, *args: Any, **kwargs: Any) -> int:
    if isinstance(value, str):  # one str object per character
        return _OBJECT + len(value) * (_SLOT + _STR_PIECE)
    return _OBJECT + _SLOT * _length(value)


def _nothing(value: Any, *args: Any, **kwargs: Any) -> int:
    return 0


_FILTER_COSTS: dict[str, _Estimate] = {
    # Strings out of anything (str() of the value, maybe larger).
    "string": _after_str(1),
    "safe": _after_str(1),
    "escape": _after_str(6),
    "e": _after_str(6),
    "forceescape": _after_str(6),
    "tojson": _after_str(6),
    "pprint": _after_str(16),
    "upper": _after_str(3),
    "lower": _after_str(3),
    "title": _after_str(3),
    "capitalize": _after_str(3),
    "trim": _after_str(1),
    "striptags": _after_str(2),
    "urlencode": _after_str(12),
    "xmlattr": _after_str(6),
    "wordcount": _after_str(_STR_PIECE + _SLOT),
    "urlize": _after_str(40),
    "filesizeformat": _nothing,
    "reverse": _after_str(1),
    # Widths and counts chosen by the template.
    "center": _pad_estimate,
    "indent": _indent_estimate,
    "wordwrap": _wordwrap_estimate,
    "truncate": _truncate_estimate,
    "replace": _replace_estimate,
    "format": _format_filter_estimate,
    "batch": _batch_estimate,
    "slice": _slice_estimate,
    "round": _round_estimate,
    # New containers the size of the input.
    "list": _copy_estimate,
    "sort": _copy_estimate,
    "dictsort": lambda value, *a, **k: _OBJECT + 9 * _SLOT * _length(value),
    "groupby": lambda value, *a, **k: _OBJECT + 12 * _SLOT * _length(value),
    "unique": _copy_estimate,
    "items": _nothing,
    # Lazy or O(1): the deadline covers their Python loops.
    "map": _nothing,
    "select": _nothing,
    "reject": _nothing,
    "selectattr": _nothing,
    "rejectattr": _nothing,
    "attr": _nothing,
    "default": _nothing,
    "d": _nothing,
    "first": _nothing,
    "last": _nothing,
    "random": _nothing,
    "length": _nothing,
    "count": _nothing,
    "min": _nothing,
    "max": _nothing,
    "int": _nothing,
    "float": _nothing,
    "abs": _nothing,
    "mark_safe": _after_str(1),
}


def _guard_filter(name: str, func: Callable[..., Any], estimate: _Estimate) -> Callable[..., Any]:
    """`func` with its cost charged first, keeping its `pass_*` marker (a lost marker made
    `truncate` and `wordwrap` fail); `pass_context` also stops Jinja folding it at compile time."""
    pass_arg = _PassArg.from_obj(func)

    @functools.wraps(func)
    def guarded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        _budget().charge(estimate(value, *args, **kwargs), f"|{name}")
        if pass_arg is _PassArg.context:
            return func(context, value, *args, **kwargs)
        if pass_arg is _PassArg.eval_context:
            return func(context.eval_ctx, value, *args, **kwargs)
        if pass_arg is _PassArg.environment:
            return func(context.environment, value, *args, **kwargs)
        return func(value, *args, **kwargs)

    guarded.__dict__.pop("jinja_pass_arg", None)
    return pass_context(guarded)


@pass_context
def _join_filter(context: Context, value: Any, d: str = "", attribute: Any = None) -> str:
    from jinja2.filters import sync_do_join

    items = _materialise(value, "|join")
    if attribute is not None:
        items = [context.environment.getitem(item, attribute) for item in items]
    _budget().charge(sum(_str_size(i) for i in items) + len(d) * len(items), "|join")
    return sync_do_join(context.eval_ctx, items, d)


@pass_context
def _sum_filter(context: Context, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
    if attribute is not None:
        from jinja2.filters import make_attrgetter

        getter = make_attrgetter(context.environment, attribute)
        iterable = (getter(item) for item in iterable)
    return _checked_sum(iterable, start)


# Code generation ----------------------------------------------------------------------------


class _CheckedCodeGenerator(CodeGenerator):
    """Routes `~` and list/tuple/dict literals through size checks."""

    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            escape = "context.eval_ctx.autoescape"
        else:
            escape = "True" if frame.eval_ctx.autoescape else "False"
        self.write("environment.checked_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(f"), {escape})")

    def visit_List(self, node: List, frame: Frame) -> None:
        self.write("environment.checked_literal(")
        super().visit_List(node, frame)
        self.write(")")

    def visit_Dict(self, node: Dict, frame: Frame) -> None:
        self.write("environment.checked_literal(")
        super().visit_Dict(node, frame)
        self.write(")")

    def visit_Tuple(self, node: Tuple, frame: Frame) -> None:
        if node.ctx != "load":
            super().visit_Tuple(node, frame)
            return
        self.write("environment.checked_literal(")
        super().visit_Tuple(node, frame)
        self.write(")")


def _finalize(value: Any) -> Any:
    """Every `{{ }}` value: its printed size is charged before it is turned into text."""
    budget = _budget()
    if isinstance(value, str):
        budget.charge(len(value), "output")
    else:
        # No template prints more than DEFAULT_MAX_OUTPUT: stop weighing a big value there.
        budget.charge(budget.weight(value, DEFAULT_MAX_OUTPUT), "output")
    return value


class HardenedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox all templates and expressions run in."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _CheckedCodeGenerator

    def __init__(self, *, autoescape: bool = False) -> None:
        super().__init__(
            undefined=StrictUndefined,
            autoescape=autoescape,
            keep_trailing_newline=True,
            optimized=False,  # no constant folding: user expressions never run at compile time
            finalize=_finalize,
        )
        self.globals.pop("lipsum", None)
        self.globals.update(
            range=_safe_range,
            len=len,
            int=int,
            float=float,
            str=_checked_str,
            bool=bool,
            list=_checked_list,
            min=min,
            max=max,
            sum=_checked_sum,
            abs=abs,
            round=_checked_round,
            sorted=_checked_sorted,
            now=_now,
        )
        for name, func in list(self.filters.items()):
            estimate = _FILTER_COSTS.get(name)
            if estimate is None:
                # A filter nobody reviewed for its allocations is not offered.
                del self.filters[name]
            else:
                self.filters[name] = _guard_filter(name, func, estimate)
        self.filters["join"] = _join_filter
        self.filters["sum"] = _sum_filter

    _binops: Mapping[str, Callable[[Any, Any], Any]] = {
        "*": _checked_mul,
        "**": _checked_pow,
        "+": _checked_add,
        "%": _checked_mod,
    }

    def getattr(self, obj: Any, attribute: str) -> Any:
        # `input.values` or `outputs.x.items` mean the data's keys, not dict methods.
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)

    def wrap_str_format(self, value: Any) -> Callable[..., Any] | None:
        """Every builtin method a template reaches (by attribute, item or `|attr`) passes here."""
        if isinstance(value, _UNBOUND_METHODS):  # `int.to_bytes` reached through the `int` global
            if value.__name__ in _REFUSED_METHODS:
                raise SecurityError(f"{value.__qualname__}() is not available in templates")
            return None
        if not isinstance(value, types.BuiltinMethodType):
            return None
        name = value.__name__
        owner = value.__self__
        if name.startswith("_"):
            return None  # the sandbox's attribute check refuses these next
        if name in _REFUSED_METHODS:
            raise SecurityError(f"{type(owner).__name__}.{name}() is not available in templates")
        if isinstance(owner, str):
            if name in ("format", "format_map"):
                return _checked_format(self, owner, name)
            return _checked_text_method(value, owner, name)
        if isinstance(owner, list | tuple | dict) and name == "copy":
            return functools.update_wrapper(lambda: _materialise(owner, "copy()"), value)
        return None

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        return self._binops[operator_](left, right)

    def checked_concat(self, parts: tuple[Any, ...], autoescape: bool) -> str:
        """`a ~ b ~ c` with the result's size charged first."""
        _budget().charge(sum(_str_size(part) for part in parts), "'~'")
        return markup_join(parts) if autoescape else str_join(parts)

    def checked_literal(self, value: _R) -> _R:
        """A list, tuple or dict literal: its expanded size must fit the budget."""
        budget = _budget()
        budget.check(budget.weight(value), "a literal")
        budget.charge(_OBJECT + _SLOT * len(value), "a literal")  # type: ignore[arg-type]
        return value


ENV = HardenedEnvironment()
HTML_ENV = HardenedEnvironment(autoescape=True)
"""Like `ENV` but inserted values are HTML-escaped (email bodies with `html: true`)."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TemplateSyntaxError):
        return f"syntax error: {exc.message} (line {exc.lineno})"
    if isinstance(exc, UndefinedError):
        return f"undefined variable: {exc.message}"
    if isinstance(exc, SecurityError):  # LimitExceeded too: its message names the limit
        return f"refused by the sandbox: {exc}"
    if isinstance(exc, RecursionError):
        return "refused: recursion too deep (Python's recursion limit)"
    if isinstance(exc, MemoryError):
        return "ran out of memory"
    return f"{type(exc).__name__}: {exc}"


# Templates and expressions ------------------------------------------------------------------


class Template:
    """A compiled `{{ }}` template; a `native` one is a lone `{{ expr }}` and keeps its type."""

    __slots__ = ("_expression", "_template", "max_output", "source")

    def __init__(
        self,
        source: str,
        *,
        native: bool,
        max_output: int = DEFAULT_MAX_OUTPUT,
        autoescape: bool = False,
    ) -> None:
        self.source = source
        self.max_output = max_output
        match = _SINGLE_EXPRESSION.match(source) if native and not autoescape else None
        try:
            if match:
                self._expression: Expression | None = compile_expression(match["expr"])
                self._template = None
            else:
                self._expression = None
                self._template = (HTML_ENV if autoescape else ENV).from_string(source)
        except TemplateFailure:
            raise
        except TemplateError as exc:
            raise TemplateFailure(_describe(exc)) from None
        except RecursionError as exc:
            raise TemplateFailure(_describe(exc)) from None

    def render(self, names: Mapping[str, Any]) -> Any:
        """Render with these names; a native template returns the expression's value."""
        if self._expression is not None:
            return self._expression.evaluate(names)
        assert self._template is not None
        return _guarded(functools.partial(self._render, self._template, names))

    def _render(self, template: Any, names: Mapping[str, Any]) -> str:
        parts: list[str] = []
        size = 0
        for chunk in template.generate(names):
            size += len(chunk)
            if size > self.max_output:
                raise LimitExceeded(f"output exceeds {self.max_output} characters")
            parts.append(chunk)
        return "".join(parts)


class Expression:
    """A compiled expression such as `status == 'active'` or `value > 10`."""

    __slots__ = ("_compiled", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            self._compiled = ENV.compile_expression(source, undefined_to_none=False)
        except TemplateError as exc:
            raise TemplateFailure(_describe(exc)) from None
        except RecursionError as exc:
            raise TemplateFailure(_describe(exc)) from None

    def evaluate(self, names: Mapping[str, Any]) -> Any:
        """The expression's value with these names in scope."""
        return _guarded(functools.partial(self._evaluate, names))

    def _evaluate(self, names: Mapping[str, Any]) -> Any:
        result = self._compiled(**names)
        if isinstance(result, Undefined):
            # StrictUndefined only raises on use; a bare undefined name must fail too.
            str(result)
        elif _scalar_weight(result) is None and not _is_given(result, names):
            # A value built here will be serialised by the engine: it must fit, expanded.
            budget = _budget()
            budget.check(budget.weight(result), "the result")
        return result


def _is_given(value: Any, names: Mapping[str, Any]) -> bool:
    """Whether `value` is (by identity) one of the names or their direct members: data the
    template did not build, whose size the engine already accepted."""
    for given in names.values():
        if given is value:
            return True
        if isinstance(given, dict) and len(given) <= 256:
            for member in given.values():
                if member is value:
                    return True
                if (
                    isinstance(member, dict)
                    and len(member) <= 256
                    and any(inner is value for inner in member.values())
                ):
                    return True
    return False


class _SourceBoundedCache:
    """An LRU of compiled objects bounded by the total length of their sources."""

    def __init__(self, max_chars: int) -> None:
        self._max_chars = max_chars
        self._chars = 0
        self._entries: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], source: str, build: Callable[[], _R]) -> _R:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found  # type: ignore[no-any-return]
        value = build()
        cost = len(source) + 64
        if cost > self._max_chars // 8:
            return value  # too big to keep: one such template must not evict everything
        with self._lock:
            if key not in self._entries:
                self._entries[key] = value
                self._chars += cost
                while self._chars > self._max_chars:
                    (old_key, _) = self._entries.popitem(last=False)
                    self._chars -= len(old_key[0]) + 64
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._chars = 0

    @property
    def chars(self) -> int:
        """Characters of source held."""
        return self._chars


_CACHE = _SourceBoundedCache(MAX_CACHED_SOURCE)


def compile_expression(source: str) -> Expression:
    """Compile (once per distinct source) an expression."""
    return _CACHE.get((source, "expression"), source, lambda: Expression(source))


def compile_template(source: str, native: bool = False, *, autoescape: bool = False) -> Template:
    """Compile (once per distinct source) a template; `autoescape` HTML-escapes inserted values."""
    return _CACHE.get(
        (source, native, autoescape),
        source,
        lambda: Template(source, native=native, autoescape=autoescape),
    )


def has_template_syntax(value: str) -> bool:
    """Whether a string contains `{{`, `{%` or `{#` and so needs rendering."""
    return "{{" in value or "{%" in value or "{#" in value


def referenced_names(source: str) -> set[str]:
    """Top-level names a template reads (for validation and docs)."""
    from jinja2 import meta

    try:
        return set(meta.find_undeclared_variables(ENV.parse(source)))
    except TemplateError:
        return set()


def iter_string_paths(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(dotted path, string) for every string in a nested dict/list config."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from iter_string_paths(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from iter_string_paths(item, f"{path}[{index}]")


__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT_MS",
    "ENV",
    "HTML_ENV",
    "Budget",
    "Expression",
    "LimitExceeded",
    "Template",
    "TemplateFailure",
    "compile_expression",
    "compile_template",
    "configure",
    "current_budget",
    "current_limits",
    "has_template_syntax",
    "iter_string_paths",
    "limits",
    "referenced_names",
]
