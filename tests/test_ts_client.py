"""The committed TypeScript client types (web/src/api/schema.d.ts) match the API's OpenAPI document.

`npm --prefix web run check:api` regenerates them (scripts/openapi_dump.py, then
openapi-typescript) into memory and fails on any difference: a route or schema change
must come with `npm --prefix web run gen:api`. Without npm (or web/node_modules) the
test is skipped, and fails under CI=true, like the other services.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.stores import service_unavailable

WEB = Path(__file__).resolve().parent.parent / "web"


def test_typescript_client_matches_the_openapi_document() -> None:
    npm = shutil.which("npm")
    if npm is None:
        service_unavailable("npm is not installed: cannot check web/src/api/schema.d.ts")
    if not (WEB / "node_modules").is_dir():
        service_unavailable("web/node_modules is missing: run `npm --prefix web ci` first")
    env = {**os.environ, "DUCTWORK_PYTHON": sys.executable}
    result = subprocess.run(
        [npm, "--prefix", str(WEB), "run", "--silent", "check:api"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
