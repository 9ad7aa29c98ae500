"""`sub-workflow`: runs another saved workflow as a child run.

The child run links back to this node (`parent_execution_id`, `parent_node_id`,
`depth`); the application starts and awaits it through `NodeServices.child_runs`
(`ductwork.subflows`). `sync` waits for the child and returns its result (a child
that fails or is cancelled fails the node); `async` returns
`{"execution_id", "workflow_id"}` at once. Either way `meta.child_execution_id`
names the child. See docs/subflows.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ductwork.models import RunStatus
from ductwork.nodes.base import (
    NodeConfig,
    NodeContext,
    NodeError,
    NodeResult,
    NodeType,
    ParentLink,
)


class SubWorkflowConfig(NodeConfig):
    workflow_id: str = Field(
        min_length=1,
        max_length=64,
        description="The id of the saved workflow to run (checked when this one is saved).",
        examples=["6650f0c2a1b2c3d4e5f60718"],
    )
    version: int | None = Field(
        default=None,
        ge=1,
        description="Run this saved version of it; null: its current version.",
    )
    inputs: dict[str, Any] = Field(
        default_factory=dict,
        description="The child run's inputs; values may be templates, and a lone "
        "`{{ expr }}` keeps its type (lists, objects, numbers).",
        examples=[{"customer": "{{ input.customer }}", "items": "{{ outputs.fetch }}"}],
    )
    mode: Literal["sync", "async"] = Field(
        default="sync",
        description="sync: wait for the child and output its result; async: start it and "
        "output {execution_id, workflow_id} at once.",
    )


class SubWorkflowNode(NodeType[SubWorkflowConfig]):
    type_name = "sub-workflow"
    description = (
        "Runs another saved workflow with mapped inputs: sync waits and outputs its result, "
        "async starts it and outputs its execution id. Nesting is bounded by "
        "DUCTWORK_MAX_WORKFLOW_DEPTH."
    )
    config_model = SubWorkflowConfig
    native_fields = frozenset({"inputs"})
    # The inputs become the child run's variables, stored and returned unmasked: the
    # child's redactor knows only its own run's secrets.
    secret_free_fields = frozenset({"inputs"})

    async def run(self, config: SubWorkflowConfig, ctx: NodeContext) -> NodeResult:
        children = ctx.services.child_runs
        if children is None:
            raise NodeError("sub-workflow runs are not available in this process")
        parent = ParentLink(
            execution_id=ctx.execution_id,
            workflow_id=ctx.workflow_id,
            node_id=ctx.node_id,
            depth=ctx.depth,
        )
        child = await children.start_child(
            parent=parent,
            workflow_id=config.workflow_id,
            version=config.version,
            # Masked as well (defence in depth): a secret that reached an input another
            # way than `secrets.` (a stored output is masked already) stays hidden.
            inputs=ctx.redact(config.inputs),
            mode=config.mode,
        )
        meta = {"child_execution_id": child.execution_id}
        if config.mode == "async":
            output = {"execution_id": child.execution_id, "workflow_id": child.workflow_id}
            return NodeResult(output=output, meta=meta)
        ctx.log(f"waiting for sub-workflow run {child.execution_id}")
        finished = await children.wait_child(child.execution_id)
        if finished.status is RunStatus.SUCCESS:
            return NodeResult(output=finished.result, meta=meta)
        why = finished.error or str(finished.status)
        # A child that failed may succeed when tried again (the node's `retry` policy runs
        # it on from its failed nodes); a cancelled one was stopped on purpose.
        raise NodeError(
            f"sub-workflow run {child.execution_id} failed: {why}",
            retryable=finished.status is RunStatus.ERROR,
        )
