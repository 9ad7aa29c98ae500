"""The `SecurityStore` contract, run against every store: SQLite, PostgreSQL, MongoDB.

MongoDB runs on SecantusDB (started by the tests) and, when
DUCTWORK_TEST_MONGODB_URL is set, on that real mongod too.
"""

from __future__ import annotations

import asyncio
import inspect as pyinspect
import typing
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from ductwork.security.models import (
    ApiKey,
    AuditEntry,
    AuditQuery,
    Role,
    Session,
    StoredCredential,
    User,
)
from ductwork.store.base import Store, StoreError
from ductwork.store.factory import create_store
from ductwork.store.security import DuplicateName, SecurityStore
from ductwork.store.sql import SCHEMA_VERSION, UPGRADES, SqlStore, migrate, schema_version
from tests.support.sql_schema_v1 import V1_RUN_ID, create_v1_database
from tests.test_store_contract import _schema_of

T0 = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
"""A fixed instant with microseconds, so truncation would show."""


@pytest.fixture
def security(store: Store) -> SecurityStore:
    return store.security


def stored(kind: str, value: datetime) -> datetime:
    """What a store gives back for `value`: BSON dates hold milliseconds only."""
    if kind.startswith("mongodb"):
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def user(n: int, *, email: str | None = None, role: Role = Role.VIEWER) -> User:
    return User(
        id=f"u{n}",
        email=email or f"user{n}@example.com",
        display_name=f"User {n}",
        role=role,
        password_hash=f"$argon2id$v=19$hash-{n}",
        created_at=at(n),
        updated_at=at(n),
    )


def api_key(n: int, owner: str | None = "u1", *, created: int | None = None) -> ApiKey:
    return ApiKey(
        id=f"k{n}",
        name=f"key {n}",
        role=Role.OPERATOR,
        prefix=f"prefix{n}",
        key_hash=f"{n:064x}",
        owner_id=owner,
        created_at=at(n if created is None else created),
        expires_at=at(1000),
    )


def session(n: int, *, user_id: str | None = None, key_id: str | None = None) -> Session:
    return Session(
        id=f"s{n}",
        token_hash=f"{n:064x}",
        user_id=user_id,
        key_id=key_id,
        created_at=at(n),
        expires_at=at(n + 60),
    )


def credential(name: str, n: int = 0, ciphertext: str = "gAAAA-cipher") -> StoredCredential:
    return StoredCredential(
        id=f"c-{name}",
        name=name,
        type="api_key",
        ciphertext=ciphertext,
        created_at=at(n),
        updated_at=at(n),
        created_by="user:u1",
    )


def audit_id(when: datetime, suffix: str = "0000") -> str:
    """Time first, as AuditLog makes them: nanoseconds, then random hex."""
    nanos = int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000
    return f"{nanos:020d}{suffix}"


def entry(minute: int, action: str, **fields: object) -> AuditEntry:
    when = at(minute)
    values: dict[str, object] = {
        "id": audit_id(when),
        "at": when,
        "actor": "user:u1",
        "actor_name": "ada@example.com",
        "action": action,
        "client": "127.0.0.1",
        "details": {"name": "flow", "nested": {"count": 2, "a.b": "dotted key", "$x": 1}},
    }
    values.update(fields)
    return AuditEntry.model_validate(values)


# Users -----------------------------------------------------------------------------


async def test_users_crud_order_and_unique_email(security: SecurityStore, store_kind: str) -> None:
    assert await security.count_users() == 0
    assert await security.list_users() == []
    # Created out of order: listing goes by created_at, oldest first.
    for n in (2, 1, 3):
        assert await security.create_user(user(n)) == user(n)
    assert await security.count_users() == 3

    got = await security.get_user("u1")
    assert got is not None
    assert got.model_dump(exclude={"created_at", "updated_at"}) == user(1).model_dump(
        exclude={"created_at", "updated_at"}
    )
    assert got.created_at == stored(store_kind, at(1))
    assert await security.get_user("missing") is None
    by_email = await security.get_user_by_email("user2@example.com")
    assert by_email is not None and by_email.id == "u2"
    assert await security.get_user_by_email("nobody@example.com") is None

    assert [u.id for u in await security.list_users()] == ["u1", "u2", "u3"]
    assert [u.id for u in await security.list_users(limit=1, offset=1)] == ["u2"]

    with pytest.raises(DuplicateName):
        await security.create_user(user(4, email="user1@example.com"))
    assert await security.count_users() == 3

    changed = user(2, email="new@example.com", role=Role.EDITOR).model_copy(
        update={"disabled": True, "display_name": "Renamed", "updated_at": at(50)}
    )
    assert await security.update_user(changed) == changed
    again = await security.get_user("u2")
    assert again is not None
    assert (again.email, again.role, again.disabled, again.display_name) == (
        "new@example.com",
        Role.EDITOR,
        True,
        "Renamed",
    )
    assert again.updated_at == stored(store_kind, at(50))
    assert await security.get_user_by_email("user2@example.com") is None
    # The old email is free again; taking another user's is refused.
    await security.create_user(user(5, email="user2@example.com"))
    with pytest.raises(DuplicateName):
        await security.update_user(user(2, email="user3@example.com"))
    assert (await security.get_user("u2")) == again
    assert await security.update_user(user(99)) is None
    assert await security.get_user("u99") is None

    assert await security.delete_user("u2") is True
    assert await security.delete_user("u2") is False
    assert await security.get_user("u2") is None
    assert await security.count_users() == 3


