"""Who sees resume links: principals that may RUN; everyone else sees the node wait.

A resume link (`ductwork.triggers.resume`) resumes its run without a key, so it is a
bearer capability: showing it to a viewer would let the viewer do what needs RUN.
Run views (`ductwork.views.node_state_view`) and the wire form of events
(`ductwork.live.event_json`) ask `links_visible()` and leave `resume_url` out (not
masked) for anyone else. Stored runs and events keep it; only what leaves the API is
filtered. A leaf module: `ductwork.views` is imported by the CLI's remote commands too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ductwork.security.context import current
from ductwork.security.models import Permission

LINK_FIELD: Final = "resume_url"
"""Where a link shows: a wait node's state meta and its `node_waiting` event's data."""

SEE_LINKS: Final = Permission.RUN
"""What a principal needs to see resume links: what resuming through the API needs."""


def links_visible() -> bool:
    """Whether the current principal (`ductwork.security.context.current()`, set by the
    API's guard for every request) may see resume links. Outside a request (the CLI on
    the store, a worker) it is the system, which may."""
    return current().principal.can(SEE_LINKS)


def without_link(data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` without its resume link (a copy: events and states are shared, not owned)."""
    return {key: value for key, value in data.items() if key != LINK_FIELD}
