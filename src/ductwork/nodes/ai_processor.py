"""The `ai-processor` node: a chat completion, cached and shared, optionally structured.

The engine renders `{{ }}` templates in `prompt`, `system_prompt` and `messages`
before `run`. Responses are cached under `llm:cache:{sha256 of the canonical
request}` (SEED.md), and identical requests in flight at the same time share
one upstream call through `Cache.get_or_compute`. The node's output is the
reply text, so `{{outputs.<id>}}` renders to it; with a JSON `response_format`
it is the parsed object instead (docs/ai-node.md).

Each upstream call (not a cache hit) is first checked against the workflow's
budgets (`NodeContext.check_budget`); the LLM client then waits for the
provider's rate limit. A provider error that outlasted the client's retries
moves on to the next of `fallback_models`; an answer that is not the JSON asked
for gets one repair call. `meta.usage` sums every call the node made.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from ductwork.clients.llm import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    ModelUnavailable,
    preload_sdk,
    provider_fingerprint,
)
from ductwork.clients.llm_output import InvalidAnswer, ResponseFormat, read_answer
from ductwork.engine.limits import WorkflowLimits, over
from ductwork.nodes.base import (
    NodeConfig,
    NodeContext,
    NodeError,
    NodeResult,
    NodeType,
    RetryableError,
    credential_field,
)
from ductwork.security.credential_types import LlmData
from ductwork.usage import CallUsage, price_of

MAX_STOP_SEQUENCES = 4
"""OpenAI's ceiling on `stop` sequences."""


class MessageConfig(NodeConfig):
    """One message of a multi-turn prompt."""

    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1, description="The message; may use {{ }} templates.")


class AiProcessorConfig(NodeConfig):
    """What to ask the model, and how: prompts and messages may use {{ }} templates."""

    # Declared before `prompt` so that `prompt`'s check sees it (the JSON Schema puts
    # `prompt` first again: AiProcessorNode.json_schema).
    messages: list[MessageConfig] | None = Field(
        default=None,
        min_length=1,
        description=(
            "A multi-turn conversation ({role: system|user|assistant, content}) sent "
            "after `system_prompt` and before `prompt`."
        ),
    )
    prompt: str | None = Field(
        default=None,
        min_length=1,
        validate_default=True,
        description=(
            "The user message; may use {{ }} templates. With `messages`, it is sent "
            "after them as the last user message."
        ),
    )
    model: str | None = Field(
        default=None,
        description=(
            "Model id at the provider; defaults to the credential's default model, else "
            "DUCTWORK_LLM_DEFAULT_MODEL."
        ),
        examples=["google/gemini-2.0-flash-exp:free"],
    )
    fallback_models: list[str] = Field(
        default_factory=list,
        max_length=10,
        description=(
            "Models tried in order when the model fails with a provider error (5xx, 429, "
            "timeout, connection failure, after the client's retries; or 404: no such "
            "model). A request the provider refuses (400, 401, 403) is not retried."
        ),
    )
    temperature: float = Field(default=0.7, ge=0, le=2)
    max_tokens: int = Field(default=2048, gt=0, description="At most DUCTWORK_LLM_MAX_TOKENS.")
    stop: str | list[str] | None = Field(
        default=None, description="Up to 4 sequences where the model stops answering."
    )
    response_format: ResponseFormat | None = Field(
        default=None,
        description=(
            'OpenAI\'s response_format: {"type": "json_object"} or {"type": "json_schema", '
            '"json_schema": {"name", "schema", "strict"}}. The output is then the parsed '
            "JSON, validated against the schema (one repair call when it is not)."
        ),
    )
    system_prompt: str | None = Field(
        default=None, description="Optional system message; may use {{ }} templates."
    )
    cache: bool = Field(default=True, description="Reuse cached replies to identical requests.")
    cache_ttl_seconds: int | None = Field(
        default=None,
        ge=0,
        description="Cache lifetime; defaults to DUCTWORK_LLM_CACHE_TTL_SECONDS.",
    )
    stream: bool = Field(default=False, description="Stream tokens to live run subscribers.")
    timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Per-request timeout; defaults to DUCTWORK_LLM_TIMEOUT_SECONDS.",
    )
    credential: str | None = credential_field("llm: the provider's base_url, api_key and model")

    @field_validator("prompt")
    @classmethod
    def _something_to_send(cls, prompt: str | None, info: ValidationInfo) -> str | None:
        if prompt is None and not info.data.get("messages"):
            raise ValueError("Field required (a `prompt`, `messages`, or both)")
        return prompt

    @model_validator(mode="after")
    def _stop_sequences(self) -> AiProcessorConfig:
        stops = [self.stop] if isinstance(self.stop, str) else (self.stop or [])
        if len(stops) > MAX_STOP_SEQUENCES:
            raise ValueError(f"stop: at most {MAX_STOP_SEQUENCES} sequences, got {len(stops)}")
        if any(not stop for stop in stops):
            raise ValueError("stop: a stop sequence cannot be empty")
        return self

    def chat_messages(self) -> list[ChatMessage]:
        """`system_prompt`, then `messages`, then `prompt` as the last user message."""
        messages = []
        if self.system_prompt:
            messages.append(ChatMessage(role="system", content=self.system_prompt))
        for message in self.messages or ():
            messages.append(ChatMessage(role=message.role, content=message.content))
        if self.prompt is not None:
            messages.append(ChatMessage(role="user", content=self.prompt))
        return messages

    def stop_list(self) -> list[str] | None:
        """`stop` as the list the provider takes."""
        return [self.stop] if isinstance(self.stop, str) else self.stop


