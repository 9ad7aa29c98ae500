"""The `SecurityStore` on MongoDB, beside the workflows in the same database.

`MongoStore.security` is one of these. Collections, `_id` the record's id:
`users` (unique `email`), `api_keys` (unique `prefix`), `sessions` (unique
`token_hash`), `credentials` (unique `name`), `audit_log` (`_id` the entry's
time-first id, so sorting on `_id` is sorting by time) and `settings`, whose
document `setup_token` holds the pending setup token's hash. The indexes are
created by `MongoStore.start()`.

Without transactions (a standalone mongod and SecantusDB have none), every
method is one single-document write, or a series of them where noted; the
setup token is consumed by one compare-and-clear `find_one_and_update`.
Datetimes are BSON dates: milliseconds, back timezone-aware in UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from ductwork.security.models import (
    ApiKey,
    AuditEntry,
    AuditQuery,
    Session,
    StoredCredential,
    User,
)
from ductwork.store.mongo import Document, _pack, _unpack
from ductwork.store.security import DuplicateName

__all__ = ["MongoSecurityStore"]

_SETUP_TOKEN_ID = "setup_token"


def _doc(record: Mapping[str, Any]) -> Document:
    """A record's fields as a document: its `id` becomes `_id`."""
    doc = dict(record)
    doc["_id"] = doc.pop("id")
    return doc


def _fields(doc: Mapping[str, Any]) -> Document:
    """A document's fields as a record's: `_id` becomes `id`."""
    fields = dict(doc)
    fields["id"] = fields.pop("_id")
    return fields


def _user_doc(user: User) -> Document:
    return _doc(user.model_dump(mode="python") | {"role": user.role.value})


def _key_doc(key: ApiKey) -> Document:
    return _doc(key.model_dump(mode="python") | {"role": key.role.value})


