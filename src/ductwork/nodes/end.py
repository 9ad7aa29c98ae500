"""`end`: marks completion; its output becomes the run's result.

For a run started by a `respond: sync` webhook, `status_code` and `headers` shape
the HTTP answer (`ductwork.triggers.hooks` reads them from this node's
`meta.response`); other runs keep them as information.
"""

from __future__ import annotations

import re
from typing import Any, Final

from pydantic import Field, field_validator

from ductwork.nodes.base import NodeConfig, NodeContext, NodeResult, NodeType

RESPONSE_META: Final = "response"
"""The key of `meta` holding `{status_code, headers}` when the node sets either."""

MAX_HEADERS: Final = 50
MAX_HEADER_VALUE: Final = 8192

_TOKEN: Final = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
"""An HTTP header name (RFC 9110 token)."""

_CONTROL: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
"""What a header value must not hold (a line break would start a header of its own)."""

REFUSED_HEADERS: Final = frozenset(
    {
        # Hop-by-hop and framing: the server's own business (RFC 9110 7.6.1).
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "content-encoding",
        "host",
        "date",
        "server",
        # A public hook answers on the server's own origin: a cookie set there could
        # replace a user's session or CSRF cookie.
        "set-cookie",
        # The hook's answer may echo what a caller sent: it stays a sandboxed, never-sniffed
        # document (`ductwork.triggers.hooks.SAFE_HEADERS`), or a caller's script would run
        # on the server's origin with a user's session.
        "content-security-policy",
        "content-security-policy-report-only",
        "x-content-type-options",
    }
)
"""Header names an end node may not set (compared in lower case; also `access-control-*`,
the operator's CORS policy)."""


def refused_header(name: str) -> str | None:
    """Why an end node may not set header `name`, or None when it may."""
    if not _TOKEN.match(name):
        return f"{name!r} is not an HTTP header name"
    lower = name.lower()
    if lower in REFUSED_HEADERS or lower.startswith("access-control-"):
        return f"{name!r} is set by the server, not by a workflow"
    return None


def _latin_1(value: str) -> bool:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


class EndConfig(NodeConfig):
    """`output` optionally shapes the result, e.g. `{"summary": "{{ outputs.ai1 }}"}`."""

    output: Any = Field(default=None, description="The run's result; default: this node's input.")
    status_code: int | None = Field(
        default=None,
        ge=200,
        le=599,
        description="The HTTP status a `respond: sync` webhook answers with (default 200); "
        'templates allowed, e.g. "{{ 201 if input.created else 200 }}".',
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        max_length=MAX_HEADERS,
        description="Headers a `respond: sync` webhook answers with (values may be "
        "templates). A Content-Type other than JSON sends a text result as it is. "
        "Hop-by-hop headers, Set-Cookie, CORS headers, Content-Security-Policy and "
        "X-Content-Type-Options are refused.",
        examples=[{"Location": "https://example.com/thanks", "Cache-Control": "no-store"}],
    )

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        seen: set[str] = set()
        for name, value in headers.items():
            why = refused_header(name)
            if why is None and name.lower() in seen:
                why = f"{name!r} is given twice (header names ignore case)"
            if why is None and len(value) > MAX_HEADER_VALUE:
                why = f"the value of {name!r} is longer than {MAX_HEADER_VALUE} characters"
            if why is None and _CONTROL.search(value):
                why = f"the value of {name!r} holds a line break or control character"
            if why is None and not _latin_1(value):
                # HTTP sends header values as Latin-1 bytes: anything else cannot be sent.
                why = (
                    f"the value of {name!r} holds characters outside Latin-1, which an HTTP "
                    "header cannot carry (percent-encode them, e.g. with urlencode)"
                )
            if why is not None:
                raise ValueError(why)
            seen.add(name.lower())
        return headers


class EndNode(NodeType[EndConfig]):
    type_name = "end"
    description = (
        "Marks workflow completion. Its output (default: its input) is the run's result; "
        "status_code and headers shape a sync webhook's answer."
    )
    config_model = EndConfig
    native_fields = frozenset({"output", "status_code"})

    async def run(self, config: EndConfig, ctx: NodeContext) -> NodeResult:
        output = ctx.input if config.output is None else config.output
        if config.status_code is None and not config.headers:
            return NodeResult(output=output)
        response: dict[str, Any] = {}
        if config.status_code is not None:
            response["status_code"] = config.status_code
        if config.headers:
            response["headers"] = config.headers
        return NodeResult(output=output, meta={RESPONSE_META: response})
