"""Structured LLM output: the `response_format` an AI node asks for, and reading the answer.

`ResponseFormat` is OpenAI's spelling (`{"type": "json_object"}` or `{"type":
"json_schema", "json_schema": {"name", "schema", "strict"}}`); the schema itself is
checked against its JSON Schema metaschema when the workflow is saved (the
`jsonschema` library), so a broken schema is a 422, not a failed run.

`read_answer` turns the model's text into the object: it strips a Markdown code
fence (models add ```json fences even in JSON mode), parses the JSON and validates
it against the schema; `InvalidAnswer` says what is wrong, in words a model can use
to repair its answer.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*[ \t]*\n(.*?)\n?```\s*$", re.DOTALL)


class JsonSchemaFormat(BaseModel):
    """The `json_schema` part of a `json_schema` response format."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(
        default="answer",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="A name for the schema (letters, digits, _ and -; at most 64).",
    )
    description: str | None = None
    schema_: dict[str, Any] = Field(
        alias="schema", description="The JSON Schema the answer must satisfy."
    )
    strict: bool | None = Field(
        default=None, description="Ask the provider to enforce the schema while generating."
    )

    @field_validator("schema_")
    @classmethod
    def _is_a_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        # jsonschema (~50 ms) loads with the first schema checked, not with the node registry.
        from jsonschema import exceptions as schema_errors
        from jsonschema import validators

        validator = validators.validator_for(schema)
        try:
            validator.check_schema(schema)
        except schema_errors.SchemaError as exc:
            where = "/".join(str(part) for part in exc.absolute_path)
            raise ValueError(
                f"not a valid JSON Schema: {exc.message}" + (f" (at /{where})" if where else "")
            ) from None
        return schema


class ResponseFormat(BaseModel):
    """What shape the answer must have (OpenAI's `response_format`)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_object", "json_schema"] = Field(
        description="`json_object`: any JSON object; `json_schema`: JSON satisfying the schema."
    )
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_goes_with_its_type(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("type json_schema needs a `json_schema` object with a `schema`")
        if self.type != "json_schema" and self.json_schema is not None:
            raise ValueError(f"`json_schema` is only read with type json_schema, not {self.type}")
        return self

    @property
    def structured(self) -> bool:
        """True when the answer is JSON (parsed into the node's output)."""
        return self.type != "text"

    def wire(self) -> dict[str, Any]:
        """The `response_format` sent to the provider."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class InvalidAnswer(ValueError):
    """The model's answer is not the JSON asked for; the message says why."""


@lru_cache(maxsize=256)
def _validator(schema_json: bytes) -> Any:
    from jsonschema import validators

    schema = orjson.loads(schema_json)
    return validators.validator_for(schema)(schema)


def read_answer(text: str, response_format: ResponseFormat) -> Any:
    """The answer as a JSON value, validated; raises `InvalidAnswer` naming the problem."""
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidAnswer(f"the answer is not valid JSON ({exc})") from None
    if response_format.type == "json_object" and not isinstance(value, dict):
        raise InvalidAnswer(f"the answer is JSON but not an object (got {type(value).__name__})")
    spec = response_format.json_schema
    if spec is None:
        return value
    # Compiled once per distinct schema (sorted keys: equal schemas share an entry).
    validator = _validator(orjson.dumps(spec.schema_, option=orjson.OPT_SORT_KEYS))
    from jsonschema import exceptions as schema_errors

    error = schema_errors.best_match(validator.iter_errors(value))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path)
        raise InvalidAnswer(
            f"the answer does not match the schema at /{where}: {error.message}"
            if where
            else f"the answer does not match the schema: {error.message}"
        )
    return value
