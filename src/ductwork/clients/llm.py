"""The LLM client: chat completions against any OpenAI-compatible endpoint.

OpenRouter is the default base URL; any server speaking the OpenAI chat API
works. One `openai.AsyncOpenAI` (and so one HTTP connection pool) serves the
whole process. The SDK itself retries 408/409/429/5xx and connection errors
`llm_max_retries` times, honouring Retry-After; what still fails afterwards is
mapped to `RetryableError` (worth a node-level retry later) or `NodeError`
(a request the provider will never accept).

The `openai` package takes about a second to import, so it is imported on
a worker thread: from the moment a plan holding an AI node is built
(`preload_sdk`), or at the latest by the first call, which awaits it without
blocking the event loop. A process whose workflows have no AI node never
imports it.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, cast

import orjson
from pydantic import BaseModel, ConfigDict, Field

from ductwork.clients.llm_limits import LlmRateLimiter, estimate_tokens
from ductwork.nodes.base import NodeError, RetryableError
from ductwork.security.credential_types import LlmData

if TYPE_CHECKING:
    import openai
    from openai.types.chat import ChatCompletionMessageParam

    from ductwork.settings import Settings

CACHE_KEY_PREFIX = "llm:cache:"
"""Prefix of LLM response cache keys; the full key is `llm:cache:{sha256}` (SEED.md)."""

# Status codes the SDK already retried; still failing after that is transient.
_TRANSIENT_STATUSES = frozenset({408, 409, 429})


class ModelUnavailable(NodeError):
    """The provider does not serve the requested model (HTTP 404): another model may
    answer the same request, so an AI node's `fallback_models` are tried."""


