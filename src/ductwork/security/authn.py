"""Who a request is: a bearer API key or a session cookie, verified and cached.

Keys and session tokens are stored as SHA-256 hashes, so a look-up is one hash
and one store read; verified principals are then cached for
`settings.auth_cache_seconds` (bounded, least recently used first out), which
makes an authenticated request cost a hash and a dict look-up.

Revocation is honoured at once on every process regardless of the cache: the
process that revokes publishes `{"action": "auth_revoked", ...}` on the event
bus's control channel, and every process (API, worker, embedded) evicts what it
cached for that key, user or session (`Ductwork._listen_for_control`). When the
control subscription (re)connects, messages may have been missed, so the whole
cache is dropped (`{"action": "control_connected"}`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ductwork.events.base import EventBus
from ductwork.models import utcnow
from ductwork.security.keys import key_prefix, same, sha256_hex
from ductwork.security.models import ApiKey, Principal, Role, Session
from ductwork.settings import Settings
from ductwork.store.security import SecurityStore

log = logging.getLogger("ductwork.auth")

REVOKED_ACTION: Final = "auth_revoked"
CONNECTED_ACTION: Final = "control_connected"
TOUCH_INTERVAL_SECONDS: Final = 60.0
"""A key's last_used_at is written at most this often per process."""
DEFAULT_CACHE_ENTRIES: Final = 10_000

ADMIN_KEY_PRINCIPAL: Final = Principal(kind="admin_key", role=Role.ADMIN, name="admin key")
ANONYMOUS_ADMIN: Final = Principal(kind="anonymous", role=Role.ADMIN, name="anonymous")
"""DUCTWORK_AUTH=disabled: every request acts as this."""


@dataclass(slots=True)
class _Entry:
    principal: Principal
    expires: float
    """time.monotonic() after which the entry is not trusted."""