REPAIR_PROMPT = (
    "Your previous answer cannot be used: {problem}. Answer again with only the JSON "
    "value asked for, with no other text."
)
"""The message of the one repair call a structured answer gets."""


class AiProcessorNode(NodeType[AiProcessorConfig]):
    """Calls an OpenAI-compatible chat model with the rendered prompt."""

    type_name = "ai-processor"
    description = "Send a prompt to an LLM (OpenAI-compatible); replies are cached."
    config_model = AiProcessorConfig

    def prepare(self) -> None:
        """Import the LLM SDK on a thread now: the run reaches this node soon."""
        preload_sdk()

    def json_schema(self) -> dict[str, Any]:
        """The config's JSON Schema, `prompt` first (builder forms follow this order)."""
        schema = super().json_schema()
        properties = schema["properties"]
        schema["properties"] = {"prompt": properties.pop("prompt"), **properties}
        return schema

    def limit_issues(
        self,
        config: AiProcessorConfig,
        limits: WorkflowLimits,
        rendered_later: frozenset[str] = frozenset(),
    ) -> list[tuple[str, str]]:
        """`max_tokens` past DUCTWORK_LLM_MAX_TOKENS (the LLM budget one node may ask for)."""
        ceiling = limits.llm_max_tokens
        if ceiling is None or "max_tokens" in rendered_later or config.max_tokens <= ceiling:
            return []
        message = over("max_tokens", config.max_tokens, ceiling, "DUCTWORK_LLM_MAX_TOKENS")
        return [("max_tokens", message)]

    async def run(self, config: AiProcessorConfig, ctx: NodeContext) -> NodeResult:
        """Ask the model (or the cache), falling back and repairing as configured."""
        services = ctx.services
        settings = services.settings
        for field, message in self.limit_issues(config, WorkflowLimits.from_settings(settings)):
            raise NodeError(f"config.{field}: {message}")
        provider: LlmData | None = None
        if config.credential is not None:
            data = ctx.credential(config.credential, ("llm",)).data
            assert isinstance(data, LlmData)
            provider = data
        default_model = (provider.default_model if provider else None) or settings.llm_default_model
        calls = _Calls(config, ctx, provider)
        try:
            return await self._answer(config, ctx, calls, default_model)
        except NodeError as error:
            # Calls that answered before the failure (an answer that never validated, a
            # repair that failed or was refused by the budget) were billed: the error
            # carries them, so the run's usage and budgets count them (docs/costs.md).
            if error.usage is None and not calls.all_cached:
                error.usage = calls.usage(calls.answered_by).dump()
            raise

    async def _answer(
        self, config: AiProcessorConfig, ctx: NodeContext, calls: _Calls, default_model: str
    ) -> NodeResult:
        """The node's result: the answer (parsed and repaired when structured) and usage."""
        messages = config.chat_messages()
        response = await calls.ask_with_fallbacks(config.model or default_model, messages)
        # The key of the request that answered (not of a failed model before it).
        first_key = calls.keys[-1]
        output: Any = response.content
        repaired = False
        answer_format = config.response_format
        if answer_format is not None and answer_format.structured:
            try:
                output = read_answer(response.content, answer_format)
            except InvalidAnswer as first_problem:
                ctx.log(f"LLM {response.model}: {first_problem}; asking for a repair", "warning")
                repair = [
                    *messages,
                    ChatMessage(role="assistant", content=response.content),
                    ChatMessage(role="user", content=REPAIR_PROMPT.format(problem=first_problem)),
                ]
                response = await calls.ask(calls.answered_by, repair)
                repaired = True
                try:
                    output = read_answer(response.content, answer_format)
                except InvalidAnswer as problem:
                    raise NodeError(
                        f"LLM {response.model} did not give the JSON asked for, even after "
                        f"a repair request: {problem}"
                    ) from None
        usage = calls.usage(response.model)
        ctx.log(
            f"LLM {response.model}: {'cached' if calls.all_cached else 'called'}, "
            f"{usage.prompt_tokens}+{usage.completion_tokens} tokens"
            + (f", {usage.calls} calls" if usage.calls > 1 else "")
        )
        meta: dict[str, Any] = {
            "model": response.model,
            "usage": {**usage.dump(), "cached": calls.all_cached},
            "cache_key": first_key,
            "finish_reason": response.finish_reason,
        }
        if calls.failures:
            meta["fallback_failures"] = calls.failures
        if answer_format is not None and answer_format.structured:
            meta["repaired"] = repaired
        return NodeResult(output=output, cached=calls.all_cached, meta=meta)


