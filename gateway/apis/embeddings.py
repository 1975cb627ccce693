"""OpenAI embeddings (`POST /v1/embeddings`): metered like chat, never streamed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.apis.base import Api, Shape
from gateway.apis.sizes import CHARS_PER_TOKEN, token_array_length
from gateway.errors import GatewayError, UpstreamBadResponse
from gateway.metering.tokenizers import Tokenizer
from gateway.metering.usage import Usage
from gateway.schemas import EmbeddingsRequest, validate


class EmbeddingsApi(Api):
    name = "embeddings"
    operation = "embeddings"
    streams = False

    def validate(self, body: dict[str, Any]) -> str:
        return validate(EmbeddingsRequest, body).model

    def shape(self, body: Mapping[str, Any]) -> Shape:
        value = body.get("input")
        chars = 0
        if isinstance(value, str):
            chars = len(value)
        elif isinstance(value, list):
            tokens = token_array_length(value)
            chars = CHARS_PER_TOKEN * tokens if tokens else sum(len(item) for item in value if isinstance(item, str))
        return Shape(prompt_chars=chars)

    def prompt_tokens(self, body: Mapping[str, Any], tok: Tokenizer) -> int | None:
        """Every input text's tokens (token arrays count as their length)."""
        value = body.get("input")
        items = [value] if isinstance(value, str) else value if isinstance(value, list) else None
        if items is None:
            return None
        if items and isinstance(items[0], int):
            return len(items)
        total = 0
        for item in items:
            if isinstance(item, str):
                total += tok.text(item)
            elif isinstance(item, list):
                total += len(item)
            else:
                return None
        return total

    def error_body(self, error: GatewayError) -> dict[str, Any]:
        return error.body()

    def frame(self, data: Mapping[str, Any] | None, raw: bytes | None = None) -> bytes:
        raise NotImplementedError("embeddings do not stream")

    def output_text(self, data: Mapping[str, Any]) -> str:
        return ""

    def usage(self, data: Mapping[str, Any]) -> Usage | None:
        return Usage.from_openai(data.get("usage"))

    def check_response(self, data: Mapping[str, Any]) -> None:
        if not isinstance(data.get("data"), list):
            raise UpstreamBadResponse("the provider's embeddings response has no `data` list")