class MongoSecurityStore:
    """Users, API keys, sessions, credentials and the audit log in the MongoDB store's database."""

    def __init__(self, collection: Callable[[str], AsyncCollection[Document]]) -> None:
        """`collection(name)`: the store's collection of that name (raises when not started)."""
        self._collection = collection

    @property
    def _users(self) -> AsyncCollection[Document]:
        return self._collection("users")

    @property
    def _keys(self) -> AsyncCollection[Document]:
        return self._collection("api_keys")

    @property
    def _sessions(self) -> AsyncCollection[Document]:
        return self._collection("sessions")

    @property
    def _credentials(self) -> AsyncCollection[Document]:
        return self._collection("credentials")

    @property
    def _audit(self) -> AsyncCollection[Document]:
        return self._collection("audit_log")

    @property
    def _settings(self) -> AsyncCollection[Document]:
        return self._collection("settings")

    async def create_indexes(self) -> None:
        """The unique and lookup indexes (idempotent; `MongoStore.start()` calls this)."""
        await self._users.create_index("email", unique=True)
        await self._users.create_index([("created_at", ASCENDING), ("_id", ASCENDING)])
        await self._keys.create_index("prefix", unique=True)
        await self._keys.create_index([("owner_id", ASCENDING), ("created_at", DESCENDING)])
        await self._keys.create_index([("created_at", DESCENDING), ("_id", DESCENDING)])
        await self._sessions.create_index("token_hash", unique=True)
        await self._sessions.create_index("user_id")
        await self._sessions.create_index("key_id")
        await self._credentials.create_index("name", unique=True)
        await self._audit.create_index("at")
        await self._audit.create_index([("actor", ASCENDING), ("_id", DESCENDING)])
        await self._audit.create_index([("action", ASCENDING), ("_id", DESCENDING)])

    @staticmethod
    async def _insert(collection: AsyncCollection[Document], doc: Document, what: str) -> None:
        try:
            await collection.insert_one(doc)
        except DuplicateKeyError as exc:
            raise DuplicateName(f"{what} exists already") from exc

    @staticmethod
    async def _page(
        collection: AsyncCollection[Document],
        query: Document,
        sort: list[tuple[str, int]],
        limit: int,
        offset: int = 0,
    ) -> list[Document]:
        # limit(0) means "no limit" to MongoDB; here it means none.
        if limit <= 0:
            return []
        cursor = collection.find(query).sort(sort).skip(max(offset, 0)).limit(limit)
        return [doc async for doc in cursor]

    # Users -----------------------------------------------------------------------

    async def create_user(self, user: User) -> User:
        """Insert a user; DuplicateName when the email is taken."""
        await self._insert(self._users, _user_doc(user), f"a user with email {user.email!r}")
        return user

    async def get_user(self, user_id: str) -> User | None:
        """The user with this id, or None."""
        doc = await self._users.find_one({"_id": user_id})
        return None if doc is None else User.model_validate(_fields(doc))

    async def get_user_by_email(self, email: str) -> User | None:
        """The user with this (lower-cased) email, or None."""
        doc = await self._users.find_one({"email": email})
        return None if doc is None else User.model_validate(_fields(doc))

    async def list_users(self, limit: int = 100, offset: int = 0) -> list[User]:
        """Users, oldest first."""
        docs = await self._page(
            self._users, {}, [("created_at", ASCENDING), ("_id", ASCENDING)], limit, offset
        )
        return [User.model_validate(_fields(doc)) for doc in docs]

    async def count_users(self) -> int:
        """How many users there are (disabled ones included)."""
        return await self._users.count_documents({})

    async def update_user(self, user: User) -> User | None:
        """Replace a user's fields (not its id); None when unknown; DuplicateName on email."""
        doc = _user_doc(user)
        del doc["_id"]
        try:
            result = await self._users.replace_one({"_id": user.id}, doc)
        except DuplicateKeyError as exc:
            raise DuplicateName(f"a user with email {user.email!r} exists already") from exc
        return user if result.matched_count else None

    async def delete_user(self, user_id: str) -> bool:
        """Delete a user (not their keys or sessions: the service ends those); False if unknown."""
        return bool((await self._users.delete_one({"_id": user_id})).deleted_count)

    # Setup token -----------------------------------------------------------------

    async def set_setup_token(self, token_hash: str | None) -> None:
        """Replace the pending setup token's hash (None: no token pending)."""
        await self._settings.update_one(
            {"_id": _SETUP_TOKEN_ID}, {"$set": {"token_hash": token_hash}}, upsert=True
        )

    async def consume_setup_token(self, token_hash: str) -> bool:
        """Atomically: True and clear it when `token_hash` is the pending one.

        One compare-and-clear on one document: of two requests with the same
        token, only one finds it still set.
        """
        before = await self._settings.find_one_and_update(
            {"_id": _SETUP_TOKEN_ID, "token_hash": token_hash},
            {"$set": {"token_hash": None}},
        )
        return before is not None

    # API keys --------------------------------------------------------------------

    async def create_api_key(self, key: ApiKey) -> ApiKey:
        """Insert; DuplicateName when the prefix exists."""
        await self._insert(self._keys, _key_doc(key), f"an API key with prefix {key.prefix!r}")
        return key

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        """The key with this id (revoked or not), or None."""
        doc = await self._keys.find_one({"_id": key_id})
        return None if doc is None else ApiKey.model_validate(_fields(doc))

    async def get_api_key_by_prefix(self, prefix: str) -> ApiKey | None:
        """The key with this prefix (revoked or not), or None."""
        doc = await self._keys.find_one({"prefix": prefix})
        return None if doc is None else ApiKey.model_validate(_fields(doc))

    async def list_api_keys(
        self, owner_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[ApiKey]:
        """Keys (revoked ones too), newest first; only `owner_id`'s when given."""
        query: Document = {} if owner_id is None else {"owner_id": owner_id}
        docs = await self._page(
            self._keys, query, [("created_at", DESCENDING), ("_id", DESCENDING)], limit, offset
        )
        return [ApiKey.model_validate(_fields(doc)) for doc in docs]

    async def revoke_api_key(self, key_id: str, at: datetime) -> bool:
        """Set revoked_at; False when unknown or revoked already."""
        result = await self._keys.update_one(
            {"_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": at}}
        )
        return bool(result.modified_count)

    async def revoke_api_keys_of(self, owner_id: str, at: datetime) -> list[str]:
        """Revoke every key of a user not revoked yet (expired ones too); the ids revoked.

        One write a key: each id returned is one this call revoked, never one
        another caller revoked meanwhile.
        """
        live = self._keys.find({"owner_id": owner_id, "revoked_at": None}, {"_id": 1})
        revoked: list[str] = []
        for key_id in [doc["_id"] async for doc in live]:
            if await self.revoke_api_key(key_id, at):
                revoked.append(key_id)
        return sorted(revoked)

    async def touch_api_key(self, key_id: str, at: datetime) -> None:
        """Record a use (callers throttle this; it is not per request)."""
        await self._keys.update_one({"_id": key_id}, {"$set": {"last_used_at": at}})

    # Sessions --------------------------------------------------------------------

    async def create_session(self, session: Session) -> Session:
        """Insert a session; DuplicateName when its token hash (or id) exists."""
        await self._insert(self._sessions, _doc(session.model_dump()), "a session with this token")
        return session

    async def get_session_by_hash(self, token_hash: str) -> Session | None:
        """The session, expired or not (the caller checks expiry)."""
        doc = await self._sessions.find_one({"token_hash": token_hash})
        return None if doc is None else Session.model_validate(_fields(doc))

    async def delete_session(self, session_id: str) -> bool:
        """End one session; False when unknown."""
        return bool((await self._sessions.delete_one({"_id": session_id})).deleted_count)

    async def delete_sessions_of(
        self, *, user_id: str | None = None, key_id: str | None = None
    ) -> list[str]:
        """End every session of a user or of a key (of either, when both are given); the ids."""
        alternatives: list[Document] = []
        if user_id is not None:
            alternatives.append({"user_id": user_id})
        if key_id is not None:
            alternatives.append({"key_id": key_id})
        if not alternatives:
            raise ValueError("delete_sessions_of needs a user_id or a key_id")
        query: Document = {"$or": alternatives}
        ids = [doc["_id"] async for doc in self._sessions.find(query, {"_id": 1})]
        if ids:
            await self._sessions.delete_many({"_id": {"$in": ids}})
        return sorted(ids)

    # Credentials -----------------------------------------------------------------

    async def create_credential(self, credential: StoredCredential) -> StoredCredential:
        """Insert; DuplicateName when the name exists."""
        await self._insert(
            self._credentials,
            _doc(credential.model_dump()),
            f"a credential named {credential.name!r}",
        )
        return credential

    async def get_credential(self, name: str) -> StoredCredential | None:
        """The credential with this name, or None."""
        doc = await self._credentials.find_one({"name": name})
        return None if doc is None else StoredCredential.model_validate(_fields(doc))

    async def get_credentials(self, names: Sequence[str]) -> list[StoredCredential]:
        """Those of `names` that exist, by name (one query)."""
        if not names:
            return []
        cursor = self._credentials.find({"name": {"$in": sorted(set(names))}}).sort("name")
        return [StoredCredential.model_validate(_fields(doc)) async for doc in cursor]

    async def list_credentials(self, limit: int = 100, offset: int = 0) -> list[StoredCredential]:
        """By name."""
        docs = await self._page(self._credentials, {}, [("name", ASCENDING)], limit, offset)
        return [StoredCredential.model_validate(_fields(doc)) for doc in docs]

    async def update_credential(self, credential: StoredCredential) -> bool:
        """Replace type, ciphertext and updated_at of the credential with that name."""
        result = await self._credentials.update_one(
            {"name": credential.name},
            {
                "$set": {
                    "type": credential.type,
                    "ciphertext": credential.ciphertext,
                    "updated_at": credential.updated_at,
                }
            },
        )
        return bool(result.matched_count)

    async def replace_ciphertexts(self, ciphertexts: dict[str, str]) -> None:
        """Key rotation: set each named credential's ciphertext, one write each.

        No transaction here: a rotation that stops halfway leaves every
        credential readable (the old and the new key both decrypt). Names that
        do not exist (deleted meanwhile) are skipped.
        """
        for name, ciphertext in ciphertexts.items():
            await self._credentials.update_one({"name": name}, {"$set": {"ciphertext": ciphertext}})

    async def delete_credential(self, name: str) -> bool:
        """Delete a credential; False when unknown."""
        return bool((await self._credentials.delete_one({"name": name})).deleted_count)

    # Audit log -------------------------------------------------------------------

    async def append_audit(self, entry: AuditEntry) -> None:
        """Append; entries are never updated or deleted through this port."""
        doc = _doc(entry.model_dump())
        # Details are free-form: keys MongoDB refuses (`$x`, `a.b`) are kept as JSON.
        doc["details"] = _pack(doc["details"])
        await self._insert(self._audit, doc, f"audit entry {entry.id}")

    async def list_audit(self, query: AuditQuery) -> list[AuditEntry]:
        """Matching entries, newest first, at most `query.limit`, older than `query.before`."""
        match: Document = {}
        if query.actor is not None:
            match["actor"] = query.actor
        if query.action is not None:
            if query.action.endswith("."):
                # A prefix as a range: no regular expression to escape, and indexable.
                prefix = query.action
                match["action"] = {"$gte": prefix, "$lt": prefix[:-1] + chr(ord(prefix[-1]) + 1)}
            else:
                match["action"] = query.action
        if query.target is not None:
            match["target"] = query.target
        at: Document = {}
        if query.since is not None:
            at["$gte"] = query.since
        if query.until is not None:
            at["$lte"] = query.until
        if at:
            match["at"] = at
        if query.before is not None:
            match["_id"] = {"$lt": query.before}
        docs = await self._page(self._audit, match, [("_id", DESCENDING)], query.limit)
        entries = []
        for doc in docs:
            fields = _fields(doc)
            fields["details"] = _unpack(fields.get("details")) or {}
            entries.append(AuditEntry.model_validate(fields))
        return entries
