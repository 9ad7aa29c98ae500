"""Ceilings a workflow definition must stay under, checked when it is saved.

`WorkflowLimits` is built from settings by the service (`from_settings`) and
handed to `graph.build_plan`; the engine itself reads no settings here. Every
message names the setting that sets the ceiling, so whoever hits one knows
which knob an operator would turn (docs/api-limits.md lists them all).

Values a template fills in (`delay_seconds: "{{ wait }}"`) are only known when
the node runs; the node types check those against the same ceilings then
(`NodeType.limit_issues`, called with the process's settings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ductwork.settings import Settings


@dataclass(frozen=True, slots=True)
class WorkflowLimits:
    """Ceilings on one workflow definition; None means unchecked.

    The defaults check nothing, so callers that pass no limits (tools, tests,
    plans of runs already saved) behave as before; the service passes the
    configured ones.
    """

    max_nodes: int | None = None
    max_edges: int | None = None
    max_template_chars: int | None = None
    max_delay_seconds: float | None = None
    max_retry_attempts: int | None = None
    max_retry_backoff_seconds: float | None = None
    llm_max_tokens: int | None = None
    max_email_recipients: int | None = None
    max_code_timeout_seconds: float | None = None
    max_loop_items: int | None = None
    max_loop_concurrency: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkflowLimits:
        """The ceilings a process is configured with (DUCTWORK_MAX_* settings)."""
        return cls(
            max_nodes=settings.max_workflow_nodes,
            max_edges=settings.max_workflow_edges,
            max_template_chars=settings.max_template_chars,
            max_delay_seconds=settings.max_delay_seconds,
            max_retry_attempts=settings.max_retry_attempts,
            max_retry_backoff_seconds=settings.max_retry_backoff_seconds,
            llm_max_tokens=settings.llm_max_tokens,
            max_email_recipients=settings.max_email_recipients,
            max_code_timeout_seconds=settings.code_timeout_seconds,
            max_loop_items=settings.max_loop_items,
            max_loop_concurrency=settings.max_loop_concurrency,
        )


UNLIMITED = WorkflowLimits()
"""No ceilings: what `build_plan` checks when it is given none."""


def over(what: str, value: float, limit: float, setting: str) -> str:
    """The message for a value past its ceiling, naming the setting.

    e.g. `delay_seconds is 5000000; the limit is 2592000 (DUCTWORK_MAX_DELAY_SECONDS)`.
    """
    return f"{what} is {number(value)}; the limit is {number(limit)} ({setting})"


def number(value: float) -> str:
    """`2592000`, not `2.592e+06`; `1.5` stays `1.5`."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
