"""The web app under /ui/, over HTTP: a fake build in tmp_path (DUCTWORK_UI_DIR) stands in
for `npm --prefix web run build`."""

from __future__ import annotations

import http.client
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ductwork.api.app import create_app
from ductwork.api.ui import PACKAGE_UI_DIR, content_security_policy
from ductwork.runtime import build
from ductwork.settings import Settings
from tests.support.live_server import LiveServer

INDEX = (
    '<!doctype html><html><head><script type="module" crossorigin '
    'src="/ui/assets/index-3f2a1b.js"></script></head><body><div id="root"></div></body></html>'
)
SCRIPT = "console.log('ductwork');"
SECRET = "do not serve me"
IMMUTABLE = "public, max-age=31536000, immutable"


def fake_build(folder: Path) -> Path:
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text(INDEX)
    (folder / "assets" / "index-3f2a1b.js").write_text(SCRIPT)
    (folder / "assets" / "index-9c8d7e.css").write_text("body{margin:0}")
    (folder / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (folder / ".build-stamp").write_text("hash")
    return folder


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    base = tmp_path_factory.mktemp("ui")
    (base / "secret.txt").write_text(SECRET)
    ui = fake_build(base / "dist")
    (ui / "assets" / "escape.txt").symlink_to(base / "secret.txt")
    settings = Settings(data_dir=base / "data", ui_dir=ui, sync_wait_seconds=10)
    with LiveServer(settings) as server:
        yield server


@pytest.fixture
def anon(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


def raw_get(live: LiveServer, path: str) -> tuple[int, str]:
    """GET `path` exactly as written (httpx would normalize `..` away)."""
    connection = http.client.HTTPConnection("127.0.0.1", live.port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def test_assets_are_served_and_cached_for_good(anon: httpx.Client) -> None:
    script = anon.get("/ui/assets/index-3f2a1b.js")
    assert script.status_code == 200
    assert script.text == SCRIPT
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["cache-control"] == IMMUTABLE
    css = anon.get("/ui/assets/index-9c8d7e.css")
    assert css.headers["content-type"].startswith("text/css")
    assert css.headers["cache-control"] == IMMUTABLE
    # Files outside assets/ (public/ of the build) are revalidated.
    icon = anon.get("/ui/favicon.svg")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/svg+xml"
    assert icon.headers["cache-control"] == "no-cache"
    head = anon.head("/ui/assets/index-3f2a1b.js")
    assert head.status_code == 200 and head.content == b""


def test_index_and_client_side_routes_answer_index_html(anon: httpx.Client) -> None:
    for path in (
        "/ui/",
        "/ui/index.html",
        "/ui/workflows/new",
        "/ui/workflows/67a1b2c3d4",
        "/ui/workflows/67a1b2c3d4/",
        "/ui/runs/0f9e8d7c-aaaa-bbbb-cccc-111122223333",
        "/ui/assets",  # a folder is no file: a client-side route
    ):
        answer = anon.get(path)
        assert answer.status_code == 200, path
        assert answer.text == INDEX, path
        assert answer.headers["content-type"].startswith("text/html"), path
        assert answer.headers["cache-control"] == "no-cache", path
    # /ui goes to /ui/.
    bare = anon.get("/ui")
    assert bare.status_code == 307 and bare.headers["location"].endswith("/ui/")
    # Revalidation: the ETag gives a 304.
    etag = anon.get("/ui/").headers["etag"]
    again = anon.get("/ui/workflows/new", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""


def test_a_missing_file_is_404_not_the_app(anon: httpx.Client) -> None:
    for path in ("/ui/assets/index-000000.js", "/ui/robots.txt", "/ui/workflows/x.json"):
        answer = anon.get(path)
        assert answer.status_code == 404, path
        assert answer.json() == {"detail": "Not Found"}
    # Hidden files are never served (the build stamp lives in the build folder).
    assert anon.get("/ui/.build-stamp").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/ui/../secret.txt",
        "/ui/assets/../../secret.txt",
        "/ui/../secret",
        "/ui/%2e%2e/secret.txt",
        "/ui/%2E%2E/%2e%2e/secret.txt",
        "/ui/..%2fsecret.txt",
        "/ui/assets/..%2f..%2fsecret.txt",
        "/ui/..%5csecret.txt",
        "/ui//etc/passwd",
        "/ui/%2fetc%2fpasswd",
        "/ui/%2e/index.html",
        "/ui/assets/escape.txt",  # a symlink out of the build
    ],
)
def test_no_path_leaves_the_build(live: LiveServer, path: str) -> None:
    status, body = raw_get(live, path)
    assert status == 404, (path, body)
    assert SECRET not in body and "root:" not in body


def test_root_sends_browsers_to_the_app(anon: httpx.Client) -> None:
    accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    browser = anon.get("/", headers={"Accept": accept})
    assert browser.status_code == 307
    assert browser.headers["location"] == "/ui/"
    assert "accept" in browser.headers["vary"].lower()
    # Not a browser: the API's 404, as before.
    for headers in ({}, {"Accept": "application/json"}, {"Accept": "text/html;q=0"}):
        answer = anon.get("/", headers=headers)
        assert answer.status_code == 404, headers
        assert answer.json() == {"detail": "Not Found"}


def test_security_headers(anon: httpx.Client) -> None:
    for path in ("/ui/", "/ui/runs/abc", "/ui/assets/index-3f2a1b.js", "/ui/nope.js"):
        headers = anon.get(path).headers
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "same-origin", path
        assert headers["x-frame-options"] == "DENY", path
        policy = headers["content-security-policy"]
        assert "default-src 'self'" in policy, path
        assert "frame-ancestors 'none'" in policy, path
        assert "style-src 'self' 'unsafe-inline'" in policy, path
        assert "img-src 'self' data:" in policy, path
        host = anon.base_url.netloc.decode()
        assert f"connect-src 'self' ws://{host} wss://{host};" in policy, path
        assert "script-src 'self';" in policy, path


def test_a_strange_host_is_left_out_of_the_policy() -> None:
    assert "ws://" not in content_security_policy("evil; script-src *")
    assert "ws://" not in content_security_policy(None)
    assert "ws://[::1]:8000 " in content_security_policy("[::1]:8000")


def test_the_shell_is_public_the_api_is_not(live: LiveServer, anon: httpx.Client) -> None:
    assert anon.get("/ui/").status_code == 200
    assert anon.get("/ui/assets/index-3f2a1b.js").status_code == 200
    denied = anon.get("/workflows/")
    assert denied.status_code == 401
    assert denied.headers["www-authenticate"] == "Bearer"
    assert anon.get("/no/such/path").status_code == 401
    # Other methods under /ui/ reach no data either (the router refuses them).
    assert anon.post("/ui/workflows/new", json={}).status_code == 405
    with live.client() as admin:
        assert admin.get("/workflows/").status_code == 200
        assert admin.get("/ui/workflows/new").text == INDEX


def test_the_ui_routes_are_not_in_the_openapi_document(anon: httpx.Client) -> None:
    paths = anon.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path == "/" or path.startswith("/ui")]


def test_without_a_build_the_app_says_how_to_build_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    empty = tmp_path / "dist"
    empty.mkdir()
    settings = Settings(data_dir=tmp_path / "data", ui_dir=empty, sync_wait_seconds=10)
    with caplog.at_level(logging.WARNING, logger="ductwork.api"), LiveServer(settings) as live:
        with httpx.Client(base_url=live.url, timeout=30) as anon:
            for path in ("/ui/", "/ui/workflows/new", "/ui/assets/index-3f2a1b.js"):
                answer = anon.get(path)
                assert answer.status_code == 503, path
                assert answer.headers["content-type"].startswith("text/html")
                assert answer.headers["cache-control"] == "no-store"
                assert answer.headers["x-frame-options"] == "DENY"
                assert "./scripts/serve" in answer.text
                assert "npm --prefix web ci &amp;&amp; npm --prefix web run build" in answer.text
            # The API keeps working.
            assert anon.get("/health").json()["status"] == "ok"
        with live.client() as admin:
            assert admin.get("/workflows/").status_code == 200
        # Built while the server runs: served from the next request on.
        fake_build(empty)
        with httpx.Client(base_url=live.url, timeout=30) as anon:
            assert anon.get("/ui/runs/x").text == INDEX
    hints = [r for r in caplog.records if "web app is not built" in r.getMessage()]
    assert len(hints) == 1
    assert "npm --prefix web ci && npm --prefix web run build" in hints[0].getMessage()


def test_the_default_ui_dir_is_the_package_folder(tmp_path: Path) -> None:
    api = create_app(build(Settings(data_dir=tmp_path)))
    assert api is not None
    assert PACKAGE_UI_DIR.name == "ui_dist"
    assert PACKAGE_UI_DIR.parent.name == "ductwork"
