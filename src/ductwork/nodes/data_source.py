"""`data-source`: fetch data from an HTTP API (GET) or a configured SQL database (read-only)."""

from __future__ import annotations

import time
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ductwork.clients.http import (
    auth_header,
    check_http_url,
    display_url,
    raise_for_status,
    with_header,
)
from ductwork.clients.sql import check_read_only
from ductwork.engine.templating import has_template_syntax
from ductwork.nodes.base import (
    NodeConfig,
    NodeContext,
    NodeError,
    NodeResult,
    NodeType,
    credential_field,
)
from ductwork.security.credential_types import HTTP_AUTH_TYPES, SqlData

_API_ONLY = ("endpoint", "headers")
_DATABASE_ONLY = ("connection", "query", "max_rows")


def _invalid(message: str) -> PydanticCustomError:
    # A custom error type keeps the message as written (no "Value error, " prefix).
    return PydanticCustomError("data_source_config", message)


class DataSourceConfig(NodeConfig):
    source_type: Literal["api", "database"] = Field(
        default="api", description="`api`: HTTP GET of `endpoint`; `database`: SQL `query`."
    )
    endpoint: str | None = Field(default=None, description="api: the URL to GET.")
    params: dict[str, Any] | str = Field(
        default_factory=dict,
        description=(
            "api: query string parameters. database: values for the query's `:name` "
            "placeholders (bound, never spliced; a list binds `IN :ids`)."
        ),
    )
    headers: dict[str, str] = Field(default_factory=dict, description="api: request headers.")
    timeout_seconds: float | None = Field(
        default=None, gt=0, le=3600, description="Time limit for the request or query."
    )
    connection: str | None = Field(
        default=None,
        description="database: a name from DUCTWORK_SQL_CONNECTIONS (or give `credential`).",
    )
    query: str | None = Field(
        default=None,
        description=(
            "database: one read-only SELECT with `:name` placeholders (no writes, locks or "
            "functions with lasting effects; see docs/sql-data-source.md)."
        ),
    )
    max_rows: int | None = Field(
        default=None, ge=1, description="database: row limit (at most DUCTWORK_SQL_MAX_ROWS)."
    )
    credential: str | None = credential_field(
        "api: http_header, bearer or basic, sent as a header; database: sql, the URL to query"
    )

    @model_validator(mode="after")
    def _fields_for_source_type(self) -> Self:
        if self.source_type == "api":
            if not self.endpoint:
                raise _invalid("endpoint is required when source_type is 'api'")
            self._refuse(_DATABASE_ONLY, "database")
            try:
                check_http_url(self.endpoint, "endpoint")
            except ValueError as exc:
                raise _invalid(str(exc)) from None
            return self
        if self.connection and self.credential:
            raise _invalid(
                "give either connection (a configured name) or credential (a sql "
                "credential), not both"
            )
        needed = ("query",) if self.credential else ("connection", "query")
        missing = [name for name in needed if not getattr(self, name)]
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            raise _invalid(
                f"{' and '.join(missing)} {verb} required when source_type is 'database'"
            )
        self._refuse(_API_ONLY, "api")
        return self

    @field_validator("query")
    @classmethod
    def _read_only_query(cls, query: str | None) -> str | None:
        # A field validator, so the problem is reported at config.query. The
        # connection's dialect is not known here; the run repeats the check in it.
        if not query:
            return query
        if has_template_syntax(query):
            raise _invalid(
                "must not contain {{ }} templates: put values in params and refer to "
                "them as :name, so they are bound and never spliced into the SQL"
            )
        try:
            check_read_only(query)
        except ValueError as exc:
            raise _invalid(str(exc)) from None
        return query

    def _refuse(self, names: tuple[str, ...], other: str) -> None:
        # Builder UIs often send every field; only a field that says something is stray.
        stray = [name for name in names if getattr(self, name) not in (None, "", {})]
        if stray:
            raise _invalid(
                f"{', '.join(stray)} only apply when source_type is '{other}', "
                f"not '{self.source_type}'"
            )


class DataSourceNode(NodeType[DataSourceConfig]):
    type_name = "data-source"
    description = (
        "Fetches data: `api` GETs an endpoint and outputs its JSON (or text); `database` "
        "runs a read-only parameterised SELECT on a configured connection and outputs "
        "the rows as a list of objects."
    )
    config_model = DataSourceConfig
    native_fields = frozenset({"params"})

    async def run(self, config: DataSourceConfig, ctx: NodeContext) -> NodeResult:
        if not isinstance(config.params, dict):
            raise NodeError(f"params must be an object, got {type(config.params).__name__}")
        if config.source_type == "api":
            return await self._fetch_api(config, config.params, ctx)
        return await self._query_database(config, config.params, ctx)

    async def _fetch_api(
        self, config: DataSourceConfig, params: dict[str, Any], ctx: NodeContext
    ) -> NodeResult:
        assert config.endpoint is not None
        headers = dict(config.headers)
        secret_headers: tuple[str, ...] = ()
        if config.credential is not None:
            credential = ctx.credential(config.credential, HTTP_AUTH_TYPES)
            name, value = auth_header(credential.data)
            headers = with_header(headers, name, value)
            secret_headers = (name,)
        started = time.perf_counter()
        response = await ctx.services.http.request(
            "GET",
            config.endpoint,
            headers=headers,
            params=params,
            timeout=config.timeout_seconds,
            sensitive_headers=secret_headers,
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        where = display_url(response.url)
        ctx.log(f"GET {where} -> {response.status_code} in {elapsed_ms:.0f} ms")
        raise_for_status(response, f"GET {where}")
        return NodeResult(
            output=response.parsed(),
            meta={
                "status_code": response.status_code,
                "url": where,
                "elapsed_ms": round(elapsed_ms, 1),
            },
        )

    async def _query_database(
        self, config: DataSourceConfig, params: dict[str, Any], ctx: NodeContext
    ) -> NodeResult:
        assert config.query is not None
        started = time.perf_counter()
        if config.credential is not None:
            credential = ctx.credential(config.credential, ("sql",))
            assert isinstance(credential.data, SqlData)
            source = f"credential {config.credential!r}"
            rows = await ctx.services.sql.query_url(
                credential.data.url,
                config.query,
                params,
                config.max_rows,
                timeout_seconds=config.timeout_seconds,
                label=source,
            )
        else:
            assert config.connection is not None
            source = repr(config.connection)
            rows = await ctx.services.sql.query(
                config.connection,
                config.query,
                params,
                config.max_rows,
                timeout_seconds=config.timeout_seconds,
            )
        elapsed_ms = (time.perf_counter() - started) * 1000
        note = " (truncated: more rows exist)" if rows.truncated else ""
        ctx.log(f"{len(rows)} rows from {source} in {elapsed_ms:.0f} ms{note}")
        return NodeResult(
            output=list(rows),
            meta={
                "row_count": len(rows),
                "truncated": rows.truncated,
                "columns": rows.columns,
                "elapsed_ms": round(elapsed_ms, 1),
            },
        )
