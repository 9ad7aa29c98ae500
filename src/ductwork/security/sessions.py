"""Browser sessions: the cookies, their CSRF token, and making a session record.

The `dw_session` cookie holds a random token (the store keeps its SHA-256). CSRF
protection is a double submit tied to the session: `dw_csrf` (readable by the
page's script) holds `csrf_token_for(token)`, and an unsafe request that
authenticated by cookie must echo it in `X-CSRF-Token`. A cross-site page can
neither read the cookie nor compute the value (it does not know the session token),
and a cookie planted by a sibling subdomain does not match the session.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Final

from ductwork.models import utcnow
from ductwork.security.keys import new_token, sha256_hex
from ductwork.security.models import Session

SESSION_COOKIE: Final = "dw_session"
CSRF_COOKIE: Final = "dw_csrf"
CSRF_HEADER: Final = "x-csrf-token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token_for(session_token: str) -> str:
    """The CSRF token of a session (derived, so nothing more is stored)."""
    return hashlib.sha256(b"ductwork-csrf:" + session_token.encode()).hexdigest()


def new_session(
    ttl_seconds: float,
    *,
    user_id: str | None = None,
    key_id: str | None = None,
    now: datetime | None = None,
) -> tuple[str, Session]:
    """A new session's cookie token and its record (only the token's hash is in it)."""
    token = new_token()
    created = now or utcnow()
    session = Session(
        id=uuid.uuid4().hex,
        token_hash=sha256_hex(token),
        user_id=user_id,
        key_id=key_id,
        created_at=created,
        expires_at=created + timedelta(seconds=ttl_seconds),
    )
    return token, session
