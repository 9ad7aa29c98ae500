"""Masking secret values (`***`) wherever a run could surface them.

A `Redactor` is built per run from every secret value of the credentials the
run loaded (`CredentialData.secret_values()`) and the environment secrets
(`DUCTWORK_SECRETS`) its templates read. The executor passes through it node
outputs (before they are stored and before downstream nodes see them), node
errors, event data, `ctx.log` lines, live token deltas, the run's error and
its result.

Each value is masked in several forms: as it is, JSON-escaped (a secret inside
a JSON text that a remote sent back as a string) and as Python's `repr` writes
it (error messages quote values with `!r`). Outputs are checked first on their
encoded JSON bytes, which the executor computes anyway for its size limit:
only an output that holds a secret is walked and rebuilt.

Python logging: while any run holds secrets, `SecretLogFilter` masks every
record (message, arguments, traceback text) of every logger in the process.
It is attached to the `ductwork` logger and, because a logger's filters do
not apply to records of its child loggers (`ductwork.executor`, ...) nor to
libraries, it also runs from the process's log record factory. The set of
active values is refcounted per run (`ACTIVE`), so two runs sharing a
credential do not unmask each other when one ends.

Limits, on purpose: values shorter than `MIN_SECRET_CHARS` are not masked
(they would mask ordinary text; stored credentials cannot be that short); a
secret that a node transforms (upper-cased, hashed, split into pieces, spread
over two streamed token deltas) is not recognised.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any

import orjson

from ductwork.security.credential_types import MIN_SECRET_CHARS

MASK = "***"


def _forms(value: str) -> set[str]:
    """The texts a secret value may appear as: itself, JSON-escaped, as `repr` quotes it."""
    forms = {value}
    forms.add(orjson.dumps(value).decode()[1:-1])
    forms.add(repr(value)[1:-1])
    return {form for form in forms if len(form) >= MIN_SECRET_CHARS}


class Redactor:
    """Masks a fixed set of secret values in texts and JSON-like values."""

    __slots__ = ("_needles", "_texts", "values")

    def __init__(self, values: Iterable[str]) -> None:
        """`values`: the secrets as they are; shorter than MIN_SECRET_CHARS are skipped."""
        self.values = frozenset(
            v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_CHARS
        )
        forms: set[str] = set()
        for value in self.values:
            forms |= _forms(value)
        # Longest first: a form that contains another is replaced whole.
        self._texts = tuple(sorted(forms, key=lambda text: (-len(text), text)))
        # How each form sits inside encoded JSON (what `orjson.dumps(output)` holds).
        self._needles = tuple(dict.fromkeys(orjson.dumps(text)[1:-1] for text in self._texts))

    def __bool__(self) -> bool:
        return bool(self._texts)

    def in_bytes(self, data: bytes) -> bool:
        """True when encoded JSON `data` holds a secret (the fast path for outputs)."""
        # A plain loop: no generator object per call on the hot path.
        for needle in self._needles:  # noqa: SIM110
            if needle in data:
                return True
        return False

    def text(self, text: str) -> str:
        """`text` with every secret replaced by `***`."""
        for secret in self._texts:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def value(self, value: Any) -> Any:
        """A copy of a JSON-like value with every secret in its strings (keys too) masked.

        Iterative, so a deeply nested output cannot exhaust the stack; values that are
        not containers or strings are kept as they are.
        """
        if isinstance(value, str):
            return self.text(value)
        if not isinstance(value, dict | list | tuple):
            return value
        root: list[Any] = [value]
        pending: list[tuple[Any, Any, Any]] = [(root, 0, value)]
        while pending:
            parent, key, item = pending.pop()
            if isinstance(item, str):
                parent[key] = self.text(item)
            elif isinstance(item, dict):
                copy: dict[Any, Any] = {}
                for k, v in item.items():
                    k = self.text(k) if isinstance(k, str) else k
                    copy[k] = v
                    pending.append((copy, k, v))
                parent[key] = copy
            elif isinstance(item, list | tuple):
                items = list(item)
                for index, v in enumerate(items):
                    pending.append((items, index, v))
                parent[key] = items
        return root[0]

    def output(self, value: Any, encoded: bytes) -> tuple[Any, bytes]:
        """(value, its JSON) masked; the same objects back when `encoded` holds no secret."""
        if not self.in_bytes(encoded):
            return value, encoded
        masked = self.value(value)
        return masked, orjson.dumps(masked)


EMPTY = Redactor(())


class ActiveSecrets:
    """The secret values of the runs in progress in this process, refcounted per run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self.redactor: Redactor = EMPTY

    def add(self, values: Iterable[str]) -> None:
        """A run starts using `values` (call `remove` with the same values when it stops)."""
        values = list(values)
        if not values:
            return
        with self._lock:
            self._counts.update(values)
            self.redactor = Redactor(self._counts)

    def remove(self, values: Iterable[str]) -> None:
        """A run stopped using `values`."""
        values = list(values)
        if not values:
            return
        with self._lock:
            self._counts.subtract(values)
            self._counts = +self._counts  # drop the values no run uses any more
            self.redactor = Redactor(self._counts) if self._counts else EMPTY


ACTIVE = ActiveSecrets()
"""The process-wide set the logging filter masks."""

_MASKED = "_ductwork_masked"


class SecretLogFilter(logging.Filter):
    """Masks the secrets of the active runs in a log record's message and traceback."""

    def __init__(self, active: ActiveSecrets = ACTIVE) -> None:
        super().__init__()
        self._active = active

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keeps the record; rewrites its message (and traceback text) when needed."""
        redactor = self._active.redactor
        if not redactor or getattr(record, _MASKED, False):
            return True
        setattr(record, _MASKED, True)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: logging reports it itself
            return True
        masked = redactor.text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # Handlers' formatters use `exc_text` when it is set, so the traceback
            # they print is this masked one.
            record.exc_text = redactor.text(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redactor.text(record.exc_text)
        if record.stack_info:
            record.stack_info = redactor.text(record.stack_info)
        return True


_installed = False
_install_lock = threading.Lock()


def install_log_filter() -> None:
    """Mask active secrets in every log record of the process (idempotent)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        log_filter = SecretLogFilter()
        logging.getLogger("ductwork").addFilter(log_filter)
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            log_filter.filter(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