class _Calls:
    """The upstream calls (or cache hits) of one node run, and what they cost."""

    def __init__(self, config: AiProcessorConfig, ctx: NodeContext, provider: LlmData | None):
        self.config = config
        self.ctx = ctx
        self.provider = provider
        self.fingerprint = provider_fingerprint(provider) if provider else None
        self.keys: list[str] = []
        self.failures: list[dict[str, str]] = []
        """{model, error} of each model that failed before one answered."""
        self.answered_by = ""
        self.all_cached = True
        self._prompt_tokens = 0
        self._completion_tokens = 0
        self._cost: float | None = None
        self._upstream_calls = 0

    async def ask_with_fallbacks(self, model: str, messages: list[ChatMessage]) -> ChatResponse:
        """Ask `model`, then each of `fallback_models` in turn while the provider fails."""
        models = list(dict.fromkeys([model, *self.config.fallback_models]))
        for index, candidate in enumerate(models):
            try:
                return await self.ask(candidate, messages)
            except (RetryableError, ModelUnavailable) as exc:
                self.failures.append({"model": candidate, "error": str(exc)})
                if index + 1 == len(models):
                    if len(models) == 1:
                        raise
                    summary = "; ".join(f"{f['model']}: {f['error']}" for f in self.failures)
                    raise NodeError(
                        f"every model failed ({summary})",
                        retryable=isinstance(exc, RetryableError),
                    ) from exc
                self.ctx.log(f"LLM {candidate} failed ({exc}); trying {models[index + 1]}")
        raise AssertionError("unreachable: the loop returns or raises")

    async def ask(self, model: str, messages: list[ChatMessage]) -> ChatResponse:
        """One request (to the cache first, unless `cache` is off); usage counted."""
        config, ctx = self.config, self.ctx
        services = ctx.services
        settings = services.settings
        request = ChatRequest(
            model=model,
            messages=messages,
            temperature=config.temperature,
            max_tokens=config.max_tokens,
            stop=config.stop_list(),
            response_format=config.response_format.wire() if config.response_format else None,
        )
        key = request.cache_key(self.fingerprint)
        self.keys.append(key)
        on_token = ctx.emit_token if config.stream else None

        def waiting(seconds: float) -> None:
            ctx.log(f"LLM {model}: waiting {seconds:.1f} s for the provider's rate limit")

        async def call_llm() -> ChatResponse:
            # The budget is checked before each call that can cost money (not cache hits).
            prompt_tokens = sum(len(m.content) for m in messages) // 4
            estimate = price_of(model, prompt_tokens, config.max_tokens, settings.llm_prices)
            await ctx.check_budget(estimate or 0.0)
            return await services.llm.chat(
                request,
                on_token=on_token,
                timeout=config.timeout_seconds,
                provider=self.provider,
                on_wait=waiting,
            )

        async def compute() -> bytes:
            return orjson.dumps((await call_llm()).model_dump(mode="json"))

        cached = False
        if not config.cache:
            response = await call_llm()
        else:
            ttl = (
                config.cache_ttl_seconds
                if config.cache_ttl_seconds is not None
                else settings.llm_cache_ttl_seconds
            )
            raw, cached = await services.cache.get_or_compute(key, compute, ttl)
            try:
                response = ChatResponse.model_validate_json(raw)
            except ValidationError:
                # An entry written by an incompatible version: replace it, don't fail the run.
                ctx.log(f"Ignoring an unreadable LLM cache entry {key}", "warning")
                response = await call_llm()
                cached = False
                await services.cache.set(key, orjson.dumps(response.model_dump(mode="json")), ttl)
            if cached and on_token is not None:
                on_token(response.content)
        self.answered_by = model
        if not cached:
            self._count(response)
        return response

    def _count(self, response: ChatResponse) -> None:
        self.all_cached = False
        self._upstream_calls += 1
        usage = response.usage
        self._prompt_tokens += usage.prompt_tokens
        self._completion_tokens += usage.completion_tokens
        cost = price_of(
            response.model,
            usage.prompt_tokens,
            usage.completion_tokens,
            self.ctx.services.settings.llm_prices,
            usage.cost,
        )
        if cost is None:
            # Priced under the requested name when the provider answers with a longer one.
            cost = price_of(
                self.answered_by,
                usage.prompt_tokens,
                usage.completion_tokens,
                self.ctx.services.settings.llm_prices,
            )
        if cost is not None:
            self._cost = (self._cost or 0.0) + cost

    def usage(self, model: str) -> CallUsage:
        """Every upstream call's tokens and cost (None: no call was priced); a node
        served wholly from the cache used nothing (0 calls, cost 0)."""
        if self.all_cached:
            return CallUsage(model=model, cost=0.0, calls=0)
        return CallUsage(
            model=model,
            prompt_tokens=self._prompt_tokens,
            completion_tokens=self._completion_tokens,
            cost=self._cost,
            calls=self._upstream_calls,
        )
