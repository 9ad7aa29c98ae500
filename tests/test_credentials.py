"""Credentials: created over HTTP, encrypted at rest, never shown again; key file and rotation.

HTTP tests talk to a live server (the `client` fixture) on SQLite and on
PostgreSQL, and read the store's rows directly to check what is stored.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from ductwork.cli import cli
from ductwork.engine.references import credential_names, secret_references
from ductwork.models import WorkflowDefinition
from ductwork.nodes.registry import REGISTRY
from ductwork.runtime import build
from ductwork.security.credential_types import CREDENTIAL_TYPES, BearerData
from ductwork.security.credentials import CredentialService, CredentialUnreadable
from ductwork.security.crypto import KeyRing, SecretKeyError
from ductwork.settings import Settings
from ductwork.store.factory import create_store
from tests.support.http_servers import RecordingHttpServer
from tests.support.live_server import LiveServer, auth_headers

T = TypeVar("T")

TOKEN = "tok-3f9c1a7e5b2d4c60"
"""A secret value that must never appear in a response or a stored row."""

METADATA_KEYS = {"name", "type", "created_at", "updated_at", "created_by"}


@pytest.fixture(params=["sqlite", "postgresql"])
def full_settings(
    request: pytest.FixtureRequest, full_settings: Settings, store_url_factory: Any
) -> Settings:
    """The shared live-server settings, on a fresh store of each SQL kind."""
    values = full_settings.model_dump()
    values["store_url"] = store_url_factory(request.param)
    return Settings(**values)


def on_server(server: LiveServer, work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on the live server's loop (its store connections live there)."""
    return server.call(work, timeout=30)


