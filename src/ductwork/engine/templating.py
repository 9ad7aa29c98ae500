"""Templates (`{{ }}`) and expressions (`value > 10`) in one hardened Jinja2 sandbox.

The stock `ImmutableSandboxedEnvironment` blocks attribute walking, mutation
of data and `str.format` tricks. On top of it this module bounds what a
template can allocate or loop over: `*` and `**` are intercepted (which also
stops compile-time constant folding of `9**(9**9)`), `range` and loop budgets
are small, output length is capped, and the few filters that pad strings are
bounded. Compiled templates and expressions are cached by source, so a
workflow's templates are compiled once, not per run.
"""

from __future__ import annotations

import contextvars
import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, UndefinedError
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_SEQUENCE_LENGTH = 1_000_000
"""Longest string, list or tuple that `*` may build."""
MAX_POWER_BITS = 4096
"""Largest integer (in bits) that `**` may build."""
MAX_RANGE = 10_000
"""Longest `range()`; also the per-render loop budget over all ranges."""
MAX_PAD_WIDTH = 10_000
"""Widest `center` / `indent` / `wordwrap` / `truncate` argument."""
DEFAULT_MAX_OUTPUT = 1_000_000
"""Longest rendered template, in characters."""

_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\{\{|\}\}|\{%|%\}).)*)\}\}\s*$", re.S)


class TemplateFailure(Exception):
    """A template or expression could not be compiled or evaluated (message is user-facing)."""


_range_budget: contextvars.ContextVar[list[int]] = contextvars.ContextVar("_range_budget")


def _safe_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise SecurityError(f"range() of {len(result)} items exceeds the limit of {MAX_RANGE}")
    budget = _range_budget.get(None)
    if budget is not None:
        budget[0] -= len(result)
        if budget[0] < 0:
            raise SecurityError(f"loops over range() exceed the budget of {MAX_RANGE} items")
    return result


def _checked_mul(left: Any, right: Any) -> Any:
    for seq, count in ((left, right), (right, left)):
        if (
            isinstance(seq, str | bytes | list | tuple)
            and isinstance(count, int)
            and len(seq) * count > MAX_SEQUENCE_LENGTH
        ):
            raise SecurityError(
                f"'*' would build a sequence of {len(seq) * count} items "
                f"(limit {MAX_SEQUENCE_LENGTH})"
            )
    return operator.mul(left, right)


def _checked_pow(base: Any, exponent: Any) -> Any:
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and abs(base) > 1
        and exponent * math.log2(abs(base)) > MAX_POWER_BITS
    ):
        raise SecurityError(f"'**' result would exceed {MAX_POWER_BITS} bits")
    if isinstance(base, float) or isinstance(exponent, float):
        try:
            return math.pow(base, exponent)
        except (OverflowError, ValueError) as exc:
            raise SecurityError(f"'**' failed: {exc}") from None
    return operator.pow(base, exponent)


def _bounded(filter_name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    def bounded(value: Any, width: Any = 80, *args: Any, **kwargs: Any) -> Any:
        if isinstance(width, int) and width > MAX_PAD_WIDTH:
            raise SecurityError(f"{filter_name}() width {width} exceeds {MAX_PAD_WIDTH}")
        return func(value, width, *args, **kwargs)

    return bounded


def _now() -> datetime:
    return datetime.now(UTC)


class HardenedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox all templates and expressions run in."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
        self.globals.pop("lipsum", None)
        self.globals.update(
            range=_safe_range,
            len=len,
            int=int,
            float=float,
            str=str,
            bool=bool,
            list=list,
            min=min,
            max=max,
            sum=sum,
            abs=abs,
            round=round,
            sorted=sorted,
            now=_now,
        )
        for name in ("center", "indent", "wordwrap", "truncate"):
            self.filters[name] = _bounded(name, self.filters[name])

    def getattr(self, obj: Any, attribute: str) -> Any:
        # `input.values` or `outputs.x.items` mean the data's keys, not dict methods.
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "*":
            return _checked_mul(left, right)
        if operator_ == "**":
            return _checked_pow(left, right)
        return super().call_binop(context, operator_, left, right)


ENV = HardenedEnvironment()


def _describe(exc: Exception) -> str:
    if isinstance(exc, TemplateSyntaxError):
        return f"syntax error: {exc.message} (line {exc.lineno})"
    if isinstance(exc, UndefinedError):
        return f"undefined variable: {exc.message}"
    if isinstance(exc, SecurityError):
        return f"refused by the sandbox: {exc}"
    return f"{type(exc).__name__}: {exc}"


class Template:
    """A compiled `{{ }}` template; a `native` one is a lone `{{ expr }}` and keeps its type."""

    __slots__ = ("_expression", "_template", "max_output", "source")

    def __init__(self, source: str, *, native: bool, max_output: int = DEFAULT_MAX_OUTPUT) -> None:
        self.source = source
        self.max_output = max_output
        match = _SINGLE_EXPRESSION.match(source) if native else None
        try:
            if match:
                self._expression: Expression | None = compile_expression(match["expr"])
                self._template = None
            else:
                self._expression = None
                self._template = ENV.from_string(source)
        except TemplateFailure:
            raise
        except TemplateError as exc:
            raise TemplateFailure(_describe(exc)) from None

    def render(self, names: Mapping[str, Any]) -> Any:
        """Render with these names; a native template returns the expression's value."""
        if self._expression is not None:
            return self._expression.evaluate(names)
        assert self._template is not None
        token = _range_budget.set([MAX_RANGE])
        try:
            parts: list[str] = []
            size = 0
            for chunk in self._template.generate(names):
                size += len(chunk)
                if size > self.max_output:
                    raise SecurityError(f"output exceeds {self.max_output} characters")
                parts.append(chunk)
            return "".join(parts)
        except TemplateError as exc:
            raise TemplateFailure(_describe(exc)) from None
        except (ArithmeticError, TypeError, ValueError, LookupError, MemoryError) as exc:
            raise TemplateFailure(_describe(exc)) from None
        finally:
            _range_budget.reset(token)


class Expression:
    """A compiled expression such as `status == 'active'` or `value > 10`."""

    __slots__ = ("_compiled", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            self._compiled = ENV.compile_expression(source, undefined_to_none=False)
        except TemplateError as exc:
            raise TemplateFailure(_describe(exc)) from None

    def evaluate(self, names: Mapping[str, Any]) -> Any:
        """The expression's value with these names in scope."""
        token = _range_budget.set([MAX_RANGE])
        try:
            result = self._compiled(**names)
        except TemplateError as exc:
            raise TemplateFailure(_describe(exc)) from None
        except (ArithmeticError, TypeError, ValueError, LookupError, MemoryError) as exc:
            raise TemplateFailure(_describe(exc)) from None
        finally:
            _range_budget.reset(token)
        if isinstance(result, Undefined):
            # StrictUndefined only raises on use; a bare undefined name must fail too.
            try:
                str(result)
            except UndefinedError as exc:
                raise TemplateFailure(_describe(exc)) from None
        return result


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Expression:
    """Compile (once per distinct source) an expression."""
    return Expression(source)


@lru_cache(maxsize=4096)
def compile_template(source: str, native: bool = False) -> Template:
    """Compile (once per distinct source) a template."""
    return Template(source, native=native)


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
    "ENV",
    "Expression",
    "Template",
    "TemplateFailure",
    "compile_expression",
    "compile_template",
    "has_template_syntax",
    "iter_string_paths",
    "referenced_names",
]
