"""Password hashing: Argon2id through argon2-cffi.

Hashing and verifying are slow on purpose (tens of milliseconds, 64 MiB), so the
async helpers run them on a thread and never stall the event loop.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from argon2 import PasswordHasher

MIN_PASSWORD_CHARS: Final = 10
MAX_PASSWORD_CHARS: Final = 1024
"""Argon2 takes any length, but a megabyte "password" is only a way to spend CPU."""


@functools.cache
def _hasher() -> PasswordHasher:
    # argon2-cffi (~40 ms to import) loads with the first password, not in every process.
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2-cffi's defaults: Argon2id, RFC 9106 low-memory profile


_DUMMY_HASH: str | None = None


def password_problem(password: str) -> str | None:
    """Why `password` is not acceptable, or None."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"must be at least {MIN_PASSWORD_CHARS} characters"
    if len(password) > MAX_PASSWORD_CHARS:
        return f"must be at most {MAX_PASSWORD_CHARS} characters"
    return None


def hash_password_sync(password: str) -> str:
    """An Argon2id hash of `password` (blocking)."""
    return _hasher().hash(password)


async def hash_password(password: str) -> str:
    """An Argon2id hash of `password`, computed on a thread."""
    return await asyncio.to_thread(_hasher().hash, password)


def _verify(password_hash: str, password: str) -> tuple[bool, str | None]:
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    hasher = _hasher()
    try:
        hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    if hasher.check_needs_rehash(password_hash):
        # The hasher's parameters changed since: store a hash with the current ones.
        return True, hasher.hash(password)
    return True, None


async def verify_password(password_hash: str | None, password: str) -> tuple[bool, str | None]:
    """(matches, new hash when the stored one should be replaced), on a thread.

    `password_hash` None (no such user) still costs one verification against a
    dummy hash, so response time does not tell which emails exist.
    """
    global _DUMMY_HASH
    if password_hash is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = await hash_password("ductwork-no-such-user")
        await asyncio.to_thread(_verify, _DUMMY_HASH, password)
        return False, None
    return await asyncio.to_thread(_verify, password_hash, password)
