"""Configuration from the environment (prefix `DUCTWORK_`); the README documents each one."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from ductwork.jsonvalues import DEFAULT_MAX_DEPTH


class ModelPrice(BaseModel):
    """What a model costs, in the currency budgets are written in, per million tokens."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0)
    """Per million prompt tokens."""
    output: float = Field(ge=0)
    """Per million completion tokens."""


class LlmRateLimit(BaseModel):
    """How much one LLM provider takes per minute, shared by every process."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)


MIN_SHARED_SECRET_CHARS: Final = 32
"""Shortest DUCTWORK_ADMIN_API_KEY or DUCTWORK_METRICS_TOKEN accepted."""


class Settings(BaseSettings):
    """All knobs of a ductwork process. Adapters are chosen from the URLs alone."""

    model_config = SettingsConfigDict(env_prefix="DUCTWORK_", extra="ignore", populate_by_name=True)

    # Where things live.
    data_dir: Path = Path(".ductwork")
    store_url: str | None = None
    redis_url: str | None = None
    redis_namespace: str = Field(default="ductwork", pattern=r"^[A-Za-z0-9_.-]+$")
    """Prefix of ductwork's Redis keys and channels (not of the seed's `llm:cache:*`)."""

    # API.
    serve_role: Literal["auto", "embedded", "api"] = "auto"
    """auto: `api` (enqueue only, workers advance runs) when redis_url is set, else `embedded`."""
    host: str = "127.0.0.1"
    port: int = 8000
    sync_wait_seconds: float = Field(default=30.0, ge=0)
    load_examples: bool = False
    examples_dir: Path | None = None
    ui_dir: Path | None = None
    """The built web app served under `/ui/`; None: the package's `ui_dist/`."""

    # Engine.
    max_parallel_nodes: int = Field(default=16, ge=1, le=1024)
    max_concurrent_runs: int = Field(default=64, ge=1)
    durable_delay_threshold_seconds: float = Field(default=2.0, ge=0)
    default_node_timeout_seconds: float = Field(default=300.0, gt=0)
    max_output_bytes: int = Field(default=1_000_000, gt=0)
    max_run_output_bytes: int = Field(default=8_000_000, gt=0)
    """All of a run's node outputs together (a MongoDB run document must stay under 16 MB)."""
    template_timeout_ms: float = Field(default=100.0, gt=0, le=60_000)
    """Longest a template or expression may compute before it yields the event loop."""
    template_max_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    """Most a template or expression may allocate (checked before allocating)."""
    max_run_redrives: int = Field(default=3, ge=0, le=100)
    """Times a run is driven again after advancing it failed (engine error, worker crash)
    with no node completing in between, before it fails for good."""

    # Durability (lease, heartbeat and sweep).
    worker_id: str | None = None
    lease_seconds: float = Field(default=15.0, gt=0)
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    sweep_interval_seconds: float = Field(default=1.0, gt=0)

    # LLM (any OpenAI-compatible endpoint; OpenRouter by default).
    llm_base_url: str = "https://openrouter.ai/api/v1"
    llm_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DUCTWORK_LLM_API_KEY", "OPENROUTER_API_KEY")
    )
    llm_default_model: str = "google/gemini-2.0-flash-exp:free"
    llm_timeout_seconds: float = Field(default=60.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    llm_cache_ttl_seconds: int = Field(default=3600, ge=0)
    # POST /ai/workflows/generate: LLM answers per request, repair rounds included.
    generate_max_rounds: int = Field(default=3, ge=1, le=10)

    # Email.
    email_backend: Literal["console", "file", "smtp"] = "file"
    email_from: str = "ductwork@localhost"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_timeout_seconds: float = 30.0

    # Outbound HTTP (webhook, data-source api).
    http_allow_private_networks: bool = False
    http_allowed_hosts: list[str] = Field(default_factory=list)
    http_timeout_seconds: float = Field(default=30.0, gt=0)
    http_max_response_bytes: int = Field(default=10_000_000, gt=0)
    http_max_redirects: int = Field(default=5, ge=0)

    # data-source `database`: named SQLAlchemy URLs, e.g. {"reports": "sqlite:///reports.db"}.
    sql_connections: dict[str, str] = Field(default_factory=dict)
    sql_max_rows: int = Field(default=1000, gt=0)

    # Secrets exposed to templates as `secrets.NAME` (never logged).
    secrets: dict[str, SecretStr] = Field(default_factory=dict)

    # Request bounds (checked by the API before anything is stored).
    max_json_depth: int = Field(default=DEFAULT_MAX_DEPTH, ge=2, le=200)
    """Deepest nesting of a request body; responses nest a few levels more and must stay
    under orjson's 254."""
    max_inputs_bytes: int = Field(default=1_000_000, gt=0)
    """Largest `inputs` of an execute request, as JSON."""

    # Security (README "Security"; docs/security.md).
    auth: Literal["enabled", "disabled"] = "enabled"
    """`disabled` (development only): every request acts as an admin. Refused unless the
    server is bound to a loopback address; a warning is logged on every start."""
    admin_api_key: SecretStr | None = None
    """Accepted as an admin API key (automation, first boot in containers)."""
    api_key: SecretStr | None = None
    """The key the CLI's remote commands send (`ductwork watch`); not used by the server."""
    secret_key: SecretStr | None = None
    """Fernet key(s), comma-separated, newest first: credentials are encrypted with the
    first and decrypted with any. Unset: a key generated into `data_dir/secret.key`
    (mode 0600) on first start."""
    allowed_hosts: list[str] = Field(default_factory=list)
    """Host header values accepted (port ignored; `*.example.com` wildcards). Empty: the
    loopback names when bound to loopback, anything otherwise (with a warning)."""
    cors_origins: list[str] = Field(default_factory=list)
    """Origins allowed cross-site (a builder canvas served elsewhere). Empty: CORS off."""
    session_ttl_seconds: float = Field(default=7 * 86_400, gt=0)
    cookie_secure: Literal["auto", "always", "never"] = "auto"
    """auto: the session cookie is `Secure` when the request came over HTTPS."""
    auth_cache_seconds: float = Field(default=10.0, ge=0)
    """How long a verified key or session is trusted without asking the store again.
    A revocation through the API (or any with Redis) reaches every process at once;
    one by the CLI without Redis reaches a running server within this time."""
    credential_cache_seconds: float = Field(default=10.0, ge=0)
    """How long a process reuses a credential it decrypted for a run without reading the
    store again; a change through the API reaches every process at once regardless
    (through the event bus), a change the bus misses within this time."""
    metrics_token: SecretStr | None = None
    """A bearer token for `/metrics` alone (scrapers); admins' keys work too."""
    login_rate_limit: str = "10/minute"
    """Failed logins and failed API keys per client address (`limits` notation)."""
    execute_rate_limit: str = "600/minute"
    """Execute, retry and generate calls per key or user (429 with Retry-After past it)."""

    # Triggers (src/ductwork/triggers/): schedules, inbound webhooks, resume links.
    public_url: str | None = None
    """The address people and other systems reach this server at (e.g.
    `https://ductwork.example.com`): resume links in emails start with it. Unset:
    `http://{host}:{port}`."""
    scheduler: bool = True
    """Whether this process fires schedules (embedded and worker processes; any number
    may, each slot still fires once). False: leave it to other processes."""
    schedule_max_catch_up: int = Field(default=100, ge=1, le=10_000)
    """`catch_up: all`: at most this many missed slots are fired (the latest ones)."""
    schedule_misfire_grace_seconds: float = Field(default=60.0, gt=0)
    """A slot fired this late still counts as on time; older ones are "missed" and
    follow the schedule's `catch_up`."""
    schedule_refresh_seconds: float = Field(default=10.0, gt=0)
    """How often each scheduler re-reads the schedules even without a change message."""
    hook_max_body_bytes: int = Field(default=1_000_000, gt=0)
    """Largest body `/hooks/{path}` accepts (a trigger may set less); 413 past it."""
    hook_rate_limit: str = "600/minute"
    """Calls per webhook path (a trigger may set its own); 429 with Retry-After past it."""
    hook_sync_wait_seconds: float = Field(default=30.0, gt=0, le=300)
    """`respond: sync`: how long a call waits for the run before answering 202."""

    # Flow and AI (issue 11): loops, sub-workflows, code, LLM limits, costs, retention.
    max_loop_items: int = Field(default=10_000, ge=1)
    """Most items one `loop` node runs its body for; a longer list fails the node."""
    max_loop_concurrency: int = Field(default=50, ge=1)
    """Ceiling of a `loop` node's `concurrency`."""
    max_workflow_depth: int = Field(default=5, ge=1, le=100)
    """Deepest nesting of sub-workflow runs (a run's `depth`); past it the node fails."""
    code_node: Literal["enabled", "disabled"] = "disabled"
    """`enabled`: `code` nodes run (in sandboxed worker processes, docs/code-node.md)."""
    code_pool_size: int = Field(default=2, ge=1, le=64)
    """Warm worker processes for `code` nodes, per ductwork process."""
    code_timeout_seconds: float = Field(default=10.0, gt=0, le=3600)
    """Longest a `code` node's `main` may run (a node may ask for less)."""
    code_memory_mb: int = Field(default=256, ge=32, le=65_536)
    """Address space of each code worker process; past it the call fails."""
    llm_prices: dict[str, ModelPrice] = Field(default_factory=dict)
    """Model name -> price per million input/output tokens, e.g.
    `{"openai/gpt-4o-mini": {"input": 0.15, "output": 0.6}}`. A provider's reported
    cost (OpenRouter's `usage.cost`) wins over this table."""
    llm_rate_limits: dict[str, LlmRateLimit] = Field(default_factory=dict)
    """Provider host (of the base URL, e.g. `openrouter.ai`) -> requests and tokens per
    minute; calls past it wait their turn (shared through Redis when configured)."""
    max_active_runs: int | None = Field(default=None, ge=1)
    """Runs running or waiting at once across every workflow and worker; more wait
    `queued`. None: no global limit (a workflow's `settings.max_concurrent_runs`
    still applies)."""
    retention_days: float | None = Field(default=None, gt=0)
    """Finished runs older than this are deleted (a workflow's `settings.retention`
    overrides it). None: kept."""
    retention_runs: int | None = Field(default=None, ge=1)
    """Only this many of each workflow's newest finished runs are kept. None: all."""
    prune_interval_seconds: float = Field(default=60.0, gt=0)
    """How often the sweeping process prunes runs the retention policy lets go."""
    prune_batch_size: int = Field(default=500, ge=1, le=100_000)
    """Runs deleted per transaction while pruning (live traffic goes between batches)."""

    # Limits (each a 4xx or a clear node error past it; docs/api-limits.md).
    max_request_bytes: int = Field(default=8_000_000, gt=0)
    """Largest request body; 413 before the body is read further."""
    max_workflow_nodes: int = Field(default=10_000, ge=1)
    max_workflow_edges: int = Field(default=50_000, ge=0)
    max_template_chars: int = Field(default=100_000, ge=1)
    """Longest template or expression in a node's config."""
    max_run_events: int = Field(default=250_000, ge=100)
    """Stored events per run; a run that would write more fails."""
    max_run_seconds: float = Field(default=7 * 86_400, gt=0)
    """Wall-clock time from a run's start (parked time included) after which it fails."""
    max_email_recipients: int = Field(default=50, ge=1)
    """to + cc + bcc of one email node."""
    llm_max_tokens: int = Field(default=32_768, ge=1)
    """Ceiling of an AI node's `max_tokens`."""
    max_delay_seconds: float = Field(default=30 * 86_400, gt=0)
    max_retry_attempts: int = Field(default=10, ge=1)
    max_retry_backoff_seconds: float = Field(default=3_600, ge=0)

    # --- HTTP layer (issue 12) ---
    access_log: bool = False
    """`ductwork serve` logs a line per request (uvicorn's access log). Off by default:
    it cost about a tenth of a millisecond of CPU per request; errors are logged anyway."""
    health_cache_seconds: float = Field(default=1.0, ge=0)
    """How long `GET /health` reuses its store probe: load balancers polling it cost one
    store read per interval, not one per call. 0: probe on every call."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """pydantic-settings' sources, without the .env one when there is no file to read.

        No .env file is configured (only `Settings(_env_file=...)` names one), yet that
        source still walked every field for nothing: about 40 % of building `Settings`,
        which a cold `ductwork run` does at start."""
        if isinstance(dotenv_settings, DotEnvSettingsSource) and not dotenv_settings.env_file:
            return init_settings, env_settings, file_secret_settings
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> Settings:
        if self.heartbeat_seconds * 2 > self.lease_seconds:
            raise ValueError(
                "DUCTWORK_HEARTBEAT_SECONDS must be at most half of DUCTWORK_LEASE_SECONDS "
                f"(got {self.heartbeat_seconds} and {self.lease_seconds}), or leases lapse "
                "between heartbeats and another worker takes running runs over"
            )
        return self

    @field_validator("admin_api_key", "metrics_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # A short shared secret can be guessed; these two open the whole API or /metrics.
        if value is not None and len(value.get_secret_value()) < MIN_SHARED_SECRET_CHARS:
            name = f"DUCTWORK_{str(info.field_name).upper()}"
            raise ValueError(
                f"{name} must be at least {MIN_SHARED_SECRET_CHARS} characters (got "
                f"{len(value.get_secret_value())}); generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        return value

    @field_validator("http_allowed_hosts", "allowed_hosts", "cors_origins", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return [host.strip() for host in value.split(",") if host.strip()]
        return value

    @property
    def resolved_store_url(self) -> str:
        """The store URL, defaulting to a SQLite file under the data dir."""
        if self.store_url:
            return self.store_url
        return f"sqlite:///{(self.data_dir / 'ductwork.db').resolve()}"

    @cached_property
    def resolved_examples_dir(self) -> Path:
        if self.examples_dir is not None:
            return self.examples_dir
        return Path(__file__).resolve().parents[2] / "examples"


def variable_name(field_name: str) -> str:
    """The environment variable(s) that set a Settings field, e.g. `DUCTWORK_PORT`."""
    field = Settings.model_fields.get(field_name)
    alias = field.validation_alias if field is not None else None
    if isinstance(alias, AliasChoices):
        return " or ".join(str(choice) for choice in alias.choices)
    if isinstance(alias, str):
        return alias
    return f"{Settings.model_config.get('env_prefix', '')}{field_name}".upper()


_UNPARSABLE_FIELD = re.compile(r'field "(?P<field>\w+)"')
"""Which field a pydantic-settings `SettingsError` is about (it says so only in its text)."""


def settings_problems(exc: ValidationError | SettingsError) -> list[str]:
    """One line per bad setting, naming its environment variable and saying why.

    For people, not programs: `DUCTWORK_PORT: Input should be a valid integer, ...`.
    A value is never repeated back (it may be a secret).
    """
    if isinstance(exc, SettingsError):
        # A JSON-valued variable (a list or a mapping) that is not JSON.
        found = _UNPARSABLE_FIELD.search(str(exc))
        if found is None:
            return [str(exc)]
        why = f": {exc.__cause__}" if exc.__cause__ is not None else ""
        return [f"{variable_name(found['field'])}: not valid JSON{why}"]
    problems = []
    for error in exc.errors(include_url=False):
        # Our own validators' messages (`ValueError`) without pydantic's "Value error, ".
        why = str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]
        location = [str(part) for part in error["loc"]]
        if not location:
            problems.append(why)  # a check across settings: its message names them
            continue
        variable = variable_name(location[0])
        inside = ".".join(location[1:])
        # The shared-secret check names its variable already (for callers without this).
        why = why.removeprefix(f"{variable} ")
        problems.append(f"{variable}: {inside + ': ' if inside else ''}{why}")
    return problems
