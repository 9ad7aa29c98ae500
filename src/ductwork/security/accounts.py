"""Users, API keys, sessions and the one-time setup link: the account use cases.

Shared by the API (`ductwork.api.auth`) and the CLI (`ductwork users|keys`). It
hashes before anything reaches the store (`SecurityStore` sees hashes only) and
tells the `Authenticator` (and through it every process) when a key, a user or a
session stops being valid.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final, Protocol, Unpack

from ductwork.models import utcnow
from ductwork.security.authn import Authenticator
from ductwork.security.keys import new_api_key, new_token, sha256_hex
from ductwork.security.models import (
    ApiKey,
    AuditFields,
    Permission,
    Principal,
    Role,
    Session,
    User,
)
from ductwork.security.passwords import hash_password, password_problem, verify_password
from ductwork.security.sessions import new_session
from ductwork.settings import Settings
from ductwork.store.security import DuplicateName, SecurityStore

log = logging.getLogger("ductwork.auth")

MAX_EMAIL_CHARS: Final = 254
MAX_NAME_CHARS: Final = 200
_EMAIL: Final = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$")
_NAME_FORBIDDEN: Final = re.compile(r"[\x00-\x1f\x7f]")


class AccountError(Exception):
    """Base of the account errors the API turns into 4xx answers."""


class InvalidField(AccountError):
    """A field's value is not acceptable (422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class AccountConflict(AccountError):
    """Does not fit the current state: email taken, last admin, setup done (409)."""


class AccountNotFound(AccountError):
    """No such user or key (404); also what a caller sees for someone else's key."""


class NotAllowed(AccountError):
    """The caller may not do this (403): e.g. a key above their own role."""


class SetupRefused(AccountError):
    """The setup token is wrong, used, or users exist already (403)."""


class AuditRecorder(Protocol):
    async def record(self, action: str, **fields: Unpack[AuditFields]) -> None: ...


def normalize_email(email: str) -> str:
    """`email` stripped and lower-cased; InvalidField when it is not an address."""
    value = email.strip().lower()
    if not value or len(value) > MAX_EMAIL_CHARS or not _EMAIL.match(value):
        raise InvalidField("email", "must be an email address like name@example.com")
    return value


def check_display_name(name: str) -> str:
    """`name` stripped; InvalidField when too long or holding control characters."""
    value = name.strip()
    if len(value) > MAX_NAME_CHARS:
        raise InvalidField("display_name", f"must be at most {MAX_NAME_CHARS} characters")
    if _NAME_FORBIDDEN.search(value):
        raise InvalidField("display_name", "must not contain control characters")
    return value


def _check_password(password: str) -> None:
    problem = password_problem(password)
    if problem is not None:
        raise InvalidField("password", problem)


def key_view(key: ApiKey) -> dict[str, Any]:
    """A key's metadata as the API shows it (never its hash)."""
    return {
        "id": key.id,
        "name": key.name,
        "role": key.role.value,
        "prefix": f"dw_{key.prefix}",
        "owner_id": key.owner_id,
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
    }


