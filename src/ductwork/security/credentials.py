"""Named credentials: validated, encrypted at rest, never shown again after creation.

`CredentialService` is the use-case layer over `SecurityStore`'s credential rows:
the API and the CLI call it to create, replace, delete and list credentials (data
is validated with its type's model, encrypted with `KeyRing`, and only metadata
ever comes back); the engine calls `load(names)` for exactly the credentials one
run refers to. It also checks, when a workflow is saved, that every credential
the workflow names exists and has a type the node can use.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ductwork.engine.references import credential_names, node_credential_uses
from ductwork.models import ValidationIssue, WorkflowDefinition, utcnow
from ductwork.nodes.base import NodeType
from ductwork.security.context import current
from ductwork.security.credential_types import (
    CREDENTIAL_TYPES,
    HTTP_AUTH_TYPES,
    Credential,
    CredentialData,
    CredentialUnusable,
)
from ductwork.security.crypto import DecryptionFailed, KeyRing
from ductwork.security.models import StoredCredential
from ductwork.settings import Settings
from ductwork.store.base import Store
from ductwork.store.security import DuplicateName
from ductwork.triggers.hooks import auth_credentials

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,99}$"
"""An identifier, so `{{ secrets.NAME }}` reads it without brackets."""
_NAME = re.compile(NAME_PATTERN)

log = logging.getLogger("ductwork.security")

CACHE_SIZE = 10_000
"""Most credentials one process keeps decrypted between runs (then it starts over)."""

PAGE = 500
"""Rows read per store call when a use case needs them all (rotation, the delete check)."""


class CredentialInvalid(Exception):
    """A credential request is invalid; `issues` name the fields (`name`, `type`, `data.<f>`)."""

    def __init__(self, issues: list[ValidationIssue]) -> None:
        self.issues = issues
        super().__init__("credential is invalid: " + "; ".join(i.message for i in issues[:5]))


class CredentialNotFound(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"credential {name!r} not found")
        self.name = name


class CredentialExists(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"a credential named {name!r} exists already (PUT replaces it)")
        self.name = name


@dataclass(frozen=True, slots=True)
class WorkflowRef:
    id: str
    name: str


class CredentialInUse(Exception):
    """Deleting a credential that saved workflows refer to (without `force`)."""

    def __init__(self, name: str, workflows: list[WorkflowRef]) -> None:
        shown = ", ".join(f"{w.name!r} ({w.id})" for w in workflows[:10])
        more = f" and {len(workflows) - 10} more" if len(workflows) > 10 else ""
        super().__init__(
            f"credential {name!r} is used by {len(workflows)} workflow(s): {shown}{more}; "
            "change them first, or delete with force=true"
        )
        self.name = name
        self.workflows = workflows


class CredentialUnreadable(CredentialUnusable):
    """A stored credential cannot be decrypted with the configured keys, or its
    decrypted data no longer validates against its type."""


class CredentialInfo(BaseModel):
    """What the API shows of a credential: never its data."""

    model_config = ConfigDict(defer_build=True)  # built on first use, not at import

    name: str
    type: str
    created_at: datetime
    updated_at: datetime
    created_by: str | None = None

    @classmethod
    def of(cls, stored: StoredCredential) -> CredentialInfo:
        return cls(
            name=stored.name,
            type=stored.type,
            created_at=stored.created_at,
            updated_at=stored.updated_at,
            created_by=stored.created_by,
        )


def accepted_types(node_type: str, config: Mapping[str, Any]) -> frozenset[str] | None:
    """Credential types a node's `credential` may name; None: the node takes none."""
    if node_type == "email":
        return frozenset({"smtp"})
    if node_type == "webhook":
        return HTTP_AUTH_TYPES
    if node_type == "data-source":
        return frozenset({"sql"}) if config.get("source_type") == "database" else HTTP_AUTH_TYPES
    if node_type == "ai-processor":
        return frozenset({"llm"})
    return None


