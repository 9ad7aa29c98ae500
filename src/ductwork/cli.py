"""The `ductwork` command: serve, worker, run FILE, watch EXECUTION_ID, runs, validate FILE,
users create|list, keys create|list|revoke, prune, versions WORKFLOW, diff WORKFLOW A B."""

# No `from __future__ import annotations` here: typer reads every command's parameters
# from its annotations at each start, and string annotations made it eval() each twice
# (inspect.signature and get_type_hints): ~15 ms of a cold `ductwork run` for 17
# commands. Evaluated once when the module runs instead; forward references are quoted.

# First: no garbage collection while the CLI imports (see ductwork.startup).
import ductwork.startup_hold  # isort: skip

import asyncio
import contextlib
import json
import logging
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

import ductwork.startup
from ductwork.engine.graph import WorkflowInvalid
from ductwork.examples import (
    ExampleNotFound,
    read_workflow_file,
    resolve_example_references,
)
from ductwork.models import Event, NodeStatus, Run, RunStatus, ValidationIssue
from ductwork.settings import Settings, settings_problems

if TYPE_CHECKING:
    from rich.live import Live
    from rich.spinner import Spinner

    from ductwork.security.accounts import Accounts
    from ductwork.service import Ductwork

# Imported: collect as usual (a program importing the CLI as a library keeps its heap
# tidy); the commands that start an application hold collection again while they do.
ductwork.startup.release()

cli = typer.Typer(
    name="ductwork",
    help="A workflow execution engine for AI workflows.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)

_STATUS_STYLE = {
    "completed": "green",
    "success": "green",
    "failed": "red",
    "error": "red",
    "skipped": "dim",
    "cancelled": "yellow",
    "waiting": "cyan",
    "running": "blue",
    "pending": "dim",
}


def _settings(**overrides: Any) -> Settings:
    """The settings every command builds: from the environment, then `overrides`.

    A bad setting stops the command with one line per problem naming its environment
    variable (exit 2), not a traceback of pydantic's.
    """
    try:
        return Settings(**overrides)
    except (ValidationError, SettingsError) as exc:
        for problem in settings_problems(exc):
            err.print(problem, style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _parse_inputs(pairs: list[str]) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--input takes key=value, got {pair!r}")
        try:
            inputs[key] = json.loads(raw)
        except ValueError:
            inputs[key] = raw
    return inputs


def _print_issues(issues: list[ValidationIssue]) -> None:
    table = Table(title="Workflow is invalid", title_style="bold red")
    table.add_column("node")
    table.add_column("field")
    table.add_column("problem")
    for issue in issues:
        table.add_row(issue.node_id or "-", issue.field or "-", issue.message)
    err.print(table)


def _load(path: Path) -> tuple[Any, dict[str, Any]]:
    try:
        definition, inputs, _ = read_workflow_file(path)
    except FileNotFoundError:
        err.print(f"[red]No such file: {path}[/]")
        raise typer.Exit(2) from None
    except ValidationError as exc:
        _print_issues(
            [
                ValidationIssue(field=".".join(str(p) for p in e["loc"]), message=e["msg"])
                for e in exc.errors(include_url=False)
            ]
        )
        raise typer.Exit(2) from None
    except ValueError as exc:
        err.print(f"[red]{path} is not valid JSON: {exc}[/]")
        raise typer.Exit(2) from None
    return definition, inputs


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def _resume_detail(waiting: dict[str, Any]) -> str:
    """Where to answer a parked wait node; the server leaves the link out for a key
    that may not resume the run (`ductwork.security.resume_links`)."""
    url = waiting.get("resume_url")
    return f"resume: {url}" if url else "waiting to be resumed"


def _took(start: str | None, end: str | None) -> str:
    if not start or not end:
        return ""
    seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    return f" in {seconds * 1000:.1f} ms"


@dataclass
class _NodeRow:
    """One node's line in the live view and the summary table."""

    node_id: str
    type: str
    status: str = NodeStatus.PENDING.value
    attempts: int = 0
    latency_ms: float | None = None
    cached: bool = False
    detail: str = ""
    tokens: list[str] = field(default_factory=list)
    spinner: "Spinner | None" = None

    def status_cell(self) -> RenderableType:
        style = _STATUS_STYLE.get(self.status, "")
        if self.status in ("running", "retrying"):
            if self.spinner is None:
                # Imported here: only a live view on a terminal shows spinners.
                from rich.spinner import Spinner

                self.spinner = Spinner("dots", text=Text(self.status, style=style), style=style)
            return self.spinner
        self.spinner = None
        return Text(self.status, style=style)

    def detail_cell(self, width: int = 60) -> str:
        if self.status == "running" and self.tokens:
            text = "".join(self.tokens).replace("\n", " ")
            return text if len(text) <= width else "…" + text[-(width - 1) :]
        return self.detail


class RunProgress:
    """What a live view of a run shows: built from a snapshot, updated event by event.

    `view` is the shape of GET /workflows/executions/{id} with the definition
    (what the live streams send first), so a local run and a remote one are
    shown by the same code.
    """

    def __init__(self, view: dict[str, Any]) -> None:
        definition = view.get("definition") or {}
        self.execution_id: str = view["execution_id"]
        self.name: str = definition.get("name", "")
        self.trigger: dict[str, Any] | None = view.get("trigger")
        """What started the run (`Run.trigger`), shown in the title and the summary."""
        self.rows: dict[str, _NodeRow] = {
            node["id"]: _NodeRow(node["id"], node.get("type", ""))
            for node in definition.get("nodes", [])
        }
        self.load(view)

    def load(self, view: dict[str, Any]) -> None:
        """Take the run's state from a view (a snapshot, or the final GET)."""
        self.status: str = view["status"]
        self.error: str | None = view.get("error")
        self.result: Any = view.get("result")
        self.start_time: str | None = view.get("start_time")
        self.end_time: str | None = view.get("end_time")
        self.usage: dict[str, Any] | None = view.get("usage")
        for node_id, state in (view.get("node_states") or {}).items():
            row = self._row(node_id)
            row.status = state.get("status", row.status)
            row.attempts = state.get("attempts") or 0
            row.latency_ms = state.get("latency_ms")
            row.cached = bool(state.get("cached"))
            row.detail = state["error"] if state.get("error") else _short(state.get("output"))
            if row.status == NodeStatus.WAITING.value and state.get("resumable"):
                row.detail = _resume_detail(state)

    def _row(self, node_id: str) -> _NodeRow:
        row = self.rows.get(node_id)
        if row is None:
            row = self.rows[node_id] = _NodeRow(node_id, "")
        return row

    @property
    def finished(self) -> bool:
        return self.status in ("success", "error", "cancelled")

    def apply(self, event: Event) -> None:
        """Update the view with one event."""
        data = event.data
        kind = event.type
        if kind == "run_started":
            self.status = RunStatus.RUNNING.value
            self.start_time = event.timestamp.isoformat()
        elif kind == "run_waiting":
            self.status = RunStatus.WAITING.value
            for row in self.rows.values():
                if row.status == "running":
                    row.status = NodeStatus.WAITING.value
        elif kind == "run_finished":
            self.status = str(data.get("status", self.status))
            self.error = data.get("error", self.error)
            self.end_time = event.timestamp.isoformat()
            self.usage = data.get("usage", self.usage)
        elif event.node_id is not None:
            self._apply_node(self._row(event.node_id), event)

    def _apply_node(self, row: _NodeRow, event: Event) -> None:
        data = event.data
        kind = event.type
        if kind == "token":
            row.tokens.append(str(data.get("text", "")))
            return
        if kind == "node_started":
            row.status = NodeStatus.RUNNING.value
            row.type = str(data.get("type") or row.type)
            row.attempts = int(data.get("attempt") or row.attempts + 1)
            row.tokens.clear()
            row.detail = ""
        elif kind == "node_completed":
            row.status = NodeStatus.COMPLETED.value
            row.latency_ms = data.get("latency_ms")
            row.cached = bool(data.get("cached"))
            row.detail = _short(data.get("output"))
            row.tokens.clear()
        elif kind == "node_failed":
            row.status = NodeStatus.FAILED.value
            row.attempts = int(data.get("attempt") or row.attempts)
            row.detail = str(data.get("error", ""))
            row.tokens.clear()
        elif kind == "node_retrying":
            row.status = "retrying"
            row.detail = (
                f"attempt {data.get('attempt')} failed: {data.get('error')}; "
                f"retrying in {data.get('delay_seconds')} s"
            )
        elif kind == "node_skipped":
            row.status = NodeStatus.SKIPPED.value
            row.detail = "null"
        elif kind == "node_cancelled":
            row.status = NodeStatus.CANCELLED.value
        elif kind == "node_waiting":
            # A wait node parked for its answer: where to give it.
            row.status = NodeStatus.WAITING.value
            row.detail = _resume_detail(data)

    def table(self, *, live: bool = False) -> Table:
        """The per-node table; `live` adds spinners and streaming text."""
        from ductwork.views import origin_text

        title = f"Run {self.execution_id}"
        if live and self.name:
            title += f" · {self.name}"
        if live and self.trigger:
            title += f" · {origin_text(self.trigger)}"
        table = Table(title=title, show_lines=False)
        for column in ("node", "type", "status", "attempts", "ms", "cached", "output / error"):
            table.add_column(column, overflow="fold")
        for row in self.rows.values():
            table.add_row(
                row.node_id,
                row.type,
                row.status_cell() if live else Text(row.status, _STATUS_STYLE.get(row.status, "")),
                str(row.attempts),
                f"{row.latency_ms:.1f}" if row.latency_ms is not None else "",
                "yes" if row.cached else "",
                row.detail_cell() if live else row.detail,
            )
        if live:
            # Text, not markup: a status without a style ("queued") made "[]queued[/]",
            # whose "[/]" closes nothing, and the live view's refresh thread died on it.
            table.caption = Text(self.status, style=_STATUS_STYLE.get(self.status, ""))
        return table

    def __rich__(self) -> Table:
        return self.table(live=True)


def print_summary(progress: RunProgress) -> None:
    """The per-node table, then the run's status, time, error and result."""
    console.print(progress.table())
    style = _STATUS_STYLE.get(progress.status, "")
    took = _took(progress.start_time, progress.end_time)
    console.print(f"Status: [{style}]{progress.status}[/]{took}")
    if progress.trigger:
        from ductwork.views import origin_text

        console.print(f"Origin: {origin_text(progress.trigger, short=False)}", markup=False)
    if progress.usage:
        console.print(f"Usage: {usage_text(progress.usage)}", markup=False)
    if progress.error:
        console.print(f"[red]Error: {progress.error}[/]", markup=True)
    if progress.result is not None:
        console.print(f"Result: {_short(progress.result, 500)}", markup=False)


def usage_text(usage: dict[str, Any]) -> str:
    """`1,540 tokens (1,200 in, 340 out), 2 LLM calls, $0.0004` (+ unpriced calls)."""
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    calls = int(usage.get("calls") or 0)
    text = (
        f"{prompt + completion:,} tokens ({prompt:,} in, {completion:,} out), "
        f"{calls} LLM call{'s' if calls != 1 else ''}, ${float(usage.get('cost') or 0):.4f}"
    )
    unpriced = int(usage.get("unpriced_calls") or 0)
    if unpriced:
        text += f" ({unpriced} unpriced, not counted: see DUCTWORK_LLM_PRICES)"
    return text


def print_run(run: Run) -> None:
    """A per-node table with status, attempts, timing and output, then the run's outcome."""
    from ductwork.views import run_view

    print_summary(RunProgress(run_view(run, include_definition=True)))


def event_line(event: Event) -> str:
    """One event as a line of text (the view when stdout is not a terminal)."""
    from ductwork.views import log_message, origin_text

    rendered = log_message(event)
    message = rendered[1] if rendered else ""
    if event.type == "log" and rendered:
        message = f"[{rendered[0]}] {message}"
    elif event.type == "run_started" and event.data.get("trigger"):
        message += f" ({origin_text(event.data['trigger'], short=False)})"
    elif event.type == "node_completed":
        message += f" -> {_short(event.data.get('output'))}"
    stamp = event.timestamp.astimezone().strftime("%H:%M:%S.%f")[:-3]
    return f"{stamp} {event.seq:>4} {event.type:<15} {event.node_id or '-':<16} {message}"


ViewMode = Literal["live", "lines", "quiet"]


class _LiveDisplay:
    """Shows a run's progress as events arrive: a Rich Live table, lines, or nothing."""

    def __init__(self, progress: RunProgress, mode: ViewMode) -> None:
        self.progress = progress
        self.mode = mode
        self._live: Live | None = None

    def __enter__(self) -> "_LiveDisplay":
        if self.mode == "live":
            from rich.live import Live  # on a terminal only: lines or JSON do without

            # Transient: the final summary is printed once the run is over.
            self._live = Live(self.progress, console=console, refresh_per_second=12, transient=True)
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def event(self, event: Event) -> None:
        self.progress.apply(event)
        if event.type == "token":
            return  # shown in the live table's output column; too fine-grained for lines
        if self.mode == "lines":
            console.print(event_line(event), markup=False, highlight=False, soft_wrap=True)
        elif self._live is not None:
            self._live.refresh()


def _view_mode(as_json: bool = False) -> ViewMode:
    if as_json:
        return "quiet"
    return "live" if console.is_terminal else "lines"


def workers_problem(settings: Settings, workers: int) -> str | None:
    """Why `serve --workers N` would be wrong with these settings; None when it is fine.

    Each uvicorn worker process builds its own application. Without Redis each
    has a private in-process queue and its own sweep over the one store file,
    so N processes race to adopt each other's runs; a SQLite store is a single
    file on one machine, not a store to scale out on.
    """
    if workers <= 1:
        return None
    missing = []
    if not settings.redis_url:
        missing.append("without DUCTWORK_REDIS_URL each process would run its own queue and sweep")
    if settings.resolved_store_url.startswith("sqlite"):
        missing.append("a SQLite store is one file, not a store to share between processes")
    if not missing:
        return None
    return (
        f"--workers {workers} needs a shared queue and a shared store: {'; '.join(missing)}. "
        "To scale out, set DUCTWORK_REDIS_URL and a PostgreSQL or MongoDB DUCTWORK_STORE_URL "
        "(and start `ductwork worker` processes); otherwise use --workers 1."
    )


ServerUrl = Annotated[str, typer.Option(help="Base URL of the ductwork server.")]
"""`--url` of the commands that talk to a running server."""
ApiKeyOption = Annotated[
    str | None,
    typer.Option(help="API key to send (default DUCTWORK_API_KEY).", show_default=False),
]
"""`--api-key` of the commands that talk to a running server."""


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    examples: Annotated[bool, typer.Option(help="Load the example workflows at start.")] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="uvicorn worker processes; more than 1 needs DUCTWORK_REDIS_URL and a "
            "PostgreSQL or MongoDB DUCTWORK_STORE_URL.",
        ),
    ] = 1,
) -> None:
    """Serve the HTTP API (embedded defaults: SQLite file, in-process queue and cache)."""
    # No garbage collection until the application has started (the app's lifespan
    # releases it); released here when the command ends without that (refused settings,
    # uvicorn failing to bind).
    ductwork.startup.hold()
    try:
        _serve(host, port, examples, workers)
    finally:
        ductwork.startup.release()


def _serve(host: str | None, port: int | None, examples: bool, workers: int) -> None:
    import os

    import uvicorn

    from ductwork.api.app import UnsafeSettings, check_exposure

    if host is not None:
        # The app checks what it is bound to (auth opt-out, allowed hosts): tell it.
        os.environ["DUCTWORK_HOST"] = host
    settings = _settings()
    problem = workers_problem(settings, workers)
    if problem is not None:
        err.print(f"[red]{problem}[/]", highlight=False)
        raise typer.Exit(2)
    from ductwork.security.crypto import KeyRing, SecretKeyError

    try:
        # Before uvicorn: a bad key stops `serve` with a message, not a worker traceback.
        KeyRing.from_settings(settings)
        check_exposure(settings)
    except (SecretKeyError, UnsafeSettings) as exc:
        err.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(2) from None
    if examples:
        os.environ["DUCTWORK_LOAD_EXAMPLES"] = "true"
    bound_port = port or settings.port
    if settings.auth == "enabled" and settings.admin_api_key is None:
        token = asyncio.run(_setup_token(settings))
        if token is not None:
            link_host = settings.host if settings.host not in ("0.0.0.0", "::") else "localhost"
            if ":" in link_host:
                link_host = f"[{link_host}]"
            console.print(
                "No users yet. Create the first admin (this link works once):\n"
                f"  http://{link_host}:{bound_port}/setup?token={token}\n"
                "or run `ductwork users create --role admin`.",
                highlight=False,
                soft_wrap=True,
            )
    if workers > 1:
        # The worker processes start the app (and release their own hold); this one
        # only supervises them, for the server's whole life: collection back on.
        ductwork.startup.release()
    uvicorn.run(
        "ductwork.api.app:create_app",
        factory=True,
        host=host or settings.host,
        port=bound_port,
        workers=workers,
        loop="auto",
        http="auto",
        log_level="info",
        # A line per request costs CPU on every call; errors are logged either way.
        access_log=settings.access_log,
    )


@cli.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="Runs advanced at once (default DUCTWORK_MAX_CONCURRENT_RUNS)."),
    ] = None,
) -> None:
    """Advance runs from the Redis queue (needs DUCTWORK_REDIS_URL and a shared store)."""
    import signal

    with ductwork.startup.held():  # no garbage collection while importing (ductwork.startup)
        from ductwork.runtime import build

    overrides: dict[str, Any] = {}
    if concurrency is not None:
        overrides["max_concurrent_runs"] = concurrency
    settings = _settings(**overrides)
    if not settings.redis_url:
        err.print(
            "[red]ductwork worker needs DUCTWORK_REDIS_URL (and a shared DUCTWORK_STORE_URL).[/]"
        )
        raise typer.Exit(2)
    if settings.resolved_store_url.startswith("sqlite"):
        err.print("[yellow]warning: a SQLite store is only shared by processes on this machine.[/]")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    async def go() -> None:
        with ductwork.startup.held():  # until the worker has started (ductwork.startup)
            app = build(settings, role="worker")
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await app.start()
        logging.getLogger("ductwork.worker").info(
            "worker %s consuming runs (store %s, redis %s)",
            app.executor.owner,
            settings.resolved_store_url.split("@")[-1],
            settings.redis_url,
        )
        try:
            await stop.wait()
        finally:
            # Runs in flight keep their checkpoints; released, they resume on another worker.
            await app.close()

    with asyncio.Runner(loop_factory=_fast_loop_factory()) as runner:
        runner.run(go())


def _fast_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed (uvicorn[standard] brings it), else asyncio's.

    A worker spends much of its CPU in socket writes and polling for PostgreSQL and
    Redis; asyncio's pure-Python selector transport cost ~20 % of a worker's CPU per
    run in py-spy (docs/performance.md), the same loop uvicorn already gives `serve`.
    """
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


@cli.command()
def run(
    file: Annotated[Path, typer.Argument(help="Workflow JSON (bare definition or example file).")],
    input_: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="Run input as key=value (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the run to end.")] = 3600.0,
    store_url: Annotated[
        str | None,
        typer.Option(
            "--store-url",
            help="Keep the run in this store (sqlite:///…, postgresql://…, mongodb://…). "
            "Default: DUCTWORK_STORE_URL when it is set, else a temporary SQLite file "
            "deleted when the command ends.",
        ),
    ] = None,
) -> None:
    """Run a workflow file in this process, showing nodes start and finish live.

    On a terminal the node table updates as events arrive (with streamed LLM
    text); otherwise one line per event is printed. Then the summary table.
    Exit status: 0 when the run succeeded, 1 when it did not, 2 for a bad file.

    The run is kept apart from any server's: unless --store-url or
    DUCTWORK_STORE_URL names a store, it lives in a temporary SQLite file, not
    in the one under DUCTWORK_DATA_DIR that `ductwork serve` uses. Whatever the
    store, this command advances only its own run: it never takes over a
    server's queued or interrupted runs, and never reads a Redis run queue.
    """
    definition, inputs = _load(file)
    inputs.update(_parse_inputs(input_ or []))
    # No garbage collection from here until the application has started (or failed to).
    with ductwork.startup.held():
        from ductwork import live
        from ductwork.runtime import build
        from ductwork.views import run_view

    async def go(settings: Settings) -> Run:
        with ductwork.startup.held():
            app = build(settings, role="isolated")
            await app.start()
        sweeper: asyncio.Task[None] | None = None
        try:
            # An example calling another (`example:<name>`) saves that one first.
            resolved = await resolve_example_references(app, definition, file.parent)
            run = await app.execute_definition(resolved, inputs, wait=False)
            sweeper = asyncio.get_running_loop().create_task(_sweep_own_run(app, run))
            # Following from seq 0 replays whatever the run did before we subscribed.
            with contextlib.suppress(TimeoutError):
                async with (
                    asyncio.timeout(wait),
                    live.stream(app, run.execution_id) as run_stream,
                ):
                    progress = RunProgress(run_view(run_stream.run, include_definition=True))
                    with _LiveDisplay(progress, _view_mode(as_json)) as display:
                        async for event in run_stream:
                            display.event(event)
            return await app.get_run(run.execution_id)
        finally:
            if sweeper is not None:
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper
            await app.close()

    try:
        with contextlib.ExitStack() as scratch:
            settings = _settings(store_url=store_url) if store_url else _settings()
            if settings.store_url is None:
                directory = scratch.enter_context(
                    tempfile.TemporaryDirectory(prefix="ductwork-run-")
                )
                # A scratch file, deleted when the command ends: nothing could resume its
                # run after a power loss, so it need not be synced (`synchronous=off`);
                # a process that dies loses nothing either way. Syncing a new file took
                # ~25-35 ms of a 3-node run's ~0.6 s here (the switch to WAL, the schema).
                url = f"sqlite:///{Path(directory) / 'run.db'}?synchronous=off"
                # The environment is read once (reading it costs a few ms of a cold run);
                # no validator looks at store_url, so the copy is what validation gives.
                settings = settings.model_copy(update={"store_url": url})
            result = asyncio.run(go(settings))
    except WorkflowInvalid as exc:
        _print_issues(exc.issues)
        raise typer.Exit(2) from None
    except ExampleNotFound as exc:
        err.print(f"[red]{file.name}: {exc}[/]")
        raise typer.Exit(2) from None
    if as_json:
        sys.stdout.write(json.dumps(run_view(result), indent=2, default=str) + "\n")
    else:
        print_run(result)
    if result.status is not RunStatus.SUCCESS:
        raise typer.Exit(1)


async def _sweep_own_run(app: "Ductwork", run: Run) -> None:
    """Resume the command's own run when it is due again (a parked delay, say), no other."""
    log = logging.getLogger("ductwork.cli")
    interval = app.settings.sweep_interval_seconds
    while True:
        await asyncio.sleep(interval)
        try:
            await app.sweep_once(only=run.execution_id)
        except Exception:
            log.exception("sweep failed; trying again in %.1f s", interval)


class _UnknownRun(LookupError):
    pass


class _Refused(Exception):
    """The server refused the credentials (401) or the role (403)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _remote_key(api_key: str | None) -> str | None:
    """The API key a remote command sends: `--api-key`, else DUCTWORK_API_KEY."""
    if api_key is not None:
        return api_key
    configured = _settings().api_key
    return configured.get_secret_value() if configured is not None else None


def _refused(url: str, status: int) -> typer.Exit:
    """Say why the server refused (401: no valid key; 403: the role) and exit 2."""
    why = "no valid API key (set DUCTWORK_API_KEY or --api-key)"
    if status == 403:
        why = "the API key's role may not read runs"
    err.print(f"[red]{url} refused: {why}[/]")
    return typer.Exit(2)


WATCH_RETRIES = 8
"""Consecutive failed (re)connections before `watch` gives up."""


async def _watch_remote(
    url: str, execution_id: str, mode: ViewMode, api_key: str | None = None
) -> RunProgress:
    """Follow a run on a server over SSE, resuming with Last-Event-ID after a drop."""
    import httpx
    from httpx_sse import EventSource

    path = f"/workflows/executions/{execution_id}/events"
    last_id: str | None = None
    progress: RunProgress | None = None
    failures = 0
    # Reads wait through the server's 15 s keep-alives; a silent minute means a dead link.
    timeout = httpx.Timeout(10.0, read=60.0)
    auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(base_url=url, timeout=timeout, headers=auth) as client:
        with contextlib.ExitStack() as stack:
            display: _LiveDisplay | None = None
            while True:
                headers = {"Accept": "text/event-stream"}
                if last_id is not None:
                    headers["Last-Event-ID"] = last_id
                try:
                    async with client.stream("GET", path, headers=headers) as response:
                        if response.status_code == 404:
                            raise _UnknownRun(execution_id)
                        if response.status_code in (401, 403):
                            raise _Refused(response.status_code)
                        if response.status_code == 204:
                            # Finished, with nothing after last_id: read the final state.
                            final = await client.get(f"/workflows/executions/{execution_id}")
                            final.raise_for_status()
                            if progress is None:
                                return RunProgress(final.json())
                            progress.load(final.json())
                            return progress
                        response.raise_for_status()
                        failures = 0
                        async for message in EventSource(response).aiter_sse():
                            if message.event == "snapshot":
                                if progress is None:
                                    progress = RunProgress(json.loads(message.data)["run"])
                                    display = stack.enter_context(_LiveDisplay(progress, mode))
                                continue
                            if display is None:
                                continue
                            event = Event.model_validate_json(message.data)
                            display.event(event)
                            if event.type != "token":
                                last_id = str(event.seq)
                            if event.type == "run_finished":
                                return display.progress
                    if progress is not None and progress.finished:
                        return progress
                except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                    failures += 1
                    if failures > WATCH_RETRIES:
                        raise ConnectionError(f"lost {url}: {exc}") from exc
                # The stream ended early (server restart, proxy timeout): resume after a pause.
                await asyncio.sleep(min(0.2 * 2**failures, 5.0))


@cli.command()
def watch(
    execution_id: Annotated[str, typer.Argument(help="The execution to follow.")],
    url: ServerUrl = "http://127.0.0.1:8000",
    api_key: ApiKeyOption = None,
) -> None:
    """Follow a run on a server live (Server-Sent Events) until it finishes.

    Exit status: 0 when the run succeeded, 1 when it failed, was cancelled or the
    server was lost, 2 when the execution id is unknown or the key was refused.
    """
    api_key = _remote_key(api_key)
    try:
        progress = asyncio.run(_watch_remote(url.rstrip("/"), execution_id, _view_mode(), api_key))
    except _Refused as refused:
        raise _refused(url, refused.status) from None
    except _UnknownRun:
        err.print(f"[red]No execution {execution_id!r} on {url}[/]")
        raise typer.Exit(2) from None
    except ConnectionError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    print_summary(progress)
    if progress.status != RunStatus.SUCCESS.value:
        raise typer.Exit(1)


RunsStatus = Literal["queued", "running", "waiting", "success", "error", "cancelled", "dead"]
TriggerType = Literal["manual", "schedule", "webhook", "error"]


def _when(value: str | None) -> str:
    """An ISO time from the API as local `YYYY-MM-DD HH:MM:SS`."""
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _duration(start: str | None, end: str | None) -> str:
    if not start or not end:
        return ""
    seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _runs_rows(runs: list[dict[str, Any]]) -> list[list[str]]:
    from ductwork.views import origin_text

    return [
        [
            str(run["execution_id"]),
            str(run.get("workflow_name") or run["workflow_id"]),
            str(run["status"]) + (" (dead)" if run.get("dead_letter") else ""),
            origin_text(run.get("trigger")),
            _when(run.get("created_at")),
            _duration(run.get("start_time"), run.get("end_time")),
        ]
        for run in runs
    ]


@cli.command()
def runs(
    workflow: Annotated[
        str | None, typer.Option("--workflow", "-w", help="Only this workflow's runs (its id).")
    ] = None,
    status: Annotated[
        RunsStatus | None,
        typer.Option(help="Only runs with this status; dead: runs the engine gave up on."),
    ] = None,
    trigger: Annotated[
        TriggerType | None, typer.Option(help="Only runs this kind of trigger started.")
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=1000, help="How many runs to list (per page with --all).")
    ] = 20,
    after: Annotated[
        str | None,
        typer.Option(help="Continue after this page cursor (printed under a full page)."),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every matching run, following the page cursor.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the runs as the API returns them (JSON).")
    ] = False,
    url: ServerUrl = "http://127.0.0.1:8000",
    api_key: ApiKeyOption = None,
) -> None:
    """List a server's recent runs, newest first, with what started each (Origin).

    Origin is `manual`, `schedule <slot>`, `webhook <METHOD> /hooks/<path>` or
    `error of <failed run>`. On a terminal a table; otherwise tab-separated lines.
    When more runs follow, the `--after` cursor of the next page is printed to stderr.
    Exit status: 0 when listed (even none), 1 when the server cannot be reached, 2
    when it refused the key or the workflow is unknown.
    """
    from urllib.parse import quote

    import httpx

    from ductwork.client import NEXT_CURSOR_HEADER

    api_key = _remote_key(api_key)
    base = url.rstrip("/")
    params: dict[str, Any] = {"limit": limit}
    for name, value in (("workflow_id", workflow), ("status", status), ("trigger", trigger)):
        if value is not None:
            params[name] = value
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    listed: list[dict[str, Any]] = []
    try:
        with httpx.Client(base_url=base, timeout=30.0, headers=headers) as http:
            while True:
                if after is not None:
                    params["after"] = after
                response = http.get("/workflows/executions", params=params)
                if response.status_code in (401, 403):
                    raise _refused(url, response.status_code)
                if response.status_code == 422:
                    err.print(f"[red]{url} refused the query: {response.text}[/]", markup=False)
                    raise typer.Exit(2)
                response.raise_for_status()
                listed.extend(response.json())
                after = response.headers.get(NEXT_CURSOR_HEADER)
                if after is None or not every:
                    break
            if after is not None:
                err.print(
                    f"More runs: --after {after}", markup=False, highlight=False, soft_wrap=True
                )
            if not listed and workflow is not None:
                # An empty list is either no runs yet or a wrong id: say which.
                known = http.get(f"/workflows/{quote(workflow, safe='')}")
                if known.status_code == 404:
                    err.print(f"[red]No workflow {workflow!r} on {url}[/]")
                    raise typer.Exit(2)
    except httpx.HTTPError as exc:
        err.print(f"[red]{url}: {exc}[/]", highlight=False)
        raise typer.Exit(1) from None
    if as_json:
        sys.stdout.write(json.dumps(listed, indent=2) + "\n")
        return
    if not listed:
        console.print("No runs.")
        return
    _print_rows(
        ["execution", "workflow", "status", "origin", "created", "took"], _runs_rows(listed)
    )


@cli.command()
def validate(file: Annotated[Path, typer.Argument(help="Workflow JSON to check.")]) -> None:
    """Check a workflow file: every problem with its node and field, and its triggers."""
    from ductwork.engine.graph import validate as validate_definition
    from ductwork.nodes.registry import REGISTRY
    from ductwork.triggers.spec import parse_triggers

    definition, _ = _load(file)
    issues = validate_definition(definition, REGISTRY)
    issues.extend(parse_triggers(definition.triggers)[1])
    if issues:
        _print_issues(issues)
        raise typer.Exit(1)
    console.print(
        f"[green]✓[/] {definition.name}: {len(definition.nodes)} nodes, "
        f"{len(definition.edges)} edges, valid"
    )


# Credentials (on the store directly, like `run`: whoever can read the store and the key) --

credentials_cli = typer.Typer(
    help="Encrypted named credentials, on the store and key of this machine's settings.",
    no_args_is_help=True,
)
cli.add_typer(credentials_cli, name="credentials")


async def _with_credentials(work: Any) -> Any:
    """Run `work(service)` against the configured store with the configured key."""
    from ductwork.nodes.registry import REGISTRY
    from ductwork.security.credentials import CredentialService
    from ductwork.security.crypto import KeyRing
    from ductwork.store.factory import create_store

    settings = _settings()
    keyring = KeyRing.from_settings(settings)
    store = create_store(settings.resolved_store_url)
    await store.start()
    try:
        return await work(CredentialService(store, keyring, settings, REGISTRY))
    finally:
        await store.close()


def _credentials_call(work: Any) -> Any:
    from ductwork.security.credentials import CredentialUnreadable
    from ductwork.security.crypto import SecretKeyError

    try:
        return asyncio.run(_with_credentials(work))
    except SecretKeyError as exc:
        err.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(2) from None
    except CredentialUnreadable as exc:
        err.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(1) from None


@credentials_cli.command("list")
def credentials_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Names, types and dates of the stored credentials (never their data)."""

    async def work(service: Any) -> list[Any]:
        rows: list[Any] = []
        while True:
            page = await service.list_credentials(limit=500, offset=len(rows))
            rows.extend(page)
            if len(page) < 500:
                return rows

    rows = _credentials_call(work)
    if as_json:
        for row in rows:
            sys.stdout.write(row.model_dump_json() + "\n")
        return
    table = Table(title=f"{len(rows)} credential(s)")
    for column in ("name", "type", "created", "updated", "created by"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.name,
            row.type,
            row.created_at.isoformat(timespec="seconds"),
            row.updated_at.isoformat(timespec="seconds"),
            row.created_by or "-",
        )
    console.print(table)