class Authenticator:
    """Turns credentials into a `Principal`; caches them; evicts on revocation."""

    def __init__(
        self,
        security: SecurityStore,
        bus: EventBus,
        settings: Settings,
        *,
        max_entries: int = DEFAULT_CACHE_ENTRIES,
    ) -> None:
        self.security = security
        self.bus = bus
        self.settings = settings
        self.max_entries = max_entries
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        # Bumped by every eviction: a look-up that began before one does not cache its
        # (possibly stale) answer afterwards.
        self._generation = 0
        self._touched: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        admin = settings.admin_api_key.get_secret_value() if settings.admin_api_key else ""
        self._admin_key = admin
        metrics = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
        self._metrics_token = metrics

    # Credentials -> principal ---------------------------------------------------------
    def is_admin_key(self, token: str) -> bool:
        """Whether `token` is DUCTWORK_ADMIN_API_KEY (constant time)."""
        return bool(self._admin_key) and same(token, self._admin_key)

    def is_metrics_token(self, token: str) -> bool:
        """Whether `token` is DUCTWORK_METRICS_TOKEN (constant time)."""
        return bool(self._metrics_token) and same(token, self._metrics_token)

    async def from_bearer(self, token: str) -> Principal | None:
        """The principal of an API key, or None (unknown, revoked, expired, owner gone)."""
        if self.is_admin_key(token):
            return ADMIN_KEY_PRINCIPAL
        prefix = key_prefix(token)
        if prefix is None:
            return None
        digest = sha256_hex(token)
        cached = self._cached("b:" + digest)
        if cached is not None:
            self._touch(cached.key_id)
            return cached
        generation = self._generation
        key = await self.security.get_api_key_by_prefix(prefix)
        if key is None or not same(key.key_hash, digest):
            return None
        principal, expires_at = await self._key_principal(key)
        if principal is None:
            return None
        self._remember("b:" + digest, principal, expires_at, generation)
        self._touch(key.id)
        return principal

    async def from_session(self, token: str) -> Principal | None:
        """The principal of a session cookie's token, or None."""
        digest = sha256_hex(token)
        cached = self._cached("s:" + digest)
        if cached is not None:
            return cached
        generation = self._generation
        session = await self.security.get_session_by_hash(digest)
        if session is None or session.expires_at <= utcnow():
            return None
        principal, expires_at = await self._session_principal(session)
        if principal is None:
            return None
        self._remember("s:" + digest, principal, expires_at, generation)
        return principal

    async def _key_principal(self, key: ApiKey) -> tuple[Principal | None, float | None]:
        now = utcnow()
        if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
            return None, None
        role = key.role
        if key.owner_id is not None:
            owner = await self.security.get_user(key.owner_id)
            if owner is None or owner.disabled:
                return None, None
            # Never above the owner's role as it is now (a demoted user's keys shrink too).
            role = role.at_most(owner.role)
        expires = None if key.expires_at is None else (key.expires_at - now).total_seconds()
        principal = Principal(
            kind="key", role=role, user_id=key.owner_id, key_id=key.id, name=key.name
        )
        return principal, expires

    async def _session_principal(self, session: Session) -> tuple[Principal | None, float | None]:
        expires = (session.expires_at - utcnow()).total_seconds()
        if session.user_id is not None:
            user = await self.security.get_user(session.user_id)
            if user is None or user.disabled:
                return None, None
            principal = Principal(
                kind="user",
                role=user.role,
                user_id=user.id,
                name=user.email,
                session_id=session.id,
            )
            return principal, expires
        if session.key_id is not None:
            key = await self.security.get_api_key(session.key_id)
            if key is None:
                return None, None
            key_principal, key_expires = await self._key_principal(key)
            if key_principal is None:
                return None, None
            if key_expires is not None:
                expires = min(expires, key_expires)
            return _with_session(key_principal, session.id), expires
        return None, None

    # Cache ----------------------------------------------------------------------------
    def _cached(self, slot: str) -> Principal | None:
        entry = self._cache.get(slot)
        if entry is None:
            return None
        if entry.expires <= time.monotonic():
            self._cache.pop(slot, None)
            return None
        self._cache.move_to_end(slot)
        return entry.principal

    def _remember(
        self, slot: str, principal: Principal, expires_in: float | None, generation: int
    ) -> None:
        ttl = self.settings.auth_cache_seconds
        if ttl <= 0 or generation != self._generation:
            return
        if expires_in is not None:
            ttl = min(ttl, expires_in)
        self._cache[slot] = _Entry(principal, time.monotonic() + ttl)
        self._cache.move_to_end(slot)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)

    @property
    def cache_size(self) -> int:
        """Principals cached now (tests, metrics)."""
        return len(self._cache)

    def clear(self) -> None:
        """Forget every cached principal."""
        self._generation += 1
        self._cache.clear()

    def evict(
        self,
        *,
        key_id: str | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
    ) -> None:
        """Forget what is cached for a key, a user (their keys too) or a session."""
        self._generation += 1
        for slot, entry in list(self._cache.items()):
            principal = entry.principal
            if (
                (key_id is not None and principal.key_id == key_id)
                or (user_id is not None and principal.user_id == user_id)
                or (session_id is not None and principal.session_id == session_id)
            ):
                del self._cache[slot]

    def handle_control(self, message: Mapping[str, str]) -> None:
        """Apply a control message from the bus (any action not about auth is ignored)."""
        action = message.get("action")
        if action == CONNECTED_ACTION:
            self.clear()
        elif action == REVOKED_ACTION:
            if message.get("all"):
                self.clear()
                return
            self.evict(
                key_id=message.get("key_id") or None,
                user_id=message.get("user_id") or None,
                session_id=message.get("session_id") or None,
            )

    async def revoked(
        self,
        *,
        key_id: str | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
    ) -> None:
        """Evict here and tell every other process to (after the store has the change)."""
        self.evict(key_id=key_id, user_id=user_id, session_id=session_id)
        message = {"action": REVOKED_ACTION}
        for name, value in (("key_id", key_id), ("user_id", user_id), ("session_id", session_id)):
            if value is not None:
                message[name] = value
        try:
            await self.bus.publish_control(message)
        except Exception:
            # The store already refuses the key; other processes drop it within the TTL.
            log.exception(
                "could not publish a revocation; other processes notice within %s s",
                self.settings.auth_cache_seconds,
            )

    # last_used_at -----------------------------------------------------------------------
    def _touch(self, key_id: str | None) -> None:
        if key_id is None:
            return
        now = time.monotonic()
        last = self._touched.get(key_id)
        if last is not None and now - last < TOUCH_INTERVAL_SECONDS:
            return
        if len(self._touched) > self.max_entries:
            self._touched.clear()
        self._touched[key_id] = now
        try:
            task = asyncio.get_running_loop().create_task(self._write_touch(key_id))
        except RuntimeError:
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write_touch(self, key_id: str) -> None:
        try:
            await self.security.touch_api_key(key_id, utcnow())
        except Exception:
            log.warning("could not record the use of key %s", key_id, exc_info=True)

    async def close(self) -> None:
        """Finish pending last_used_at writes."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _with_session(principal: Principal, session_id: str) -> Principal:
    return Principal(
        kind=principal.kind,
        role=principal.role,
        user_id=principal.user_id,
        key_id=principal.key_id,
        name=principal.name,
        session_id=session_id,
    )