async def test_datetimes_come_back_aware_in_utc(security: SecurityStore, store_kind: str) -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2030, 6, 1, 14, 0, 0, 123456, tzinfo=plus_two)
    naive = datetime(2030, 6, 1, 12, 0, 0, 123456)  # UTC by convention
    await security.create_user(
        user(1).model_copy(update={"created_at": local, "updated_at": naive})
    )
    got = await security.get_user("u1")
    assert got is not None
    for value in (got.created_at, got.updated_at):
        assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
        assert value == stored(store_kind, local.astimezone(UTC))

    await security.create_api_key(api_key(1).model_copy(update={"expires_at": local}))
    key = await security.get_api_key("k1")
    assert key is not None and key.expires_at is not None
    assert key.expires_at.utcoffset() == timedelta(0)
    assert key.expires_at == stored(store_kind, local)
    assert key.last_used_at is None and key.revoked_at is None


async def test_security_before_start_is_a_store_error(
    store_kind: str, store_url_factory: Callable[[str], str]
) -> None:
    security = create_store(store_url_factory(store_kind)).security
    with pytest.raises(StoreError, match="not started"):
        await security.get_user("u1")


# Setup token -------------------------------------------------------------------------


async def test_setup_token_is_single_use(security: SecurityStore) -> None:
    assert await security.consume_setup_token("hash-a") is False  # none pending
    await security.set_setup_token("hash-a")
    assert await security.consume_setup_token("hash-b") is False
    assert await security.consume_setup_token("hash-a") is True
    assert await security.consume_setup_token("hash-a") is False

    # A new token replaces the pending one; None withdraws it.
    await security.set_setup_token("hash-a")
    await security.set_setup_token("hash-c")
    assert await security.consume_setup_token("hash-a") is False
    await security.set_setup_token(None)
    assert await security.consume_setup_token("hash-c") is False


async def test_setup_token_concurrent_consumers_one_wins(
    store_kind: str, store_url_factory: Callable[[str], str]
) -> None:
    """Two processes (two stores on one database), several requests each: one wins."""
    url = store_url_factory(store_kind)
    stores = [create_store(url), create_store(url)]
    for each in stores:
        await each.start()
    try:
        consumers = [each.security for each in stores] * 6
        # Warm the connection pools, so the consumers below really run side by side.
        await asyncio.gather(*(security.get_user("nobody") for security in consumers))
        for round_ in range(3):
            await stores[0].security.set_setup_token(f"hash-{round_}")
            results = await asyncio.gather(
                *(security.consume_setup_token(f"hash-{round_}") for security in consumers)
            )
            assert sorted(results) == [False] * (len(consumers) - 1) + [True]
    finally:
        for each in stores:
            await each.close()


# API keys ----------------------------------------------------------------------------


async def test_api_keys_crud_list_and_unique_prefix(
    security: SecurityStore, store_kind: str
) -> None:
    await security.create_api_key(api_key(1))
    await security.create_api_key(api_key(2, owner="u2"))
    await security.create_api_key(api_key(3))
    await security.create_api_key(api_key(4, owner=None))
    with pytest.raises(DuplicateName):
        await security.create_api_key(api_key(5).model_copy(update={"prefix": "prefix1"}))

    got = await security.get_api_key("k1")
    assert got is not None
    assert got.key_hash == api_key(1).key_hash and got.prefix == "prefix1"
    assert got.role is Role.OPERATOR and got.owner_id == "u1"
    assert got.created_at == stored(store_kind, at(1))
    assert await security.get_api_key("missing") is None
    by_prefix = await security.get_api_key_by_prefix("prefix3")
    assert by_prefix is not None and by_prefix.id == "k3"
    assert await security.get_api_key_by_prefix("nope") is None

    assert [k.id for k in await security.list_api_keys()] == ["k4", "k3", "k2", "k1"]
    assert [k.id for k in await security.list_api_keys(limit=2, offset=1)] == ["k3", "k2"]
    assert [k.id for k in await security.list_api_keys(owner_id="u1")] == ["k3", "k1"]
    assert await security.list_api_keys(owner_id="nobody") == []

    await security.touch_api_key("k1", at(30))
    touched = await security.get_api_key("k1")
    assert touched is not None and touched.last_used_at == stored(store_kind, at(30))
    await security.touch_api_key("missing", at(30))  # no error


