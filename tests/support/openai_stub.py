"""A real OpenAI-compatible chat server on 127.0.0.1 for tests.

`OpenAIStub` runs a small Starlette app under uvicorn in a background thread
and answers `POST /v1/chat/completions` in the OpenAI wire format: a JSON
`chat.completion`, or with `"stream": true` server-sent `chat.completion.chunk`
events ending in `data: [DONE]` (plus a usage chunk when
`stream_options.include_usage` is set). It counts and records requests, can
answer slowly (`latency`, `token_latency`), can fail on cue (`fail_next`),
and replies through a pluggable function (default: ``Echo: <last user
message>``) or a scripted queue of replies (`queue_replies`). `fail_model`
fails every request for one model (fallback tests), and `usage_cost` adds
OpenRouter's `usage.cost` to each answer.

Usage::

    with OpenAIStub(api_key="test-key") as stub:
        settings = Settings(llm_base_url=stub.base_url, llm_api_key="test-key")
        ...
        assert stub.calls == 1
        assert stub.requests[0].model == "m"

or as fixtures, one server per module and a clean slate per test::

    @pytest.fixture(scope="module")
    def stub_server() -> Iterator[OpenAIStub]:
        with OpenAIStub() as running:
            yield running

    @pytest.fixture
    def stub(stub_server: OpenAIStub) -> OpenAIStub:
        stub_server.reset()
        return stub_server

Token counts are words: prompt_tokens is the number of whitespace-separated
words over all messages, completion_tokens the words of the reply. A reply
longer than the request's `max_tokens` words is cut there, with
`finish_reason: "length"`.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

ReplyFn = Callable[["RecordedRequest"], "str | Awaitable[str]"]
"""Computes the reply text for a request (may be async)."""

_WORD_START = re.compile(r"(?<=\s)(?=\S)")


@dataclass(frozen=True)
class RecordedRequest:
    """A chat completion request as the stub received it."""

    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    @property
    def temperature(self) -> float | None:
        value = self.body.get("temperature")
        return None if value is None else float(value)

    @property
    def max_tokens(self) -> int | None:
        value = self.body.get("max_tokens")
        return None if value is None else int(value)

    @property
    def stop(self) -> Any:
        return self.body.get("stop")

    @property
    def response_format(self) -> Any:
        return self.body.get("response_format")

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream", False))

    @property
    def system_prompt(self) -> str | None:
        """The content of the first system message, if any."""
        for message in self.messages:
            if message.get("role") == "system":
                return str(message.get("content", ""))
        return None

    @property
    def user_message(self) -> str:
        """The content of the last user message ("" when there is none)."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return str(message.get("content", ""))
        return ""


@dataclass(frozen=True)
class ScriptedFailure:
    """An error answer the stub gives instead of a reply."""

    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


def echo_reply(request: RecordedRequest) -> str:
    """The default reply: ``Echo: <last user message>``."""
    return f"Echo: {request.user_message}"


def count_words(text: str) -> int:
    """The stub's token count for a text."""
    return len(text.split())


