"""The provider contract: complete, stream, embed; everything speaks OpenAI's shapes at this seam."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.errors import InvalidRequest
from gateway.metering.usage import Usage
from routing import Target

Operation = Literal["chat", "embeddings"]


@dataclass(slots=True)
class ProviderCall:
    """One request for one target. `body` is the client's OpenAI-shaped body, never mutated."""

    target: Target
    body: dict[str, Any]
    operation: Operation = "chat"
    headers: Mapping[str, str] = field(default_factory=dict)  # propagated: x-request-id, traceparent

    def upstream_body(self, **overrides: Any) -> dict[str, Any]:
        """A shallow copy of the body naming the provider's model, with `overrides` applied."""
        return {**self.body, "model": self.target.upstream_model, **overrides}

    @property
    def client_wants_usage(self) -> bool:
        """Whether the client asked for the usage chunk (`stream_options.include_usage`)."""
        options = self.body.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True


@dataclass(slots=True)
class Completion:
    """A whole, successful OpenAI-shaped response. `raw` holds the provider's exact bytes when
    `data` is exactly what they say, so the client receives the provider's response verbatim."""

    data: dict[str, Any]
    raw: bytes | None
    usage: Usage | None

    @property
    def model(self) -> str | None:
        model = self.data.get("model")
        return model if isinstance(model, str) else None

    @property
    def response_id(self) -> str | None:
        rid = self.data.get("id")
        return rid if isinstance(rid, str) else None

    @property
    def finish_reasons(self) -> tuple[str, ...]:
        choices = self.data.get("choices")
        if not isinstance(choices, list):
            return ()
        return tuple(c["finish_reason"] for c in choices if isinstance(c, dict) and c.get("finish_reason"))


@dataclass(slots=True)
class Chunk:
    """One OpenAI `chat.completion.chunk`; `raw` as for Completion. `usage` is set on the chunk
    that reports the call's usage (however the provider carried it). A chunk that is not
    `visible` exists only to carry usage the client did not ask for, and is not sent."""

    data: dict[str, Any]
    raw: bytes | None = None
    usage: Usage | None = None
    visible: bool = True


class ChunkStream:
    """The chunks of an open stream. Iterate it, then always `aclose()` it (which also cancels
    the upstream request when the stream is abandoned part-way)."""

    def __init__(
        self,
        chunks: AsyncIterator[Chunk],
        close: Callable[[], Awaitable[None]],
        reported: Callable[[], Usage | None] | None = None,
    ) -> None:
        self._chunks = chunks
        self._close = close
        self._reported = reported

    def reported_usage(self) -> Usage | None:
        """What the provider has reported of the usage so far, for a stream that ends before its
        final usage (cut, abandoned): Anthropic gives the input counts at the start; OpenAI-compatible
        providers give nothing until the end."""
        return self._reported() if self._reported is not None else None

    def __aiter__(self) -> ChunkStream:
        return self

    async def __anext__(self) -> Chunk:
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        aclose = getattr(self._chunks, "aclose", None)
        try:
            if aclose is not None:
                await aclose()
        finally:
            await self._close()


class Provider(ABC):
    """One configured provider. Adapters raise `UpstreamProblem`s for failed exchanges and
    `InvalidRequest` for requests they cannot express."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def kind(self) -> str:
        """The wire format, also the span's `gen_ai.provider.name` unless overridden."""
        return type(self).__name__.removesuffix("Provider").lower()

    @property
    def address(self) -> tuple[str, int] | None:
        """Host and port of the provider's server, for telemetry; None when in-process."""
        return None

    @abstractmethod
    async def complete(self, call: ProviderCall) -> Completion: ...

    @abstractmethod
    async def open_stream(self, call: ProviderCall) -> ChunkStream:
        """Returns once the provider accepted the stream (status checked), before any chunk."""

    async def embed(self, call: ProviderCall) -> Completion:
        raise InvalidRequest(f"Model '{call.target.model}' is served by a provider without embeddings.", param="model")
