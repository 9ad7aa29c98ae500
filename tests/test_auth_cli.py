"""`ductwork users|keys`, the setup link `serve` prints, and `watch` sending the key."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from ductwork.cli import cli
from ductwork.settings import Settings
from tests.support.live_server import LiveServer, auth_headers
from tests.support.polling import wait_until
from tests.support.processes import BIN
from tests.support.smtp_server import free_port

PASSWORD = "a long enough password"


def invoke(args: list[str], data_dir: Path, stdin: str | None = None, **env: str) -> Result:
    return CliRunner().invoke(
        cli, args, input=stdin, env={"DUCTWORK_DATA_DIR": str(data_dir), **env}
    )


def test_users_create_and_list(tmp_path: Path) -> None:
    made = invoke(
        ["users", "create", "--email", "Root@Example.com", "--role", "admin", "--password-stdin"],
        tmp_path,
        stdin=PASSWORD + "\n",
    )
    assert made.exit_code == 0, made.output
    assert "created admin root@example.com" in made.output
    prompted = invoke(
        ["users", "create", "--email", "v@example.com", "--role", "viewer", "--name", "Vi"],
        tmp_path,
        stdin=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert prompted.exit_code == 0, prompted.output
    duplicate = invoke(
        ["users", "create", "--email", "root@example.com", "--role", "viewer", "--password-stdin"],
        tmp_path,
        stdin=PASSWORD + "\n",
    )
    assert duplicate.exit_code == 2 and "exists" in duplicate.output
    short = invoke(
        ["users", "create", "--email", "s@example.com", "--role", "viewer", "--password-stdin"],
        tmp_path,
        stdin="short\n",
    )
    assert short.exit_code == 2 and "password" in short.output
    listed = invoke(["users", "list"], tmp_path)
    assert "root@example.com" in listed.output and "v@example.com" in listed.output
    assert PASSWORD not in listed.output and "argon2" not in listed.output


def test_keys_create_list_revoke_against_a_server(tmp_path: Path) -> None:
    assert (
        invoke(
            [
                "users",
                "create",
                "--email",
                "op@example.com",
                "--role",
                "operator",
                "--password-stdin",
            ],
            tmp_path,
            stdin=PASSWORD + "\n",
        ).exit_code
        == 0
    )
    too_high = invoke(
        ["keys", "create", "--name", "x", "--role", "admin", "--user", "op@example.com"], tmp_path
    )
    assert too_high.exit_code == 2
    made = invoke(
        [
            "keys",
            "create",
            "--name",
            "ci",
            "--role",
            "operator",
            "--user",
            "op@example.com",
            "--expires-in",
            "30",
        ],
        tmp_path,
    )
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("dw_")
    listed = invoke(["keys", "list"], tmp_path)
    assert "ci" in listed.output and key not in listed.output
    with (
        LiveServer(Settings(data_dir=tmp_path)) as live,
        httpx.Client(base_url=live.url, headers=auth_headers(key)) as client,
    ):
        me = client.get("/auth/me").json()
        assert me["role"] == "operator"
        revoked = invoke(["keys", "revoke", me["key_id"]], tmp_path)
        assert revoked.exit_code == 0, revoked.output
        # Without Redis the CLI cannot reach the server's cache, and says so.
        assert "within 10 s" in revoked.output
        assert f"DELETE /auth/keys/{me['key_id']}" in revoked.output
        # The server had the key cached; the CLI's revocation is in the store, and
        # reaches a server through Redis when configured (test_auth covers the bus):
        # here the cache runs out within auth_cache_seconds.
        wait_until(
            lambda: client.get("/workflows/").status_code == 401,
            within=live.app.settings.auth_cache_seconds + 5,
            interval=0.1,
            what="the revoked key refused",
        )
    assert invoke(["keys", "revoke", "nope"], tmp_path).exit_code == 2


def test_serve_prints_a_setup_link_that_works_once(tmp_path: Path) -> None:
    port = free_port()
    env = {"PATH": str(BIN), "DUCTWORK_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    process = subprocess.Popen(
        [str(BIN / "ductwork"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = iter(process.stdout.readline, "")  # ends when the process does
        link = next((line.strip() for line in lines if "/setup?token=" in line), "")
        assert link, "serve ended without printing a setup link"
        assert link.startswith(f"http://127.0.0.1:{port}/setup?token=")
        token = link.split("token=", 1)[1]

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, within=30, interval=0.05, what="the server is healthy")
        body = {"token": token, "email": "first@example.com", "password": PASSWORD}
        done = httpx.post(f"http://127.0.0.1:{port}/auth/setup", json=body)
        assert done.status_code == 201, done.text
        again = httpx.post(f"http://127.0.0.1:{port}/auth/setup", json=body)
        assert again.status_code == 403
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_refuses_auth_disabled_off_loopback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `serve --host` exports DUCTWORK_HOST for uvicorn's app factory; restore it afterwards.
    monkeypatch.setenv("DUCTWORK_HOST", "127.0.0.1")
    result = invoke(["serve", "--host", "0.0.0.0"], tmp_path, DUCTWORK_AUTH="disabled")
    assert result.exit_code == 2
    assert "loopback" in result.output


@pytest.mark.parametrize("how", ["env", "option", "none"])
def test_watch_sends_the_api_key(tmp_path: Path, how: str) -> None:
    with LiveServer(Settings(data_dir=tmp_path)) as live, live.client() as admin:
        workflow = {
            "name": "w",
            "nodes": [{"id": "start", "type": "start"}, {"id": "end", "type": "end"}],
            "edges": [{"from": "start", "to": "end"}],
        }
        workflow_id = admin.post("/workflows/", json=workflow).json()["id"]
        run = admin.post(f"/workflows/{workflow_id}/execute", json={}).json()
        args = ["watch", run["execution_id"], "--url", live.url]
        env: dict[str, str] = {}
        if how == "env":
            env["DUCTWORK_API_KEY"] = live.admin_key
        elif how == "option":
            args += ["--api-key", live.admin_key]
        result = invoke(args, tmp_path, **env)
        if how == "none":
            assert result.exit_code == 2 and "DUCTWORK_API_KEY" in result.output
        else:
            assert result.exit_code == 0, result.output
            assert "success" in result.output
