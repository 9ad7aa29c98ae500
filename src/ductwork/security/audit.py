"""The audit log: who did what, to what, when and from where; append-only, in the store.

`AuditLog.record` is called by the service layer after a write action took effect
(workflow create/update/delete, run start/cancel/retry, and by the security
services for keys, credentials, logins and users). Design decisions:

- **It awaits the write.** The audit is the record of what happened, so an
  action is not answered before its entry is stored; the cost is one insert per
  write action. Reads never record anything.
- **It never raises into its caller.** The action has happened already when it
  is recorded; failing the request then would tell the client it did not. A
  failed write is logged at error level (action and target, never details)
  instead. Cancellation still propagates.
- **It never holds a secret.** Callers pass small `details` dicts of their own;
  as a second line of defence, keys that name secret-bearing things (password,
  token, key, secret, data, ...; unless the value is a boolean) and values that
  look like a ductwork API key are dropped (the drop logged by key name), nested
  values become only their type and size, and long strings are cut. Nothing
  ever copies a workflow's configs or a credential's data into an entry.
- **Ids sort by time.** `<16 hex digits of nanoseconds since the epoch><8 random
  hex digits>`, strictly increasing within a process: the id is the paging
  cursor (`AuditQuery.before`) and newest-first order is id order.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from datetime import UTC, datetime
from typing import Any, Final, Unpack

from ductwork.security.context import current
from ductwork.security.models import SYSTEM, AuditEntry, AuditFields, AuditQuery, Principal
from ductwork.store.security import SecurityStore

log = logging.getLogger("ductwork.audit")

SYSTEM_ACTOR: Final = "system"
"""The actor of what the shell (CLI) and the server itself do: `SYSTEM`'s entries."""

MAX_DETAIL_KEYS: Final = 20
MAX_DETAIL_CHARS: Final = 200
"""Longer string values are cut: details say what, they are not a copy of it."""

MAX_PAGE: Final = 1000

AUDIT_ID_PATTERN: Final = r"^[0-9a-f]{24}$"
"""What `new_audit_id` makes (the API refuses any other paging cursor)."""

# Any key containing one of these (case-insensitive) is refused: a detail may
# name a credential or a key, never carry what they hold.
_SECRET_KEY = re.compile(
    r"pass|pwd|token|secret|key|data|cookie|auth|cipher|hash|salt|private|value|signature|"
    r"bearer",
    re.IGNORECASE,
)
_API_KEY_VALUE = re.compile(r"\bdw_[A-Za-z0-9_-]{8,}")

_id_lock = threading.Lock()
_last_ns = 0


def new_audit_id() -> tuple[str, datetime]:
    """A time-first id (strictly increasing in this process) and the time it encodes."""
    global _last_ns
    with _id_lock:
        now = time.time_ns()
        # Two entries in the same clock tick (or a clock stepping back) still sort in order.
        _last_ns = now if now > _last_ns else _last_ns + 1
        ns = _last_ns
    seconds, nanos = divmod(ns, 1_000_000_000)
    at = datetime.fromtimestamp(seconds, UTC).replace(microsecond=nanos // 1_000)
    return f"{ns:016x}{os.urandom(4).hex()}", at


def _scalar(value: Any) -> str | int | float | bool | None:
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else repr(value)
    return text[:MAX_DETAIL_CHARS]


def clean_details(details: dict[str, Any] | None, action: str = "") -> dict[str, Any]:
    """`details` fit for the audit log: secret-named keys and key-like values dropped.

    A secret-named key is kept only with a boolean value (`{"password": True}`
    records that a password changed).

    Values are kept as scalars (strings cut to MAX_DETAIL_CHARS); a list or a
    dict becomes only its type and size, so a caller that passes a config by
    mistake leaks nothing from it.
    """
    if not details:
        return {}
    cleaned: dict[str, Any] = {}
    dropped: list[str] = []
    for raw_key, value in details.items():
        key = str(raw_key)[:64]
        if len(cleaned) >= MAX_DETAIL_KEYS:
            dropped.append(key)
            continue
        if _SECRET_KEY.search(key):
            # A boolean says whether (`{"password": True}`: it was changed), never what.
            if isinstance(value, bool):
                cleaned[key] = value
            else:
                dropped.append(key)
            continue
        if isinstance(value, dict | list | tuple | set):
            # Containers are what configs look like: never copied, only their size.
            cleaned[key] = f"<{type(value).__name__} of {len(value)}>"
            continue
        kept = _scalar(value)
        if isinstance(kept, str) and _API_KEY_VALUE.search(kept):
            dropped.append(key)
            continue
        cleaned[key] = kept
    if dropped:
        # Key names only: the values are exactly what must not reach a log.
        log.error("audit: dropped details %s of %s (secret-looking)", sorted(dropped), action)
    return cleaned


def actor_of(principal: Principal) -> str:
    """The audit actor of a principal: `Principal.actor`, or `system` for the shell's own."""
    return SYSTEM_ACTOR if principal == SYSTEM else principal.actor


def _not_recorded(action: str, target: str | None) -> None:
    """Log, at error level, an entry that could not be recorded (with the exception)."""
    log.error("audit: could not record %s on %s", action, target, exc_info=True)


async def append_quietly(store: SecurityStore, entry: AuditEntry) -> None:
    """Append `entry`; never raises: the action took effect already and the caller's
    answer must still say so, so a failure is logged at error level instead."""
    try:
        await store.append_audit(entry)
    except Exception:
        _not_recorded(entry.action, entry.target)


class AuditLog:
    """Append entries to, and read them from, the store's audit log."""

    def __init__(self, store: SecurityStore) -> None:
        self.store = store

    async def record(self, action: str, **fields: Unpack[AuditFields]) -> None:
        """Append one entry; never raises (a failure is logged at error level).

        `fields` are `AuditFields`: the principal and client default to the current
        request's (`ductwork.security.context.current()`; the shell's own is `system`).
        """
        try:
            entry = self.entry(action, **fields)
        except Exception:
            _not_recorded(action, fields.get("target"))
            return
        await append_quietly(self.store, entry)

    def entry(self, action: str, **fields: Unpack[AuditFields]) -> AuditEntry:
        """The entry `record` would append, built but not written (same arguments).

        For a caller that writes it in the same commit as the action itself
        (`Store.create_run(..., audit=...)`: a run and its `run.start` entry).
        """
        context = current()
        principal = fields.get("principal")
        who = principal if principal is not None else context.principal
        actor = fields.get("actor")
        client = fields.get("client")
        entry_id, at = new_audit_id()
        return AuditEntry(
            id=entry_id,
            at=at,
            actor=actor if actor is not None else actor_of(who),
            actor_name=who.name[:MAX_DETAIL_CHARS],
            action=action,
            target=fields.get("target"),
            outcome=fields.get("outcome", "ok"),
            client=client if client is not None else context.client,
            details=clean_details(fields.get("details"), action),
        )

    def writes_to(self, store: object) -> bool:
        """Whether this log appends to `store` (a `SecurityStore`): then an entry may be
        written by that store's own transactions (see `entry`)."""
        return self.store is store

    async def page(self, query: AuditQuery) -> tuple[list[AuditEntry], str | None]:
        """Entries matching `query`, newest first, and the `before` cursor of the next page.

        The cursor is None when there is no older matching entry (one extra row is
        read to know, so a client never fetches an empty last page).
        """
        limit = max(1, min(query.limit, MAX_PAGE))
        rows = await self.store.list_audit(query.model_copy(update={"limit": limit + 1}))
        if len(rows) > limit:
            return rows[:limit], rows[limit - 1].id
        return rows, None
