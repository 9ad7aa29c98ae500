"""Issue 12's targets in one table: ductwork beside the stdlib floor and the recorded baseline.

    .venv/bin/python bench/suite.py [--quick] [--no-scaled] [--no-floor] [--record-baseline]

Embedded rows: `ductwork serve` (SQLite, the package of this checkout: PYTHONPATH=<repo>/src
unless --src says otherwise) in a subprocess, driven by a stdlib `http.client` keep-alive
client (cheap, so the numbers are the server's); the server's CPU time per run or node
comes from /proc (schedstat, ns). The same client drives bench/floor.py (a stdlib engine: the
least this machine can do) for the "floor" columns. Cold runs are subprocesses (median of
5). Scaled rows come from bench/scale_out.py's `scaled_measures` when it has one, else from
a PostgreSQL + Redis + API + one worker setup here; memory rows from bench/memory.py's
`memory_measures` when that exists.

The load average and core count are printed before and after: on a loaded machine the
wall-clock columns move, the CPU columns much less. "baseline" is bench/baseline.json's
`suite` section (the table recorded with --record-baseline, with its machine and commit).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import http.client
import importlib
import json
import os
import platform
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import print_table  # noqa: E402
from tests.support.bench_workflows import THREE_NODE, transformer_chain  # noqa: E402

BASELINE = ROOT / "bench" / "baseline.json"
KEY = "dw_benchadminkey_" + "k" * 40
HEADERS = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
THREE: dict[str, Any] = THREE_NODE
CHAIN: dict[str, Any] = {**transformer_chain(40), "name": "chain40"}
# The cached AI row: the same 3-node shape with the transformer replaced by an AI node.
THREE_AI: dict[str, Any] = {
    "name": "three-ai",
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "ai", "type": "ai-processor", "config": {"prompt": "Say hello"}},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "start", "to": "ai"}, {"from": "ai", "to": "end"}],
}
ENTRY = "import sys; sys.argv[0] = 'ductwork'; from ductwork.cli import main; main()"
"""`python -c ENTRY serve …`: the CLI of whatever `ductwork` package PYTHONPATH selects."""


@dataclass
class Sizes:
    chain_runs: int
    runs: int
    cold_runs: int
    ai_runs: int
    scaled_runs: int


FULL = Sizes(chain_runs=100, runs=800, cold_runs=5, ai_runs=200, scaled_runs=400)
QUICK = Sizes(chain_runs=20, runs=160, cold_runs=3, ai_runs=40, scaled_runs=80)


@dataclass
class Line:
    """A row of the table."""

    measure: str
    result: str
    cpu: str = ""
    floor: str = ""
    floor_cpu: str = ""
    target: str = ""


# The client -------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection (stdlib: the client's own cost stays small)."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        payload = None if body is None else json.dumps(body)
        try:
            self.connection.request(method, path, body=payload, headers=HEADERS)
            response = self.connection.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # The server closed a connection left idle past its keep-alive timeout (uvicorn:
            # 5 s) before this request reached it: open a new one, once.
            self.connection.close()
            self.connection.request(method, path, body=payload, headers=HEADERS)
            response = self.connection.getresponse()
        return response.status, response.read()

    def json(self, method: str, path: str, body: Any = None) -> Any:
        status, data = self.call(method, path, body)
        assert status < 300, (method, path, status, data[:300])
        return json.loads(data)

    def execute(self, workflow_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        run: dict[str, Any] = self.json(
            "POST", f"/workflows/{workflow_id}/execute", {"inputs": inputs}
        )
        assert run["status"] == "success", run
        return run

    def close(self) -> None:
        self.connection.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds of these processes' live threads, from /proc/<pid>/task/*/schedstat:
    nanoseconds, where /proc/<pid>/stat counts 10 ms ticks (too coarse for one request).
    A thread that exits takes its time with it: read before closing the connections a
    thread-per-connection server (the floor) serves."""
    total = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


