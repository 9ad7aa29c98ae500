"""The `SecurityStore` on SQL (SQLite and PostgreSQL), beside the workflows in the same database.

`SqlStore.security` is one of these. Queries are written once against the
tables of `ductwork.store.sql` (schema version 3) and run through the store's
backend, as the rest of `SqlStore` does: on SQLite on its one connection, on
PostgreSQL pooled (one-statement work without BEGIN/COMMIT).

It keeps only what the service layer hands it: password and key hashes,
token hashes and credential ciphertext. Nothing here ever sees a secret.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import ColumnElement

from ductwork.security.models import (
    ApiKey,
    AuditEntry,
    AuditQuery,
    Session,
    StoredCredential,
    User,
)
from ductwork.store.security import DuplicateName
from ductwork.store.sql_schema import (
    _Backend,
    api_keys,
    audit_log,
    credentials,
    hot,
    sessions,
    setup_token,
    users,
)

__all__ = ["INSERT_AUDIT", "SqlSecurityStore"]

_SETUP_ROW = 1

_U = users.c
_K = api_keys.c
_S = sessions.c
_C = credentials.c
_A = audit_log.c

# Every run start appends one (`run.start`, with the run: `SqlStore.create_run`).
INSERT_AUDIT = hot(insert(audit_log))
_SELECT_USER = select(users).where(_U.id == bindparam("id"))
_SELECT_USER_BY_EMAIL = select(users).where(_U.email == bindparam("email"))
_LIST_USERS = (
    select(users)
    .order_by(_U.created_at, _U.id)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)
_SELECT_KEY = select(api_keys).where(_K.id == bindparam("id"))
_SELECT_KEY_BY_PREFIX = select(api_keys).where(_K.prefix == bindparam("prefix"))
_SELECT_SESSION_BY_HASH = select(sessions).where(_S.token_hash == bindparam("hash"))
_SELECT_CREDENTIAL = select(credentials).where(_C.name == bindparam("name"))
_SELECT_CREDENTIALS_IN = (
    select(credentials).where(_C.name.in_(bindparam("names", expanding=True))).order_by(_C.name)
)
_LIST_CREDENTIALS = (
    select(credentials).order_by(_C.name).limit(bindparam("limit")).offset(bindparam("offset"))
)
# Bind names differ from the column names: SQLAlchemy reserves those for SET.
_SET_CIPHERTEXT = (
    update(credentials)
    .where(_C.name == bindparam("p_name"))
    .values(ciphertext=bindparam("p_ciphertext"))
)
_CONSUME_SETUP_TOKEN = (
    update(setup_token)
    .where(setup_token.c.id == _SETUP_ROW, setup_token.c.token_hash == bindparam("hash"))
    .values(token_hash=None)
)


def _user_row(user: User) -> dict[str, Any]:
    row = user.model_dump()
    row["role"] = user.role.value
    return row


def _key_row(key: ApiKey) -> dict[str, Any]:
    row = key.model_dump()
    row["role"] = key.role.value
    return row


def _user(row: RowMapping) -> User:
    return User.model_validate(dict(row))


def _key(row: RowMapping) -> ApiKey:
    return ApiKey.model_validate(dict(row))


def _credential(row: RowMapping) -> StoredCredential:
    return StoredCredential.model_validate(dict(row))


class SqlSecurityStore:
    """Users, API keys, sessions, credentials and the audit log in the SQL store's database."""

    def __init__(self, backend: _Backend) -> None:
        """Work through `backend`, the `SqlStore`'s (started and closed by it)."""
        self._backend = backend

    async def _insert(self, statement: Any, row: Mapping[str, Any], what: str) -> None:
        """Insert one row; DuplicateName when a unique column (or the id) is taken."""
        try:
            async with self._backend.transaction(write=True, single=True) as session:
                await session.execute(statement, row)
        except IntegrityError as exc:
            raise DuplicateName(f"{what} exists already") from exc

    async def _first(self, statement: Any, params: Mapping[str, Any]) -> RowMapping | None:
        async with self._backend.transaction(write=False, single=True) as session:
            return (await session.execute(statement, params)).mappings().first()

    async def _all(self, statement: Any, params: Mapping[str, Any]) -> Sequence[RowMapping]:
        async with self._backend.transaction(write=False, single=True) as session:
            return (await session.execute(statement, params)).mappings().all()

    async def _write(self, statement: Any, params: Mapping[str, Any]) -> int:
        """Run one write statement; the number of rows it changed."""
        async with self._backend.transaction(write=True, single=True) as session:
            return (await session.execute(statement, params)).rowcount

    async def _returning_ids(self, statement: Any) -> list[str]:
        async with self._backend.transaction(write=True, single=True) as session:
            return list((await session.execute(statement, {})).scalars())

    # Users -----------------------------------------------------------------------

    async def create_user(self, user: User) -> User:
        """Insert a user; DuplicateName when the email is taken."""
        await self._insert(insert(users), _user_row(user), f"a user with email {user.email!r}")
        return user

    async def get_user(self, user_id: str) -> User | None:
        """The user with this id, or None."""
        row = await self._first(_SELECT_USER, {"id": user_id})
        return None if row is None else _user(row)

    async def get_user_by_email(self, email: str) -> User | None:
        """The user with this (lower-cased) email, or None."""
        row = await self._first(_SELECT_USER_BY_EMAIL, {"email": email})
        return None if row is None else _user(row)

    async def list_users(self, limit: int = 100, offset: int = 0) -> list[User]:
        """Users, oldest first."""
        rows = await self._all(_LIST_USERS, {"limit": limit, "offset": offset})
        return [_user(row) for row in rows]

    async def count_users(self) -> int:
        """How many users there are (disabled ones included)."""
        async with self._backend.transaction(write=False, single=True) as session:
            count = (await session.execute(select(func.count()).select_from(users), {})).scalar()
        return int(count or 0)

    async def update_user(self, user: User) -> User | None:
        """Replace a user's fields (not its id); None when unknown; DuplicateName on email."""
        values = _user_row(user)
        del values["id"]
        statement = update(users).where(_U.id == user.id).values(values)
        try:
            changed = await self._write(statement, {})
        except IntegrityError as exc:
            raise DuplicateName(f"a user with email {user.email!r} exists already") from exc
        return user if changed else None

    async def delete_user(self, user_id: str) -> bool:
        """Delete a user (not their keys or sessions: the service ends those); False if unknown."""
        return bool(await self._write(delete(users).where(_U.id == user_id), {}))

    # Setup token -----------------------------------------------------------------

    async def set_setup_token(self, token_hash: str | None) -> None:
        """Replace the pending setup token's hash (None: no token pending)."""
        dialect_insert = (
            sqlite.insert if self._backend.dialect_name == "sqlite" else postgresql.insert
        )
        upsert = dialect_insert(setup_token).values(id=_SETUP_ROW, token_hash=token_hash)
        upsert = upsert.on_conflict_do_update(
            index_elements=[setup_token.c.id], set_={"token_hash": upsert.excluded.token_hash}
        )
        await self._write(upsert, {})

    async def consume_setup_token(self, token_hash: str) -> bool:
        """Atomically: True and clear it when `token_hash` is the pending one.

        One compare-and-clear UPDATE: of two requests with the same token, only
        one changes the row.
        """
        return bool(await self._write(_CONSUME_SETUP_TOKEN, {"hash": token_hash}))

    # API keys --------------------------------------------------------------------

    async def create_api_key(self, key: ApiKey) -> ApiKey:
        """Insert; DuplicateName when the prefix exists."""
        await self._insert(
            insert(api_keys), _key_row(key), f"an API key with prefix {key.prefix!r}"
        )
        return key

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        """The key with this id (revoked or not), or None."""
        row = await self._first(_SELECT_KEY, {"id": key_id})
        return None if row is None else _key(row)

    async def get_api_key_by_prefix(self, prefix: str) -> ApiKey | None:
        """The key with this prefix (revoked or not), or None."""
        row = await self._first(_SELECT_KEY_BY_PREFIX, {"prefix": prefix})
        return None if row is None else _key(row)

    async def list_api_keys(
        self, owner_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[ApiKey]:
        """Keys (revoked ones too), newest first; only `owner_id`'s when given."""
        statement = select(api_keys)
        if owner_id is not None:
            statement = statement.where(_K.owner_id == owner_id)
        statement = statement.order_by(_K.created_at.desc(), _K.id.desc()).limit(limit)
        rows = await self._all(statement.offset(offset), {})
        return [_key(row) for row in rows]

    async def revoke_api_key(self, key_id: str, at: datetime) -> bool:
        """Set revoked_at; False when unknown or revoked already."""
        statement = (
            update(api_keys).where(_K.id == key_id, _K.revoked_at.is_(None)).values(revoked_at=at)
        )
        return bool(await self._write(statement, {}))

    async def revoke_api_keys_of(self, owner_id: str, at: datetime) -> list[str]:
        """Revoke every key of a user not revoked yet (expired ones too); the ids revoked."""
        statement = (
            update(api_keys)
            .where(_K.owner_id == owner_id, _K.revoked_at.is_(None))
            .values(revoked_at=at)
            .returning(_K.id)
        )
        return sorted(await self._returning_ids(statement))

    async def touch_api_key(self, key_id: str, at: datetime) -> None:
        """Record a use (callers throttle this; it is not per request)."""
        await self._write(update(api_keys).where(_K.id == key_id).values(last_used_at=at), {})

    # Sessions --------------------------------------------------------------------

    async def create_session(self, session: Session) -> Session:
        """Insert a session; DuplicateName when its token hash (or id) exists."""
        await self._insert(insert(sessions), session.model_dump(), "a session with this token")
        return session

    async def get_session_by_hash(self, token_hash: str) -> Session | None:
        """The session, expired or not (the caller checks expiry)."""
        row = await self._first(_SELECT_SESSION_BY_HASH, {"hash": token_hash})
        return None if row is None else Session.model_validate(dict(row))

    async def delete_session(self, session_id: str) -> bool:
        """End one session; False when unknown."""
        return bool(await self._write(delete(sessions).where(_S.id == session_id), {}))

    async def delete_sessions_of(
        self, *, user_id: str | None = None, key_id: str | None = None
    ) -> list[str]:
        """End every session of a user or of a key (of either, when both are given); the ids."""
        conditions: list[ColumnElement[bool]] = []
        if user_id is not None:
            conditions.append(_S.user_id == user_id)
        if key_id is not None:
            conditions.append(_S.key_id == key_id)
        if not conditions:
            raise ValueError("delete_sessions_of needs a user_id or a key_id")
        statement = delete(sessions).where(or_(*conditions)).returning(_S.id)
        return sorted(await self._returning_ids(statement))

    # Credentials -----------------------------------------------------------------

    async def create_credential(self, credential: StoredCredential) -> StoredCredential:
        """Insert; DuplicateName when the name exists."""
        await self._insert(
            insert(credentials),
            credential.model_dump(),
            f"a credential named {credential.name!r}",
        )
        return credential

    async def get_credential(self, name: str) -> StoredCredential | None:
        """The credential with this name, or None."""
        row = await self._first(_SELECT_CREDENTIAL, {"name": name})
        return None if row is None else _credential(row)

    async def get_credentials(self, names: Sequence[str]) -> list[StoredCredential]:
        """Those of `names` that exist, by name (one query)."""
        if not names:
            return []
        rows = await self._all(_SELECT_CREDENTIALS_IN, {"names": sorted(set(names))})
        return [_credential(row) for row in rows]

    async def list_credentials(self, limit: int = 100, offset: int = 0) -> list[StoredCredential]:
        """By name."""
        rows = await self._all(_LIST_CREDENTIALS, {"limit": limit, "offset": offset})
        return [_credential(row) for row in rows]

    async def update_credential(self, credential: StoredCredential) -> bool:
        """Replace type, ciphertext and updated_at of the credential with that name."""
        statement = (
            update(credentials)
            .where(_C.name == credential.name)
            .values(
                type=credential.type,
                ciphertext=credential.ciphertext,
                updated_at=credential.updated_at,
            )
        )
        return bool(await self._write(statement, {}))

    async def replace_ciphertexts(self, ciphertexts: dict[str, str]) -> None:
        """Key rotation: set each named credential's ciphertext, all in one transaction.

        Names that do not exist (deleted meanwhile) are skipped.
        """
        if not ciphertexts:
            return
        rows = [{"p_name": name, "p_ciphertext": text} for name, text in ciphertexts.items()]
        async with self._backend.transaction(write=True) as session:
            await session.execute(_SET_CIPHERTEXT, rows)

    async def delete_credential(self, name: str) -> bool:
        """Delete a credential; False when unknown."""
        return bool(await self._write(delete(credentials).where(_C.name == name), {}))

    # Audit log -------------------------------------------------------------------

    async def append_audit(self, entry: AuditEntry) -> None:
        """Append; entries are never updated or deleted through this port."""
        await self._insert(INSERT_AUDIT, entry.model_dump(), f"audit entry {entry.id}")

    async def list_audit(self, query: AuditQuery) -> list[AuditEntry]:
        """Matching entries, newest first, at most `query.limit`, older than `query.before`."""
        conditions: list[ColumnElement[bool]] = []
        if query.actor is not None:
            conditions.append(_A.actor == query.actor)
        if query.action is not None:
            if query.action.endswith("."):
                # autoescape: a `%` or `_` in the prefix matches only itself.
                conditions.append(_A.action.startswith(query.action, autoescape=True))
            else:
                conditions.append(_A.action == query.action)
        if query.target is not None:
            conditions.append(_A.target == query.target)
        if query.since is not None:
            conditions.append(_A.at >= query.since)
        if query.until is not None:
            conditions.append(_A.at <= query.until)
        if query.before is not None:
            conditions.append(_A.id < query.before)
        statement = select(audit_log).where(*conditions).order_by(_A.id.desc()).limit(query.limit)
        rows = await self._all(statement, {})
        return [AuditEntry.model_validate(dict(row)) for row in rows]
