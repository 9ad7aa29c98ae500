"""The triggers a workflow declares in its top-level `triggers` list: pure data, no I/O.

A trigger is versioned with its workflow (it lives in the definition). Saving
validates every trigger and answers 422 with field paths such as
`triggers[0].cron`; `GET /trigger-types` exports each model's JSON Schema for
builder UIs, as `GET /node-types` does for nodes.

Schedules are computed with cronsim (`triggers/schedule.py`): a maintained,
dependency-free cron library that follows Debian cron's DST rules (a slot in
the skipped hour fires once at the jump, a slot in the repeated hour fires once)
and takes a sixth, leading seconds field.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from ductwork.models import ValidationIssue, WorkflowDefinition

MAX_TRIGGERS: Final = 20
"""Triggers one workflow may declare."""

PAUSED: Final = "paused"
"""The workflow `status` that stops its schedules and webhooks (not manual runs)."""

HOOK_PATH_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._~-]*(/[A-Za-z0-9._~-]+)*$"
"""A webhook path: URL-safe segments, no leading or trailing slash (`/hooks/{path}`)."""

_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class _Trigger(BaseModel):
    # defer_build (inherited; also on the auth models): validators are built on first
    # use, not at import: a workflow without triggers never builds them.
    model_config = ConfigDict(extra="forbid", defer_build=True)

    id: str | None = Field(
        default=None,
        max_length=100,
        pattern=_ID_PATTERN,
        description="A stable name for the trigger (shown on runs); default: derived from it.",
    )
    inputs: dict[str, Any] = Field(
        default_factory=dict,
        description="Run inputs every run this trigger starts receives (before its own).",
    )


EARLIEST_TIME: Final = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME: Final = datetime(9998, 12, 31, 23, 59, 59, tzinfo=UTC)
"""The range `start_at` and `end_at` must lie in: slot keys, slot math and every store
handle these times (near year 1 or 9999 converting to UTC alone overflows)."""


def _check_in_range(field: str, moment: datetime | None) -> None:
    if moment is None:
        return
    try:
        in_range = EARLIEST_TIME <= moment.astimezone(UTC) <= LATEST_TIME
    except OverflowError:
        in_range = False
    if not in_range:
        raise ValueError(
            f"{field}: {moment.isoformat()} is outside the supported range "
            f"{EARLIEST_TIME:%Y-%m-%d} to {LATEST_TIME:%Y-%m-%d} (UTC)"
        )


class ScheduleTrigger(_Trigger):
    """Runs the workflow on a cron expression or every N seconds."""

    type: Literal["schedule"]
    cron: str | None = Field(
        default=None,
        max_length=200,
        description="5 fields (minute hour day month weekday), or 6 with seconds first.",
        examples=["*/5 * * * *", "0 9 * * MON-FRI", "*/10 * * * * *"],
    )
    every_seconds: int | None = Field(
        default=None, ge=1, le=366 * 86_400, description="Fire every N seconds (instead of cron)."
    )
    timezone: str = Field(
        default="UTC",
        max_length=100,
        description="IANA zone the cron expression is read in, e.g. Europe/Berlin.",
    )
    start_at: datetime | None = Field(
        default=None,
        description="No slot before this time (a time without offset is read in `timezone`). "
        "With every_seconds, slots are counted from it.",
    )
    end_at: datetime | None = Field(
        default=None, description="No slot after this time (read like start_at)."
    )
    catch_up: Literal["none", "latest", "all"] = Field(
        default="latest",
        description="Slots missed while nothing ran: none skips them, latest fires the most "
        "recent once, all fires each (at most DUCTWORK_SCHEDULE_MAX_CATCH_UP).",
    )

    @model_validator(mode="after")
    def _check(self) -> ScheduleTrigger:
        if (self.cron is None) == (self.every_seconds is None):
            raise ValueError("set exactly one of `cron` and `every_seconds`")
        zone = self.zone()
        if self.cron is not None:
            fields = self.cron.split()
            if len(fields) not in (5, 6):
                raise ValueError(
                    f"cron: {len(fields)} fields; write 5 (minute hour day month weekday) "
                    "or 6 (seconds first)"
                )
            try:
                CronSim(self.cron, datetime.now(zone))
            except CronSimError as exc:
                raise ValueError(f"cron: {self.cron!r}: {str(exc).lower()}") from None
        if self.start_at is not None and self.start_at.tzinfo is None:
            self.start_at = self.start_at.replace(tzinfo=zone)
        if self.end_at is not None and self.end_at.tzinfo is None:
            self.end_at = self.end_at.replace(tzinfo=zone)
        _check_in_range("start_at", self.start_at)
        _check_in_range("end_at", self.end_at)
        if self.start_at and self.end_at and self.end_at <= self.start_at:
            raise ValueError("end_at must be after start_at")
        return self

    def zone(self) -> ZoneInfo:
        """The schedule's time zone (ValueError naming it when unknown)."""
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone: unknown time zone {self.timezone!r} (use an IANA name such as "
                "'Europe/Berlin' or 'UTC')"
            ) from None

    def key(self) -> str:
        """The schedule's slot-key prefix: its `id`, else a digest of its timing.

        Part of every slot key (`Run.idempotency_key` = `schedule:{key}:{slot}`), so
        changing when a schedule fires starts a new series instead of "catching up"
        the old one's slots; changing only its inputs keeps the series.
        """
        if self.id:
            return self.id
        timing = [
            self.cron,
            self.every_seconds,
            self.timezone,
            self.start_at.astimezone(UTC).isoformat() if self.start_at else None,
        ]
        return hashlib.sha256(orjson.dumps(timing)).hexdigest()[:12]