class Server:
    """A server subprocess; `startup` is the seconds from spawn to a 200 from /health."""

    def __init__(self, args: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        started = time.perf_counter()
        self.process = subprocess.Popen(
            args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        stderr = self.process.stderr
        assert stderr is not None
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{args[:3]} exited: {stderr.read()!r}")
            with contextlib.suppress(OSError):
                client = Client(port)
                healthy = client.call("GET", "/health")[0] == 200
                client.close()
                if healthy:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{args[:3]} not healthy after 60 s")
            time.sleep(0.005)
        self.startup = time.perf_counter() - started
        # stderr is a pipe nobody reads while measuring: drain it so the server never blocks.
        threading.Thread(target=stderr.read, daemon=True).start()

    def cpu(self) -> float:
        return cpu_seconds([self.process.pid])

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# Embedded measures ------------------------------------------------------------------


@dataclass
class Embedded:
    """What one server measured: wall results and its CPU per unit."""

    startup_s: float
    per_node_ms: float
    per_node_cpu_ms: float
    one_client_rps: float
    one_client_cpu_ms: float
    eight_clients_rps: float
    eight_clients_cpu_ms: float
    ai_minus_three_ms: float | None = None
    ai_minus_three_cpu_ms: float | None = None


def timed_runs(
    cpu: Callable[[], float], runs: int, one: Callable[[int], Any], warm: int = 10
) -> tuple[list[float], float]:
    """(wall seconds of each call, server CPU seconds per call) over `runs` calls of `one`."""
    for i in range(warm):
        one(i)
    before = cpu()
    walls = []
    for i in range(runs):
        started = time.perf_counter()
        one(i)
        walls.append(time.perf_counter() - started)
    return walls, (cpu() - before) / runs


def concurrent_runs(
    port: int, cpu: Callable[[], float], workflow_id: str, clients: int, runs: int
) -> tuple[float, float]:
    """(runs per second, server CPU seconds per run) with `clients` threads, one connection each."""
    per_client = runs // clients
    connections = [Client(port) for _ in range(clients)]
    for connection in connections:
        connection.execute(workflow_id, {"n": 0})  # connect and warm outside the clock

    failures: list[BaseException] = []

    def drive(connection: Client) -> None:
        try:
            for i in range(per_client):
                connection.execute(workflow_id, {"n": i})
        except BaseException as exc:  # re-raised below, in the caller's thread
            failures.append(exc)

    threads = [threading.Thread(target=drive, args=(c,)) for c in connections]
    before = cpu()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    spent = cpu() - before
    done = per_client * clients
    for connection in connections:
        connection.close()
    if failures:
        raise failures[0]
    return done / elapsed, spent / done


def measure_server(server: Server, sizes: Sizes, ai: bool) -> Embedded:
    client = Client(server.port)
    try:
        three = client.json("POST", "/workflows/", THREE)["id"]
        chain = client.json("POST", "/workflows/", CHAIN)["id"]
        walls, cpu = timed_runs(
            server.cpu, sizes.chain_runs, lambda i: client.execute(chain, {"v": i}), warm=5
        )
        per_node, per_node_cpu = statistics.median(walls) * 1000 / 40, cpu * 1000 / 40
        walls, cpu = timed_runs(server.cpu, sizes.runs, lambda i: client.execute(three, {"n": i}))
        one_rps, one_cpu = len(walls) / sum(walls), cpu * 1000
        eight_rps, eight_cpu = concurrent_runs(server.port, server.cpu, three, 8, sizes.runs)
        result = Embedded(
            server.startup, per_node, per_node_cpu, one_rps, one_cpu, eight_rps, eight_cpu * 1000
        )
        if ai:
            result.ai_minus_three_ms, result.ai_minus_three_cpu_ms = cached_ai(
                server, client, three, sizes.ai_runs
            )
        return result
    finally:
        client.close()


def cached_ai(server: Server, client: Client, three: str, runs: int) -> tuple[float, float]:
    """(median wall ms, server CPU ms per run) of a cached AI run minus a 3-node transformer
    run, the two alternated so that drifting load hits both alike."""
    workflow = client.json("POST", "/workflows/", THREE_AI)["id"]
    client.execute(workflow, {})  # the first run calls the stub and fills the cache
    state = client.execute(workflow, {})["node_states"]["ai"]
    assert state.get("cached"), state
    costs: dict[str, list[float]] = {workflow: [], three: []}
    cpus = dict.fromkeys(costs, 0.0)
    for i in range(runs):
        for workflow_id in (workflow, three) if i % 2 else (three, workflow):
            cpu = server.cpu()
            started = time.perf_counter()
            client.execute(workflow_id, {"n": i})
            costs[workflow_id].append(time.perf_counter() - started)
            cpus[workflow_id] += server.cpu() - cpu
    wall = statistics.median(costs[workflow]) - statistics.median(costs[three])
    return wall * 1000, (cpus[workflow] - cpus[three]) / runs * 1000


def child_env() -> dict[str, str]:
    """This environment without DUCTWORK_ settings, and with bytecode caching on: an
    installed package has its .pyc files (pip compiles them), so the processes measured
    should too, even where PYTHONDONTWRITEBYTECODE is set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUCTWORK_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def server_env(src: Path, data_dir: Path, port: int, extra: dict[str, str]) -> dict[str, str]:
    env = child_env()
    return {
        **env,
        "PYTHONPATH": os.pathsep.join([str(src), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "DUCTWORK_DATA_DIR": str(data_dir),
        "DUCTWORK_ADMIN_API_KEY": KEY,
        "DUCTWORK_PORT": str(port),
        # The suite measures the engine, not the per-client rate limiter.
        "DUCTWORK_EXECUTE_RATE_LIMIT": "100000000/minute",
        **extra,
    }


def measure_ductwork(src: Path, sizes: Sizes) -> Embedded:
    from tests.support.openai_stub import OpenAIStub

    with tempfile.TemporaryDirectory() as tmp, OpenAIStub() as stub:
        port = free_port()
        llm = {"DUCTWORK_LLM_BASE_URL": stub.base_url, "DUCTWORK_LLM_API_KEY": "bench"}
        env = server_env(src, Path(tmp), port, llm)
        server = Server([sys.executable, "-c", ENTRY, "serve"], env, port)
        try:
            return measure_server(server, sizes, ai=True)
        finally:
            server.stop()


def measure_floor(sizes: Sizes) -> Embedded:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        args = [sys.executable, str(ROOT / "bench" / "floor.py"), "serve"]
        args += ["--port", str(port), "--key", KEY, "--db", f"{tmp}/floor.db"]
        server = Server(args, child_env(), port)
        try:
            return measure_server(server, sizes, ai=False)
        finally:
            server.stop()


def cold_runs(args: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds) of `runs` fresh processes running `args`,
    after one more that is not counted (it writes the bytecode, fills the page cache)."""
    walls, cpus = [], []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(args, env=env, cwd=tmp, capture_output=True, check=False)
        for _ in range(runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            done = subprocess.run(args, env=env, cwd=tmp, capture_output=True, check=False)
            walls.append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            assert done.returncode == 0, done.stdout[-500:] + done.stderr[-2000:]
    return statistics.median(walls), statistics.median(cpus)


def three_file(directory: Path) -> Path:
    path = directory / "three.json"
    path.write_text(json.dumps(THREE))
    return path


# Scaled measures --------------------------------------------------------------------

Rows = list[tuple[str, str, str]]


def optional_measures(module: str, function: str) -> Callable[..., Any] | None:
    """`bench.<module>.<function>` when that module defines it (helpers add them)."""
    try:
        found = importlib.import_module(f"bench.{module}")
    except ModuleNotFoundError as exc:
        if exc.name != f"bench.{module}":
            raise
        return None
    measures: Callable[..., Any] | None = getattr(found, function, None)
    return measures


def scaled_lines(src: Path, sizes: Sizes) -> list[Line]:
    """bench/scale_out.py's `scaled_measures` if it has one, else this module's own."""
    measures = optional_measures("scale_out", "scaled_measures")
    if measures is not None:
        rows: Rows = asyncio.run(measures(sizes.scaled_runs))
        return [Line(measure, result, target=target) for measure, result, target in rows]
    return scaled_fallback(src, sizes)


def scaled_fallback(src: Path, sizes: Sizes) -> list[Line]:
    """API + one worker on PostgreSQL + a private Redis, driven by the suite's client."""
    from tests.support.processes import Process, RedisServer
    from tests.support.stores import DEFAULT_POSTGRES_URL, postgres_execute, unique_name

    admin = os.environ.get("DUCTWORK_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    database = unique_name("suite")
    postgres_execute(admin, f'CREATE DATABASE "{database}"')
    processes: list[Process] = []
    api: Server | None = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            redis = RedisServer(Path(tmp)).start()
            processes.append(redis.process)
            port = free_port()
            shared = {
                "DUCTWORK_STORE_URL": admin.rsplit("/", 1)[0] + f"/{database}",
                "DUCTWORK_REDIS_URL": redis.url,
            }
            env = server_env(src, Path(tmp) / "data", port, shared)
            api = Server([sys.executable, "-c", ENTRY, "serve"], env, port)
            worker = Process(
                "w1",
                [sys.executable, "-c", ENTRY, "worker"],
                {**env, "DUCTWORK_WORKER_ID": "w1", "PYTHONUNBUFFERED": "1"},
                Path(tmp) / "w1.log",
            ).start()
            processes.append(worker)
            worker.wait_for_line("consuming runs")
            assert worker.popen is not None
            pids = [api.process.pid, worker.popen.pid]

            def both() -> float:
                return cpu_seconds(pids)

            client = Client(port)
            three = client.json("POST", "/workflows/", THREE)["id"]
            chain = client.json("POST", "/workflows/", CHAIN)["id"]
            walls, cpu = timed_runs(
                both, sizes.chain_runs // 2, lambda i: client.execute(chain, {"v": i}), warm=3
            )
            client.close()
            rps, rps_cpu = concurrent_runs(port, both, three, 8, sizes.scaled_runs)
            # The CPU column: the API's and the worker's, not PostgreSQL's or Redis's.
            return [
                Line(
                    "scaled: per-node overhead, 40-node chain (API + 1 worker)",
                    f"{statistics.median(walls) * 1000 / 40:.3f} ms",
                    f"{cpu * 1000 / 40:.3f} ms",
                    target="<= 1 ms",
                ),
                Line(
                    "scaled: 3-node runs/s, 8 clients",
                    f"{rps:.0f}",
                    f"{rps_cpu * 1000:.2f} ms",
                    target=">= 250",
                ),
            ]
    finally:
        if api is not None:
            api.stop()
        for process in processes:
            process.kill()
        postgres_execute(admin, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


# The table --------------------------------------------------------------------------


def load() -> str:
    one, five, fifteen = os.getloadavg()
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}, {cores} cores ({usable} usable)"


def verdict(result: str, target: str) -> str:
    """ "yes" / "NO" when the result and a "<= x" / ">= x" target both hold a number."""
    goal = re.match(r"\s*(<=|>=)\s*(-?[\d.]+)", target)
    value = re.match(r"\s*(-?[\d.]+)", result)
    if goal is None or value is None:
        return ""
    limit, got = float(goal.group(2)), float(value.group(1))
    return "yes" if (got <= limit if goal.group(1) == "<=" else got >= limit) else "NO"


def embedded_lines(
    mine: Embedded, floor: Embedded | None, cold: tuple[float, float], floor_cold: Any
) -> list[Line]:
    def fl(pick: Callable[[Embedded], float | None], fmt: str) -> str:
        value = None if floor is None else pick(floor)
        return "" if value is None else format(value, fmt)

    return [
        Line(
            "per-node overhead, 40-node chain, HTTP (median)",
            f"{mine.per_node_ms:.3f} ms",
            f"{mine.per_node_cpu_ms:.3f} ms",
            fl(lambda e: e.per_node_ms, ".3f"),
            fl(lambda e: e.per_node_cpu_ms, ".3f"),
            "<= 0.15 ms",
        ),
        Line(
            "3-node runs/s, HTTP, 1 client",
            f"{mine.one_client_rps:.0f}",
            f"{mine.one_client_cpu_ms:.2f} ms",
            fl(lambda e: e.one_client_rps, ".0f"),
            fl(lambda e: e.one_client_cpu_ms, ".2f"),
            ">= 650",
        ),
        Line(
            "3-node runs/s, HTTP, 8 clients",
            f"{mine.eight_clients_rps:.0f}",
            f"{mine.eight_clients_cpu_ms:.2f} ms",
            fl(lambda e: e.eight_clients_rps, ".0f"),
            fl(lambda e: e.eight_clients_cpu_ms, ".2f"),
            ">= 900",
        ),
        Line(
            "cold `ductwork run` of a 3-node file (median)",
            f"{cold[0]:.2f} s",
            f"{cold[1]:.2f} s",
            "" if floor_cold is None else f"{floor_cold[0]:.2f}",
            "" if floor_cold is None else f"{floor_cold[1]:.2f}",
            "<= 0.4 s",
        ),
        Line(
            "`ductwork serve` start -> healthy /health",
            f"{mine.startup_s:.2f} s",
            "",
            fl(lambda e: e.startup_s, ".2f"),
        ),
        Line(
            "cached AI node run minus 3-node run, HTTP (median)",
            f"{mine.ai_minus_three_ms:.3f} ms",
            f"{mine.ai_minus_three_cpu_ms:.3f} ms",
            target="<= 1 ms",
        ),
    ]


def baseline_rows() -> dict[str, list[str]]:
    """measure -> [result, server CPU] as recorded in bench/baseline.json."""
    if not BASELINE.exists():
        return {}
    rows = json.loads(BASELINE.read_text()).get("suite", {}).get("rows", {})
    return {name: [value, ""] if isinstance(value, str) else value for name, value in rows.items()}


def print_lines(lines: list[Line]) -> None:
    recorded = baseline_rows()
    headers = ["measure", "result", "server CPU", "floor", "floor CPU", "baseline", "its CPU"]
    headers += ["target", "met"]
    print_table(
        headers,
        [
            [
                line.measure,
                line.result,
                line.cpu,
                line.floor,
                line.floor_cpu,
                *recorded.get(line.measure, ["", ""]),
                line.target,
                verdict(line.result, line.target),
            ]
            for line in lines
        ],
    )
    print(
        "server CPU: CPU time of the server process(es) per run (per node on the chain rows),"
        " from /proc;\nfloor: bench/floor.py measured the same way; baseline: bench/baseline.json"
    )


def record(lines: list[Line], command: list[str], src: Path, loads: list[str]) -> None:
    """Write the table into bench/baseline.json's `suite` section (others kept)."""
    data = json.loads(BASELINE.read_text()) if BASELINE.exists() else {}
    # The last commit that changed the package measured (bench/ commits change no number).
    commit = subprocess.run(
        ["git", "-C", str(src), "log", "-1", "--format=%h", "--", "."],
        capture_output=True,
        text=True,
    ).stdout.strip()
    data["suite"] = {
        "recorded": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "code": f"{src} as of commit {commit}",
        "command": " ".join(command),
        "load": loads,
        "rows": {line.measure: [line.result, line.cpu] for line in lines},
    }
    BASELINE.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    print(f"recorded into {BASELINE}")


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


@contextlib.contextmanager
def section(name: str) -> Iterator[None]:
    started = time.perf_counter()
    print(f"... {name}", file=sys.stderr, flush=True)
    yield
    print(f"    {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs: about a minute")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the ductwork to measure")
    parser.add_argument("--no-scaled", action="store_true", help="skip PostgreSQL + Redis")
    parser.add_argument("--no-floor", action="store_true", help="skip bench/floor.py")
    parser.add_argument(
        "--record-baseline", action="store_true", help="write the results to bench/baseline.json"
    )
    args = parser.parse_args()
    src = args.src.resolve()
    sizes = QUICK if args.quick else FULL
    # Helpers' measures (scale_out, memory) import ductwork here and start `ductwork`
    # processes from this environment: the package measured, in both.
    sys.path.insert(0, str(src))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(src), os.environ.get("PYTHONPATH")])
    )
    # Bytecode for the package measured, as an installed one has: no run pays for compiling.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(src / "ductwork")], check=True)
    start_load = load()
    print(f"at start: {start_load}; {machine()}; measuring {src}", flush=True)
    with section("ductwork serve"):
        mine = measure_ductwork(src, sizes)
    floor = None
    floor_cold = None
    with tempfile.TemporaryDirectory() as tmp:
        file = three_file(Path(tmp))
        with section("cold ductwork run"):
            env = server_env(src, Path(tmp) / "data", 0, {})
            cold = cold_runs(
                [sys.executable, "-c", ENTRY, "run", str(file), "--input", "n=1"],
                env,
                sizes.cold_runs,
            )
        if not args.no_floor:
            with section("floor"):
                floor = measure_floor(sizes)
                floor_py = str(ROOT / "bench" / "floor.py")
                floor_cold = cold_runs(
                    [sys.executable, floor_py, "run", str(file), "--input", "n=1"],
                    child_env(),
                    sizes.cold_runs,
                )
    lines = embedded_lines(mine, floor, cold, floor_cold)
    if not args.no_scaled:
        with section("scaled"):
            lines += scaled_lines(src, sizes)
    memory = optional_measures("memory", "memory_measures")
    if memory is not None:
        with section("memory"):
            lines += [Line(m, r, target=t) for m, r, t in asyncio.run(memory())]
    end_load = load()
    print()
    print_lines(lines)
    print(f"at start: {start_load}")
    print(f"at end:   {end_load}")
    if args.record_baseline:
        loads = [f"at start: {start_load}", f"at end: {end_load}"]
        record(lines, [".venv/bin/python", *sys.argv], src, loads)


if __name__ == "__main__":
    main()
