"""The `ai-processor` node: one chat completion, cached and shared.

The engine renders `{{ }}` templates in `prompt` and `system_prompt` before
`run`. Responses are cached under `llm:cache:{sha256 of the canonical
request}` (SEED.md), and identical requests in flight at the same time share
one upstream call through `Cache.get_or_compute`. The node's output is the
reply text, so `{{outputs.<id>}}` renders to it.
"""

from __future__ import annotations

import orjson
from pydantic import Field, ValidationError

from ductwork.clients.llm import ChatMessage, ChatRequest, ChatResponse, provider_fingerprint
from ductwork.engine.limits import WorkflowLimits, over
from ductwork.nodes.base import (
    NodeConfig,
    NodeContext,
    NodeError,
    NodeResult,
    NodeType,
    credential_field,
)
from ductwork.security.credential_types import LlmData


class AiProcessorConfig(NodeConfig):
    """What to ask the model, and how: the prompt may use {{ }} templates."""

    prompt: str = Field(min_length=1, description="The user message; may use {{ }} templates.")
    model: str | None = Field(
        default=None,
        description=(
            "Model id at the provider; defaults to the credential's default model, else "
            "DUCTWORK_LLM_DEFAULT_MODEL."
        ),
        examples=["google/gemini-2.0-flash-exp:free"],
    )
    temperature: float = Field(default=0.7, ge=0, le=2)
    max_tokens: int = Field(default=2048, gt=0, description="At most DUCTWORK_LLM_MAX_TOKENS.")
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


class AiProcessorNode(NodeType[AiProcessorConfig]):
    """Calls an OpenAI-compatible chat model with the rendered prompt."""

    type_name = "ai-processor"
    description = "Send a prompt to an LLM (OpenAI-compatible); replies are cached."
    config_model = AiProcessorConfig

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
        """Ask the model (or the cache); output the reply text."""
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
        messages = []
        if config.system_prompt:
            messages.append(ChatMessage(role="system", content=config.system_prompt))
        messages.append(ChatMessage(role="user", content=config.prompt))
        request = ChatRequest(
            model=config.model or default_model,
            messages=messages,
            temperature=config.temperature,
            max_tokens=config.max_tokens,
        )
        key = request.cache_key(provider_fingerprint(provider) if provider else None)
        on_token = ctx.emit_token if config.stream else None

        async def call_llm() -> ChatResponse:
            return await services.llm.chat(
                request, on_token=on_token, timeout=config.timeout_seconds, provider=provider
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

        usage = response.usage
        ctx.log(
            f"LLM {response.model}: {'cached' if cached else 'called'}, "
            f"{usage.prompt_tokens}+{usage.completion_tokens} tokens"
        )
        return NodeResult(
            output=response.content,
            cached=cached,
            meta={
                "model": response.model,
                "usage": usage.model_dump(),
                "cache_key": key,
                "finish_reason": response.finish_reason,
            },
        )
