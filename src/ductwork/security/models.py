"""The security records ductwork keeps, and who a request acts as.

Plain data, no I/O (a leaf module: the stores, the services and the API import it).
Secrets never live here in the clear: passwords and API keys are stored as hashes,
credential data as ciphertext (`ductwork.security.crypto`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    """What a user or key may do; each role includes everything of the roles below it."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    EDITOR = "editor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def at_most(self, ceiling: Role) -> Role:
        """This role, lowered to `ceiling` when it is higher (a key never exceeds its owner)."""
        return self if self.rank <= ceiling.rank else ceiling


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.EDITOR: 2, Role.ADMIN: 3}


class Permission(StrEnum):
    """One kind of action; `ROLE_PERMISSIONS` says which roles hold it."""

    READ = "read"
    """Workflows, runs, events, node types, validation."""
    RUN = "run"
    """Execute, cancel, retry."""
    EDIT = "edit"
    """Create, update and delete workflows; generate workflows with the LLM."""
    CREDENTIALS_READ = "credentials:read"
    """Credential metadata (never data): to refer to credentials in workflows."""
    CREDENTIALS_WRITE = "credentials:write"
    KEYS_OWN = "keys:own"
    """Create, list and revoke one's own API keys (never above one's own role)."""
    KEYS_ALL = "keys:all"
    USERS = "users"
    AUDIT = "audit"
    METRICS = "metrics"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ, Permission.KEYS_OWN}),
    Role.OPERATOR: frozenset({Permission.READ, Permission.RUN, Permission.KEYS_OWN}),
    Role.EDITOR: frozenset(
        {
            Permission.READ,
            Permission.RUN,
            Permission.EDIT,
            Permission.CREDENTIALS_READ,
            Permission.KEYS_OWN,
        }
    ),
    Role.ADMIN: frozenset(Permission),
}


def can(role: Role, permission: Permission) -> bool:
    """Whether `role` holds `permission`."""
    return permission in ROLE_PERMISSIONS[role]


PrincipalKind = Literal["user", "key", "admin_key", "anonymous"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as, once authenticated.

    `user`: signed in with a password (session cookie); `key`: an API key (bearer
    or a session opened with one); `admin_key`: DUCTWORK_ADMIN_API_KEY;
    `anonymous`: DUCTWORK_AUTH=disabled on a loopback address (acts as admin).
    """

    kind: PrincipalKind
    role: Role
    user_id: str | None = None
    key_id: str | None = None
    name: str = ""
    """An email or key name, for the audit log and `GET /auth/me`."""
    session_id: str | None = None
    """Set when the request authenticated with a session cookie (CSRF applies)."""

    def can(self, permission: Permission) -> bool:
        return can(self.role, permission)

    @property
    def actor(self) -> str:
        """A stable id for the audit log: `user:<id>`, `key:<id>`, `admin-key`, `anonymous`."""
        if self.kind == "key":
            return f"key:{self.key_id}"
        if self.kind == "user":
            return f"user:{self.user_id}"
        return "admin-key" if self.kind == "admin_key" else "anonymous"


SYSTEM = Principal(kind="anonymous", role=Role.ADMIN, name="system")
"""The shell's own identity (CLI commands run by whoever can read the store)."""


class User(BaseModel):
    # defer_build (here and on ApiKey, Session, StoredCredential, AuditQuery): validators
    # are built on first use, not at import: a cold `ductwork run` never uses these.
    model_config = ConfigDict(defer_build=True)

    id: str
    email: str
    """Lower-cased; unique."""
    display_name: str = ""
    role: Role
    password_hash: str
    """Argon2id (`ductwork.security.passwords`); never leaves the service layer."""
    disabled: bool = False
    created_at: datetime
    updated_at: datetime


class ApiKey(BaseModel):
    """An API key's record; the key itself is shown once at creation and never stored."""

    model_config = ConfigDict(defer_build=True)

    id: str
    name: str
    role: Role
    prefix: str
    """The key's public lookup part (`dw_<prefix>_<secret>`), unique."""
    key_hash: str
    """SHA-256 of the whole key, hex (keys are random, so a fast hash is enough)."""
    owner_id: str | None = None
    """The user it acts for (its role is capped at theirs); None: made with the admin key."""
    created_at: datetime
    expires_at: datetime | None = None
    parent_key_id: str | None = None
    """The key that created it (revoking that key revokes this one); None: made by a
    user's password session or the admin key."""
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class Session(BaseModel):
    """A browser session opened by `POST /auth/login` (cookie holds the token)."""

    model_config = ConfigDict(defer_build=True)

    id: str
    token_hash: str
    """SHA-256 of the cookie's token, hex."""
    user_id: str | None = None
    key_id: str | None = None
    """Set when the session was opened with an API key instead of a password."""
    created_at: datetime
    expires_at: datetime


class StoredCredential(BaseModel):
    """A named credential; `ciphertext` is its data encrypted with DUCTWORK_SECRET_KEY."""

    model_config = ConfigDict(defer_build=True)

    id: str
    name: str
    type: str
    ciphertext: str
    created_at: datetime
    updated_at: datetime
    created_by: str | None = None
    """The actor that created it (`Principal.actor`)."""


AuditOutcome = Literal["ok", "denied", "failed"]
"""How an audited action ended: done, refused (401/403), or attempted and failed."""


class AuditEntry(BaseModel):
    """One line of the append-only audit log; never holds a secret value."""

    id: str
    """Sortable (time first): the paging cursor."""
    at: datetime
    actor: str
    """`Principal.actor`, or `client` for an unauthenticated attempt."""
    actor_name: str = ""
    action: str
    """e.g. `workflow.create`, `run.cancel`, `key.revoke`, `login.failure`."""
    target: str | None = None
    """e.g. `workflow:<id>`, `execution:<id>`, `key:<id>`, `credential:<name>`."""
    outcome: AuditOutcome = "ok"
    client: str | None = None
    """Where from: the client's address."""
    details: dict[str, Any] = Field(default_factory=dict)


class AuditFields(TypedDict, total=False):
    """What a caller says of an audit entry besides its action (`AuditLog.record`'s and
    `AuditLog.entry`'s keywords); a field left out takes the default given here."""

    target: str | None
    """`AuditEntry.target`; default None."""
    outcome: AuditOutcome
    """Default `ok`."""
    details: dict[str, Any] | None
    """Cleaned of anything secret-looking before it is kept (`clean_details`)."""
    principal: Principal | None
    """Who acted; default the current request's (`ductwork.security.context.current()`)."""
    client: str | None
    """Where from; default the current request's client address."""
    actor: str | None
    """Overrides the principal's id, for attempts by nobody known yet (a failed login:
    the client address, or `email:<address>`)."""


class AuditQuery(BaseModel):
    """Filters of `GET /audit`; newest first, `before` an entry id to page on."""

    model_config = ConfigDict(defer_build=True)

    actor: str | None = None
    action: str | None = None
    """Exact, or a prefix ending in `.` (`workflow.` matches every workflow action)."""
    target: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: str | None = None
    limit: int = 100
