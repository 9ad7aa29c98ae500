"""Example workflows shipped in `examples/`: loaded into a fresh server on request."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson

from ductwork.engine.graph import WorkflowInvalid
from ductwork.models import WorkflowDefinition
from ductwork.service import Ductwork

log = logging.getLogger("ductwork.examples")


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


async def load_examples(app: Ductwork, directory: Path | None = None) -> list[str]:
    """Save every example whose name is not taken yet; returns the names saved.

    An example that does not validate here (a webhook whose signing secret is
    neither a stored credential nor a DUCTWORK_SECRETS entry yet) is skipped with a
    warning saying why: the server starts with the others.
    """
    folder = directory or app.settings.resolved_examples_dir
    if not folder.is_dir():
        log.warning("examples folder %s not found; nothing loaded", folder)
        return []
    existing = {w.definition.name for w in await app.list_workflows(limit=1000)}
    saved = []
    for path in sorted(folder.glob("*.json")):
        definition, _, _ = read_workflow_file(path)
        if definition.name in existing:
            continue
        try:
            await app.create_workflow(definition)
        except WorkflowInvalid as invalid:
            log.warning("example %s not loaded: %s", path.name, invalid)
            continue
        saved.append(definition.name)
    if saved:
        log.info("loaded %d example workflows from %s", len(saved), folder)
    return saved