class ChatMessage(BaseModel):
    """One message of a chat conversation."""

    # defer_build (on each model here): validators are built on the first LLM call, not
    # when the composition root imports this module; a run without AI nodes never needs them.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(BaseModel):
    """Everything that determines an LLM's answer, and so its cache key.

    Optional fields left as None are not sent and do not enter the cache key,
    so adding a new optional field later keeps existing keys valid.
    """

    model_config = ConfigDict(extra="forbid", defer_build=True)

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float = Field(default=0.7, ge=0, le=2)
    max_tokens: int = Field(default=2048, gt=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    stop: list[str] | None = None
    response_format: dict[str, Any] | None = None
    """e.g. {"type": "json_object"} for JSON mode."""

    def canonical_json(self) -> bytes:
        """The request as canonical JSON: sorted keys, no whitespace, None fields left out."""
        return orjson.dumps(
            self.model_dump(mode="json", exclude_none=True), option=orjson.OPT_SORT_KEYS
        )

    def cache_key(self, provider: str | None = None) -> str:
        """`llm:cache:{sha256 hex of the canonical JSON}`: equal requests, equal keys.

        `provider` (`provider_fingerprint` of an `llm` credential) keeps replies of
        different providers or accounts apart; None is the settings' provider, whose
        keys stay what they always were.
        """
        digest = hashlib.sha256(self.canonical_json())
        if provider is not None:
            digest.update(b"\0provider:" + provider.encode())
        return CACHE_KEY_PREFIX + digest.hexdigest()


def provider_fingerprint(provider: LlmData) -> str:
    """A one-way name for a provider and account: the base URL and a hash of the API key
    (never the key itself: cache keys are visible in node metadata and in Redis)."""
    material = f"{provider.base_url}\0{provider.api_key}".encode()
    return hashlib.sha256(material).hexdigest()


CREDENTIAL_CLIENTS = 16
"""SDK clients (each with its connection pool) kept for `llm` credentials, per process."""


class Usage(BaseModel):
    """Token counts as the provider reported them (0 when it did not)."""

    model_config = ConfigDict(defer_build=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost: float | None = None
    """What the call cost, when the provider says so (OpenRouter's `usage.cost`)."""


def _usage(reported: Any) -> Usage:
    """`Usage` from the SDK's usage object (None: nothing reported)."""
    if reported is None:
        return Usage()
    extra = getattr(reported, "model_extra", None) or {}
    cost = extra.get("cost")
    return Usage(
        prompt_tokens=reported.prompt_tokens,
        completion_tokens=reported.completion_tokens,
        total_tokens=reported.total_tokens,
        cost=float(cost) if isinstance(cost, int | float) else None,
    )


class ChatResponse(BaseModel):
    """The assistant's reply to a `ChatRequest`."""

    model_config = ConfigDict(defer_build=True)

    content: str
    model: str
    usage: Usage = Field(default_factory=Usage)
    finish_reason: str | None = None


_SDK = "openai"
_sdk_lock = threading.Lock()
_sdk_future: Future[None] | None = None


def _import_sdk(future: Future[None]) -> None:
    try:
        importlib.import_module(_SDK)
    except BaseException as exc:
        future.set_exception(exc)
    else:
        future.set_result(None)


def preload_sdk() -> Future[None]:
    """Start importing the LLM SDK on a thread of its own (once per process); its future.

    Cheap to call again: later calls return the same future. The thread is not a
    daemon, so an interpreter exiting mid-import lets it finish instead of
    tearing modules down under it; nothing else ever waits for it.
    """
    global _sdk_future
    with _sdk_lock:
        if _sdk_future is None:
            _sdk_future = Future()
            if _SDK in sys.modules:
                _sdk_future.set_result(None)
            else:
                threading.Thread(
                    target=_import_sdk, args=(_sdk_future,), name="ductwork-llm-preload"
                ).start()
        return _sdk_future


async def sdk_ready() -> None:
    """Wait, without blocking the event loop, until the LLM SDK is imported."""
    if _SDK not in sys.modules or _sdk_future is None or not _sdk_future.done():
        await asyncio.wrap_future(preload_sdk())


class LLMClient:
    """Chat completions over one shared `openai.AsyncOpenAI` client.

    Built once per process by the composition root. The SDK client is created
    on the first call (or by `warm_up`) and reused by every call after it.
    """

    def __init__(self, settings: Settings, limiter: LlmRateLimiter | None = None) -> None:
        """Remember the settings; nothing is connected or imported yet.

        `limiter` holds calls to providers named in DUCTWORK_LLM_RATE_LIMITS until
        they are within their per-minute limits (None: no limits).
        """
        self._settings = settings
        self.limiter = limiter
        self._client: openai.AsyncOpenAI | None = None
        self._credential_clients: OrderedDict[str, openai.AsyncOpenAI] = OrderedDict()

    def _api_key(self) -> str:
        secret = self._settings.llm_api_key
        key = secret.get_secret_value() if secret is not None else ""
        if not key:
            raise NodeError(
                "No LLM API key configured: set DUCTWORK_LLM_API_KEY (or OPENROUTER_API_KEY) "
                f"to the API key of {self._settings.llm_base_url}"
            )
        return key

    def _get_client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            api_key = self._api_key()
            import openai

            self._client = openai.AsyncOpenAI(
                base_url=self._settings.llm_base_url,
                api_key=api_key,
                timeout=self._settings.llm_timeout_seconds,
                max_retries=self._settings.llm_max_retries,
            )
        return self._client

    def _client_for(self, provider: LlmData) -> openai.AsyncOpenAI:
        key = provider_fingerprint(provider)
        client = self._credential_clients.get(key)
        if client is not None:
            self._credential_clients.move_to_end(key)
            return client
        import openai

        client = openai.AsyncOpenAI(
            base_url=provider.base_url,
            api_key=provider.api_key,
            timeout=self._settings.llm_timeout_seconds,
            max_retries=self._settings.llm_max_retries,
        )
        self._credential_clients[key] = client
        while len(self._credential_clients) > CREDENTIAL_CLIENTS:
            # Not closed: a request on it may be in flight; its pool goes with it.
            self._credential_clients.popitem(last=False)
        return client

    def preload(self) -> None:
        """Start importing the SDK (about a second) on a thread; returns at once."""
        preload_sdk()

    def warm_up(self) -> None:
        """Import the SDK and build the client now, if a key is configured.

        Servers and workers call this at startup so the first LLM call does
        not block the event loop for the SDK's import (about a second).
        """
        if self._settings.llm_api_key is not None:
            self._get_client()

    async def chat(
        self,
        request: ChatRequest,
        *,
        on_token: Callable[[str], None] | None = None,
        # The HTTP request's own timeout (the SDK's), not a cancel scope: ASYNC109 n/a.
        timeout: float | None = None,  # noqa: ASYNC109
        provider: LlmData | None = None,
        on_wait: Callable[[float], None] | None = None,
    ) -> ChatResponse:
        """Send one chat completion request and return the whole reply.

        With `on_token`, the reply is streamed and `on_token` is called with
        each piece of text as it arrives. `timeout` overrides the configured
        per-request timeout (seconds). Raises `NodeError` for requests the
        provider refuses and `RetryableError` for transient failures that
        outlasted the SDK's own retries. `provider` (an `llm` credential's data)
        sends the request there instead of the settings' provider.

        A call to a provider with limits in DUCTWORK_LLM_RATE_LIMITS first waits its
        turn (`on_wait` is told how long, when it must wait at all).
        """
        await sdk_ready()
        client = self._get_client() if provider is None else self._client_for(provider)
        base_url = self._settings.llm_base_url if provider is None else provider.base_url
        import openai

        params: dict[str, Any] = {
            "model": request.model,
            "messages": cast("list[ChatCompletionMessageParam]", request.model_dump()["messages"]),
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        for name in ("top_p", "seed", "stop", "response_format"):
            value = getattr(request, name)
            if value is not None:
                params[name] = value
        if timeout is not None:
            params["timeout"] = timeout
        reservation = None
        if self.limiter is not None:
            prompt_chars = sum(len(message.content) for message in request.messages)
            reservation = await self.limiter.acquire(
                base_url, estimate_tokens(prompt_chars, request.max_tokens), on_wait
            )
        try:
            if on_token is None:
                response = await self._complete(client, params)
            else:
                response = await self._stream(client, params, on_token)
        except openai.APIStatusError as exc:
            raise _status_error(exc, base_url) from exc
        except openai.APIConnectionError as exc:
            # APITimeoutError is a subclass: both are transient.
            raise RetryableError(
                f"LLM request to {base_url} failed after "
                f"{self._settings.llm_max_retries} retries: {exc.message}"
            ) from exc
        except _transport_errors() as exc:
            # Raised from inside a stream, which the SDK neither wraps nor retries.
            raise RetryableError(
                f"LLM stream from {base_url} broke off: {type(exc).__name__}: {exc}"
            ) from exc
        except openai.APIError as exc:
            # An error event inside an otherwise successful stream.
            raise NodeError(f"LLM provider error: {exc.message}") from exc
        if self.limiter is not None and response.usage.total_tokens > 0:
            await self.limiter.settle(reservation, response.usage.total_tokens)
        return response

    async def _complete(self, client: openai.AsyncOpenAI, params: dict[str, Any]) -> ChatResponse:
        completion = await client.chat.completions.create(**params)
        if not completion.choices:
            raise RetryableError(f"LLM answered with no choices (model {completion.model})")
        choice = completion.choices[0]
        return ChatResponse(
            content=choice.message.content or "",
            model=completion.model or params["model"],
            usage=_usage(completion.usage),
            finish_reason=choice.finish_reason,
        )

    async def _stream(
        self,
        client: openai.AsyncOpenAI,
        params: dict[str, Any],
        on_token: Callable[[str], None],
    ) -> ChatResponse:
        stream = await client.chat.completions.create(
            **params, stream=True, stream_options={"include_usage": True}
        )
        parts: list[str] = []
        model: str = params["model"]
        usage = Usage()
        finish_reason: str | None = None
        # The context manager closes the HTTP response even if the caller is cancelled.
        async with stream:
            async for chunk in stream:
                if chunk.model:
                    model = chunk.model
                if chunk.usage is not None:
                    usage = _usage(chunk.usage)
                for choice in chunk.choices:
                    if choice.index != 0:
                        continue
                    if choice.delta.content:
                        parts.append(choice.delta.content)
                        on_token(choice.delta.content)
                    if choice.finish_reason is not None:
                        finish_reason = choice.finish_reason
        return ChatResponse(
            content="".join(parts), model=model, usage=usage, finish_reason=finish_reason
        )

    async def close(self) -> None:
        """Close the shared HTTP connection pool (a later call opens a new one)."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        clients, self._credential_clients = self._credential_clients, OrderedDict()
        for other in clients.values():
            await other.close()
        if self.limiter is not None:
            await self.limiter.close()


@cache
def _transport_errors() -> tuple[type[Exception], ...]:
    # The HTTP library under the SDK changed between major versions (httpx,
    # then httpx2); a broken stream raises that library's own errors.
    errors: list[type[Exception]] = []
    for name in ("httpx2", "httpx"):
        try:
            errors.append(importlib.import_module(name).TransportError)
        except ImportError:
            continue
    return tuple(errors)


def _provider_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, str) and message:
            return message
    elif isinstance(body, str) and body:
        return body
    return exc.message


def _status_error(exc: openai.APIStatusError, base_url: str) -> NodeError:
    status = exc.status_code
    detail = f"LLM request to {base_url} failed with HTTP {status}: {_provider_message(exc)}"
    if status in _TRANSIENT_STATUSES or status >= 500:
        return RetryableError(f"{detail} (still failing after the client's retries)")
    if status == 404:
        return ModelUnavailable(detail)
    return NodeError(detail)
