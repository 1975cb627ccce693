"""What every translation between two APIs shares: its error, and the stream contract.

A translation carries a call made in one API (the *client's*: the shape the caller sent and expects
back) over another (the *wire*: the shape the provider speaks). Each lives in a package named
`<client>_to_<wire>` with three parts, all pure (no I/O, no clock unless passed in):

- `request(body, ...) -> dict`: the client's request body as a wire request body;
- `response(data, ...) -> dict`: the provider's whole (non-streamed) wire response in the client's shape;
- a stream translator (`StreamTranslation`): the provider's wire events in, the client's events out.

A request the wire cannot express raises `TranslationError` naming the parameter; the gateway
answers it as a 400 `invalid_request` with that `param`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from gateway.metering.usage import Usage


class TranslationError(Exception):
    """A request that cannot be expressed on the wire API; `param` names the culprit (dotted path)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class StreamTranslation(Protocol):
    """One streamed call's translation, fed the wire's events in order.

    `feed` returns the client-shaped events each wire event becomes (often none, sometimes several).
    `finish` is called once when the wire stream ended cleanly, with the call's final usage (the
    provider's count, or the gateway's estimate when it gave none): it returns the closing events
    (for example Responses' `response.completed`, Messages' `message_delta` and `message_stop`).
    The SSE framing (`data:` lines, `event:` names, `[DONE]`) is not the translator's job, nor are
    the error events of a stream that breaks: the gateway writes those in the client's API shape.
    """

    def feed(self, event: Mapping[str, Any]) -> list[dict[str, Any]]: ...

    def finish(self, usage: Usage | None) -> list[dict[str, Any]]: ...