async def test_a_key_records_the_key_that_made_it(security: SecurityStore, store_kind: str) -> None:
    await security.create_api_key(api_key(1))
    await security.create_api_key(api_key(2).model_copy(update={"parent_key_id": "k1"}))
    parent, child = await security.get_api_key("k1"), await security.get_api_key("k2")
    assert parent is not None and parent.parent_key_id is None
    assert child is not None and child.parent_key_id == "k1"
    listed = {k.id: k.parent_key_id for k in await security.list_api_keys()}
    assert listed == {"k1": None, "k2": "k1"}
    by_prefix = await security.get_api_key_by_prefix("prefix2")
    assert by_prefix is not None and by_prefix.parent_key_id == "k1"


async def test_revoking_keys(security: SecurityStore, store_kind: str) -> None:
    for n, owner in ((1, "u1"), (2, "u1"), (3, "u1"), (4, "u2")):
        await security.create_api_key(api_key(n, owner=owner))
    assert await security.revoke_api_key("k1", at(10)) is True
    assert await security.revoke_api_key("k1", at(20)) is False  # revoked already
    assert await security.revoke_api_key("missing", at(20)) is False
    revoked = await security.get_api_key("k1")
    assert revoked is not None and revoked.revoked_at == stored(store_kind, at(10))

    # Only the live keys of that owner; k1 keeps its first revocation time.
    assert sorted(await security.revoke_api_keys_of("u1", at(30))) == ["k2", "k3"]
    assert await security.revoke_api_keys_of("u1", at(40)) == []
    keys = {k.id: k for k in await security.list_api_keys()}
    assert keys["k1"].revoked_at == stored(store_kind, at(10))
    assert keys["k2"].revoked_at == stored(store_kind, at(30))
    assert keys["k4"].revoked_at is None
    # Revoked keys stay listed (and readable by prefix, for a clear refusal).
    assert len(keys) == 4
    assert await security.get_api_key_by_prefix("prefix2") is not None


# Sessions ----------------------------------------------------------------------------


async def test_sessions(security: SecurityStore, store_kind: str) -> None:
    await security.create_session(session(1, user_id="u1"))
    await security.create_session(session(2, user_id="u1"))
    await security.create_session(session(3, key_id="k1"))
    await security.create_session(session(4, user_id="u2"))
    with pytest.raises(DuplicateName):
        await security.create_session(
            session(5, user_id="u3").model_copy(update={"token_hash": session(1).token_hash})
        )

    got = await security.get_session_by_hash(session(3).token_hash)
    assert got is not None
    assert (got.id, got.user_id, got.key_id) == ("s3", None, "k1")
    assert got.expires_at == stored(store_kind, at(63))
    assert await security.get_session_by_hash("0" * 64) is None

    assert await security.delete_session("s4") is True
    assert await security.delete_session("s4") is False
    assert await security.get_session_by_hash(session(4).token_hash) is None

    assert sorted(await security.delete_sessions_of(user_id="u1")) == ["s1", "s2"]
    assert await security.delete_sessions_of(user_id="u1") == []
    assert await security.get_session_by_hash(session(1).token_hash) is None
    assert await security.delete_sessions_of(key_id="k1") == ["s3"]
    assert await security.get_session_by_hash(session(3).token_hash) is None
    with pytest.raises(ValueError):
        await security.delete_sessions_of()


# Credentials -------------------------------------------------------------------------


