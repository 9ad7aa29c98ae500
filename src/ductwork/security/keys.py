"""API keys and other random tokens: made here, stored only as SHA-256 hex.

A key reads `dw_<prefix>_<secret>`: `dw_` lets secret scanners find leaked keys,
the prefix (12 base62 characters) finds the record without a scan, and the
secret (43 base62 characters, ~256 bits) is what makes it unguessable. Keys and
tokens are random, so a fast hash is enough (no dictionary to attack); hashes
are compared with `hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from typing import Final

KEY_MARK: Final = "dw_"
PREFIX_CHARS: Final = 12
SECRET_CHARS: Final = 43
_BASE62: Final = string.ascii_letters + string.digits
_KEY_SHAPE: Final = re.compile(rf"^dw_([A-Za-z0-9]{{{PREFIX_CHARS}}})_([A-Za-z0-9]{{32,128}})$")


def _base62(length: int) -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(length))


def new_api_key() -> tuple[str, str]:
    """A fresh key and its prefix: (`dw_<prefix>_<secret>`, prefix)."""
    prefix = _base62(PREFIX_CHARS)
    return f"{KEY_MARK}{prefix}_{_base62(SECRET_CHARS)}", prefix


def key_prefix(key: str) -> str | None:
    """The lookup prefix of something shaped like a ductwork key, else None."""
    match = _KEY_SHAPE.match(key)
    return match.group(1) if match else None


def new_token() -> str:
    """A random URL-safe token (sessions, the setup link): 256 bits."""
    return secrets.token_urlsafe(32)


def sha256_hex(value: str) -> str:
    """The SHA-256 of `value` (UTF-8), hex: how keys and tokens are stored."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time equality of two strings."""
    return hmac.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )
