"""Credential types: what each holds, which of its fields are secret, and the in-memory form.

A leaf module (pydantic; SQLAlchemy's URL parser, imported when a `sql` credential
is checked): the credentials service encrypts and stores these,
the engine loads the ones a run refers to through `CredentialSource`, and the
redactor masks every value `secret_values()` returns.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

MIN_SECRET_CHARS = 4
"""Shortest secret value accepted: a shorter one cannot be masked without masking
ordinary text ("abc" is in too many outputs)."""


class CredentialData(BaseModel):
    """A credential's data; subclasses name the fields that are secret."""

    # defer_build (inherited): validators are built on first use, not at import; a
    # run that uses no credential never builds them.
    model_config = ConfigDict(extra="forbid", defer_build=True)

    secret_fields: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""

    @field_validator("*", mode="after")
    @classmethod
    def _long_enough(cls, value: Any, info: Any) -> Any:
        if (
            info.field_name in cls.secret_fields
            and isinstance(value, str)
            and len(value) < MIN_SECRET_CHARS
        ):
            raise ValueError(
                f"a secret must be at least {MIN_SECRET_CHARS} characters, so it can be "
                "masked in outputs without masking ordinary text"
            )
        return value

    def secret_values(self) -> list[str]:
        """Every text that must never surface: the secret fields and forms derived from them."""
        values = [getattr(self, name) for name in self.secret_fields]
        return [value for value in values if isinstance(value, str) and value]


class SecretData(CredentialData):
    description: ClassVar[str] = "A value templates read as {{ secrets.NAME }}."
    secret_fields: ClassVar[tuple[str, ...]] = ("value",)
    value: str = Field(min_length=1, max_length=65_536)


class HttpHeaderData(CredentialData):
    description: ClassVar[str] = "One HTTP header sent by webhook and data-source api nodes."
    secret_fields: ClassVar[tuple[str, ...]] = ("value",)
    name: str = Field(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$", max_length=200)
    value: str = Field(min_length=1, max_length=8192)


class BearerData(CredentialData):
    description: ClassVar[str] = "Authorization: Bearer <token>."
    secret_fields: ClassVar[tuple[str, ...]] = ("token",)
    token: str = Field(min_length=1, max_length=8192)


class BasicData(CredentialData):
    description: ClassVar[str] = "Authorization: Basic (username and password)."
    secret_fields: ClassVar[tuple[str, ...]] = ("password",)
    username: str = Field(max_length=1000)
    password: str = Field(min_length=1, max_length=1000)

    def secret_values(self) -> list[str]:
        # A remote that echoes its request headers back echoes the encoded form.
        encoded = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return [*super().secret_values(), encoded]


class SmtpData(CredentialData):
    description: ClassVar[str] = "An SMTP server for email nodes."
    secret_fields: ClassVar[tuple[str, ...]] = ("password",)
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(default=587, ge=1, le=65_535)
    username: str | None = Field(default=None, max_length=1000)
    password: str | None = Field(default=None, max_length=1000)
    starttls: bool = True
    ssl: bool = False
    from_address: str | None = Field(default=None, max_length=320)


class SqlData(CredentialData):
    description: ClassVar[str] = "A SQLAlchemy database URL for data-source database nodes."
    secret_fields: ClassVar[tuple[str, ...]] = ("url",)
    url: str = Field(min_length=1, max_length=4096)

    @field_validator("url", mode="after")
    @classmethod
    def _parseable(cls, value: str) -> str:
        # Both parsers must accept it: SQLAlchemy opens the connection and
        # `secret_values` reads the password with urlsplit. A URL one of them
        # refuses would be stored and then break every run that loads it.
        # The message never quotes the value: it holds the password.
        from sqlalchemy.engine import make_url

        try:
            make_url(value)
            urlsplit(value).password  # noqa: B018 - parsing the netloc is the check
        except Exception:  # ArgumentError, ValueError ("Invalid IPv6 URL"), ...
            raise ValueError(
                "is not a valid database URL; expected "
                "dialect[+driver]://user:password@host[:port]/database, with special "
                "characters in the user or password percent-encoded"
            ) from None
        return value

    def secret_values(self) -> list[str]:
        # Never raises: a run's redactor is built from this, and a stored URL that
        # predates the validator above must still mask what it can.
        extra: list[str] = []
        try:
            password = urlsplit(self.url).password
        except ValueError:
            password = None
        if password:
            extra += [unquote(password), password]
        try:
            from sqlalchemy.engine import make_url

            # SQLAlchemy's reading is what the driver receives (and may echo in errors).
            parsed = make_url(self.url).password
        except Exception:
            parsed = None
        if isinstance(parsed, str) and parsed:
            extra.append(parsed)
        extra = list(dict.fromkeys(p for p in extra if len(p) >= MIN_SECRET_CHARS))
        return [*super().secret_values(), *extra]


class LlmData(CredentialData):
    description: ClassVar[str] = "An OpenAI-compatible provider for ai-processor nodes."
    secret_fields: ClassVar[tuple[str, ...]] = ("api_key",)
    base_url: str = Field(min_length=1, max_length=2048)
    api_key: str = Field(min_length=1, max_length=8192)
    default_model: str | None = Field(default=None, max_length=500)


CREDENTIAL_TYPES: Mapping[str, type[CredentialData]] = {
    "secret": SecretData,
    "http_header": HttpHeaderData,
    "bearer": BearerData,
    "basic": BasicData,
    "smtp": SmtpData,
    "sql": SqlData,
    "llm": LlmData,
}

HTTP_AUTH_TYPES = frozenset({"http_header", "bearer", "basic"})
"""Types a webhook or a data-source api node accepts as `credential`."""


class CredentialUnusable(Exception):
    """A credential a run names exists but cannot be used (it does not decrypt with the
    configured keys, or its stored type is unknown): the run fails with this message
    instead of being offered again and again."""


@dataclass(frozen=True, slots=True)
class Credential:
    """A credential decrypted for use: in memory only, never stored or sent like this."""

    name: str
    type: str
    data: CredentialData


def secret_value(
    name: str, loaded: Mapping[str, Credential], env: Mapping[str, SecretStr]
) -> str | None:
    """What `secrets.NAME` reads: the loaded credential `name` when it is of type
    `secret`, else the DUCTWORK_SECRETS entry (`env`); None when there is neither.

    A stored credential of another type shadows the entry (it is not a secret to read).
    """
    stored = loaded.get(name)
    if stored is not None:
        return stored.data.value if isinstance(stored.data, SecretData) else None
    entry = env.get(name)
    return None if entry is None else entry.get_secret_value()


class CredentialSource(Protocol):
    """Where the engine gets the credentials a run refers to (the credentials service)."""

    async def load(self, names: Collection[str]) -> dict[str, Credential]:
        """The named credentials that exist, decrypted (one store round trip)."""