async def test_credentials(security: SecurityStore, store_kind: str) -> None:
    for n, name in enumerate(("smtp", "api", "db")):
        await security.create_credential(credential(name, n))
    with pytest.raises(DuplicateName):
        await security.create_credential(credential("api").model_copy(update={"id": "other"}))

    got = await security.get_credential("api")
    assert got is not None
    assert got.model_dump(exclude={"created_at", "updated_at"}) == credential("api").model_dump(
        exclude={"created_at", "updated_at"}
    )
    assert got.created_at == stored(store_kind, at(1))
    assert await security.get_credential("missing") is None
    assert [c.name for c in await security.get_credentials(["db", "missing", "smtp", "db"])] == [
        "db",
        "smtp",
    ]
    assert await security.get_credentials([]) == []
    assert [c.name for c in await security.list_credentials()] == ["api", "db", "smtp"]
    assert [c.name for c in await security.list_credentials(limit=1, offset=1)] == ["db"]

    updated = credential("api", ciphertext="gAAAA-new").model_copy(
        update={"type": "bearer", "updated_at": at(9), "created_at": at(99)}
    )
    assert await security.update_credential(updated) is True
    assert await security.update_credential(credential("missing")) is False
    after = await security.get_credential("api")
    assert after is not None
    assert (after.type, after.ciphertext) == ("bearer", "gAAAA-new")
    assert after.updated_at == stored(store_kind, at(9))
    assert after.created_at == stored(store_kind, at(1))  # not replaced

    await security.replace_ciphertexts({"api": "rotated-1", "db": "rotated-2", "gone": "x"})
    await security.replace_ciphertexts({})
    texts = {c.name: c.ciphertext for c in await security.list_credentials()}
    assert texts == {"api": "rotated-1", "db": "rotated-2", "smtp": "gAAAA-cipher"}
    assert await security.get_credential("gone") is None

    assert await security.delete_credential("db") is True
    assert await security.delete_credential("db") is False
    assert [c.name for c in await security.list_credentials()] == ["api", "smtp"]


async def test_replace_ciphertexts_is_all_or_nothing_on_postgresql(
    store_url_factory: Callable[[str], str],
) -> None:
    """PostgreSQL refuses a NUL in text: the batch fails as one, the first write undone."""
    store = SqlStore(store_url_factory("postgresql"))
    await store.start()
    try:
        for name in ("a", "b"):
            await store.security.create_credential(credential(name))
        with pytest.raises(Exception):  # noqa: B017 - the driver's error, whatever it is
            await store.security.replace_ciphertexts({"a": "new", "b": "bad\x00"})
        texts = {c.name: c.ciphertext for c in await store.security.list_credentials()}
        assert texts == {"a": "gAAAA-cipher", "b": "gAAAA-cipher"}
    finally:
        await store.close()


# Audit log ---------------------------------------------------------------------------


async def test_audit_append_and_read_back(security: SecurityStore, store_kind: str) -> None:
    first = entry(1, "workflow.create", target="workflow:w1")
    await security.append_audit(first)
    got = await security.list_audit(AuditQuery())
    assert len(got) == 1
    assert got[0].model_dump(exclude={"at"}) == first.model_dump(exclude={"at"})
    assert got[0].at == stored(store_kind, first.at)
    assert got[0].at.utcoffset() == timedelta(0)
    with pytest.raises(DuplicateName):
        await security.append_audit(first)


async def test_audit_filters_and_paging(security: SecurityStore) -> None:
    actions = [
        ("workflow.create", "user:u1", "workflow:w1"),
        ("workflow.update", "user:u2", "workflow:w1"),
        ("run.start", "user:u1", "execution:e1"),
        ("workflowx.create", "user:u1", None),  # must not match the prefix `workflow.`
        ("login.failure", "127.0.0.1", None),
        ("workflow.delete", "key:k1", "workflow:w1"),
        ("runx.start", "user:u1", None),  # `_` is no wildcard: `run_.` must not match
    ]
    entries = [
        entry(minute, action, actor=actor, target=target, outcome="ok")
        for minute, (action, actor, target) in enumerate(actions)
    ]
    # Appended out of order: reading goes by id (time first), newest first.
    for item in reversed(entries):
        await security.append_audit(item)

    async def ids(**query: object) -> list[str]:
        return [e.action for e in await security.list_audit(AuditQuery.model_validate(query))]

    assert await ids() == [a for a, _, _ in reversed(actions)]
    assert await ids(limit=2) == ["runx.start", "workflow.delete"]
    assert await ids(actor="user:u1") == [
        "runx.start",
        "workflowx.create",
        "run.start",
        "workflow.create",
    ]
    assert await ids(action="workflow.") == [
        "workflow.delete",
        "workflow.update",
        "workflow.create",
    ]
    assert await ids(action="run.") == ["run.start"]
    assert await ids(action="run_.") == []
    assert await ids(action="%.") == []
    assert await ids(action="run.start") == ["run.start"]
    assert await ids(action="workflow") == []  # exact unless it ends with `.`
    assert await ids(target="workflow:w1", actor="user:u1") == ["workflow.create"]
    assert await ids(since=at(2), until=at(4)) == ["login.failure", "workflowx.create", "run.start"]
    assert await ids(since=at(2), action="workflow.") == ["workflow.delete"]

    # Paging with `before` walks every entry once, newest first.
    seen: list[str] = []
    before: str | None = None
    while True:
        page = await security.list_audit(AuditQuery(limit=3, before=before))
        if not page:
            break
        seen.extend(e.id for e in page)
        before = page[-1].id
    assert seen == [e.id for e in reversed(entries)]
    assert await ids(before=entries[2].id) == ["workflow.update", "workflow.create"]


