"""Memory of the data-source `database` node on PostgreSQL: a 1M-row result, a 100 MB value.

    .venv/bin/python bench/sql_source.py [--src /path/to/other/checkout/src]

Each case runs in a fresh Python process that imports ductwork (from --src when
given, to measure another checkout the same way), runs one query through
`SqlConnections.query` and reports the growth of the process's peak RSS
(`ru_maxrss`) across the query, its time and its outcome. Queries read
`generate_series`, so nothing is written; PostgreSQL is
DUCTWORK_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_measures

POSTGRES_URL = os.environ.get(
    "DUCTWORK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
MILLION_ROWS = (
    "SELECT g AS id, md5(g::text) AS name, now() AS at FROM generate_series(1, 1000000) AS g"
)
HUGE_VALUE = "SELECT repeat('x', 100000000) AS blob"

CASES = [
    ("1M rows, max_rows 1000, asyncpg", "postgresql", MILLION_ROWS, 1000),
    ("1M rows, max_rows 1000, psycopg", "postgresql+psycopg", MILLION_ROWS, 1000),
    ("one 100 MB value, asyncpg", "postgresql", HUGE_VALUE, 1),
]

CHILD = """
import asyncio, json, resource, sys, time
from ductwork.clients.sql import SqlConnections
from ductwork.settings import Settings

url, query, max_rows = sys.argv[1], sys.argv[2], int(sys.argv[3])

async def main():
    sql = SqlConnections(Settings(sql_connections={"pg": url}))
    await sql.query("pg", "SELECT 1", {})  # connect and warm up before measuring
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    try:
        rows = await sql.query("pg", query, {}, max_rows, timeout_seconds=120)
        outcome = f"{len(rows)} rows" + (", truncated" if rows.truncated else "")
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {str(exc)[:70]}"
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    await sql.close()
    print(json.dumps({"mib": (peak - before) / 1024, "seconds": elapsed, "outcome": outcome}))

asyncio.run(main())
"""


def run_case(src: Path | None, driver: str, query: str, max_rows: int) -> dict[str, object]:
    """One case in a fresh interpreter; its JSON report."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    url = POSTGRES_URL.replace("postgresql://", f"{driver}://", 1)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, url, query, str(max_rows)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {"mib": float("nan"), "seconds": float("nan"), "outcome": done.stderr[-200:]}
    report: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def main() -> None:
    """Run every case and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, help="import ductwork from this src directory")
    args = parser.parse_args()
    rows = []
    outcomes = []
    for name, driver, query, max_rows in CASES:
        report = run_case(args.src, driver, query, max_rows)
        target = "bounded by the output cap" if "value" in name else "bounded by max_rows"
        rows.append((f"{name}: peak RSS growth", f"{report['mib']:.1f} MiB", target))
        rows.append((f"{name}: time", f"{report['seconds']:.2f} s", ""))
        outcomes.append(f"{name}: {report['outcome']}")
    print(f"ductwork from {args.src or 'this checkout'}")
    print_measures(rows)
    print("\n".join(outcomes))


if __name__ == "__main__":
    main()
