"""Example workflows shipped in `examples/`: loaded into a fresh server on request.

A shipped example cannot name another workflow's id (ids are made when a workflow
is saved), so a `sub-workflow` node in an example names the workflow it calls by
the called example's workflow *name*: `"workflow_id": "example:Summarise text"`.
`resolve_example_references` turns such a reference into the id of the saved
workflow with that name, saving that example from the same folder first when no
workflow has the name yet. `load_examples` does this for every example (so a called
example is saved before its callers whatever the file order), the CLI's
`ductwork run FILE` and tests/test_examples.py do it for the example they run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson

from ductwork.engine.graph import WorkflowInvalid
from ductwork.models import WorkflowDefinition
from ductwork.service import Ductwork

log = logging.getLogger("ductwork.examples")

EXAMPLE_REFERENCE = "example:"
"""Prefix of a sub-workflow's `workflow_id` naming an example by its workflow name."""


class ExampleNotFound(LookupError):
    """A reference `example:<name>` that no saved workflow and no example file answers."""


def read_workflow_file(path: Path) -> tuple[WorkflowDefinition, dict[str, Any], dict[str, Any]]:
    """(definition, inputs, expected) from a workflow file.

    A file is either a bare workflow definition or an example:
    `{"workflow": {...}, "inputs": {...}, "expected": {...}}`.
    """
    data = orjson.loads(path.read_bytes())
    if isinstance(data, dict) and "workflow" in data:
        return (
            WorkflowDefinition.model_validate(data["workflow"]),
            dict(data.get("inputs") or {}),
            dict(data.get("expected") or {}),
        )
    return WorkflowDefinition.model_validate(data), {}, {}


def example_references(definition: WorkflowDefinition) -> list[str]:
    """The example names a definition's sub-workflow nodes call (`example:<name>`)."""
    names = []
    for node in definition.nodes:
        target = node.config.get("workflow_id") if node.type == "sub-workflow" else None
        if isinstance(target, str) and target.startswith(EXAMPLE_REFERENCE):
            names.append(target.removeprefix(EXAMPLE_REFERENCE))
    return names


class _ExampleSaver:
    """Saves examples by name, the ones they call first; remembers what it saved."""

    def __init__(self, app: Ductwork, folder: Path) -> None:
        self.app = app
        self.folder = folder
        self.ids: dict[str, str] = {}
        self.files: dict[str, tuple[Path, WorkflowDefinition]] | None = None
        self.saved: list[str] = []
        self._saving: set[str] = set()

    async def load_ids(self) -> None:
        for workflow in await self.app.list_workflows(limit=1000):
            self.ids.setdefault(workflow.definition.name, workflow.id)

    def example_files(self) -> dict[str, tuple[Path, WorkflowDefinition]]:
        if self.files is None:
            self.files = {}
            if self.folder.is_dir():
                for path in sorted(self.folder.glob("*.json")):
                    try:
                        definition = read_workflow_file(path)[0]
                    except ValueError as bad:  # not JSON, or not a workflow
                        log.warning("example %s not readable: %s", path.name, bad)
                        continue
                    self.files.setdefault(definition.name, (path, definition))
        return self.files

    async def id_of(self, name: str) -> str:
        """The id of the workflow named `name`, saving that example if needed."""
        if name in self.ids:
            return self.ids[name]
        found = self.example_files().get(name)
        if found is None:
            raise ExampleNotFound(
                f"it calls {EXAMPLE_REFERENCE}{name}, but no saved workflow and no "
                f"example in {self.folder} is named {name!r}"
            )
        if name in self._saving:
            raise ExampleNotFound(f"examples call each other in a cycle through {name!r}")
        self._saving.add(name)
        try:
            await self.save(found[1])
        finally:
            self._saving.discard(name)
        return self.ids[name]

    async def resolve(self, definition: WorkflowDefinition) -> WorkflowDefinition:
        """`definition` with its `example:` references replaced by saved ids."""
        if not example_references(definition):
            return definition
        nodes = []
        for node in definition.nodes:
            target = node.config.get("workflow_id") if node.type == "sub-workflow" else None
            if isinstance(target, str) and target.startswith(EXAMPLE_REFERENCE):
                workflow_id = await self.id_of(target.removeprefix(EXAMPLE_REFERENCE))
                node = node.model_copy(
                    update={"config": {**node.config, "workflow_id": workflow_id}}
                )
            nodes.append(node)
        return definition.model_copy(update={"nodes": nodes})

    async def save(self, definition: WorkflowDefinition) -> None:
        workflow = await self.app.create_workflow(await self.resolve(definition))
        self.ids[definition.name] = workflow.id
        self.saved.append(definition.name)


async def resolve_example_references(
    app: Ductwork, definition: WorkflowDefinition, folder: Path
) -> WorkflowDefinition:
    """Replace each sub-workflow `workflow_id` of the form `example:<name>` by the id
    of the saved workflow named `<name>`; when there is none, save the example of
    that name from `folder` first (and the examples it calls, in turn).

    Raises ExampleNotFound (no workflow and no example has the name, or examples
    call each other in a cycle) and WorkflowInvalid (a called example does not save).
    A definition without references is returned as it is.
    """
    if not example_references(definition):
        return definition
    saver = _ExampleSaver(app, folder)
    await saver.load_ids()
    return await saver.resolve(definition)


async def load_examples(app: Ductwork, directory: Path | None = None) -> list[str]:
    """Save every example whose name is not taken yet; returns the names saved.

    An example that calls another (`example:<name>`) is saved after the one it calls.
    An example that does not validate here (a webhook whose signing secret is
    neither a stored credential nor a DUCTWORK_SECRETS entry yet), or that calls an
    example that is missing or cannot be saved, is skipped with a warning saying
    why: the server starts with the others.
    """
    folder = directory or app.settings.resolved_examples_dir
    if not folder.is_dir():
        log.warning("examples folder %s not found; nothing loaded", folder)
        return []
    saver = _ExampleSaver(app, folder)
    await saver.load_ids()
    for name, (path, definition) in saver.example_files().items():
        if name in saver.ids:
            continue  # taken already, or saved earlier as a called example
        try:
            await saver.save(definition)
        except (WorkflowInvalid, ExampleNotFound) as problem:
            log.warning("example %s not loaded: %s", path.name, problem)
    if saver.saved:
        log.info("loaded %d example workflows from %s", len(saver.saved), folder)
    return saver.saved