@credentials_cli.command("generate-key")
def credentials_generate_key() -> None:
    """Print a new random key for DUCTWORK_SECRET_KEY (nothing is stored)."""
    from ductwork.security.crypto import generate_key

    sys.stdout.write(generate_key() + "\n")


@credentials_cli.command("rotate-key")
def credentials_rotate_key() -> None:
    """Re-encrypt every credential under the newest key.

    With the key file (DUCTWORK_SECRET_KEY unset): a new key is generated and
    written first, everything is re-encrypted, then the old key is removed;
    running servers pick the new file up by themselves. With DUCTWORK_SECRET_KEY:
    put a new key first (`ductwork credentials generate-key`), keep the old ones
    after it, run this, then keep only the first key on every process.
    """
    from ductwork.security.crypto import fingerprint

    async def work(service: Any) -> tuple[int, list[str], bool]:
        count = await service.rotate_key()
        return count, list(service.keyring.keys), service.keyring.from_file

    count, keys, from_file = _credentials_call(work)
    first = fingerprint(keys[0])
    if from_file:
        console.print(
            f"Re-encrypted {count} credential(s) under a new key (fingerprint {first}) in "
            f"{_settings().data_dir / 'secret.key'}; the old key was removed. Back the file up "
            "with the store."
        )
        return
    console.print(
        f"Re-encrypted {count} credential(s) under the first key of DUCTWORK_SECRET_KEY "
        f"(fingerprint {first})."
    )
    if len(keys) == 1:
        console.print(
            "DUCTWORK_SECRET_KEY holds one key, so nothing changed. To rotate: generate a key "
            "(`ductwork credentials generate-key`), set DUCTWORK_SECRET_KEY=<new>,<old> on every "
            "process, run this command again, then keep only <new>."
        )
    else:
        dropped = ", ".join(fingerprint(key) for key in keys[1:])
        console.print(
            f"Keep only that key: set DUCTWORK_SECRET_KEY to key #1 alone (fingerprint {first}) "
            f"on every process. The other {len(keys) - 1} key(s) ({dropped}) decrypt nothing "
            "any more and can be destroyed."
        )


