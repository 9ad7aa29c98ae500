"""`wait`: parks the run until a person (or another system) resumes it, or time runs out.

Running it parks the run like a long `delay` (status `waiting`, no worker held,
surviving restarts). Its node state carries `resume_url`, a signed single-use
link (`ductwork.triggers.resume`): `POST` JSON to it (no API key needed) and the
body becomes the node's output; open it in a browser for an approve/reject page
(`{"approved": true|false}`). API clients with a key can
`POST /workflows/executions/{id}/nodes/{node_id}/resume` instead. An earlier
node can mail the link: `{{ run.resume_url }}` (this node's link when it is the
workflow's first wait node), `{{ run.resume_urls.<node_id> }}` for any.

Outcomes and the branches they take:

- resumed: output = the posted JSON object, branch `resumed`;
- `timeout_seconds` passed without an answer, per `on_timeout`:
  - `fail` (default): the node fails ("no one resumed it within N s"), and the
    node's `on_error` applies as for any failure;
  - `continue`: output `{"timed_out": true}`, branch `resumed`: the run goes on
    along the same edges as an answer would (plain and `resumed` edges);
  - `branch`: output `{"timed_out": true}`, branch `timeout`: only plain and
    `timeout` edges are followed.

Without `timeout_seconds` the node waits until the run's DUCTWORK_MAX_RUN_SECONDS
deadline, which fails the run as it does any run that takes too long.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from ductwork.engine.limits import WorkflowLimits, number, over
from ductwork.models import NodeState
from ductwork.nodes.base import NodeConfig, NodeContext, NodeError, NodeResult, NodeType

RESUMED = "resumed"
TIMEOUT = "timeout"

MAX_TITLE_CHARS = 200
MAX_MESSAGE_CHARS = 20_000


class WaitConfig(NodeConfig):
    """How long to wait and what the approval page says. `title`/`message` are templates."""

    timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        le=366 * 86_400,
        description="Stop waiting after this long (at most DUCTWORK_MAX_DELAY_SECONDS); "
        "unset: wait until the run's DUCTWORK_MAX_RUN_SECONDS deadline.",
    )
    on_timeout: Literal["fail", "continue", "branch"] = Field(
        default="fail",
        description="When time runs out: fail the node; continue with output "
        "{timed_out: true} along the same edges as an answer; or take the `timeout` branch.",
    )
    title: str = Field(
        default="Approval needed",
        max_length=MAX_TITLE_CHARS,
        description="The heading of the approval page the link opens.",
        examples=["Publish this draft?"],
    )
    message: str = Field(
        default="",
        max_length=MAX_MESSAGE_CHARS,
        description="The text of the approval page (plain text; shown escaped).",
        examples=["{{ outputs.draft }}"],
    )


class WaitNode(NodeType[WaitConfig]):
    type_name = "wait"
    description = (
        "Waits for a person or another system: the run parks (no worker held) until its "
        "resume link is posted to (the body becomes the output) or `timeout_seconds` pass."
    )
    config_model = WaitConfig
    branches = frozenset({RESUMED, TIMEOUT})
    resumable = True

    def limit_issues(
        self,
        config: WaitConfig,
        limits: WorkflowLimits,
        rendered_later: frozenset[str] = frozenset(),
    ) -> list[tuple[str, str]]:
        """`timeout_seconds` past DUCTWORK_MAX_DELAY_SECONDS."""
        ceiling = limits.max_delay_seconds
        timeout = config.timeout_seconds
        if ceiling is None or timeout is None or "timeout_seconds" in rendered_later:
            return []
        if timeout > ceiling:
            return [
                (
                    "timeout_seconds",
                    over("timeout_seconds", timeout, ceiling, "DUCTWORK_MAX_DELAY_SECONDS"),
                )
            ]
        return []

    async def run(self, config: WaitConfig, ctx: NodeContext) -> NodeResult:
        settings = ctx.services.settings
        # A templated timeout is known only now; a saved one may predate a lowered ceiling.
        for field, message in self.limit_issues(config, WorkflowLimits.from_settings(settings)):
            raise NodeError(f"config.{field}: {message}")
        links = ctx.services.resume_links
        if links is None:
            raise NodeError("this process has no resume links configured (no credentials key)")
        timeout_at = None
        if config.timeout_seconds is not None:
            timeout_at = datetime.now(UTC) + timedelta(seconds=config.timeout_seconds)
        meta: dict[str, Any] = {
            "resume_url": links.url(ctx.execution_id, ctx.node_id),
            "timeout_at": timeout_at.isoformat() if timeout_at is not None else None,
            # What `wake` needs later, as rendered now.
            "timeout_seconds": config.timeout_seconds,
            "on_timeout": config.on_timeout,
            "title": config.title,
            "message": config.message,
        }
        return NodeResult(park_until=timeout_at, resumable=True, meta=meta)

    def wake(self, state: NodeState, now: datetime) -> NodeResult | None:
        """Resumed: the payload, branch `resumed`. Timed out: per `on_timeout`."""
        meta = state.meta
        if meta.get("resumed"):
            kept = {key: value for key, value in meta.items() if key != "resume_payload"}
            return NodeResult(output=meta.get("resume_payload"), branch=RESUMED, meta=kept)
        if state.wake_at is None or state.wake_at > now:
            return None
        on_timeout = meta.get("on_timeout", "fail")
        if on_timeout == "fail":
            seconds = meta.get("timeout_seconds")
            within = f" within {number(seconds)} s" if isinstance(seconds, int | float) else ""
            raise NodeError(f"timed out: no one resumed it{within} (on_timeout: fail)")
        branch = TIMEOUT if on_timeout == "branch" else RESUMED
        return NodeResult(output={"timed_out": True}, branch=branch, meta=dict(meta))
