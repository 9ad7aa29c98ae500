"""Inbound webhooks: a call to `/hooks/{path}` starts a run of the workflow serving `path`.

No web framework here: the route (`ductwork.api.hooks`) hands a `HookCall` to
`Hooks.call` and sends back the `HookAnswer` (or the `HookRefused`) it gets.
Checks run cheapest first, and every refusal starts nothing:

1. the path: 404 when no workflow serves it (looked up in the store's trigger
   index, `Store.find_hook`, and cached per process: a change message from any
   process's save clears the cache, `Ductwork.trigger_listeners`; a short TTL
   bounds a missed message); 405 with `Allow` for another method; 409 while the
   workflow is paused;
2. the per-path rate limit (the trigger's `rate_limit`, else
   DUCTWORK_HOOK_RATE_LIMIT, parsed once): 429 with `Retry-After`;
3. the body size (`max_body_bytes`, else DUCTWORK_HOOK_MAX_BODY_BYTES): 413,
   read with a cap so a larger body is never held;
4. the trigger's auth (`verify`): a token or an HMAC signature of the raw body,
   compared in constant time; 401 saying what was wrong with the request and
   nothing about the secret;
5. the body by its Content-Type (JSON, form or text; 400 naming the problem).

Then the run starts through `Ductwork.execute` (idempotency and sync waiting are
its own), with inputs `{**trigger.inputs, body, query, headers, method, path}` and
trigger `{type: webhook, path, method}`. `answer_for` turns the run into the reply.
"""

from __future__ import annotations

import base64
import codecs
import functools
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import parse_qsl

import orjson

from ductwork.jsonvalues import JSONProblem, dotted, find_problem, loads_checked
from ductwork.models import Run, RunStatus, ValidationIssue, Workflow, WorkflowDefinition
from ductwork.nodes.end import RESPONSE_META
from ductwork.security.credential_types import CredentialSource, secret_value
from ductwork.security.ratelimit import RateLimiter
from ductwork.settings import Settings
from ductwork.store.base import Store
from ductwork.triggers.spec import (
    HOOK_PATH_PATTERN,
    HmacAuth,
    NoAuth,
    TokenAuth,
    WebhookTrigger,
    is_paused,
    normalize_hook_path,
    parse_triggers,
    workflow_triggers,
)

if TYPE_CHECKING:
    # `limits` (~0.15 s to import) loads when the first rate is parsed (`parse_rates`).
    from limits import RateLimitItem

log = logging.getLogger("ductwork.hooks")

CACHE_SECONDS: Final = 5.0
"""How long a process trusts a cached path without a change message (a missed message
costs at most this long)."""
CACHE_SIZE: Final = 10_000
"""Paths (served or not) one process keeps; past it the cache starts over."""
RATE_RULE: Final = "hook"
"""The rate limiter's namespace for calls per webhook path."""
IDEMPOTENCY_PREFIX: Final = "hook:"
"""A caller's `Idempotency-Key` K is the run's key `hook:K` (apart from the keys of
other triggers and of the execute route)."""
MAX_IDEMPOTENCY_KEY: Final = 200
MAX_SIGNATURES: Final = 20
"""Most `v1=` signatures a Stripe-style header may carry (each costs a comparison)."""
MAX_FORM_FIELDS: Final = 1000
EXECUTION_HEADER: Final = "X-Execution-Id"
"""Every answer that started (or found) a run names it here."""
SAFE_HEADERS: Final = {
    # The answer is served on the server's own origin and may echo what a caller sent
    # (an end node's text result): a sandboxed, never-sniffed document cannot script
    # that origin.
    "Content-Security-Policy": "sandbox",
    "X-Content-Type-Options": "nosniff",
}
"""Headers on every answer of `/hooks/{path}`."""


@functools.cache
def text_charsets() -> frozenset[str]:
    """The charsets a hook body may be decoded with, by codec name (built on first use:
    looking them up imports some fifty codec modules)."""
    return frozenset(
        codecs.lookup(name).name
        for name in (
            # The charsets of the WHATWG Encoding Standard (what browsers and webhook senders
            # use), plus UTF-16/32 with a BOM and Latin-1 itself. Python also has codecs that
            # are no charset at all (`undefined` raises, `unicode_escape` interprets
            # backslashes, `rot13` maps text to text): a caller must not pick one of those.
            *("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"),
            *("utf-32", "utf-32-le", "utf-32-be", "ascii", "latin-1"),
            *(f"iso-8859-{n}" for n in (2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16)),
            *(f"cp{n}" for n in range(1250, 1259)),
            *("cp866", "cp874", "koi8-r", "koi8-u", "mac-roman", "mac-cyrillic"),
            *("gbk", "gb2312", "gb18030", "big5", "big5hkscs", "cp950"),
            *("euc-jp", "iso-2022-jp", "shift_jis", "cp932", "euc-kr", "cp949"),
        )
    )