# Accounts -------------------------------------------------------------------------------------
users_cli = typer.Typer(help="Users (admins, editors, operators, viewers).", no_args_is_help=True)
keys_cli = typer.Typer(help="API keys.", no_args_is_help=True)
cli.add_typer(users_cli, name="users")
cli.add_typer(keys_cli, name="keys")

RoleName = Literal["admin", "editor", "operator", "viewer"]


@contextlib.asynccontextmanager
async def _accounts(settings: Settings) -> AsyncIterator["Accounts"]:
    """The account service over the configured store, acting as the shell (SYSTEM).

    With DUCTWORK_REDIS_URL set, revocations are published on Redis so every running
    server drops the key at once.
    """
    from ductwork.events.base import EventBus
    from ductwork.events.memory import InProcessEventBus
    from ductwork.security.accounts import Accounts
    from ductwork.security.authn import Authenticator
    from ductwork.security.context import RequestContext, set_current
    from ductwork.security.models import SYSTEM
    from ductwork.store.factory import create_store

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = create_store(settings.resolved_store_url)
    await store.start()
    bus: EventBus
    if settings.redis_url:
        from ductwork.events.redis import RedisEventBus

        bus = RedisEventBus(settings.redis_url, namespace=settings.redis_namespace)
    else:
        bus = InProcessEventBus()
    audit: Any = None
    try:  # the audit log, when this build has it
        from ductwork.security.audit import AuditLog  # type: ignore[import-not-found]

        audit = AuditLog(store.security)
    except ImportError:
        pass
    set_current(RequestContext(SYSTEM, "cli"))
    authenticator = Authenticator(store.security, bus, settings)
    try:
        yield Accounts(store.security, authenticator, settings, audit=lambda: audit)
    finally:
        await bus.close()
        await store.close()


async def _setup_token(settings: Settings) -> str | None:
    async with _accounts(settings) as accounts:
        return await accounts.issue_setup_token()


def _print_rows(headers: list[str], rows: list[list[str]]) -> None:
    """A table on a terminal; tab-separated lines otherwise (for scripts, never cut)."""
    if not console.is_terminal:
        for row in [headers, *rows]:
            print("\t".join(row))
        return
    table = Table(*headers)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _account_error(exc: Exception) -> typer.Exit:
    err.print(f"[red]{exc}[/]", highlight=False)
    return typer.Exit(2)


