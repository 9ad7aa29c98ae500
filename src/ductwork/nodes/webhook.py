"""`webhook`: an HTTP request (method, headers, query, JSON body) through the guarded client.

Every request carries `Idempotency-Key: <run id>:<node id>`, the same on every
retry and after a crash re-run, so a receiver that honours the header (Stripe
style) performs the action once however often ductwork had to try.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from ductwork.clients.http import (
    auth_header,
    check_http_url,
    display_url,
    raise_for_status,
    with_header,
)
from ductwork.nodes.base import (
    NodeConfig,
    NodeContext,
    NodeError,
    NodeResult,
    NodeType,
    credential_field,
)
from ductwork.security.credential_types import HTTP_AUTH_TYPES

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
IDEMPOTENCY_HEADER = "Idempotency-Key"


class WebhookConfig(NodeConfig):
    url: str = Field(min_length=1, description="Where to send the request (templates allowed).")
    method: Method = Field(default="POST", description="HTTP method.")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers.")
    query: dict[str, Any] | str = Field(
        default_factory=dict,
        description="Query string parameters, merged into the URL's own; lists repeat the key.",
    )
    body: Any = Field(
        default=None,
        description=(
            'Request body, sent as JSON. `"{{ outputs.x }}"` keeps the object. A string is '
            "sent as it is when `headers` give a non-JSON Content-Type. When omitted, "
            "POST/PUT/PATCH send the node's input; an explicit null sends no body."
        ),
    )
    timeout_seconds: float | None = Field(
        default=None, gt=0, le=3600, description="Whole-request time limit (default: settings)."
    )
    expected_status: list[int] | None = Field(
        default=None,
        description="Statuses that count as success; default: any status below 400.",
    )
    credential: str | None = credential_field("http_header, bearer or basic: sent as a header")

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return check_http_url(value, "url")

    @field_validator("expected_status")
    @classmethod
    def _statuses(cls, value: list[int] | None) -> list[int] | None:
        if value is not None:
            bad = [status for status in value if not 100 <= status <= 599]
            if bad:
                raise ValueError(f"not HTTP statuses: {bad}")
        return value


class WebhookNode(NodeType[WebhookConfig]):
    type_name = "webhook"
    description = (
        "Sends an HTTP request (JSON body by default: the node's input) and outputs "
        "{status_code, headers, body}. 429 and 5xx are retried; other 4xx fail the node."
    )
    config_model = WebhookConfig
    native_fields = frozenset({"body", "query"})
    side_effects: ClassVar[bool] = True

    async def run(self, config: WebhookConfig, ctx: NodeContext) -> NodeResult:
        if not isinstance(config.query, dict):
            raise NodeError(f"query must be an object, got {type(config.query).__name__}")
        headers = dict(config.headers)
        secret_headers: tuple[str, ...] = ()
        if config.credential is not None:
            credential = ctx.credential(config.credential, HTTP_AUTH_TYPES)
            name, value = auth_header(credential.data)
            headers = with_header(headers, name, value)
            secret_headers = (name,)
        # A caller-supplied key wins: some receivers want their own format.
        if not any(name.lower() == IDEMPOTENCY_HEADER.lower() for name in headers):
            headers[IDEMPOTENCY_HEADER] = ctx.idempotency_key

        body = config.body
        if "body" not in config.model_fields_set and config.method in _METHODS_WITH_BODY:
            body = ctx.input
        json_body: Any = None
        content: str | None = None
        if isinstance(body, str) and _declares_non_json(headers):
            content = body
        else:
            json_body = body

        http = ctx.services.http
        started = time.perf_counter()
        response = await http.request(
            config.method,
            config.url,
            headers=headers,
            params=config.query,
            json=json_body,
            content=content,
            timeout=config.timeout_seconds,
            sensitive_headers=secret_headers,
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        where = display_url(response.url)
        ctx.log(f"{config.method} {where} -> {response.status_code} in {elapsed_ms:.0f} ms")

        what = f"{config.method} {where}"
        if config.expected_status is None:
            raise_for_status(response, what)
        elif response.status_code not in config.expected_status:
            raise_for_status(response, what)
            raise NodeError(
                f"{what} answered {response.status_code}, expected one of "
                f"{config.expected_status}: {response.excerpt()}"
            )
        return NodeResult(
            output={
                "status_code": response.status_code,
                "headers": response.headers,
                "body": response.parsed(),
            },
            meta={
                "url": where,
                "elapsed_ms": round(elapsed_ms, 1),
                "redirects": len(response.history),
            },
        )


def _declares_non_json(headers: dict[str, str]) -> bool:
    for name, value in headers.items():
        if name.lower() == "content-type":
            media = value.split(";", 1)[0].strip().lower()
            return not (media == "application/json" or media.endswith("+json"))
    return False
