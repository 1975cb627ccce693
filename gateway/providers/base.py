"""The provider contract: send one request in an API the provider speaks, get a whole answer or an
open stream back. Translation between APIs happens before and after (`gateway.translate`); a
provider only ever sees bodies in the shape of the API it is asked to speak."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.apis.base import Api, Event
from gateway.metering.usage import Usage
from routing import Target


@dataclass(slots=True)
class ProviderCall:
    """One request for one target: `body` is in `api`'s shape and already names the upstream model."""

    target: Target
    api: Api
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)  # propagated: x-request-id, traceparent, ...


@dataclass(slots=True)
class Completion:
    """A whole, successful answer in the call's wire API. `raw` holds the provider's exact bytes when
    `data` is exactly what they say, so an untouched answer reaches the client verbatim."""

    data: dict[str, Any]
    raw: bytes | None
    usage: Usage | None


class EventStream:
    """The events of an open stream. Iterate it, then always `aclose()` it (which also cancels the
    upstream request when the stream is abandoned part-way)."""

    def __init__(
        self,
        events: AsyncIterator[Event],
        close: Callable[[], Awaitable[None]],
        reported: Callable[[], Usage | None] | None = None,
    ) -> None:
        self._events = events
        self._close = close
        self._reported = reported

    def reported_usage(self) -> Usage | None:
        """What the provider has reported of the usage so far, for a stream that ends before its
        final count (cut, abandoned): Anthropic gives the input counts at the start; OpenAI gives
        nothing until the end."""
        return self._reported() if self._reported is not None else None

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        aclose = getattr(self._events, "aclose", None)
        try:
            if aclose is not None:
                await aclose()
        finally:
            await self._close()


class Provider(ABC):
    """One configured provider. Adapters raise `UpstreamProblem`s for failed exchanges."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def kind(self) -> str:
        """The provider's type, also the span's `gen_ai.provider.name` (mapped by telemetry)."""
        return type(self).__name__.removesuffix("Provider").lower()

    @property
    @abstractmethod
    def apis(self) -> frozenset[str]:
        """The APIs this provider speaks natively (`chat`, `responses`, `messages`, `embeddings`)."""

    @property
    def address(self) -> tuple[str, int] | None:
        """Host and port of the provider's server, for telemetry; None when in-process."""
        return None

    @property
    def max_tokens_default(self) -> int | None:
        """The output cap to send when a translated request has none and this provider's API needs one."""
        return None

    @abstractmethod
    async def complete(self, call: ProviderCall) -> Completion: ...

    @abstractmethod
    async def open_stream(self, call: ProviderCall) -> EventStream:
        """Returns once the provider accepted the stream (status checked), before any event."""
