"""The contract every upstream HTTP client implements.

Implementations raise only ``UpstreamConnectError``, ``UpstreamTimeout`` and
``UpstreamStreamError`` (from ``gateway.errors``); everything above them is client-agnostic.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds; `read` bounds each wait for data, `total` the whole exchange (None: unbounded)."""

    connect: float
    read: float
    total: float | None = None


class UpstreamResponse(ABC):
    """A response whose headers have arrived; the body is read or iterated, then closed."""

    status: int
    headers: Mapping[str, str]  # looked up case-insensitively by lower-case name

    @abstractmethod
    async def read(self, limit: int | None = None) -> bytes:
        """The whole body (at most `limit` bytes when given), then the response is released."""

    @abstractmethod
    def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives."""

    @abstractmethod
    async def finish(self) -> None:
        """The caller has read the last event it needs (a stream's terminal event): wait, briefly, for
        the end of the body, so the connection goes back to the pool; drop it if the end does not come."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release the connection; safe to call twice, and mid-body (the connection is dropped)."""


class UpstreamClient(ABC):
    """Sends one request and returns once the response headers are in."""

    @abstractmethod
    async def send(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None, timeouts: Timeouts
    ) -> UpstreamResponse: ...

    @abstractmethod
    async def aclose(self) -> None: ...
