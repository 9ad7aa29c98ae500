"""The `SecurityStore` port: users, API keys, sessions, credentials, the audit log.

Every store adapter provides one as `Store.security` (SQL in `sql_security.py`,
MongoDB in `mongo_security.py`); both pass `tests/test_security_store.py`. It
holds only hashes and ciphertext: hashing and encryption happen in the service
layer (`ductwork.security`), so no adapter ever sees a secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from ductwork.security.models import (
    ApiKey,
    AuditEntry,
    AuditQuery,
    Session,
    StoredCredential,
    User,
)
from ductwork.store.base import StoreError


class DuplicateName(StoreError):
    """A user with this email, a key with this prefix or a credential with this name exists."""


class SecurityStore(Protocol):
    # Users -----------------------------------------------------------------------
    async def create_user(self, user: User) -> User:
        """Insert a user; DuplicateName when the email is taken."""

    async def get_user(self, user_id: str) -> User | None: ...

    async def get_user_by_email(self, email: str) -> User | None:
        """`email` lower-cased by the caller."""

    async def list_users(self, limit: int = 100, offset: int = 0) -> list[User]:
        """Users, oldest first."""

    async def count_users(self) -> int: ...

    async def update_user(self, user: User) -> User | None:
        """Replace a user's fields (not its id); None when unknown; DuplicateName on email."""

    async def delete_user(self, user_id: str) -> bool: ...

    # Setup token (the one-time link that creates the first admin) ----------------
    async def set_setup_token(self, token_hash: str | None) -> None:
        """Replace the pending setup token's hash (None: no token pending)."""

    async def consume_setup_token(self, token_hash: str) -> bool:
        """Atomically: True and clear it when `token_hash` is the pending one."""

    # API keys --------------------------------------------------------------------
    async def create_api_key(self, key: ApiKey) -> ApiKey:
        """Insert; DuplicateName when the prefix exists."""

    async def get_api_key(self, key_id: str) -> ApiKey | None: ...

    async def get_api_key_by_prefix(self, prefix: str) -> ApiKey | None: ...

    async def list_api_keys(
        self, owner_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[ApiKey]:
        """Keys (revoked ones too), newest first; only `owner_id`'s when given."""

    async def revoke_api_key(self, key_id: str, at: datetime) -> bool:
        """Set revoked_at; False when unknown or revoked already."""

    async def revoke_api_keys_of(self, owner_id: str, at: datetime) -> list[str]:
        """Revoke every live key of a user; the ids revoked."""

    async def touch_api_key(self, key_id: str, at: datetime) -> None:
        """Record a use (callers throttle this; it is not per request)."""

    # Sessions --------------------------------------------------------------------
    async def create_session(self, session: Session) -> Session: ...

    async def get_session_by_hash(self, token_hash: str) -> Session | None:
        """The session, expired or not (the caller checks expiry)."""

    async def delete_session(self, session_id: str) -> bool: ...

    async def delete_sessions_of(
        self, *, user_id: str | None = None, key_id: str | None = None
    ) -> list[str]:
        """End every session of a user or of a key; the ids ended."""

    # Credentials -----------------------------------------------------------------
    async def create_credential(self, credential: StoredCredential) -> StoredCredential:
        """Insert; DuplicateName when the name exists."""

    async def get_credential(self, name: str) -> StoredCredential | None: ...

    async def get_credentials(self, names: Sequence[str]) -> list[StoredCredential]:
        """Those of `names` that exist (one round trip: a run loads only what it refers to)."""

    async def list_credentials(self, limit: int = 100, offset: int = 0) -> list[StoredCredential]:
        """By name."""

    async def update_credential(self, credential: StoredCredential) -> bool:
        """Replace type, ciphertext and updated_at of the credential with that name."""

    async def replace_ciphertexts(self, ciphertexts: dict[str, str]) -> None:
        """Key rotation: set each named credential's ciphertext, all in one transaction
        where the store has them (SQL); MongoDB writes them one by one (a rotation that
        stops halfway leaves every credential readable: old and new key both decrypt)."""

    async def delete_credential(self, name: str) -> bool: ...

    # Audit log -------------------------------------------------------------------
    async def append_audit(self, entry: AuditEntry) -> None:
        """Append; entries are never updated or deleted through this port."""

    async def list_audit(self, query: AuditQuery) -> list[AuditEntry]:
        """Matching entries, newest first, at most `query.limit`, older than `query.before`."""
