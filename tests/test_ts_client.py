"""The committed TypeScript client types (web/src/api/schema.d.ts) match the API's OpenAPI document.

`npm --prefix web run check:api` regenerates them (scripts/openapi_dump.py, then
openapi-typescript) into memory and fails on any difference: a route or schema change
must come with `npm --prefix web run gen:api`. Without npm (or web/node_modules) the
test is skipped, and fails under CI=true, like the other services.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.stores import service_unavailable

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"


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


def test_the_readme_quotes_the_canvas_example_as_it_is() -> None:
    """The README's `handleRun` is the type-checked and tested web/examples/handle-run.ts."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Integrating your own canvas", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```ts\n(.*?)```", section, flags=re.DOTALL)
    quoted = [block for block in blocks if "export async function handleRun" in block]
    assert len(quoted) == 1, "the section quotes handleRun once"
    example = (WEB / "examples" / "handle-run.ts").read_text()
    assert quoted[0] in example, "README and web/examples/handle-run.ts differ"