def user_view(user: User) -> dict[str, Any]:
    """A user as the API shows it (never the password hash)."""
    return {
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "role": user.role.value,
        "disabled": user.disabled,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


class Accounts:
    """Account use cases over a `SecurityStore`."""

    def __init__(
        self,
        security: SecurityStore,
        authenticator: Authenticator,
        settings: Settings,
        audit: Callable[[], AuditRecorder | None] | None = None,
    ) -> None:
        self.security = security
        self.authenticator = authenticator
        self.settings = settings
        self._audit = audit or (lambda: None)

    async def _record(self, action: str, **fields: Any) -> None:
        audit = self._audit()
        if audit is not None:
            await audit.record(action, **fields)

    # Users ------------------------------------------------------------------------------
    async def create_user(
        self, email: str, password: str, role: Role, display_name: str = ""
    ) -> User:
        """A new user; InvalidField for a bad field, AccountConflict when the email is taken."""
        address = normalize_email(email)
        name = check_display_name(display_name)
        _check_password(password)
        now = utcnow()
        user = User(
            id=uuid.uuid4().hex,
            email=address,
            display_name=name,
            role=role,
            password_hash=await hash_password(password),
            created_at=now,
            updated_at=now,
        )
        try:
            created = await self.security.create_user(user)
        except DuplicateName:
            raise AccountConflict(f"a user with email {address!r} exists") from None
        await self._record(
            "user.create", target=f"user:{created.id}", details={"email": address, "role": role}
        )
        return created

    async def list_users(self, limit: int = 100, offset: int = 0) -> list[User]:
        return await self.security.list_users(limit=limit, offset=offset)

    async def get_user(self, user_id: str) -> User:
        user = await self.security.get_user(user_id)
        if user is None:
            raise AccountNotFound(f"user {user_id!r} not found")
        return user

    async def get_user_by_email(self, email: str) -> User:
        user = await self.security.get_user_by_email(normalize_email(email))
        if user is None:
            raise AccountNotFound(f"no user with email {email.strip().lower()!r}")
        return user

    async def _active_admins(self) -> list[User]:
        admins: list[User] = []
        offset = 0
        while True:
            page = await self.security.list_users(limit=500, offset=offset)
            admins += [u for u in page if u.role is Role.ADMIN and not u.disabled]
            if len(page) < 500:
                return admins
            offset += 500

    async def _keep_an_admin(self, user: User) -> None:
        if user.role is Role.ADMIN and not user.disabled:
            admins = await self._active_admins()
            if all(admin.id == user.id for admin in admins):
                raise AccountConflict("this is the last active admin; make another admin first")

    async def update_user(
        self,
        user_id: str,
        *,
        role: Role | None = None,
        display_name: str | None = None,
        password: str | None = None,
        disabled: bool | None = None,
    ) -> User:
        """Change a user. Demoting, disabling or a new password ends their sessions;
        disabling revokes their keys (a demoted user's keys are capped at the new role)."""
        user = await self.get_user(user_id)
        changes: dict[str, Any] = {}
        if display_name is not None:
            changes["display_name"] = check_display_name(display_name)
        if password is not None:
            _check_password(password)
            changes["password_hash"] = await hash_password(password)
        demoted = role is not None and role.rank < user.role.rank
        if role is not None:
            changes["role"] = role
        if disabled is not None:
            changes["disabled"] = disabled
        if demoted or disabled:
            await self._keep_an_admin(user)
        updated_user = user.model_copy(update={**changes, "updated_at": utcnow()})
        stored = await self.security.update_user(updated_user)
        if stored is None:
            raise AccountNotFound(f"user {user_id!r} not found")
        if disabled and not user.disabled:
            await self.security.revoke_api_keys_of(user_id, utcnow())
        if demoted or disabled or password is not None:
            await self.security.delete_sessions_of(user_id=user_id)
        if demoted or disabled or password is not None or role is not None:
            await self.authenticator.revoked(user_id=user_id)
        shown = {k: (v.value if isinstance(v, Role) else v) for k, v in changes.items()}
        shown.pop("password_hash", None)
        if password is not None:
            # A boolean: the audit log's secret guard drops string values under secret
            # names, and nothing about the password itself belongs there.
            shown["password"] = True
        await self._record("user.update", target=f"user:{user_id}", details=shown)
        return stored

    async def delete_user(self, user_id: str) -> None:
        """Delete a user: their keys are revoked and their sessions ended first."""
        user = await self.get_user(user_id)
        await self._keep_an_admin(user)
        now = utcnow()
        await self.security.revoke_api_keys_of(user_id, now)
        await self.security.delete_sessions_of(user_id=user_id)
        if not await self.security.delete_user(user_id):
            raise AccountNotFound(f"user {user_id!r} not found")
        await self.authenticator.revoked(user_id=user_id)
        await self._record("user.delete", target=f"user:{user_id}", details={"email": user.email})

    # The setup link -------------------------------------------------------------------------
    async def issue_setup_token(self) -> str | None:
        """A fresh one-time setup token (replacing any pending one), or None when users exist."""
        if await self.security.count_users() > 0:
            await self.security.set_setup_token(None)
            return None
        token = new_token()
        await self.security.set_setup_token(sha256_hex(token))
        return token

    async def complete_setup(
        self, token: str, email: str, password: str, display_name: str = ""
    ) -> User:
        """Create the first admin with the setup token (which is used up)."""
        # Fields first: a typo must not burn the one-time token.
        address = normalize_email(email)
        check_display_name(display_name)
        _check_password(password)
        if await self.security.count_users() > 0:
            raise SetupRefused("setup is complete: sign in instead")
        if not token or not await self.security.consume_setup_token(sha256_hex(token)):
            await self._record("setup.complete", outcome="denied", details={"reason": "token"})
            raise SetupRefused("the setup token is not valid (used already, or replaced)")
        user = await self.create_user(address, password, Role.ADMIN, display_name)
        await self._record("setup.complete", target=f"user:{user.id}", principal=_as_user(user))
        return user

    # Sign-in and sessions ---------------------------------------------------------------------
    async def check_password(self, email: str, password: str) -> User | None:
        """The user when the email and password match an enabled user, else None."""
        try:
            address = normalize_email(email)
        except InvalidField:
            address = None
        user = await self.security.get_user_by_email(address) if address else None
        ok, new_hash = await verify_password(user.password_hash if user else None, password)
        if user is None or not ok or user.disabled:
            return None
        if new_hash is not None:
            # Re-read: writing the row read above could undo a disable or demotion
            # made meanwhile. Only the hash changes (a race narrowed to this re-read).
            current = await self.security.get_user(user.id)
            if current is None or current.disabled:
                return None
            if current.password_hash == user.password_hash:
                await self.security.update_user(
                    current.model_copy(update={"password_hash": new_hash})
                )
            return current
        return user

    async def open_session(
        self, *, user_id: str | None = None, key_id: str | None = None
    ) -> tuple[str, Session]:
        """A new browser session: (cookie token, record)."""
        token, session = new_session(
            self.settings.session_ttl_seconds, user_id=user_id, key_id=key_id
        )
        await self.security.create_session(session)
        return token, session

    async def end_session(self, session_id: str) -> None:
        await self.security.delete_session(session_id)
        await self.authenticator.revoked(session_id=session_id)

    # API keys ------------------------------------------------------------------------------
    async def create_key(
        self,
        creator: Principal,
        name: str,
        role: Role,
        *,
        expires_at: datetime | None = None,
        owner_id: str | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key, (record, the key itself: shown once). Its role is at most the
        creator's and the owner's; only KEYS_ALL may make keys for someone else."""
        label = check_display_name(name).strip()
        if not label:
            raise InvalidField("name", "must not be empty")
        if expires_at is not None and expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)  # no offset: UTC, as everywhere
        if expires_at is not None and expires_at <= utcnow():
            raise InvalidField("expires_at", "must be in the future")
        if role.rank > creator.role.rank:
            raise NotAllowed(f"a {creator.role} may not create a {role} key")
        parent: ApiKey | None = None
        if creator.key_id is not None:
            # A key (or a session opened with one) makes keys that never outlive it.
            parent = await self.security.get_api_key(creator.key_id)
            if parent is None or parent.revoked_at is not None:
                raise NotAllowed("the key making this key is no longer valid")
            if parent.expires_at is not None and (
                expires_at is None or expires_at > parent.expires_at
            ):
                expires_at = parent.expires_at
        owner = creator.user_id
        if owner_id is not None and owner_id != creator.user_id:
            if not creator.can(Permission.KEYS_ALL):
                raise NotAllowed("only admins may create keys for other users")
            owner = owner_id
        if owner is not None:
            user = await self.security.get_user(owner)
            if user is None:
                raise InvalidField("user_id", f"no user {owner!r}")
            if role.rank > user.role.rank:
                raise NotAllowed(f"the key's owner is a {user.role}: a {role} key exceeds it")
        key, prefix = new_api_key()
        record = ApiKey(
            id=uuid.uuid4().hex,
            name=label,
            role=role,
            prefix=prefix,
            key_hash=sha256_hex(key),
            owner_id=owner,
            created_at=utcnow(),
            expires_at=expires_at,
            parent_key_id=parent.id if parent is not None else None,
        )
        stored = await self.security.create_api_key(record)
        await self._record(
            "key.create",
            target=f"key:{stored.id}",
            details={"name": label, "role": role.value, "owner_id": owner},
        )
        return stored, key

    async def list_keys(
        self, viewer: Principal, limit: int = 100, offset: int = 0, *, everyone: bool = False
    ) -> list[ApiKey]:
        """Keys the viewer may see: their own (their user's), or all with KEYS_ALL."""
        if viewer.can(Permission.KEYS_ALL) and (everyone or viewer.user_id is None):
            return await self.security.list_api_keys(limit=limit, offset=offset)
        if viewer.user_id is not None:
            return await self.security.list_api_keys(
                owner_id=viewer.user_id, limit=limit, offset=offset
            )
        # An ownerless key (made with the admin key) sees itself only.
        if viewer.key_id is not None and offset == 0:
            key = await self.security.get_api_key(viewer.key_id)
            return [key] if key is not None else []
        return []

    async def revoke_key(self, actor: Principal, key_id: str) -> ApiKey:
        """Revoke a key (one's own, or any with KEYS_ALL) and end its sessions, everywhere."""
        key = await self.security.get_api_key(key_id)
        own = key is not None and (
            (actor.user_id is not None and key.owner_id == actor.user_id) or key.id == actor.key_id
        )
        if key is None or not (own or actor.can(Permission.KEYS_ALL)):
            raise AccountNotFound(f"key {key_id!r} not found")
        now = utcnow()
        if key.revoked_at is None:
            await self.security.revoke_api_key(key_id, now)
        await self.security.delete_sessions_of(key_id=key_id)
        await self.authenticator.revoked(key_id=key_id)
        await self._record("key.revoke", target=f"key:{key_id}", details={"name": key.name})
        for child in await self._descendants(key_id):
            # The keys it made (and theirs): each evicted on every process, like it.
            if child.revoked_at is None:
                await self.security.revoke_api_key(child.id, now)
            await self.security.delete_sessions_of(key_id=child.id)
            await self.authenticator.revoked(key_id=child.id)
            await self._record(
                "key.revoke",
                target=f"key:{child.id}",
                details={"name": child.name, "cascade": True},
            )
        revoked = await self.security.get_api_key(key_id)
        return revoked or key

    async def _descendants(self, key_id: str) -> list[ApiKey]:
        """The live keys `key_id` created, transitively (keys are few: read them all)."""
        children: dict[str, list[ApiKey]] = {}
        offset = 0
        while True:
            page = await self.security.list_api_keys(limit=500, offset=offset)
            for key in page:
                if key.parent_key_id is not None:
                    children.setdefault(key.parent_key_id, []).append(key)
            if len(page) < 500:
                break
            offset += 500
        found: list[ApiKey] = []
        seen = {key_id}
        pending = [key_id]
        while pending:
            for child in children.get(pending.pop(), []):
                if child.id in seen:
                    continue
                seen.add(child.id)
                pending.append(child.id)
                if child.revoked_at is None:
                    found.append(child)
        return found


def _as_user(user: User) -> Principal:
    return Principal(kind="user", role=user.role, user_id=user.id, name=user.email)