class OpenAIStub:
    """An OpenAI-compatible chat completions server for tests (see the module doc)."""

    def __init__(
        self,
        *,
        reply: ReplyFn = echo_reply,
        latency: float = 0.0,
        token_latency: float = 0.0,
        api_key: str | None = None,
        response_model: str | None = None,
    ) -> None:
        """Configure the stub; `start()` (or `with`) serves it.

        latency: seconds before answering each request (a slow upstream).
        token_latency: seconds between streamed chunks.
        api_key: when set, requests without `Authorization: Bearer <api_key>` get 401.
        response_model: the `model` reported back (default: the requested one).
        """
        self._defaults = (reply, latency, token_latency, api_key, response_model)
        self.reply = reply
        self.latency = latency
        self.token_latency = token_latency
        self.api_key = api_key
        self.response_model = response_model
        self.usage_cost: float | None = None
        """When set, answers report this as `usage.cost` (as OpenRouter does)."""
        self._failing_models: dict[str, ScriptedFailure] = {}
        self._lock = threading.Lock()
        self._calls = 0
        self._requests: list[RecordedRequest] = []
        self._failures: deque[ScriptedFailure] = deque()
        self._replies: deque[str] = deque()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])

    # Scripting ---------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 429,
        message: str | None = None,
        retry_after: str | None = "0",
        retry_after_ms: int | None = 1,
    ) -> None:
        """Answer the next `count` requests with HTTP `status` and an OpenAI error body.

        `Retry-After: 0` alone makes the openai SDK fall back to its own
        backoff (>= 0.375 s); the `retry-after-ms` header OpenAI also sends
        takes precedence, so the default of 1 ms keeps retrying tests fast.
        Pass None to leave a header out.
        """
        headers: dict[str, str] = {}
        if retry_after is not None:
            headers["retry-after"] = retry_after
        if retry_after_ms is not None:
            headers["retry-after-ms"] = str(retry_after_ms)
        failure = ScriptedFailure(
            status=status, message=message or f"stub failure {status}", headers=headers
        )
        with self._lock:
            self._failures.extend([failure] * count)

    def fail_model(self, model: str, *, status: int = 500, message: str | None = None) -> None:
        """Answer every request for `model` with HTTP `status` (until `reset`)."""
        failure = ScriptedFailure(
            status=status,
            message=message or f"stub failure {status} for {model}",
            headers={"retry-after-ms": "1"},
        )
        with self._lock:
            self._failing_models[model] = failure

    def queue_replies(self, *replies: str) -> None:
        """Answer the next requests with these texts, in order, before using `reply`."""
        with self._lock:
            self._replies.extend(replies)

    def reset(self) -> None:
        """Back to as constructed: forget requests, the call count, queued failures
        and replies, and restore `reply`, latencies, `api_key` and `response_model`.

        Lets one stub serve a whole test module (starting and stopping uvicorn
        costs ~0.2 s) with a `reset()` between tests.
        """
        (
            self.reply,
            self.latency,
            self.token_latency,
            self.api_key,
            self.response_model,
        ) = self._defaults
        self.usage_cost = None
        with self._lock:
            self._failing_models.clear()
            self._calls = 0
            self._requests.clear()
            self._failures.clear()
            self._replies.clear()

    @property
    def calls(self) -> int:
        """How many chat completion requests arrived (failed ones included)."""
        with self._lock:
            return self._calls

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    # Lifecycle ---------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT/v1`, once started."""
        if self._base_url is None:
            raise RuntimeError("OpenAIStub is not started")
        return self._base_url

    def start(self, timeout: float = 10.0) -> str:
        """Serve on a free port in a background thread; return the base URL."""
        if self._server is not None:
            return self.base_url
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=0,
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="openai-stub", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("OpenAIStub server thread died while starting")
            if time.monotonic() > deadline:
                server.should_exit = True
                raise TimeoutError("OpenAIStub did not start in time")
            time.sleep(0.002)
        port = server.servers[0].sockets[0].getsockname()[1]
        self._server, self._thread = server, thread
        self._base_url = f"http://127.0.0.1:{port}/v1"
        return self._base_url

    def stop(self) -> None:
        """Stop serving and wait for the server thread."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        self._base_url = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout=10)

    def __enter__(self) -> OpenAIStub:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # Serving -----------------------------------------------------------------

    async def _chat(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        recorded = RecordedRequest(body=body, headers=dict(request.headers))
        with self._lock:
            self._calls += 1
            self._requests.append(recorded)
            failure = self._failures.popleft() if self._failures else None
            if failure is None:
                failure = self._failing_models.get(recorded.model)
            queued = self._replies.popleft() if self._replies and failure is None else None
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        expected = None if self.api_key is None else f"Bearer {self.api_key}"
        if expected is not None and request.headers.get("authorization") != expected:
            return _error(401, "Invalid API key (stub)", {})
        if failure is not None:
            return _error(failure.status, failure.message, failure.headers)
        if queued is not None:
            text = queued
        else:
            produced = self.reply(recorded)
            text = await produced if inspect.isawaitable(produced) else produced

        pieces = [piece for piece in _WORD_START.split(text) if piece]
        finish_reason = "stop"
        limit = recorded.max_tokens
        if limit is not None and len(pieces) > limit:
            pieces, finish_reason = pieces[:limit], "length"
        content = "".join(pieces)
        prompt_tokens = sum(count_words(str(m.get("content", ""))) for m in recorded.messages)
        completion_tokens = count_words(content)
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if self.usage_cost is not None:
            usage["cost"] = self.usage_cost
        model = self.response_model or recorded.model
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())

        if not recorded.stream:
            return Response(
                orjson.dumps(
                    {
                        "id": completion_id,
                        "object": "chat.completion",
                        "created": created,
                        "model": model,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": content},
                                "finish_reason": finish_reason,
                            }
                        ],
                        "usage": usage,
                    }
                ),
                media_type="application/json",
            )

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            event = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
                **extra,
            }
            return b"data: " + orjson.dumps(event) + b"\n\n"

        async def events() -> AsyncIterator[bytes]:
            yield chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}}])
            for piece in pieces:
                if self.token_latency > 0:
                    await asyncio.sleep(self.token_latency)
                yield chunk([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
            yield chunk([{"index": 0, "delta": {}, "finish_reason": finish_reason}])
            if include_usage:
                yield chunk([], usage=usage)
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")


def _error(status: int, message: str, headers: dict[str, str]) -> JSONResponse:
    kind = {401: "authentication_error", 429: "rate_limit_error"}.get(status, "api_error")
    return JSONResponse(
        {"error": {"message": message, "type": kind, "code": status}},
        status_code=status,
        headers=headers,
    )