def raw_rows(url: str, table: str | None = None) -> str:
    """Every column of every row of `table` (default: of every table), read from the
    database itself, as text."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            tables = (
                [table]
                if table
                else [
                    name
                    for (name,) in connection.execute(
                        "SELECT name FROM sqlite_master WHERE type='table'"
                    )
                ]
            )
            return repr([connection.execute(f'SELECT * FROM "{t}"').fetchall() for t in tables])

    async def read() -> str:
        connection = await asyncpg.connect(url)
        try:
            tables = (
                [table]
                if table
                else [
                    row["tablename"]
                    for row in await connection.fetch(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    )
                ]
            )
            return repr(
                [[dict(r) for r in await connection.fetch(f'SELECT * FROM "{t}"')] for t in tables]
            )
        finally:
            await connection.close()

    return asyncio.run(read())


def raw_credential_rows(url: str) -> str:
    return raw_rows(url, "credentials")


def create(client: httpx.Client, name: str = "api_token", kind: str = "bearer") -> httpx.Response:
    data = {"value": TOKEN} if kind == "secret" else {"token": TOKEN}
    return client.post("/credentials", json={"name": name, "type": kind, "data": data})


def workflow_using(name: str, title: str = "uses a token") -> dict[str, Any]:
    """A workflow reading credential `name` from a template and from an expression."""
    return {
        "name": title,
        "nodes": [
            {"id": "start", "type": "start", "config": {}},
            {
                "id": "shape",
                "type": "transformer",
                "config": {"transform_type": "compose", "mapping": {"auth": f"secrets.{name}"}},
            },
            {
                "id": "mail",
                "type": "email",
                "config": {"to": "a@example.com", "body": f"{{{{ secrets['{name}'] }}}}"},
            },
        ],
        "edges": [{"from": "start", "to": "shape"}, {"from": "shape", "to": "mail"}],
    }


# HTTP -------------------------------------------------------------------------------


def test_create_answers_metadata_only_and_stores_ciphertext(
    client: httpx.Client, server: LiveServer, full_settings: Settings
) -> None:
    created = create(client)
    assert created.status_code == 201, created.text
    assert set(created.json()) == METADATA_KEYS
    assert created.json()["name"] == "api_token"
    assert created.json()["type"] == "bearer"
    assert TOKEN not in created.text

    listed = client.get("/credentials")
    assert listed.status_code == 200
    assert [item["name"] for item in listed.json()["items"]] == ["api_token"]
    assert all(set(item) == METADATA_KEYS for item in listed.json()["items"])
    one = client.get("/credentials/api_token")
    assert one.status_code == 200
    assert set(one.json()) == METADATA_KEYS
    for response in (listed, one):
        assert TOKEN not in response.text
    assert client.get("/credentials/nope").status_code == 404

    rows = raw_credential_rows(full_settings.resolved_store_url)
    assert "api_token" in rows  # the row is there ...
    assert TOKEN not in rows  # ... but not the secret
    stored = on_server(server, server.app.store.security.get_credential("api_token"))
    assert stored is not None
    key = (full_settings.data_dir / "secret.key").read_text().split()[0]
    assert TOKEN in Fernet(key.encode()).decrypt(stored.ciphertext.encode()).decode()


def test_put_replaces_type_and_data(client: httpx.Client, server: LiveServer) -> None:
    assert create(client).status_code == 201
    replaced = client.put(
        "/credentials/api_token",
        json={"type": "basic", "data": {"username": "ops", "password": "pw-new-1234"}},
    )
    assert replaced.status_code == 200, replaced.text
    assert set(replaced.json()) == METADATA_KEYS
    assert replaced.json()["type"] == "basic"
    assert "pw-new-1234" not in replaced.text
    assert replaced.json()["updated_at"] >= replaced.json()["created_at"]

    assert server.app.credentials is not None
    loaded = on_server(server, server.app.credentials.load(["api_token", "other"]))
    assert list(loaded) == ["api_token"]
    assert loaded["api_token"].type == "basic"
    assert loaded["api_token"].data.model_dump() == {"username": "ops", "password": "pw-new-1234"}

    missing = client.put("/credentials/nope", json={"type": "secret", "data": {"value": "abcd"}})
    assert missing.status_code == 404


def test_delete_refused_while_a_workflow_uses_it_unless_forced(
    client: httpx.Client,
) -> None:
    assert create(client, kind="secret").status_code == 201
    assert create(client, "unused").status_code == 201
    saved = client.post("/workflows/", json=workflow_using("api_token", "nightly report"))
    assert saved.status_code == 201, saved.text
    workflow_id = saved.json()["id"]

    refused = client.delete("/credentials/api_token")
    assert refused.status_code == 409
    assert refused.json()["workflows"] == [{"id": workflow_id, "name": "nightly report"}]
    assert "nightly report" in refused.json()["detail"]
    assert client.get("/credentials/api_token").status_code == 200

    assert client.delete("/credentials/unused").status_code == 204
    forced = client.delete("/credentials/api_token", params={"force": "true"})
    assert forced.status_code == 204
    assert client.get("/credentials/api_token").status_code == 404
    assert client.delete("/credentials/api_token").status_code == 404


def test_saving_a_workflow_checks_the_credentials_it_names(client: httpx.Client) -> None:
    missing = client.post("/workflows/", json=workflow_using("api_token"))
    assert missing.status_code == 422
    fields = {(issue["node_id"], issue["field"]) for issue in missing.json()["detail"]}
    assert fields == {("shape", "config.mapping.auth"), ("mail", "config.body")}
    assert "no credential named 'api_token'" in missing.text

    # A bearer credential is not a `secret`: templates cannot read it as secrets.NAME.
    assert create(client).status_code == 201
    wrong_type = client.post("/workflows/", json=workflow_using("api_token"))
    assert wrong_type.status_code == 422
    assert "of type bearer" in wrong_type.text

    secret = client.post(
        "/credentials", json={"name": "plain", "type": "secret", "data": {"value": TOKEN}}
    )
    assert secret.status_code == 201
    saved = client.post("/workflows/", json=workflow_using("plain"))
    assert saved.status_code == 201, saved.text
    updated = client.put(f"/workflows/{saved.json()['id']}", json=workflow_using("gone"))
    assert updated.status_code == 422


def test_a_webhook_credential_reaches_the_remote_and_nothing_reads_it_back(
    client: httpx.Client, http_server: RecordingHttpServer, full_settings: Settings
) -> None:
    assert create(client, "hook_auth").status_code == 201
    workflow = {
        "name": "notify",
        "nodes": [
            {"id": "start", "type": "start", "config": {}},
            {
                "id": "call",
                "type": "webhook",
                "config": {"url": http_server.url("/hook"), "credential": "hook_auth"},
            },
            {"id": "end", "type": "end", "config": {}},
        ],
        "edges": [{"from": "start", "to": "call"}, {"from": "call", "to": "end"}],
    }
    wrong = {**workflow, "nodes": [dict(n) for n in workflow["nodes"]]}
    wrong["nodes"][1] = {
        **wrong["nodes"][1],
        "config": {"url": http_server.url("/hook"), "credential": "plain"},
    }
    assert (
        client.post(
            "/credentials", json={"name": "plain", "type": "secret", "data": {"value": "v-1234"}}
        ).status_code
        == 201
    )
    refused = client.post("/workflows/", json=wrong)
    assert refused.status_code == 422
    assert [(i["node_id"], i["field"]) for i in refused.json()["detail"]] == [
        ("call", "config.credential")
    ]
    assert "of type secret" in refused.text

    saved = client.post("/workflows/", json=workflow)
    assert saved.status_code == 201, saved.text
    run = client.post(f"/workflows/{saved.json()['id']}/execute", json={})
    assert run.status_code == 200, run.text
    assert run.json()["status"] == "success", run.text
    # The remote got it (and echoed it back in its reply) ...
    assert http_server.requests("/hook")[0].headers["authorization"] == f"Bearer {TOKEN}"
    # ... but no response, event or stored row holds it.
    execution = client.get(f"/workflows/executions/{run.json()['execution_id']}")
    for response in (run, execution, client.get("/credentials/hook_auth")):
        assert TOKEN not in response.text
    assert TOKEN not in raw_rows(full_settings.resolved_store_url)


def test_validate_checks_credentials_only_for_who_may_read_them(
    client: httpx.Client, server: LiveServer
) -> None:
    # Validating needs only READ: a viewer must not learn which credentials exist, nor
    # their types, from its issues (GET /credentials is 403 for them).
    assert create(client, "prod_token").status_code == 201
    body = {
        "name": "probe",
        "nodes": [
            {"id": "start", "type": "start", "config": {}},
            {
                "id": "m",
                "type": "email",
                "config": {"to": "a@example.com", "credential": "prod_token"},
            },
            {
                "id": "h",
                "type": "webhook",
                "config": {"url": "http://x.test/", "credential": "nope"},
            },
        ],
        "edges": [{"from": "start", "to": "m"}, {"from": "start", "to": "h"}],
    }

    def key(role: str) -> str:
        answer = client.post("/auth/keys", json={"name": f"{role} key", "role": role})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["key"])

    with httpx.Client(base_url=server.url, headers=auth_headers(key("viewer"))) as viewer:
        assert viewer.get("/credentials").status_code == 403
        answer = viewer.post("/workflows/validate", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"valid": True, "issues": []}
    with httpx.Client(base_url=server.url, headers=auth_headers(key("editor"))) as editor:
        answer = editor.post("/workflows/validate", json=body)
        assert answer.status_code == 200, answer.text
        messages = [issue["message"] for issue in answer.json()["issues"]]
        assert any("credential 'prod_token' is of type bearer" in m for m in messages), messages
        assert any("no credential named 'nope'" in m for m in messages), messages
        # Saving checks them whoever asks.
        assert editor.post("/workflows/", json=body).status_code == 422


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "type": "nonsense", "data": {}}, "type"),
        ({"name": "x", "type": "bearer", "data": {}}, "data.token"),
        ({"name": "x", "type": "bearer", "data": {"token": TOKEN, "extra": 1}}, "data.extra"),
        ({"name": "x", "type": "smtp", "data": {"host": "mail", "port": 0}}, "data.port"),
        ({"name": "x", "type": "bearer", "data": {"token": "ab"}}, "data.token"),
        ({"name": "1x", "type": "bearer", "data": {"token": TOKEN}}, "name"),
        ({"name": "a-b", "type": "bearer", "data": {"token": TOKEN}}, "name"),
        ({"name": "x", "type": "bearer"}, "data"),
    ],
)
def test_invalid_credentials_are_422_naming_the_field(
    client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    response = client.post("/credentials", json=body)
    assert response.status_code == 422, response.text
    assert field in [issue["field"] for issue in response.json()["detail"]]
    assert TOKEN not in response.text


def test_duplicate_name_is_409_and_bad_put_is_422(client: httpx.Client) -> None:
    assert create(client).status_code == 201
    again = create(client)
    assert again.status_code == 409
    assert "exists" in again.json()["detail"]
    bad = client.put("/credentials/api_token", json={"type": "llm", "data": {"api_key": TOKEN}})
    assert bad.status_code == 422
    assert [i["field"] for i in bad.json()["detail"]] == ["data.base_url"]


def test_credential_types_describe_secret_fields_as_write_only(client: httpx.Client) -> None:
    response = client.get("/credential-types")
    assert response.status_code == 200
    types = {entry["name"]: entry for entry in response.json()}
    assert set(types) == set(CREDENTIAL_TYPES)
    for name, entry in types.items():
        properties = entry["json_schema"]["properties"]
        for field in CREDENTIAL_TYPES[name].secret_fields:
            assert properties[field]["writeOnly"] is True
            assert properties[field]["format"] == "password"
    assert "writeOnly" not in types["smtp"]["json_schema"]["properties"]["host"]


def test_openapi_declares_the_credential_routes(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/credentials"]) == {"get", "post"}
    assert set(paths["/credentials/{name}"]) == {"get", "put", "delete"}
    delete = paths["/credentials/{name}"]["delete"]["responses"]
    assert "204" in delete
    assert delete["409"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "CredentialInUseBody"
    )


# Key material -------------------------------------------------------------------------


def test_key_file_is_created_private_on_first_start(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # the usual umask: a plain open() would make the file 0644
    try:
        build(Settings(data_dir=tmp_path / "data"))
    finally:
        os.umask(previous)
    path = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text().strip()
    Fernet(key.encode())  # a valid key
    build(Settings(data_dir=tmp_path / "data"))  # a second start keeps it
    assert path.read_text().strip() == key


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_text(Fernet.generate_key().decode() + "\n")
    path.chmod(0o644)
    with pytest.raises(SecretKeyError, match=r"group or others \(mode 0644\).*chmod 600"):
        build(Settings(data_dir=tmp_path))
    result = CliRunner().invoke(cli, ["serve"], env={"DUCTWORK_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 2
    assert "chmod 600" in result.output


def test_a_malformed_secret_key_is_refused_without_echoing_it(tmp_path: Path) -> None:
    good = Fernet.generate_key().decode()
    with pytest.raises(SecretKeyError, match="key #2 of 2 is not a Fernet key") as caught:
        build(Settings(data_dir=tmp_path, secret_key=f"{good},not-a-key-xyz"))
    assert "not-a-key-xyz" not in str(caught.value)
    assert good not in str(caught.value)
    assert not (tmp_path / "secret.key").exists()  # the env key is used, no file made


# Service, rotation and the CLI --------------------------------------------------------


async def _service(settings: Settings) -> tuple[CredentialService, Any]:
    store = create_store(settings.resolved_store_url)
    await store.start()
    return CredentialService(store, KeyRing.from_settings(settings), settings, REGISTRY), store


async def _seed(settings: Settings, count: int) -> None:
    service, store = await _service(settings)
    try:
        for index in range(count):
            await service.create(f"cred_{index}", "bearer", {"token": f"{TOKEN}-{index}"})
    finally:
        await store.close()


async def _load_all(settings: Settings, keyring: KeyRing) -> dict[str, str]:
    store = create_store(settings.resolved_store_url)
    await store.start()
    try:
        service = CredentialService(store, keyring, settings, REGISTRY)
        rows = await service.list_credentials(limit=1000)
        loaded = await service.load([row.name for row in rows])
        return {
            name: cred.data.token
            for name, cred in loaded.items()
            if isinstance(cred.data, BearerData)
        }
    finally:
        await store.close()


@pytest.fixture
def cli_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    yield {"DUCTWORK_DATA_DIR": str(tmp_path / "data")}


def test_rotate_key_with_the_key_file_reencrypts_and_drops_the_old_key(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    asyncio.run(_seed(settings, 3))
    path = settings.data_dir / "secret.key"
    old_key = path.read_text().strip()

    result = CliRunner().invoke(cli, ["credentials", "rotate-key"], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 3 credential(s)" in result.output

    keys = path.read_text().split()
    assert len(keys) == 1 and keys[0] != old_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    expected = {f"cred_{i}": f"{TOKEN}-{i}" for i in range(3)}
    assert asyncio.run(_load_all(settings, KeyRing(keys))) == expected
    with pytest.raises(CredentialUnreadable, match="none of the 1 key"):
        asyncio.run(_load_all(settings, KeyRing([old_key])))
    assert TOKEN not in raw_credential_rows(settings.resolved_store_url)


def test_rotate_key_with_env_keys_reencrypts_under_the_first(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings = Settings(data_dir=tmp_path / "data", secret_key=old)
    asyncio.run(_seed(settings, 2))

    env = {**cli_env, "DUCTWORK_SECRET_KEY": f"{new},{old}"}
    result = CliRunner().invoke(cli, ["credentials", "rotate-key"], env=env)
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 2 credential(s) under the first key" in result.output
    assert "Keep only that key" in result.output
    assert new not in result.output and old not in result.output  # fingerprints only

    expected = {f"cred_{i}": f"{TOKEN}-{i}" for i in range(2)}
    assert asyncio.run(_load_all(settings, KeyRing([new]))) == expected
    with pytest.raises(CredentialUnreadable):
        asyncio.run(_load_all(settings, KeyRing([old])))


def test_a_wrong_key_gives_a_clear_error(tmp_path: Path, cli_env: dict[str, str]) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    asyncio.run(_seed(settings, 1))
    other = Fernet.generate_key().decode()
    with pytest.raises(CredentialUnreadable, match=r"'cred_0'.*encrypted with another key"):
        asyncio.run(_load_all(settings, KeyRing([other])))

    env = {**cli_env, "DUCTWORK_SECRET_KEY": other}
    result = CliRunner().invoke(cli, ["credentials", "rotate-key"], env=env)
    assert result.exit_code == 1
    assert "encrypted with another key" in result.output


def test_credentials_list_shows_metadata(tmp_path: Path, cli_env: dict[str, str]) -> None:
    asyncio.run(_seed(Settings(data_dir=tmp_path / "data"), 2))
    result = CliRunner().invoke(cli, ["credentials", "list", "--json"], env=cli_env)
    assert result.exit_code == 0, result.output
    assert [line.count('"name"') for line in result.output.splitlines()] == [1, 1]
    assert "cred_0" in result.output and "cred_1" in result.output
    assert TOKEN not in result.output


# References ---------------------------------------------------------------------------


def test_secret_references_read_the_syntax_tree() -> None:
    assert secret_references("{{ secrets.a }} {{ secrets['b'] }} {{ 'secrets.c' }}") == ("a", "b")
    definition = WorkflowDefinition.model_validate(
        {
            "name": "refs",
            "nodes": [
                {"id": "w", "type": "webhook", "config": {"credential": "hook_auth"}},
                {"id": "t", "type": "transformer", "config": {"expression": "secrets.x + 1"}},
                {"id": "e", "type": "email", "config": {"body": "{{ secrets['y'] }}"}},
            ],
            "edges": [],
        }
    )
    assert credential_names(definition, REGISTRY) == {"hook_auth", "x", "y"}


async def test_a_credential_the_key_cannot_decrypt_fails_the_run_once_clearly(
    tmp_path: Path,
) -> None:
    # The key was replaced without rotating: every attempt to drive the run would fail the
    # same way, so the run fails at once (not re-driven forever) and says why.
    from ductwork.models import RunStatus
    from ductwork.security.credentials import CredentialService
    from ductwork.security.crypto import KeyRing, generate_key
    from tests.support.engine import definition, embedded

    async with embedded(tmp_path) as app:
        service = app.credentials
        assert isinstance(service, CredentialService)
        await service.create("NOTE", "secret", {"value": "note-value-1234"})
        workflow = await app.create_workflow(
            definition(
                [
                    {"id": "start", "type": "start"},
                    {"id": "end", "type": "end", "config": {"output": "{{ secrets.NOTE }}"}},
                ],
                [("start", "end")],
            )
        )
        service.keyring = KeyRing([generate_key()])
        run, _ = await app.execute(workflow.id, {}, wait=True, wait_seconds=20)
        assert run.status is RunStatus.ERROR
        assert "credentials cannot be used" in (run.error or "")
        assert "NOTE" in (run.error or "")
        assert "note-value-1234" not in run.model_dump_json()


BAD_SQL_URL = "postgresql://u:[pw-Bracket-8812@db.example/app"
"""SQLAlchemy reads it, but urlsplit(...).password raises ValueError ("Invalid IPv6 URL")."""


def sql_workflow() -> WorkflowDefinition:
    from tests.support.engine import definition

    return definition(
        [
            {"id": "start", "type": "start"},
            {
                "id": "q",
                "type": "data-source",
                "config": {"source_type": "database", "credential": "DB", "query": "SELECT 1"},
            },
        ],
        [("start", "q")],
    )


def test_a_sql_url_that_does_not_parse_is_refused_at_creation(client: httpx.Client) -> None:
    response = client.post(
        "/credentials", json={"name": "DB", "type": "sql", "data": {"url": BAD_SQL_URL}}
    )
    assert response.status_code == 422, response.text
    assert [issue["field"] for issue in response.json()["detail"]] == ["data.url"]
    assert "pw-Bracket" not in response.text
    response = client.post(
        "/credentials", json={"name": "DB", "type": "sql", "data": {"url": "not a url at all"}}
    )
    assert response.status_code == 422, response.text


def test_sql_secret_values_never_raise() -> None:
    from ductwork.security.credential_types import SqlData

    # Stored before the URL was checked: no exception, the whole URL is still masked.
    data = SqlData.model_construct(url=BAD_SQL_URL)
    assert BAD_SQL_URL in data.secret_values()


async def test_a_stored_credential_that_no_longer_validates_fails_the_run_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A row written before the URL check existed (or edited by hand): the run must fail at
    # once with the reason, not stay queued and be offered again every second.
    from ductwork.models import RunStatus
    from tests.support.engine import embedded

    async with embedded(tmp_path, sweep_interval_seconds=0.05) as app:
        service = app.credentials
        assert isinstance(service, CredentialService)
        await service.create("DB", "sql", {"url": "sqlite:///" + str(tmp_path / "x.db")})
        workflow = await app.create_workflow(sql_workflow())
        stored = await app.store.security.get_credential("DB")
        assert stored is not None
        plaintext = ('{"url": "' + BAD_SQL_URL + '"}').encode()
        assert await app.store.security.update_credential(
            stored.model_copy(update={"ciphertext": service.keyring.encrypt(plaintext)})
        )
        run, _ = await app.execute(workflow.id, {}, wait=True, wait_seconds=10)
        run = await app.get_run(run.execution_id)
    assert run.status is RunStatus.ERROR, run.status
    assert "credential 'DB' is no longer a valid sql credential" in (run.error or "")
    assert "data.url" in (run.error or "")
    assert run.redrives == 0
    assert [e.type for e in run.events].count("run_finished") == 1
    for text in (run.model_dump_json(), caplog.text):
        assert "pw-Bracket" not in text


async def test_an_error_while_preparing_a_run_counts_as_a_crash_and_is_masked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Anything that raises while the run's driver is built (here: a credential type whose
    # secret_values() fails, quoting the secret) is re-driven a bounded number of times and
    # then fails for good, instead of escaping advance() and looping forever.
    from ductwork.models import RunStatus
    from ductwork.security.credential_types import SqlData
    from tests.support.engine import embedded

    secret_url = "sqlite:///" + str(tmp_path / "pw-Prepare-4471.db")

    def broken(self: SqlData) -> list[str]:
        raise ValueError(f"cannot read {self.url}")

    async with embedded(tmp_path, sweep_interval_seconds=0.05, max_run_redrives=2) as app:
        service = app.credentials
        assert isinstance(service, CredentialService)
        await service.create("DB", "sql", {"url": secret_url})
        workflow = await app.create_workflow(sql_workflow())
        monkeypatch.setattr(SqlData, "secret_values", broken)
        run, _ = await app.execute(workflow.id, {}, wait=True, wait_seconds=20)
        run = await app.get_run(run.execution_id)
    assert run.status is RunStatus.ERROR, run.status
    assert run.dead_letter
    assert "advancing the run failed 3 times" in (run.error or "")
    assert "ValueError: cannot read ***" in (run.error or "")
    assert "preparing run" in caplog.text
    for text in (run.model_dump_json(), caplog.text):
        assert "pw-Prepare-4471" not in text


async def test_a_run_reuses_decrypted_credentials_until_they_change(tmp_path: Path) -> None:
    # Every run of a workflow loads the same names: the store read and the decryption
    # were most of what credentials cost a run, so a process keeps what it read.
    from tests.support.engine import embedded

    async with embedded(tmp_path, credential_cache_seconds=300) as app:
        service = app.credentials
        assert isinstance(service, CredentialService)
        await service.create("NOTE", "secret", {"value": "first-value-1234"})
        reads: list[list[str]] = []
        read = service.store.security.get_credentials

        async def counting(names: Any) -> Any:
            reads.append(list(names))
            return await read(names)

        service.store.security.get_credentials = counting  # type: ignore[method-assign]
        first = await service.load(["NOTE", "ABSENT"])
        again = await service.load(["NOTE", "ABSENT"])
        assert reads == [["ABSENT", "NOTE"]]  # one read; the absent name is remembered too
        assert first["NOTE"].data.model_dump() == again["NOTE"].data.model_dump()
        await service.replace("NOTE", "secret", {"value": "second-value-5678"})
        changed = await service.load(["NOTE"])
        assert changed["NOTE"].data.model_dump() == {"value": "second-value-5678"}
        assert len(reads) == 2


def test_a_changed_credential_reaches_every_process_at_once(
    tmp_path: Path, redis_url: str, http_server: RecordingHttpServer
) -> None:
    """Two processes share the store and the Redis bus and cache credentials for five
    minutes; replacing one on the first is used by the second's next run."""
    import uuid

    from tests.support.polling import wait_until

    settings = Settings(
        data_dir=tmp_path,
        store_url=f"sqlite:///{tmp_path / 'shared.db'}",
        redis_url=redis_url,
        redis_namespace=f"credtest{uuid.uuid4().hex[:8]}",
        serve_role="embedded",
        credential_cache_seconds=300,
        http_allow_private_networks=True,
    )
    url = http_server.url("/hook")
    with (
        LiveServer(settings) as one,
        LiveServer(settings) as two,
        one.client() as on_one,
        two.client() as on_two,
    ):
        created = on_one.post(
            "/credentials",
            json={"name": "crm", "type": "bearer", "data": {"token": "token-one-1111"}},
        )
        assert created.status_code == 201, created.text
        workflow = {
            "name": "hook",
            "nodes": [
                {"id": "start", "type": "start"},
                {"id": "hook", "type": "webhook", "config": {"url": url, "credential": "crm"}},
            ],
            "edges": [{"from": "start", "to": "hook"}],
        }
        saved = on_one.post("/workflows/", json=workflow)
        assert saved.status_code == 201, saved.text
        wid = saved.json()["id"]

        def token_sent_by_two() -> str:
            run = on_two.post(f"/workflows/{wid}/execute", json={}).json()
            assert run["status"] == "success", run
            return http_server.requests("/hook")[-1].headers["authorization"]

        assert token_sent_by_two() == "Bearer token-one-1111"
        replaced = on_one.put(
            "/credentials/crm", json={"type": "bearer", "data": {"token": "token-two-2222"}}
        )
        assert replaced.status_code == 200, replaced.text
        # The cache would keep the old token for 300 s: only the bus explains a switch.
        wait_until(
            lambda: token_sent_by_two() == "Bearer token-two-2222",
            within=5,
            what="the second process used the replaced credential",
        )