async def test_audit_ids_order_within_one_instant(security: SecurityStore) -> None:
    """Ids, not times, order the log: two entries in one millisecond keep their order."""
    same = at(5)
    for suffix in ("aaaa", "bbbb", "cccc"):
        await security.append_audit(entry(5, "run.start", id=audit_id(same, suffix), at=same))
    page = await security.list_audit(AuditQuery(limit=2))
    assert [e.id[-4:] for e in page] == ["cccc", "bbbb"]
    rest = await security.list_audit(AuditQuery(before=page[-1].id))
    assert [e.id[-4:] for e in rest] == ["aaaa"]


# No secret in the clear --------------------------------------------------------------

_SECRET_WORDS = ("password", "secret", "token", "key", "plain", "clear")
_ALLOWED_NAMES = {"key_id", "token_hash", "key"}
"""`key` is an ApiKey record (its hash); `key_id` and `token_hash` are no secrets."""


def test_no_method_takes_a_secret_in_the_clear() -> None:
    """Every argument naming a secret is a hash, an id or a record holding only hashes."""
    for name, method in pyinspect.getmembers(SecurityStore, pyinspect.isfunction):
        hints = typing.get_type_hints(method)
        for param in pyinspect.signature(method).parameters:
            if param == "self":
                continue
            if any(word in param for word in _SECRET_WORDS):
                assert param in _ALLOWED_NAMES, f"{name}({param}) looks like a secret"
            if param == "key":
                assert hints[param] is ApiKey
    for model in (User, ApiKey, Session, StoredCredential, AuditEntry):
        for field in model.model_fields:
            if any(word in field for word in ("password", "secret", "token")):
                assert field.endswith("_hash"), f"{model.__name__}.{field}"
    assert "key" not in ApiKey.model_fields and "data" not in StoredCredential.model_fields


# Schema upgrade (SQL) ----------------------------------------------------------------


def _migrate_sync(url: str, upgrades: list[typing.Any]) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            migrate(connection, upgrades)
    finally:
        engine.dispose()


async def _migrate_to(kind: str, url: str, upgrades: list[typing.Any]) -> None:
    if kind == "sqlite":
        _migrate_sync(url, upgrades)
        return
    engine = create_async_engine(make_url(url).set(drivername="postgresql+asyncpg"))
    try:
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: migrate(sync, upgrades))
    finally:
        await engine.dispose()


async def _version_of(kind: str, url: str) -> int | None:
    if kind == "sqlite":
        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                return connection.execute(select(schema_version.c.version)).scalar()
        finally:
            engine.dispose()
    async_engine = create_async_engine(make_url(url).set(drivername="postgresql+asyncpg"))
    try:
        async with async_engine.connect() as connection:
            return (await connection.execute(text("SELECT version FROM schema_version"))).scalar()
    finally:
        await async_engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_sql_schema_2_is_upgraded_to_3_with_the_security_tables(
    kind: str, store_url_factory: Callable[[str], str]
) -> None:
    assert SCHEMA_VERSION >= 3
    url = store_url_factory(kind)
    if kind == "sqlite":
        Path(make_url(url).database or "").parent.mkdir(parents=True, exist_ok=True)
    create_v1_database(kind, url)
    await _migrate_to(kind, url, UPGRADES[:1])
    assert await _version_of(kind, url) == 2

    store = SqlStore(url)
    await store.start()
    try:
        assert await store.get_run(V1_RUN_ID) is not None  # kept
        security = store.security
        await security.create_user(user(1))
        with pytest.raises(DuplicateName):
            await security.create_user(user(2, email="user1@example.com"))
        await security.create_api_key(api_key(1))
        await security.create_session(session(1, user_id="u1"))
        await security.create_credential(credential("api"))
        await security.append_audit(entry(1, "setup.complete"))
        await security.set_setup_token("hash-a")
        assert await security.consume_setup_token("hash-a") is True
    finally:
        await store.close()
    assert await _version_of(kind, url) == SCHEMA_VERSION

    fresh_url = store_url_factory(kind)
    fresh = SqlStore(fresh_url)
    await fresh.start()
    await fresh.close()
    assert await _schema_of(url) == await _schema_of(fresh_url)
