"""The floor: the least a workflow engine over HTTP + SQLite can cost on this machine.

    python bench/floor.py serve --port 8000 --key KEY --db /tmp/floor.db
    python bench/floor.py run FILE [--input n=1]

Standard library only: `http.server.ThreadingHTTPServer` (HTTP/1.1 keep-alive) and one
`sqlite3` connection (WAL, synchronous=NORMAL, as ductwork's SQLite store), guarded by a
lock. It keeps the guarantees that cost something: every request but /health checks the
bearer key (constant-time), a run row is committed before its first node, and each node's
completed state is committed before its dependants start (one commit per change). It
leaves out what a product needs and a floor does not: validation, versions, events,
retries, leases, templates (a `compose` value is only `name + number`), logs. bench/suite.py
measures it with the same client as `ductwork serve`, for its "floor" column.
"""

from __future__ import annotations

import argparse
import hmac
import json
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS workflows (id TEXT PRIMARY KEY, definition TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, workflow_id TEXT, status TEXT,
    inputs TEXT, outputs TEXT, started REAL, ended REAL);
CREATE TABLE IF NOT EXISTS node_states (run_id TEXT, node_id TEXT, status TEXT, output TEXT,
    PRIMARY KEY (run_id, node_id));
"""


class Store:
    """One SQLite connection shared by the server's threads; a commit per change."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;" + SCHEMA)
        self.lock = threading.Lock()

    def write(self, sql: str, args: tuple[Any, ...]) -> None:
        with self.lock:  # autocommit: the statement is its own committed transaction
            self.db.execute(sql, args)

    def definition(self, workflow_id: str) -> dict[str, Any] | None:
        with self.lock:
            row = self.db.execute(
                "SELECT definition FROM workflows WHERE id = ?", (workflow_id,)
            ).fetchone()
        return None if row is None else json.loads(row[0])


def evaluate(expression: str, names: dict[str, Any]) -> Any:
    """`name + number` or a bare name: the floor's whole expression language."""
    left, _, right = expression.partition("+")
    value = names[left.strip()]
    return value + json.loads(right) if right else value


def execute(
    store: Store, workflow_id: str, definition: dict[str, Any], inputs: dict[str, Any]
) -> dict[str, Any]:
    """Run the nodes in dependency order (Kahn); one committed row per transition."""
    run_id = str(uuid.uuid4())
    store.write(
        "INSERT INTO runs VALUES (?, ?, 'running', ?, NULL, ?, NULL)",
        (run_id, workflow_id, json.dumps(inputs), time.time()),
    )
    parents: dict[str, list[str]] = {node["id"]: [] for node in definition["nodes"]}
    for edge in definition["edges"]:
        parents[edge["to"]].append(edge["from"])
    outputs: dict[str, Any] = {}
    pending = list(definition["nodes"])
    while pending:
        node = next(n for n in pending if all(p in outputs for p in parents[n["id"]]))
        pending.remove(node)
        config = node.get("config", {})
        upstream = [outputs[p] for p in parents[node["id"]]]
        data = dict(upstream[0]) if len(upstream) == 1 else dict(inputs)
        for key, expression in config.get("mapping", {}).items():
            data[key] = evaluate(expression, data)
        outputs[node["id"]] = data
        store.write(
            "INSERT INTO node_states VALUES (?, ?, 'completed', ?)",
            (run_id, node["id"], json.dumps(data)),
        )
    result = {"execution_id": run_id, "status": "success", "outputs": outputs}
    store.write(
        "UPDATE runs SET status = 'success', outputs = ?, ended = ? WHERE id = ?",
        (json.dumps(outputs), time.time(), run_id),
    )
    return result


def serve(port: int, key: str, db: str) -> None:
    store = Store(db)
    expected = f"Bearer {key}".encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn
        # Headers and body go out in two writes: without TCP_NODELAY (uvicorn sets it),
        # Nagle's algorithm holds the body until the client's delayed ACK, 40 ms.
        disable_nagle_algorithm = True

        def reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            # `ductwork serve` writes an access line per request: so does the floor.
            sys.stdout.write(f"{self.client_address[0]} - {format % args}\n")

        def authorized(self) -> bool:
            given = self.headers.get("Authorization", "").encode()
            if hmac.compare_digest(given, expected):
                return True
            self.reply(401, {"detail": "Not authenticated"})
            return False

        def do_GET(self) -> None:
            if self.path == "/health":
                self.reply(200, {"status": "ok"})
            elif self.authorized():
                self.reply(404, {"detail": "Not Found"})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))  # kept alive: read
            if not self.authorized():
                return
            body = json.loads(raw or b"{}")
            parts = self.path.strip("/").split("/")
            if parts == ["workflows"]:
                workflow_id = str(uuid.uuid4())
                store.write("INSERT INTO workflows VALUES (?, ?)", (workflow_id, json.dumps(body)))
                self.reply(201, {"id": workflow_id, **body})
            elif len(parts) == 3 and parts[0] == "workflows" and parts[2] == "execute":
                definition = store.definition(parts[1])
                if definition is None:
                    self.reply(404, {"detail": "Workflow not found"})
                    return
                self.reply(200, execute(store, parts[1], definition, body.get("inputs", {})))
            else:
                self.reply(404, {"detail": "Not Found"})

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def run_file(path: Path, inputs: dict[str, Any]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(str(Path(tmp) / "run.db"))
        definition = json.loads(path.read_text())
        store.write("INSERT INTO workflows VALUES ('w', ?)", (json.dumps(definition),))
        result = execute(store, "w", definition, inputs)
        store.db.close()
    print(json.dumps(result))
    return 0 if result["status"] == "success" else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve")
    serve_parser.add_argument("--port", type=int, required=True)
    serve_parser.add_argument("--key", required=True)
    serve_parser.add_argument("--db", required=True)
    run_parser = commands.add_parser("run")
    run_parser.add_argument("file", type=Path)
    run_parser.add_argument("--input", "-i", action="append", default=[])
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.port, args.key, args.db)
    else:
        pairs = (item.split("=", 1) for item in args.input)
        sys.exit(run_file(args.file, {k: json.loads(v) for k, v in pairs}))
