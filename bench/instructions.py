"""Instructions per in-process 3-node run, counted by valgrind: a meter load does not move.

    .venv/bin/python bench/instructions.py [--runs 200] [--src DIR ...]

Wall and even CPU time on this shared 2-core machine move by ±30 % from one minute to
the next, which hides a 5 % change. `valgrind --tool=callgrind` counts the instructions a
process executes instead: the same code, inputs and environment give the same count
within ~1-2 %, whatever else the machine does. Each tree (`--src`, default this
checkout's `src`) runs `_workload` twice in a fresh process, with 0 and with `--runs`
measured runs after the same warm-up; the difference divided by `--runs` is the cost of
one run, start-up excluded. The service starts with the sweep and health cache quiet
(hourly), so slowing the process 50x under valgrind does not run them more often, and
PYTHONHASHSEED is fixed. Needs valgrind (every machine here has it); takes ~1 min a tree.

It counts instructions, not time: a change that trades instructions for cache misses
(or the reverse) moves time differently. Use it to compare two trees, not to quote
runs per second.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_table

ROOT = Path(__file__).resolve().parents[1]
_COLLECTED = re.compile(r"Collected : (\d+)")


def _workload(runs: int) -> None:
    """20 warm-up runs, then `runs` more: synchronous executes of the 3-node workflow."""
    import asyncio

    from pydantic import SecretStr
    from tests.support.bench_workflows import THREE_NODE

    from ductwork.models import WorkflowDefinition
    from ductwork.runtime import build
    from ductwork.settings import Settings

    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                data_dir=Path(tmp),
                store_url=f"sqlite:///{tmp}/bench.db",
                admin_api_key=SecretStr("dw_" + "k" * 40),
                sweep_interval_seconds=3600,
                health_cache_seconds=3600,
            )
            service = build(settings)
            await service.start()
            try:
                workflow = await service.create_workflow(
                    WorkflowDefinition.model_validate(THREE_NODE)
                )
                for i in range(20 + runs):
                    run, _ = await service.execute(workflow.id, {"n": i}, wait=True)
                    assert run.status == "success", run.error
            finally:
                await service.close()

    asyncio.run(main())


def instructions(src: Path, runs: int) -> int:
    """Instructions of one process running `_workload(runs)` against `src`."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{ROOT}", "PYTHONHASHSEED": "0"}
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={tmp}/callgrind.out",
                sys.executable,
                __file__,
                "--workload",
                str(runs),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        sys.exit(f"valgrind run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--src", type=Path, action="append", help="a tree's src/ (repeatable)")
    parser.add_argument("--workload", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workload is not None:
        _workload(args.workload)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    rows: list[tuple[str, str, str]] = []
    for src in args.src or [ROOT / "src"]:
        base = instructions(src, 0)
        measured = instructions(src, args.runs)
        per_run = (measured - base) / args.runs
        rows.append(
            (
                f"instructions per in-process 3-node run: {src}",
                f"{per_run / 1e6:.2f} M",
                f"start-up and 20 warm-up runs: {base / 1e9:.2f} G",
            )
        )
    print_table(["measure", "per run", "fixed cost"], rows)


if __name__ == "__main__":
    main()