@users_cli.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="Sign-in email (lower-cased).")],
    role: Annotated[RoleName, typer.Option(help="admin, editor, operator or viewer.")],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Create a user (`--role admin` creates the first admin without the setup link)."""
    from ductwork.security.accounts import AccountError
    from ductwork.security.models import Role

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def go() -> Any:
        async with _accounts(_settings()) as accounts:
            user = await accounts.create_user(email, password, Role(role), name)
            if user.role is Role.ADMIN:
                await accounts.security.set_setup_token(None)  # the link is not needed now
            return user

    try:
        user = asyncio.run(go())
    except AccountError as exc:
        raise _account_error(exc) from None
    console.print(f"created {user.role} {user.email} (id {user.id})", highlight=False)


@users_cli.command("list")
def users_list() -> None:
    """List users."""

    async def go() -> list[Any]:
        async with _accounts(_settings()) as accounts:
            return await accounts.list_users(limit=1000)

    rows = [
        [
            user.id,
            user.email,
            user.display_name,
            user.role.value,
            "yes" if user.disabled else "",
            user.created_at.strftime("%Y-%m-%d %H:%M"),
        ]
        for user in asyncio.run(go())
    ]
    _print_rows(["id", "email", "name", "role", "disabled", "created"], rows)


@keys_cli.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="What the key is for.")],
    role: Annotated[RoleName, typer.Option(help="At most the owner's role.")],
    user: Annotated[str | None, typer.Option(help="Owner's email (the key acts for them).")] = None,
    expires_in: Annotated[
        float | None, typer.Option(help="Days until the key stops working.", min=0.0001)
    ] = None,
) -> None:
    """Create an API key and print it (once: only its hash is stored)."""
    from ductwork.models import utcnow
    from ductwork.security.accounts import AccountError
    from ductwork.security.models import SYSTEM, Role

    async def go() -> tuple[Any, str]:
        async with _accounts(_settings()) as accounts:
            owner_id = None
            if user is not None:
                owner_id = (await accounts.get_user_by_email(user)).id
            expires_at = None if expires_in is None else utcnow() + timedelta(days=expires_in)
            return await accounts.create_key(
                SYSTEM, name, Role(role), expires_at=expires_at, owner_id=owner_id
            )

    try:
        record, key = asyncio.run(go())
    except AccountError as exc:
        raise _account_error(exc) from None
    err.print(
        f"created {record.role} key {record.id} ({record.name}); it is shown once:",
        highlight=False,
    )
    print(key)


@keys_cli.command("list")
def keys_list() -> None:
    """List API keys (metadata only)."""
    from ductwork.security.models import SYSTEM

    async def go() -> list[Any]:
        async with _accounts(_settings()) as accounts:
            return await accounts.list_keys(SYSTEM, limit=1000, everyone=True)

    def when(value: datetime | None) -> str:
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else ""

    rows = [
        [
            key.id,
            key.name,
            key.role.value,
            f"dw_{key.prefix}",
            key.owner_id or "",
            when(key.created_at),
            when(key.expires_at),
            when(key.last_used_at),
            when(key.revoked_at),
        ]
        for key in asyncio.run(go())
    ]
    headers = ["id", "name", "role", "prefix", "owner", "created", "expires", "last used"]
    _print_rows([*headers, "revoked"], rows)


@keys_cli.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id.")]) -> None:
    """Revoke a key (and the keys it made): refused at once by every server through Redis
    when configured; without Redis a running server stops accepting it within
    DUCTWORK_AUTH_CACHE_SECONDS."""
    from ductwork.security.accounts import AccountError
    from ductwork.security.models import SYSTEM

    settings = _settings()

    async def go() -> None:
        async with _accounts(settings) as accounts:
            await accounts.revoke_key(SYSTEM, key_id)

    try:
        asyncio.run(go())
    except AccountError as exc:
        raise _account_error(exc) from None
    console.print(f"revoked {key_id}", highlight=False)
    if not settings.redis_url:
        # The revocation message went out on this process's own bus: a running server
        # only notices when its cached verification of the key runs out.
        console.print(
            f"without Redis, a running server stops accepting it within "
            f"{settings.auth_cache_seconds:g} s (DUCTWORK_AUTH_CACHE_SECONDS); "
            f"DELETE /auth/keys/{key_id} on the server revokes it at once",
            highlight=False,
            soft_wrap=True,
        )


# Retention and versions ----------------------------------------------------------------


@cli.command()
def prune(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count the runs that would be deleted.")
    ] = False,
    days: Annotated[
        float | None,
        typer.Option(min=0.0, help="Keep finished runs this many days (default: the setting)."),
    ] = None,
    keep: Annotated[
        int | None,
        typer.Option(
            "--runs",
            min=1,
            help="Keep each workflow's newest N finished runs (default: the setting).",
        ),
    ] = None,
) -> None:
    """Delete finished runs past their retention, in the configured store.

    The policy is DUCTWORK_RETENTION_DAYS / DUCTWORK_RETENTION_RUNS (or --days /
    --runs), overridden per workflow by its `settings.retention`; unfinished runs are
    never touched. Servers do this every DUCTWORK_PRUNE_INTERVAL_SECONDS already.
    """
    from ductwork.pruning import Pruner
    from ductwork.store.factory import create_store

    settings = _settings()
    overrides: dict[str, Any] = {}
    if days is not None:
        if days <= 0:
            err.print("[red]--days must be more than 0[/]")
            raise typer.Exit(2)
        overrides["retention_days"] = days
    if keep is not None:
        overrides["retention_runs"] = keep
    settings = settings.model_copy(update=overrides)

    async def go() -> int:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = create_store(settings.resolved_store_url)
        await store.start()
        try:
            pruner = Pruner(store, settings)
            return await (pruner.count() if dry_run else pruner.prune_once())
        finally:
            await store.close()

    count = asyncio.run(go())
    console.print(f"{'Would delete' if dry_run else 'Deleted'} {count} run(s).")


def _remote_client(url: str, api_key: str | None) -> Any:
    from ductwork.client import Client

    return Client(url.rstrip("/"), api_key=_remote_key(api_key))


def _remote_call(url: str, call: Any) -> Any:
    """Run `call()` against a server; exit 2 on a refusal or unknown id, 1 when unreachable."""
    import httpx

    from ductwork.client import ApiError, AuthenticationError, PermissionDenied

    try:
        return call()
    except (AuthenticationError, PermissionDenied) as exc:
        raise _refused(url, exc.status_code) from None
    except ApiError as exc:
        err.print(f"[red]{url}: {exc}[/]", highlight=False, markup=False)
        raise typer.Exit(2) from None
    except httpx.HTTPError as exc:
        err.print(f"[red]{url}: {exc}[/]", highlight=False)
        raise typer.Exit(1) from None


@cli.command()
def versions(
    workflow: Annotated[str, typer.Argument(help="The workflow's id.")],
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many versions to list.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
    url: ServerUrl = "http://127.0.0.1:8000",
    api_key: ApiKeyOption = None,
) -> None:
    """List a workflow's saved versions on a server, newest first.

    Exit status: 0 when listed, 1 when the server cannot be reached, 2 when it
    refused the key or the workflow is unknown.
    """
    with _remote_client(url, api_key) as dw:
        listed = _remote_call(url, lambda: dw.list_versions(workflow, limit=limit))
    if as_json:
        sys.stdout.write(json.dumps(listed, indent=2) + "\n")
        return
    rows = [
        [
            str(v["version"]),
            _when(v["created_at"]),
            v["name"],
            str(v["node_count"]),
            str(v["edge_count"]),
        ]
        for v in listed
    ]
    _print_rows(["version", "saved", "name", "nodes", "edges"], rows)


def diff_lines(diff: dict[str, Any]) -> list[str]:
    """A version diff (`GET .../versions/diff`) as lines: `+` added, `-` removed, `~` changed."""

    def value(item: Any) -> str:
        return _short(json.dumps(item, ensure_ascii=False), 60)

    def changes(prefix: str, items: list[dict[str, Any]]) -> list[str]:
        return [f"~ {prefix}{c['path']}: {value(c['from'])} -> {value(c['to'])}" for c in items]

    def edge(item: dict[str, Any]) -> str:
        branch = f" [{item['branch']}]" if item.get("branch") is not None else ""
        return f"edge {item['from']} -> {item['to']}{branch}"

    nodes, edges = diff["nodes"], diff["edges"]
    lines = [f"+ node {node_id}" for node_id in nodes["added"]]
    lines += [f"- node {node_id}" for node_id in nodes["removed"]]
    for node in nodes["changed"]:
        lines += changes(f"node {node['id']}: ", node["changes"])
    lines += [f"+ {edge(item)}" for item in edges["added"]]
    lines += [f"- {edge(item)}" for item in edges["removed"]]
    lines += changes("", diff["workflow"])
    return lines


@cli.command()
def diff(
    workflow: Annotated[str, typer.Argument(help="The workflow's id.")],
    old: Annotated[int, typer.Argument(min=1, help="The older version.")],
    new: Annotated[int, typer.Argument(min=1, help="The newer version.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
    url: ServerUrl = "http://127.0.0.1:8000",
    api_key: ApiKeyOption = None,
) -> None:
    """Show what changed between two versions of a workflow on a server.

    One line per change: `+`/`-` for added and removed nodes and edges, `~` for a
    changed value (`node ai1: config.prompt: "old" -> "new"`). Exit status as for
    `versions`.
    """
    with _remote_client(url, api_key) as dw:
        found = _remote_call(url, lambda: dw.diff_versions(workflow, old, new))
    if as_json:
        sys.stdout.write(json.dumps(found, indent=2) + "\n")
        return
    lines = diff_lines(found)
    if not lines:
        console.print(f"Versions {old} and {new} are the same.")
    for line in lines:
        console.print(line, markup=False, highlight=False)


def main() -> None:
    """Console-script entry point."""
    cli()
