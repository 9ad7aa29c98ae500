"""Write ductwork's OpenAPI document (what `/openapi.json` serves) to a file, without a server.

    python scripts/openapi_dump.py web/openapi.json    # or "-" for stdout

The app is built with default settings on a throwaway data directory; DUCTWORK_*
variables of the calling environment are ignored so the document (and the
TypeScript client generated from it, `npm --prefix web run gen:api`) does not
depend on who runs it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any


def openapi_document() -> dict[str, Any]:
    for name in [name for name in os.environ if name.startswith("DUCTWORK_")]:
        del os.environ[name]
    from ductwork.api.app import create_app
    from ductwork.runtime import build
    from ductwork.settings import Settings

    with tempfile.TemporaryDirectory(prefix="ductwork-openapi-") as data_dir:
        app = create_app(build(Settings(data_dir=Path(data_dir))))
        return app.openapi()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUTPUT.json (or - for stdout)", file=sys.stderr)
        return 2
    text = json.dumps(openapi_document(), indent=2, sort_keys=False) + "\n"
    if argv[1] == "-":
        sys.stdout.write(text)
    else:
        Path(argv[1]).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