def validate_data(type_name: Any, data: Any) -> CredentialData:
    """`data` checked by its type's model; CredentialInvalid naming `type` or `data.<field>`."""
    model = CREDENTIAL_TYPES.get(type_name) if isinstance(type_name, str) else None
    if model is None:
        known = ", ".join(CREDENTIAL_TYPES)
        raise CredentialInvalid(
            [
                ValidationIssue(
                    field="type", message=f"unknown credential type {type_name!r}; known: {known}"
                )
            ]
        )
    if not isinstance(data, Mapping):
        raise CredentialInvalid([ValidationIssue(field="data", message="must be an object")])
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        # `msg` only: pydantic's `input` would echo the secret back.
        raise CredentialInvalid(
            [
                ValidationIssue(
                    field=".".join(["data", *(str(p) for p in error["loc"])]),
                    message=error["msg"],
                )
                for error in exc.errors(include_url=False, include_input=False)
            ]
        ) from None


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise CredentialInvalid(
            [
                ValidationIssue(
                    field="name",
                    message="must start with a letter or _, then letters, digits or _ "
                    "(at most 100 characters), so templates can read it as secrets.NAME",
                )
            ]
        )
    return name


class CredentialService:
    """Create, replace, delete, list and load credentials; implements `CredentialSource`."""

    def __init__(
        self,
        store: Store,
        keyring: KeyRing,
        settings: Settings,
        registry: Mapping[str, NodeType[Any]],
        *,
        publish_control: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    ) -> None:
        """`publish_control`: the event bus's control channel, so a change made here
        evicts the credential from every process's cache (`evict`)."""
        self.store = store
        self.keyring = keyring
        self.settings = settings
        self.registry = registry
        self._publish_control = publish_control
        self._cache: dict[str, tuple[float, Credential | None]] = {}
        """name -> (expires at, the decrypted credential or None for "no such name")."""
        self._generation = 0
        """Bumped by every eviction: a load in flight across one does not fill the cache."""

    def _encrypt(self, data: CredentialData) -> str:
        return self.keyring.encrypt(data.model_dump_json().encode())

    # Writes ------------------------------------------------------------------------
    async def create(self, name: Any, type_name: Any, data: Any) -> CredentialInfo:
        """Validate, encrypt and store a new credential; its metadata.

        Raises CredentialInvalid (422) or CredentialExists (409).
        """
        name = _check_name(name)
        checked = validate_data(type_name, data)
        now = utcnow()
        stored = StoredCredential(
            id=f"cred_{secrets.token_hex(12)}",
            name=name,
            type=type_name,
            ciphertext=self._encrypt(checked),
            created_at=now,
            updated_at=now,
            created_by=current().principal.actor,
        )
        try:
            created = await self.store.security.create_credential(stored)
        except DuplicateName:
            raise CredentialExists(name) from None
        await self._changed(name)
        return CredentialInfo.of(created)

    async def replace(self, name: str, type_name: Any, data: Any) -> CredentialInfo:
        """Replace a credential's type and data (PUT); CredentialNotFound when unknown."""
        existing = await self.store.security.get_credential(_check_name(name))
        if existing is None:
            raise CredentialNotFound(name)
        checked = validate_data(type_name, data)
        updated = existing.model_copy(
            update={"type": type_name, "ciphertext": self._encrypt(checked), "updated_at": utcnow()}
        )
        if not await self.store.security.update_credential(updated):
            raise CredentialNotFound(name)
        await self._changed(name)
        return CredentialInfo.of(updated)

    async def delete(self, name: str, *, force: bool = False) -> None:
        """Delete a credential; CredentialInUse while saved workflows use it, unless `force`."""
        if await self.store.security.get_credential(name) is None:
            raise CredentialNotFound(name)
        if not force:
            users = await self.workflows_using(name)
            if users:
                raise CredentialInUse(name, users)
        if not await self.store.security.delete_credential(name):
            raise CredentialNotFound(name)
        await self._changed(name)

    async def _changed(self, name: str) -> None:
        """Evict `name` here and, through the control channel, on every other process."""
        self.evict([name])
        if self._publish_control is not None:
            try:
                await self._publish_control({"action": "credentials_changed", "names": [name]})
            except Exception:  # best effort: other caches lapse after the TTL regardless
                log.warning("could not announce the change of credential %r", name, exc_info=True)

    def evict(self, names: Collection[str] | None = None) -> None:
        """Forget cached credentials (`names`, or all): the next run reads the store."""
        self._generation += 1
        if names is None:
            self._cache.clear()
        else:
            for name in names:
                self._cache.pop(name, None)

    async def workflows_using(self, name: str) -> list[WorkflowRef]:
        """Saved workflows whose current definition refers to credential `name`."""
        found: list[WorkflowRef] = []
        offset = 0
        while True:
            page = await self.store.list_workflows(limit=PAGE, offset=offset)
            for workflow in page:
                definition = workflow.definition
                if name in credential_names(definition, self.registry) or any(
                    used == name for _, used in auth_credentials(definition)
                ):
                    found.append(WorkflowRef(workflow.id, workflow.definition.name))
            if len(page) < PAGE:
                return found
            offset += PAGE

    # Reads -------------------------------------------------------------------------
    async def get(self, name: str) -> CredentialInfo:
        stored = await self.store.security.get_credential(name)
        if stored is None:
            raise CredentialNotFound(name)
        return CredentialInfo.of(stored)

    async def list_credentials(self, limit: int = 100, offset: int = 0) -> list[CredentialInfo]:
        """Metadata of credentials, by name."""
        rows = await self.store.security.list_credentials(limit=limit, offset=offset)
        return [CredentialInfo.of(row) for row in rows]

    async def load(self, names: Collection[str]) -> dict[str, Credential]:
        """The named credentials that exist, decrypted (at most one store round trip).

        What was read is kept for DUCTWORK_CREDENTIAL_CACHE_SECONDS (bounded), since
        every run of a workflow loads the same names: the store read and the
        decryption were most of what credentials cost a run. A change through this
        service evicts the name here and, through the control channel, everywhere.

        Raises CredentialUnreadable when one cannot be decrypted with the configured keys
        or no longer validates against its type.
        """
        if not names:
            return {}
        ttl = self.settings.credential_cache_seconds
        now = time.monotonic()
        loaded: dict[str, Credential] = {}
        missing: list[str] = []
        for name in set(names):
            hit = self._cache.get(name)
            if hit is not None and hit[0] > now:
                if hit[1] is not None:
                    loaded[name] = hit[1]
            else:
                missing.append(name)
        if not missing:
            return loaded
        generation = self._generation
        fetched = await self._read(sorted(missing))
        loaded.update(fetched)
        if ttl > 0 and generation == self._generation:
            if len(self._cache) + len(missing) > CACHE_SIZE:
                self._cache.clear()
            expires = now + ttl
            for name in missing:
                self._cache[name] = (expires, fetched.get(name))
        return loaded

    async def _read(self, names: Sequence[str]) -> dict[str, Credential]:
        """The named credentials from the store, decrypted and validated."""
        rows = await self.store.security.get_credentials(names)
        loaded: dict[str, Credential] = {}
        for row in rows:
            model = CREDENTIAL_TYPES.get(row.type)
            if model is None:
                raise CredentialUnreadable(f"credential {row.name!r} has unknown type {row.type!r}")
            try:
                plaintext = self.keyring.decrypt(row.ciphertext)
            except DecryptionFailed as exc:
                raise CredentialUnreadable(f"credential {row.name!r}: {exc}") from None
            try:
                data = model.model_validate_json(plaintext)
            except ValidationError as exc:
                # Stored before a check was added (or written by hand): the run cannot
                # use it. Field names and reasons only: pydantic's own text quotes the
                # input, which is the secret.
                reasons = "; ".join(
                    f"{'.'.join(['data', *(str(p) for p in error['loc'])])}: {error['msg']}"
                    for error in exc.errors(include_url=False, include_input=False)[:5]
                )
                raise CredentialUnreadable(
                    f"credential {row.name!r} is no longer a valid {row.type} credential "
                    f"({reasons}); replace it with PUT /credentials/{row.name}"
                ) from None
            loaded[row.name] = Credential(row.name, row.type, data)
        return loaded

    # Workflow checks ---------------------------------------------------------------
    async def check_definition(self, definition: WorkflowDefinition) -> list[ValidationIssue]:
        """Problems with the credentials a definition refers to (empty when none).

        Each `config.credential` must name a stored credential of a type the node
        accepts; each `secrets.NAME` and each webhook trigger's `auth.credential` a
        stored credential of type `secret` or an entry of DUCTWORK_SECRETS (the
        environment's defaults stay valid).
        """
        wanted: list[tuple[str, str, str, frozenset[str] | None]] = []
        for spec in definition.nodes:
            node_type = self.registry.get(spec.type)
            fields = node_type.expression_fields_for(spec.config) if node_type else frozenset()
            raw = node_type.raw_fields if node_type else frozenset()
            for use in node_credential_uses(spec.config, fields, raw):
                types = (
                    frozenset({"secret"})
                    if use.via_secrets
                    else accepted_types(spec.type, spec.config)
                )
                wanted.append((spec.id, use.field, use.name, types))
        hooks = auth_credentials(definition)
        if not wanted and not hooks:
            return []
        names = sorted({name for _, _, name, _ in wanted} | {name for _, name in hooks})
        stored = {row.name: row.type for row in await self.store.security.get_credentials(names)}
        issues: list[ValidationIssue] = []
        for field, name in hooks:
            kind = stored.get(name)
            entry = self.settings.secrets.get(name)
            if kind == "secret" or (kind is None and entry and entry.get_secret_value()):
                continue
            if kind is not None:
                message = f"credential {name!r} is of type {kind}; a webhook's auth takes a secret"
            elif entry is not None:  # an empty key would make every signature forgeable
                message = (
                    f"the DUCTWORK_SECRETS entry {name!r} is empty; a webhook's token or "
                    "signing secret must not be"
                )
            else:
                message = (
                    f"no credential named {name!r} or DUCTWORK_SECRETS entry (create it with "
                    "type secret: the hook's token or signing secret)"
                )
            issues.append(ValidationIssue(field=field, message=message))
        for node_id, field, name, types in wanted:
            is_secret = field != "config.credential"
            kind = stored.get(name)
            if kind is None:
                if is_secret and name in self.settings.secrets:
                    continue
                where = " or DUCTWORK_SECRETS entry" if is_secret else ""
                message = f"no credential named {name!r}{where}"
                if is_secret:
                    message = f"secrets.{name}: {message} (create it with type secret)"
            elif types is not None and kind not in types:
                allowed = ", ".join(sorted(types))
                message = f"credential {name!r} is of type {kind}; this field takes {allowed}"
                if is_secret:
                    message = f"secrets.{name}: {message}"
            else:
                continue
            issues.append(ValidationIssue(node_id=node_id, field=field, message=message))
        return issues

    # Key rotation ------------------------------------------------------------------
    async def _all(self) -> list[StoredCredential]:
        rows: list[StoredCredential] = []
        while True:
            page = await self.store.security.list_credentials(limit=PAGE, offset=len(rows))
            rows.extend(page)
            if len(page) < PAGE:
                return rows

    async def _reencrypt(self) -> int:
        rows = await self._all()
        ciphertexts: dict[str, str] = {}
        for row in rows:
            try:
                ciphertexts[row.name] = self.keyring.rotate(row.ciphertext)
            except DecryptionFailed as exc:
                raise CredentialUnreadable(f"credential {row.name!r}: {exc}") from None
        if ciphertexts:
            await self.store.security.replace_ciphertexts(ciphertexts)
        return len(ciphertexts)

    async def rotate_key(self, new_key: str | None = None) -> int:
        """Re-encrypt every credential under the newest key; how many were re-encrypted.

        With a key file: a new key (`new_key`, or a generated one) is written first,
        ahead of the old ones, so every credential stays readable whatever happens;
        once everything is re-encrypted (checked by reading every row back), the file
        keeps only the new key. With DUCTWORK_SECRET_KEY the environment is the
        operator's: everything is re-encrypted under its first key, and the caller
        tells them which keys they may now drop.
        """
        if not self.keyring.from_file:
            return await self._reencrypt()
        from ductwork.security.crypto import generate_key

        old = list(self.keyring.keys)
        fresh = new_key or generate_key()
        self.keyring.replace([fresh, *old])
        count = await self._reencrypt()
        # A server beside us may have encrypted under an old key before it saw the new
        # file; those rows are caught here, before the old keys are dropped.
        only_new = KeyRing([fresh])
        for _ in range(3):
            stragglers = [
                row for row in await self._all() if not _decrypts(only_new, row.ciphertext)
            ]
            if not stragglers:
                break
            await self.store.security.replace_ciphertexts(
                {row.name: self.keyring.rotate(row.ciphertext) for row in stragglers}
            )
        else:
            raise CredentialUnreadable(
                "credentials kept being written under an old key during rotation; the key "
                "file still holds old and new keys: run rotate-key again when writes stop"
            )
        self.keyring.replace([fresh])
        return count


def _decrypts(keyring: KeyRing, token: str) -> bool:
    try:
        keyring.decrypt(token)
    except DecryptionFailed:
        return False
    return True