"""Python codec names (canonical, as `codecs.lookup` gives them) a text body may use."""

_PATH: Final = re.compile(HOOK_PATH_PATTERN)
_CHARSET: Final = re.compile(r";\s*charset=\"?([A-Za-z0-9._:-]+)", re.IGNORECASE)


class HookRefused(Exception):
    """The call is answered `status` with `{"detail": detail}` and starts nothing."""

    def __init__(self, status: int, detail: str, headers: Mapping[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


class BodyTooLarge(Exception):
    """Raised by a `HookCall.read_body` once the body passes its limit."""


class Unauthorized(HookRefused):
    """The call failed the trigger's auth (401): `detail` says what was wrong with the
    request (a missing header, a mismatch, an old timestamp), never anything of the secret."""

    def __init__(self, detail: str) -> None:
        super().__init__(401, detail)


# Requests and answers ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HookCall:
    """One request to `/hooks/{path}`, as the route hands it over."""

    path: str
    method: str
    headers: Mapping[str, str]
    """Request headers; `get` must take lower-case names (Starlette's `Headers` does)."""
    query: Iterable[tuple[str, str]]
    read_body: Callable[[int], Awaitable[bytes]]
    """Reads the whole body, raising BodyTooLarge once it passes the given bytes."""


@dataclass(slots=True)
class HookAnswer:
    """What to send back: `body` is JSON unless `media_type` says otherwise (then bytes)."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str | None = None
    """None: `body` is a JSON value; else `body` is bytes of this type ("": untyped)."""
    poll: str | None = None
    """The execution id of a run still going (202): the route adds a Location to poll."""


# Auth -------------------------------------------------------------------------------


def verify(
    auth: NoAuth | TokenAuth | HmacAuth,
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
) -> None:
    """Raise Unauthorized unless the request passes `auth` (`secret` is its credential's
    value; ignored for `none`). Every comparison of secret material is constant-time."""
    if isinstance(auth, NoAuth):
        return
    if isinstance(auth, TokenAuth):
        _verify_token(auth, secret, headers)
    elif auth.style == "stripe":
        _verify_stripe(auth, secret, headers, body, now)
    else:
        _verify_plain(auth, secret, headers, body, now)


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name.lower())
    if not value:
        raise Unauthorized(f"the {name} header is missing")
    return value


def _raw(text: str) -> bytes:
    # Servers decode header bytes as latin-1: this gives back the bytes that were sent.
    return text.encode("latin-1", errors="replace")


def _verify_token(auth: TokenAuth, secret: str, headers: Mapping[str, str]) -> None:
    value = _header(headers, auth.header)
    prefix = auth.prefix
    # The scheme ("Bearer ") is not secret and its case does not matter (RFC 9110 11.1).
    if value[: len(prefix)].lower() != prefix.lower():
        raise Unauthorized(f"the {auth.header} header must start with {prefix!r}")
    if not hmac.compare_digest(_raw(value[len(prefix) :].strip()), secret.encode()):
        raise Unauthorized(f"the token in the {auth.header} header is not valid")


def _digest(auth: HmacAuth, secret: str, payload: bytes) -> bytes:
    mac = hmac.new(secret.encode(), payload, auth.algorithm).digest()
    if auth.encoding == "hex":
        return mac.hex().encode()
    return base64.b64encode(mac)


def _given(auth: HmacAuth, signature: str) -> bytes:
    signature = signature.strip()
    # Hex digits may come in either case; base64 is case-sensitive.
    return _raw(signature.lower() if auth.encoding == "hex" else signature)


def _check_time(auth: HmacAuth, text: str, where: str, now: float) -> None:
    try:
        signed_at = int(text.strip())
    except ValueError:
        raise Unauthorized(f"{where} must be a unix time in seconds") from None
    drift = abs(now - signed_at)
    if drift > auth.tolerance_seconds:
        raise Unauthorized(
            f"the signed time is {drift:.0f} s away from now; this hook accepts at most "
            f"{auth.tolerance_seconds} s (a replayed request?)"
        )


def _verify_plain(
    auth: HmacAuth, secret: str, headers: Mapping[str, str], body: bytes, now: float
) -> None:
    value = _header(headers, auth.header)
    if auth.prefix and not value.startswith(auth.prefix):
        raise Unauthorized(f"the {auth.header} header must start with {auth.prefix!r}")
    payload = body
    signed_at: str | None = None
    if auth.timestamp_header is not None:
        signed_at = _header(headers, auth.timestamp_header)
        payload = _raw(signed_at) + b"." + body
    expected = _digest(auth, secret, payload)
    if not hmac.compare_digest(_given(auth, value[len(auth.prefix) :]), expected):
        raise Unauthorized(f"the signature in the {auth.header} header does not match the body")
    if signed_at is not None:
        _check_time(auth, signed_at, f"the {auth.timestamp_header} header", now)


def _verify_stripe(
    auth: HmacAuth, secret: str, headers: Mapping[str, str], body: bytes, now: float
) -> None:
    value = _header(headers, auth.header)
    signed_at: str | None = None
    signatures: list[str] = []
    for part in value.split(","):
        key, _, item = part.strip().partition("=")
        if key == "t" and signed_at is None:
            signed_at = item
        elif key == "v1":
            signatures.append(item)
    if signed_at is None or not signatures:
        raise Unauthorized(f"the {auth.header} header must look like t=<unix time>,v1=<signature>")
    if len(signatures) > MAX_SIGNATURES:
        raise Unauthorized(f"the {auth.header} header holds more than {MAX_SIGNATURES} signatures")
    expected = _digest(auth, secret, _raw(signed_at) + b"." + body)
    matched = False
    for signature in signatures:  # every one compared: which one matched takes no less time
        matched |= hmac.compare_digest(_given(auth, signature), expected)
    if not matched:
        raise Unauthorized(f"no signature in the {auth.header} header matches the body")
    _check_time(auth, signed_at, f"t= in the {auth.header} header", now)


# Request -> run inputs --------------------------------------------------------------


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _multi(pairs: Iterable[tuple[str, str]]) -> dict[str, str | list[str]]:
    """`a=1&b=2&b=3` as `{"a": "1", "b": ["2", "3"]}`: a repeated name becomes a list."""
    values: dict[str, str | list[str]] = {}
    for name, value in pairs:
        seen = values.get(name)
        if seen is None:
            values[name] = value
        elif isinstance(seen, list):
            seen.append(value)
        else:
            values[name] = [seen, value]
    return values


def _storable(value: Any, where: str, max_depth: int) -> None:
    problem = find_problem(value, max_depth)
    if problem is not None:
        path, why = problem
        field_path = dotted((where, *path))
        raise HookRefused(400, f"{field_path}: {why}")


@functools.lru_cache(maxsize=128)
def _is_text_charset(charset: str) -> bool:
    """Whether `charset` names one of `text_charsets()` (a bounded cache: callers repeat a
    few names, and a caller sending new ones cannot grow it)."""
    try:
        return codecs.lookup(charset).name in text_charsets()
    except LookupError:
        return False


def parse_body(content_type: str | None, raw: bytes, max_depth: int) -> Any:
    """The run's `body` input: JSON parsed, a form as a dict, anything else as text.

    None for an empty body. Raises HookRefused: 400 for JSON that does not parse (or
    holds what the stores cannot: NUL characters, 64-bit overflows, deep nesting), 415
    for a body that is not text in its charset (UTF-8 by default).
    """
    if not raw:
        return None
    media_type = _media_type(content_type)
    if _is_json(media_type):
        try:
            return loads_checked(raw, max_depth)
        except JSONProblem as problem:
            if problem.path is None:  # "invalid JSON: <where orjson stopped>"
                raise HookRefused(400, f"the body is {problem.message}") from None
            raise HookRefused(400, f"body.{dotted(problem.path)}: {problem.message}") from None
    found = _CHARSET.search(content_type or "")
    charset = found.group(1) if found else "utf-8"
    if not _is_text_charset(charset):
        raise HookRefused(
            415,
            f"charset={charset} is not a text encoding this server reads; send UTF-8 "
            "(or another standard charset such as latin-1, windows-1252 or utf-16)",
        )
    try:
        text = raw.decode(charset)
    except ValueError:  # UnicodeDecodeError, or a codec's own UnicodeError
        raise HookRefused(
            415,
            f"the body is not {charset} text; send JSON (application/json), a form "
            "(application/x-www-form-urlencoded) or text",
        ) from None
    body: Any = text
    if media_type == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
        except ValueError:
            raise HookRefused(400, f"the form has more than {MAX_FORM_FIELDS} fields") from None
        body = _multi(pairs)
    _storable(body, "body", max_depth)
    return body


def run_inputs(
    trigger: WebhookTrigger,
    call: HookCall,
    body: Any,
    header_names: Iterable[str],
    max_depth: int,
) -> dict[str, Any]:
    """`{**trigger.inputs, body, query, headers, method, path}` for a call.

    `headers` holds the trigger's chosen headers that were sent, by lower-case name.
    """
    query = _multi(call.query)
    _storable(query, "query", max_depth)
    headers = {name: value for name in header_names if (value := call.headers.get(name))}
    return {
        **trigger.inputs,
        "body": body,
        "query": query,
        "headers": headers,
        "method": call.method,
        "path": trigger.path,
    }


# Run -> answer ----------------------------------------------------------------------


def _end_response(run: Run) -> Mapping[str, Any]:
    """The `{status_code, headers}` a completed end node set (the first in the
    definition's order when several did), or {}."""
    for node in run.definition.nodes:
        if node.type != "end":
            continue
        state = run.node_states.get(node.id)
        response = state.meta.get(RESPONSE_META) if state is not None else None
        if isinstance(response, dict):
            return response
    return {}


def _run_headers(run: Run, replayed: bool) -> dict[str, str]:
    headers = {EXECUTION_HEADER: run.execution_id}
    if replayed:  # an Idempotency-Key seen before: the answer is the earlier run's
        headers["Idempotent-Replayed"] = "true"
    return headers


def answer_for(run: Run, replayed: bool = False) -> HookAnswer:
    """The reply for a run as it stands.

    Succeeded: 200 (or the end node's `status_code`) with the result as JSON and the
    end node's headers; a text result under a non-JSON Content-Type the end node set
    is sent as it is. Failed or cancelled: 500 with the run's error summary (never a
    stack). Not finished: 202 with the execution id and a Location to poll.
    """
    headers = _run_headers(run, replayed)
    if run.status is RunStatus.SUCCESS:
        response = _end_response(run)
        status = int(response.get("status_code") or 200)
        chosen: Mapping[str, str] = response.get("headers") or {}
        content_type = next((v for k, v in chosen.items() if k.lower() == "content-type"), None)
        headers.update({k: v for k, v in chosen.items() if k.lower() != "content-type"})
        if status in (204, 304):
            return HookAnswer(status, b"", headers, media_type="")
        if content_type is not None and _is_json(_media_type(content_type)):
            headers["Content-Type"] = content_type  # JSON under its own name (problem+json)
        elif content_type is not None and isinstance(run.result, str):
            return HookAnswer(status, run.result.encode(), headers, media_type=content_type)
        return HookAnswer(status, run.result, headers)
    if run.status.finished:
        error = run.error or f"the run ended with status {run.status.value}"
        body = {"execution_id": run.execution_id, "status": run.status.value, "error": error}
        return HookAnswer(500, body, headers)
    return _accepted(run, headers)


def _accepted(run: Run, headers: dict[str, str]) -> HookAnswer:
    body = {"execution_id": run.execution_id, "status": run.status.value}
    return HookAnswer(202, body, headers, poll=run.execution_id)


# Save-time checks -------------------------------------------------------------------


def auth_credentials(definition: WorkflowDefinition) -> list[tuple[str, str]]:
    """(field, credential name) of every webhook trigger's auth, e.g.
    `("triggers[0].auth.credential", "github_secret")`; triggers that do not parse
    are left to `parse_triggers`' own issues."""
    uses: list[tuple[str, str]] = []
    for index, item in enumerate(definition.triggers):
        if not isinstance(item, dict) or item.get("type") != "webhook":
            continue
        auth = item.get("auth")
        if isinstance(auth, dict) and isinstance(auth.get("credential"), str):
            uses.append((f"triggers[{index}].auth.credential", auth["credential"]))
    return uses


def webhook_issues(definition: WorkflowDefinition) -> list[ValidationIssue]:
    """Webhook settings that would leak a secret: copying the token's own header into
    the run's inputs (which are stored and shown) is refused."""
    issues: list[ValidationIssue] = []
    for index, item in enumerate(definition.triggers):
        if not isinstance(item, dict) or item.get("type") != "webhook":
            continue
        parsed, _ = parse_triggers([item])  # one that does not parse has issues of its own
        trigger = parsed[0] if parsed else None
        if not isinstance(trigger, WebhookTrigger) or not isinstance(trigger.auth, TokenAuth):
            continue
        for position, name in enumerate(trigger.headers):
            if name.lower() == trigger.auth.header.lower():
                issues.append(
                    ValidationIssue(
                        field=f"triggers[{index}].headers[{position}]",
                        message=f"{name} carries the hook's token; copying it into the run's "
                        "inputs would store the secret",
                    )
                )
    return issues


# The use case -----------------------------------------------------------------------


class StartRun(Protocol):
    """`Ductwork.execute`, as the webhook use case calls it."""

    async def __call__(
        self,
        workflow_id: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        wait: bool = False,
        idempotency_key: str | None = None,
        wait_seconds: float | None = None,
        with_events: bool = True,
        trigger: Mapping[str, Any] | None = None,
        workflow: Workflow | None = None,
    ) -> tuple[Run, bool]: ...


def parse_rates(text: str) -> tuple[RateLimitItem, ...]:
    """The rates of a `limits` string (`10/minute; 100/hour`); ValueError when malformed."""
    from limits import parse_many

    return tuple(parse_many(text))


@dataclass(frozen=True, slots=True)
class HookRoute:
    """A served path with everything a call needs, parsed once per workflow version."""

    workflow: Workflow
    trigger: WebhookTrigger
    methods: frozenset[str]
    rates: tuple[RateLimitItem, ...]
    max_body_bytes: int
    sync_wait_seconds: float
    header_names: tuple[str, ...]
    """The trigger's `headers`, lower-cased."""


class Hooks:
    """Serves `/hooks/{path}`: route lookup (cached), limits, auth, run, answer."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        limiter: RateLimiter,
        credentials: CredentialSource | None,
        start: StartRun,
    ) -> None:
        self.store = store
        self.settings = settings
        self.limiter = limiter
        self.credentials = credentials
        self.start = start
        self._default_rates: tuple[RateLimitItem, ...] | None = None
        if limiter.checked:
            # A serving process refuses a bad DUCTWORK_HOOK_RATE_LIMIT at startup.
            self.default_rates  # noqa: B018
        self.cache_seconds = CACHE_SECONDS
        self._routes: dict[str, tuple[float, HookRoute | None]] = {}
        """path -> (expires at, the route or None for "nobody serves it")."""
        self._generation = 0
        """Bumped by every `forget`: a lookup in flight across one does not fill the cache."""

    @property
    def default_rates(self) -> tuple[RateLimitItem, ...]:
        """DUCTWORK_HOOK_RATE_LIMIT, parsed (on first use when the limiter was not checked)."""
        if self._default_rates is None:
            try:
                self._default_rates = parse_rates(self.settings.hook_rate_limit)
            except ValueError:
                raise ValueError(
                    f"DUCTWORK_HOOK_RATE_LIMIT {self.settings.hook_rate_limit!r} is not a rate "
                    "in `limits` notation (e.g. `600/minute`)"
                ) from None
        return self._default_rates

    def forget(self, workflow_id: str = "") -> None:
        """Drop every cached path (a `trigger_listeners` callback: some workflow's
        triggers changed, so any path may now be served by another or by none)."""
        self._generation += 1
        self._routes.clear()

    async def route(self, path: str) -> HookRoute | None:
        """The route serving `path` (normalized), or None; cached for CACHE_SECONDS."""
        now = time.monotonic()
        hit = self._routes.get(path)
        if hit is not None and hit[0] > now:
            return hit[1]
        generation = self._generation
        route = self._build(path, await self.store.find_hook(path))
        if generation == self._generation:
            if len(self._routes) >= CACHE_SIZE:
                self._routes.clear()
            self._routes[path] = (now + self.cache_seconds, route)
        return route

    def _build(self, path: str, workflow: Workflow | None) -> HookRoute | None:
        if workflow is None:
            return None
        trigger = next(
            (
                t
                for t in workflow_triggers(workflow.definition)
                if isinstance(t, WebhookTrigger) and t.path == path
            ),
            None,
        )
        if trigger is None:
            return None
        rates = parse_rates(trigger.rate_limit) if trigger.rate_limit else self.default_rates
        settings = self.settings
        return HookRoute(
            workflow=workflow,
            trigger=trigger,
            methods=frozenset(trigger.methods),
            rates=rates,
            max_body_bytes=trigger.max_body_bytes or settings.hook_max_body_bytes,
            sync_wait_seconds=trigger.sync_timeout_seconds or settings.hook_sync_wait_seconds,
            header_names=tuple(name.lower() for name in trigger.headers),
        )

    async def call(self, call: HookCall) -> HookAnswer:
        """Answer one call; raises HookRefused (nothing started) when it may not run."""
        path = normalize_hook_path(call.path)
        route = await self.route(path) if _PATH.match(path) and len(path) <= 200 else None
        if route is None:
            raise HookRefused(404, f"no workflow serves /hooks/{path}")
        trigger = route.trigger
        if call.method not in route.methods:
            allowed = ", ".join(trigger.methods)
            raise HookRefused(
                405, f"/hooks/{path} takes {allowed}, not {call.method}", {"Allow": allowed}
            )
        if is_paused(route.workflow.definition):
            # Anonymous callers learn nothing about the workflow behind the path.
            raise HookRefused(
                409, f"/hooks/{path} is paused: it starts nothing until its owner resumes it"
            )
        for rate in route.rates:
            retry_after = await self.limiter.hit_rate(rate, RATE_RULE, path)
            if retry_after is not None:
                seconds = int(retry_after)
                raise HookRefused(
                    429,
                    f"/hooks/{path} takes at most {rate}; try again in {seconds} s",
                    {"Retry-After": str(seconds)},
                )
        try:
            raw = await call.read_body(route.max_body_bytes)
        except BodyTooLarge:
            raise HookRefused(
                413,
                f"the body is larger than {route.max_body_bytes:,} bytes, the limit of "
                f"/hooks/{path}",
                {"Connection": "close"},
            ) from None
        await self._authenticate(route, call, raw)
        max_depth = self.settings.max_json_depth
        body = parse_body(call.headers.get("content-type"), raw, max_depth)
        inputs = run_inputs(trigger, call, body, route.header_names, max_depth)
        size = len(orjson.dumps(inputs))
        if size > self.settings.max_inputs_bytes:  # text escapes can outgrow the body
            raise HookRefused(
                413,
                f"the run's inputs would be {size:,} bytes of JSON; the limit is "
                f"{self.settings.max_inputs_bytes:,} (DUCTWORK_MAX_INPUTS_BYTES)",
            )
        key = call.headers.get("idempotency-key") or None
        if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:
            raise HookRefused(
                400, f"the Idempotency-Key header is longer than {MAX_IDEMPOTENCY_KEY} characters"
            )
        sync = trigger.respond == "sync"
        run, created = await self.start(
            route.workflow.id,
            inputs,
            wait=sync,
            idempotency_key=None if key is None else IDEMPOTENCY_PREFIX + key,
            wait_seconds=route.sync_wait_seconds,
            with_events=False,
            trigger={"type": "webhook", "path": path, "method": call.method},
            workflow=route.workflow,
        )
        if not sync:
            return _accepted(run, _run_headers(run, replayed=not created))
        return answer_for(run, replayed=not created)

    async def _authenticate(self, route: HookRoute, call: HookCall, body: bytes) -> None:
        auth = route.trigger.auth
        if isinstance(auth, NoAuth):
            return
        secret = await self._secret(auth.credential)
        if not secret:  # an empty key would make every token and signature forgeable
            log.error(
                "webhook /hooks/%s: its credential %r is neither a stored `secret` credential "
                "nor a non-empty DUCTWORK_SECRETS entry",
                route.trigger.path,
                auth.credential,
            )
            raise HookRefused(
                503, f"the hook's credential {auth.credential!r} is missing; tell its owner"
            )
        try:
            verify(auth, secret, call.headers, body, time.time())
        except Unauthorized as refused:
            log.warning("webhook /hooks/%s refused: %s", route.trigger.path, refused.detail)
            raise

    async def _secret(self, name: str) -> str | None:
        """The credential's value: a stored `secret`, else the DUCTWORK_SECRETS entry."""
        loaded = {}
        if self.credentials is not None:
            try:
                loaded = await self.credentials.load([name])
            except Exception:  # unreadable (keys changed): treated as missing, logged
                log.exception("webhook credential %r could not be loaded", name)
                return None
        return secret_value(name, loaded, self.settings.secrets)
