"""The OpenAI request bodies the gateway accepts: known fields typed strictly, unknown ones kept.

Validation only checks; the gateway forwards the client's own dict, so fields this module does
not know reach OpenAI-compatible providers untouched. So that nothing after parsing meets an absurd
value, the body's shape is limited whatever its fields (`gateway.body_limits`: nesting depth, number
of arrays and objects), integer fields are bounded (`MAX_INT` for token counts and sizes, 64 bits for
`seed`), and embeddings take at most `MAX_EMBEDDING_INPUTS` inputs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.body_limits import MAX_NESTING, check_shape, too_deep
from gateway.error_paths import data_path
from gateway.errors import InvalidRequest

MAX_INT = 2**31 - 1  # the largest token count, token id or size a request may give
MAX_EMBEDDING_INPUTS = 2048  # as OpenAI's API
_INT64 = 2**63


class Open(BaseModel):
    """A request object: known fields typed strictly, unknown ones kept."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class ImageURL(Open):
    url: Annotated[str, StringConstraints(min_length=1)]
    detail: Literal["auto", "low", "high"] | None = None


class TextPart(Open):
    type: Literal["text"]
    text: str


class ImagePart(Open):
    type: Literal["image_url"]
    image_url: ImageURL


class AudioPart(Open):
    type: Literal["input_audio"]
    input_audio: dict[str, Any]


class FilePart(Open):
    type: Literal["file"]
    file: dict[str, Any]


class RefusalPart(Open):
    type: Literal["refusal"]
    refusal: str


ContentPart = Annotated[TextPart | ImagePart | AudioPart | FilePart | RefusalPart, Field(discriminator="type")]
Content = str | list[ContentPart]

_FunctionName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class FunctionCall(Open):
    name: _FunctionName
    arguments: str


class ToolCall(Open):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(Open):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Content | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _content_fits_role(self) -> Message:
        if self.role == "assistant":
            if self.content is None and not self.tool_calls and "function_call" not in (self.model_extra or {}):
                raise ValueError("an assistant message needs content or tool_calls")
        elif self.content is None:
            raise ValueError(f"a {self.role} message needs content")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id")
        return self


class FunctionDef(Open):
    name: _FunctionName
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(Open):
    type: Literal["function"]
    function: FunctionDef


class NamedToolChoice(Open):
    type: Literal["function"]
    function: dict[str, str]


class StreamOptions(Open):
    include_usage: bool | None = None


class ResponseFormat(Open):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and not isinstance((self.json_schema or {}).get("schema"), dict):
            raise ValueError("response_format of type json_schema needs json_schema.schema")
        return self


_ModelName = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class ChatRequest(Open):
    model: _ModelName
    messages: list[Message] = Field(min_length=1)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_INT)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_INT)
    n: int | None = Field(default=None, ge=1, le=128)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    stop: str | list[str] | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    seed: int | None = Field(default=None, ge=-_INT64, lt=_INT64)
    user: str | None = None


class EmbeddingsRequest(Open):
    model: _ModelName
    input: str | list[Any]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(default=None, ge=1, le=MAX_INT)
    user: str | None = None

    @field_validator("input")
    @classmethod
    def _input_shape(cls, value: str | list[Any]) -> str | list[Any]:
        """A string, or up to MAX_EMBEDDING_INPUTS strings, token ids or token id arrays; checked a
        whole list at a time (C speed), not item by item: a token array can hold a million ids."""
        if value == "" or value == []:
            raise ValueError("input must not be empty")
        if isinstance(value, str):
            return value
        kinds = set(map(type, value))
        if kinds == {int} and _token_ids(value):  # one token array
            return value
        if kinds <= {str, list} and len(value) > MAX_EMBEDDING_INPUTS:
            raise ValueError(f"at most {MAX_EMBEDDING_INPUTS} inputs in one request, not {len(value)}")
        if kinds == {str}:
            return value
        if kinds == {list} and all(array and set(map(type, array)) == {int} and _token_ids(array) for array in value):
            return value
        raise ValueError(
            "expected a string, an array of strings, an array of token ids or an array of non-empty token id "
            f"arrays (token ids between 0 and {MAX_INT})"
        )


def _token_ids(ids: list[int]) -> bool:
    return min(ids) >= 0 and max(ids) <= MAX_INT


M = TypeVar("M", bound=BaseModel)


def parse_body(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    if not body:
        raise InvalidRequest("The request body is empty; send a JSON object.")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if exc.msg.startswith("depth limit"):  # orjson stops at 1,024 levels, before any field is known
            raise InvalidRequest(too_deep("The request body")) from None
        raise InvalidRequest(f"The request body is not valid JSON ({exc.msg}).") from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"The request body must be a JSON object, not {_json_type(data)}.")
    if body.count(b"[") + body.count(b"{") > MAX_NESTING:  # fewer brackets than that fit both limits
        check_shape(data)
    return data


def validate(model: type[M], data: dict[str, Any]) -> M:
    """Check a body against a request model; the most specific problem becomes a 400 naming its field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        param, message = _explain(exc, data)
        where = f"'{param}'" if param else "the request"
        raise InvalidRequest(f"Invalid value for {where}: {message}.", param=param or None) from None


def _explain(exc: ValidationError, data: dict[str, Any]) -> tuple[str, str]:
    """The deepest error's place in the client's body and what was wrong there.

    When every error at that place is a union branch that did not fit (content that is neither a
    string nor an array, say), the message lists what would have fitted instead.
    """
    located = [
        (data_path(e["loc"], data, missing=e["type"] == "missing"), e)
        for e in exc.errors(include_url=False, include_input=False)
    ]
    deepest = max(len(path) for path, _ in located)
    path = next(path for path, _ in located if len(path) == deepest)
    here = [(p, e) for p, e in located if p == path]  # two fields wrong at one depth: the first one's errors
    first = here[0][1]
    if len(here) > 1 and all(e["type"] in _BRANCH_MISMATCH for _, e in here):
        expected = [_expected(e) for _, e in here]
        return _format(path), "expected " + " or ".join(dict.fromkeys(expected))
    if first["type"] == "union_tag_invalid":
        ctx = first.get("ctx") or {}
        return _format(path), f"unsupported type {ctx.get('tag')!r} (supported: {ctx.get('expected_tags')})"
    return _format(path), first["msg"].removeprefix("Value error, ")


_BRANCH_MISMATCH = {
    "string_type",
    "list_type",
    "model_type",
    "dict_type",
    "literal_error",
    "int_type",
    "float_type",
    "bool_type",
    "is_instance_of",
}


def _expected(error: Any) -> str:
    kind = error["type"]
    if kind == "literal_error":
        return str(error["msg"]).removeprefix("Input should be ")
    return {
        "string_type": "a string",
        "list_type": "an array",
        "model_type": "an object",
        "dict_type": "an object",
        "int_type": "an integer",
        "float_type": "a number",
        "bool_type": "a boolean",
    }.get(kind, "another type")


def _format(path: tuple[int | str, ...]) -> str:
    """`('messages', 0, 'content')` becomes `messages[0].content`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"
