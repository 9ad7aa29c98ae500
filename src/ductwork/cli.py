"""The `ductwork` command: serve, worker, run FILE, validate FILE."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from ductwork.engine.graph import WorkflowInvalid
from ductwork.examples import read_workflow_file
from ductwork.models import NodeStatus, Run, RunStatus, ValidationIssue
from ductwork.settings import Settings

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


def print_run(run: Run) -> None:
    """A per-node table with status, attempts, timing and output, then the run's outcome."""
    table = Table(title=f"Run {run.execution_id}", show_lines=False)
    for column in ("node", "type", "status", "attempts", "ms", "cached", "output / error"):
        table.add_column(column, overflow="fold")
    types = {node.id: node.type for node in run.definition.nodes}
    for node in run.definition.nodes:
        state = run.node_states.get(node.id)
        status = state.status.value if state else NodeStatus.PENDING.value
        style = _STATUS_STYLE.get(status, "")
        detail = ""
        if state is not None:
            detail = state.error if state.error else _short(state.output)
        table.add_row(
            node.id,
            types[node.id],
            f"[{style}]{status}[/]",
            str(state.attempts) if state else "0",
            f"{state.latency_ms:.1f}" if state and state.latency_ms is not None else "",
            "yes" if state and state.cached else "",
            detail,
        )
    console.print(table)
    style = _STATUS_STYLE.get(run.status.value, "")
    took = ""
    if run.start_time and run.end_time:
        took = f" in {(run.end_time - run.start_time).total_seconds() * 1000:.1f} ms"
    console.print(f"Status: [{style}]{run.status.value}[/]{took}")
    if run.error:
        console.print(f"[red]Error: {run.error}[/]")
    if run.result is not None:
        console.print(f"Result: {_short(run.result, 500)}")


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    examples: Annotated[bool, typer.Option(help="Load the example workflows at start.")] = False,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
) -> None:
    """Serve the HTTP API (embedded defaults: SQLite file, in-process queue and cache)."""
    import os

    import uvicorn

    settings = Settings()
    if examples:
        os.environ["DUCTWORK_LOAD_EXAMPLES"] = "true"
    uvicorn.run(
        "ductwork.api.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        loop="auto",
        http="auto",
        log_level="info",
    )


@cli.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(help="Runs advanced at once (default DUCTWORK_MAX_CONCURRENT_RUNS)."),
    ] = None,
) -> None:
    """Advance runs from the Redis queue (needs DUCTWORK_REDIS_URL and a shared store)."""
    import logging
    import signal

    from ductwork.runtime import build

    overrides: dict[str, Any] = {}
    if concurrency is not None:
        overrides["max_concurrent_runs"] = concurrency
    settings = Settings(**overrides)
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
        app = build(settings, role="worker")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await app.start()
        console.print(
            f"worker {app.executor.owner} consuming runs "
            f"(store {settings.resolved_store_url.split('@')[-1]}, redis {settings.redis_url})"
        )
        try:
            await stop.wait()
        finally:
            # Runs in flight keep their checkpoints; released, they resume on another worker.
            await app.close()

    asyncio.run(go())


@cli.command()
def run(
    file: Annotated[Path, typer.Argument(help="Workflow JSON (bare definition or example file).")],
    input_: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="Run input as key=value (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the run to end.")] = 3600.0,
) -> None:
    """Run a workflow file in this process and print each node's outcome."""
    definition, inputs = _load(file)
    inputs.update(_parse_inputs(input_ or []))
    from ductwork.runtime import build
    from ductwork.views import run_view

    async def go() -> Run:
        app = build(Settings())
        await app.start()
        try:
            return await app.execute_definition(definition, inputs, wait=True, wait_seconds=wait)
        finally:
            await app.close()

    try:
        with console.status(f"Running {definition.name}…", spinner="dots"):
            result = asyncio.run(go())
    except WorkflowInvalid as exc:
        _print_issues(exc.issues)
        raise typer.Exit(2) from None
    if as_json:
        sys.stdout.write(json.dumps(run_view(result), indent=2, default=str) + "\n")
    else:
        print_run(result)
    if result.status is not RunStatus.SUCCESS:
        raise typer.Exit(1)


@cli.command()
def validate(file: Annotated[Path, typer.Argument(help="Workflow JSON to check.")]) -> None:
    """Check a workflow file: every problem with its node and field."""
    from ductwork.engine.graph import validate as validate_definition
    from ductwork.nodes.registry import REGISTRY

    definition, _ = _load(file)
    issues = validate_definition(definition, REGISTRY)
    if issues:
        _print_issues(issues)
        raise typer.Exit(1)
    console.print(
        f"[green]✓[/] {definition.name}: {len(definition.nodes)} nodes, "
        f"{len(definition.edges)} edges, valid"
    )


def main() -> None:
    """Console-script entry point."""
    cli()
