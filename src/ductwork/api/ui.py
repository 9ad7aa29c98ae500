"""The web app: the built single-page app served under `/ui/`, and `GET /` sending browsers there.

The app shell holds no data (every call it makes needs credentials), so these routes
are public in the guard's table; they are left out of the OpenAPI document.

- A file that exists under the UI dir (`DUCTWORK_UI_DIR`, else the package's
  `ui_dist/`, written by `./scripts/serve` or `npm --prefix web run build`) is served:
  hashed assets under `/ui/assets/` are cached for a year (`immutable`), anything else
  is revalidated (`no-cache`, with an ETag).
- Any other path whose last segment has no file extension is a client-side route
  (`/ui/workflows/new`, `/ui/runs/{id}`): it answers `index.html`.
- A missing file with an extension is 404; so is any path with a `..`, `.`, hidden,
  empty (`//`, an absolute path) or backslash segment: nothing outside the UI dir
  (or hidden inside it) can be named.
- Without a build, `/ui/...` answers 503 with a page saying how to build it; the API
  is unaffected.
"""

from __future__ import annotations

import hashlib
import html
import logging
import mimetypes
import os
import re
from pathlib import Path
from typing import Final

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from ductwork.api.responses import JSON
from ductwork.settings import Settings

log = logging.getLogger("ductwork.api")

router = APIRouter(include_in_schema=False)

PACKAGE_UI_DIR: Final = Path(__file__).resolve().parents[1] / "ui_dist"
"""Where `./scripts/serve` builds the app (shipped in the wheel)."""

BUILD_HINT: Final = (
    "build it with `./scripts/serve` (builds it when npm is available), or "
    "`npm --prefix web ci && npm --prefix web run build`"
)

IMMUTABLE: Final = "public, max-age=31536000, immutable"
REVALIDATE: Final = "no-cache"

_MEDIA_TYPES: Final = {
    # Explicit, whatever the platform's mime registry says: with `nosniff` a wrong
    # type for a module script breaks the app.
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".wasm": "application/wasm",
    ".txt": "text/plain; charset=utf-8",
}

_HOST: Final = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")


def ui_dir(settings: Settings) -> Path:
    """The folder of the built app: `DUCTWORK_UI_DIR`, else the package's `ui_dist/`."""
    return settings.ui_dir if settings.ui_dir is not None else PACKAGE_UI_DIR


def is_built(folder: Path) -> bool:
    return (folder / "index.html").is_file()


def content_security_policy(host: str | None) -> str:
    """The CSP of the app: its own scripts only; inline styles (React Flow sets them);
    fetches and WebSockets to this origin only; never framed."""
    connect = "'self'"
    if host and _HOST.match(host):
        # 'self' covers same-origin ws/wss in CSP3 browsers; older ones need them named.
        connect += f" ws://{host} wss://{host}"
    return (
        "default-src 'self'; script-src 'self'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        f"connect-src {connect}; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


def _secure(response: Response, request: Request) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = content_security_policy(
        request.headers.get("host")
    )
    return response


def _not_found(request: Request) -> Response:
    return _secure(JSON(status_code=404, content={"detail": "Not Found"}), request)


_NOT_BUILT_PAGE: Final = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>ductwork: the web app is not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto">
<h1>The web app is not built</h1>
<p>This ductwork server has no built web app in <code>{folder}</code>.
The API works as usual (<a href="{root}/docs">/docs</a>).</p>
<p>Build the app with <code>./scripts/serve</code> (it builds it when <code>npm</code>
is available), or:</p>
<pre>npm --prefix web ci &amp;&amp; npm --prefix web run build</pre>
<p>then reload this page.</p>
</body>
</html>
"""


def _not_built(request: Request, folder: Path) -> Response:
    root = html.escape(request.scope.get("root_path", ""), quote=True)
    page = _NOT_BUILT_PAGE.format(folder=html.escape(str(folder)), root=root)
    response = HTMLResponse(page, status_code=503, headers={"Cache-Control": "no-store"})
    return _secure(response, request)


def _etag(stat: os.stat_result) -> str:
    # As FileResponse computes it, so a 304 agrees with the 200's header.
    base = f"{stat.st_mtime}-{stat.st_size}"
    return f'"{hashlib.md5(base.encode(), usedforsecurity=False).hexdigest()}"'


def _serve_file(request: Request, path: Path, cache_control: str) -> Response:
    stat = path.stat()
    etag = _etag(stat)
    headers = {"Cache-Control": cache_control}
    sent = request.headers.get("if-none-match")
    if sent is not None and etag in {tag.strip() for tag in sent.split(",")}:
        headers["ETag"] = etag
        return _secure(Response(status_code=304, headers=headers), request)
    media_type = _MEDIA_TYPES.get(path.suffix.lower())
    if media_type is None:
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    response = FileResponse(path, headers=headers, media_type=media_type, stat_result=stat)
    return _secure(response, request)


def _segments(path: str) -> list[str] | None:
    """The segments of a path under /ui/ (a trailing slash ignored); None when one
    could leave the UI dir or name a hidden file."""
    parts = path.split("/")
    if parts and parts[-1] == "":
        parts.pop()
    for part in parts:
        if not part or part.startswith(".") or "\\" in part or "\x00" in part:
            return None
    return parts


def _resolve(folder: Path, parts: list[str]) -> Path | None:
    """The file `parts` names inside `folder` (symlinks followed but kept inside)."""
    try:
        root = folder.resolve(strict=True)
        candidate = root.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def _app_response(request: Request, path: str) -> Response:
    folder = ui_dir(request.app.state.ductwork.settings)
    if not is_built(folder):
        return _not_built(request, folder)
    parts = _segments(path)
    if parts is None:
        return _not_found(request)
    found = _resolve(folder, parts) if parts else None
    if found is not None:
        cache = IMMUTABLE if parts[0] == "assets" and len(parts) > 1 else REVALIDATE
        return _serve_file(request, found, cache)
    if parts and "." in parts[-1]:
        return _not_found(request)  # a missing file, not a client-side route
    return _serve_file(request, folder / "index.html", REVALIDATE)


@router.api_route("/ui/", methods=["GET", "HEAD"])
def ui_index(request: Request) -> Response:
    return _app_response(request, "")


@router.api_route("/ui/{path:path}", methods=["GET", "HEAD"])
def ui_file(request: Request, path: str) -> Response:
    return _app_response(request, path)


def _wants_html(accept: str) -> bool:
    for item in accept.split(","):
        media, _, params = item.partition(";")
        if media.strip().lower() != "text/html":
            continue
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


@router.api_route("/", methods=["GET", "HEAD"])
def root(request: Request) -> Response:
    """Browsers (Accept: text/html) go to the web app; anything else gets the API's 404."""
    headers = {"Vary": "Accept"}
    if _wants_html(request.headers.get("accept", "")):
        location = request.scope.get("root_path", "") + "/ui/"
        return _secure(RedirectResponse(location, status_code=307, headers=headers), request)
    return JSON(status_code=404, content={"detail": "Not Found"}, headers=headers)


def install(api: FastAPI, settings: Settings) -> None:
    """Add the web app's routes; say once, at start, how to build the app when it is not."""
    api.include_router(router)
    folder = ui_dir(settings)
    if not is_built(folder):
        log.warning("the web app is not built (no %s): %s", folder / "index.html", BUILD_HINT)