def _credential_field(holding: str) -> Any:
    """The `credential` of a webhook auth: the name of the secret, never the secret."""
    return Field(
        min_length=1,
        max_length=200,
        description="Name of the stored `secret` credential (or DUCTWORK_SECRETS entry) "
        f"holding {holding}.",
    )


class NoAuth(BaseModel):
    """Anyone who knows the URL may call it."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    type: Literal["none"]


class TokenAuth(BaseModel):
    """A shared token in a header, compared in constant time."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    type: Literal["token"]
    credential: str = _credential_field("the token")
    header: str = Field(default="Authorization", min_length=1, max_length=100)
    prefix: str = Field(
        default="Bearer ",
        max_length=50,
        description="What precedes the token in the header ('' for a bare token).",
    )


class HmacAuth(BaseModel):
    """An HMAC signature of the raw body (GitHub, Stripe, Shopify, Slack style)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    type: Literal["hmac"]
    credential: str = _credential_field("the signing secret")
    header: str = Field(default="X-Hub-Signature-256", min_length=1, max_length=100)
    algorithm: Literal["sha256", "sha1", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = Field(
        default="sha256=", max_length=50, description="What precedes the signature ('' for none)."
    )
    style: Literal["plain", "stripe"] = Field(
        default="plain",
        description="plain: the header holds prefix+signature of the body (or of "
        "'{timestamp}.{body}' when timestamp_header is set); stripe: the header is "
        "'t=<unix time>,v1=<signature of {t}.{body}>'.",
    )
    timestamp_header: str | None = Field(
        default=None,
        max_length=100,
        description="plain style: header holding the unix time that was signed with the body.",
    )
    tolerance_seconds: int = Field(
        default=300,
        ge=1,
        le=86_400,
        description="Signed times further than this from now are refused (replays).",
    )


HookAuth = Annotated[NoAuth | TokenAuth | HmacAuth, Field(discriminator="type")]

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


def _post_only() -> list[HttpMethod]:
    return ["POST"]


class WebhookTrigger(_Trigger):
    """Runs the workflow when `/hooks/{path}` is called."""

    type: Literal["webhook"]
    path: str = Field(
        min_length=1,
        max_length=200,
        pattern=HOOK_PATH_PATTERN,
        description="Served at /hooks/{path}; unique across workflows.",
        examples=["new-signup", "github/push"],
    )
    methods: list[HttpMethod] = Field(default_factory=_post_only, min_length=1)
    respond: Literal["sync", "async"] = Field(
        default="async",
        description="sync: answer with the run's result (202 with the execution id when it "
        "takes longer than the sync limit); async: answer 202 with the execution id at once.",
    )
    auth: HookAuth = Field(
        description="Who may call: {'type': 'none'}, a shared token or an HMAC signature."
    )
    headers: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Request headers copied into the run's `headers` input (by name).",
    )
    max_body_bytes: int | None = Field(
        default=None,
        gt=0,
        description="Largest body accepted; default DUCTWORK_HOOK_MAX_BODY_BYTES.",
    )
    rate_limit: str | None = Field(
        default=None,
        max_length=50,
        description="Calls allowed per path, e.g. '60/minute'; default DUCTWORK_HOOK_RATE_LIMIT.",
    )
    sync_timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        le=300,
        description="sync: how long to wait for the result; "
        "default DUCTWORK_HOOK_SYNC_WAIT_SECONDS.",
    )

    @model_validator(mode="after")
    def _check(self) -> WebhookTrigger:
        if self.rate_limit is not None:
            from limits import parse_many

            try:
                parse_many(self.rate_limit)
            except ValueError:
                raise ValueError(
                    f"rate_limit: {self.rate_limit!r} is not a rate such as '60/minute'"
                ) from None
        return self


Trigger = Annotated[ScheduleTrigger | WebhookTrigger, Field(discriminator="type")]

TRIGGER_TYPES: Final[Mapping[str, type[ScheduleTrigger] | type[WebhookTrigger]]] = {
    "schedule": ScheduleTrigger,
    "webhook": WebhookTrigger,
}
"""Every trigger type, by its `type` (what `GET /trigger-types` lists)."""


@functools.cache
def _trigger_adapter() -> TypeAdapter[ScheduleTrigger | WebhookTrigger]:
    """The validator of one trigger, built the first time a workflow declares one."""
    return TypeAdapter[ScheduleTrigger | WebhookTrigger](Trigger)


def normalize_hook_path(path: str) -> str:
    """`path` as `/hooks/{path}` matches it: without surrounding slashes."""
    return path.strip("/")


def parse_triggers(
    raw: Sequence[Any],
) -> tuple[list[ScheduleTrigger | WebhookTrigger], list[ValidationIssue]]:
    """The triggers of a definition and every problem with them, with field paths.

    Issues carry `field` such as `triggers[0].cron` or `triggers[1].auth.credential`
    (no node id). Problems across triggers (two with one id, one path twice, the same
    schedule twice) are reported on the later one.
    """
    triggers: list[ScheduleTrigger | WebhookTrigger] = []
    issues: list[ValidationIssue] = []
    if len(raw) > MAX_TRIGGERS:
        issues.append(
            ValidationIssue(
                field="triggers",
                message=f"{len(raw)} triggers; a workflow may declare at most {MAX_TRIGGERS}",
            )
        )
        return [], issues
    seen_ids: dict[str, int] = {}
    seen_paths: dict[str, int] = {}
    seen_schedules: dict[str, int] = {}
    for index, item in enumerate(raw):
        where = f"triggers[{index}]"
        if isinstance(item, dict) and isinstance(item.get("path"), str):
            item = {**item, "path": normalize_hook_path(item["path"])}
        try:
            trigger = _trigger_adapter().validate_python(item)
        except ValidationError as exc:
            issues.extend(_issues(where, exc))
            continue
        if trigger.id is not None:
            if trigger.id in seen_ids:
                issues.append(
                    ValidationIssue(
                        field=f"{where}.id",
                        message=f"triggers[{seen_ids[trigger.id]}] has the id {trigger.id!r}",
                    )
                )
            seen_ids.setdefault(trigger.id, index)
        if isinstance(trigger, WebhookTrigger):
            if trigger.path in seen_paths:
                issues.append(
                    ValidationIssue(
                        field=f"{where}.path",
                        message=f"triggers[{seen_paths[trigger.path]}] serves the path "
                        f"{trigger.path!r} already",
                    )
                )
            seen_paths.setdefault(trigger.path, index)
        else:
            key = trigger.key()
            if key in seen_schedules:
                issues.append(
                    ValidationIssue(
                        field=where,
                        message=f"the same schedule as triggers[{seen_schedules[key]}]; give "
                        "one of them an `id` if both are meant",
                    )
                )
            seen_schedules.setdefault(key, index)
        triggers.append(trigger)
    return triggers, issues


def _issues(where: str, exc: ValidationError) -> list[ValidationIssue]:
    issues = []
    for error in exc.errors(include_url=False):
        # The discriminator's own name (`schedule`, `webhook`, `hmac`) is noise in a path.
        location = [
            part
            for part in error["loc"]
            if part not in TRIGGER_TYPES and part not in ("none", "token", "hmac")
        ]
        field = where + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in location
        )
        message = error["msg"].removeprefix("Value error, ")
        # A model validator's message may name the field itself ("cron: ...").
        named = re.match(r"^([a-z_]+): (.*)$", message, re.DOTALL)
        if named and not location:
            field, message = f"{where}.{named.group(1)}", named.group(2)
        if error["type"] == "union_tag_invalid" or error["type"] == "union_tag_not_found":
            tag = "auth.type" if "auth" in location else "type"
            field = f"{where}.{tag}"
            message = (
                "unknown trigger type; use one of: " + ", ".join(TRIGGER_TYPES)
                if tag == "type"
                else "use one of: none, token, hmac"
            )
        issues.append(ValidationIssue(field=field, message=message))
    return issues


def workflow_triggers(
    definition: WorkflowDefinition,
) -> list[ScheduleTrigger | WebhookTrigger]:
    """The triggers of a saved (so valid) definition; one that no longer parses is left out."""
    triggers, _ = parse_triggers(definition.triggers)
    return triggers


def is_paused(definition: WorkflowDefinition) -> bool:
    """Whether the workflow's triggers are stopped (`status: paused`)."""
    return definition.status == PAUSED


def trigger_index(workflow_id: str, definition: WorkflowDefinition) -> list[tuple[str, str]]:
    """(type, key) rows a store keeps for a workflow's triggers, read leniently.

    `("webhook", path)` per webhook trigger and one `("schedule", workflow_id)` when
    it has any schedule (the scheduler lists those workflows). (type, key) is unique
    across workflows: the store's unique index is what refuses a second workflow on
    one webhook path. Every store writes its rows from this one function.
    """
    rows: list[tuple[str, str]] = []
    has_schedule = False
    for item in definition.triggers:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "webhook" and isinstance(item.get("path"), str):
            rows.append(("webhook", normalize_hook_path(item["path"])))
        elif item.get("type") == "schedule":
            has_schedule = True
    if has_schedule:
        rows.append(("schedule", workflow_id))
    return list(dict.fromkeys(rows))


def trigger_schemas() -> list[dict[str, Any]]:
    """`GET /trigger-types`: each type's description and config JSON Schema."""
    return [
        {
            "type": name,
            "description": (model.__doc__ or "").strip(),
            "config_schema": model.model_json_schema(),
        }
        for name, model in TRIGGER_TYPES.items()
    ]
