"""The contract of an API the gateway speaks: to clients (a request comes in, an answer goes back in
the same shape) and, for providers that speak it too, on the wire (the same shapes go upstream).

One module per API implements it (`chat`, `embeddings`, `responses`, `messages`). Everything here
is plain data in and out: no HTTP, no I/O. A fourth API is one more module.

Client side: validate a body and name its model, read what routing and admission need (`Shape`),
estimate tokens the provider did not report, render errors and frame stream events in the API's own
shape, put the model name the client should see into answers.
Wire side: read the usage and check the answer of a whole response, and read a stream event by
event (`StreamReader`: its usage, its end, its errors).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from gateway.errors import GatewayError, UpstreamFailed
from gateway.metering.tokenizers import Tokenizer
from gateway.metering.usage import Usage
from policies.guardrails import Api as GuardShape


@dataclass(slots=True)  # not frozen: one per call, and frozen fields cost ~0.1 us each to set
class Shape:
    """What routing and admission need to know about a request body, read once.

    `max_output` is the most output tokens the request allows over all its answers (None: no cap
    given); `native_only` names a parameter only a provider speaking this API itself can serve
    (stored conversation state, hosted tools): targets that would need a translation are skipped.
    """

    prompt_chars: int = 0
    images: int = 0
    messages: int = 0
    max_output: int | None = None
    choices: int = 1
    tools: bool = False
    json_schema: bool = False
    stream: bool = False
    native_only: str | None = None


@dataclass(slots=True)
class Event:
    """One event of a stream in some API's shape (a `chat.completion.chunk`, a Responses event, a
    Messages event). `raw` holds the provider's exact bytes while `data` is exactly what they say;
    `usage` is set on the event that completes the call's usage; an event that is not `visible`
    exists only to carry usage the client did not ask for."""

    data: dict[str, Any]
    raw: bytes | None = None
    usage: Usage | None = None
    visible: bool = True


class StreamReader(ABC):
    """Reads one provider stream in this API's shape, one SSE event at a time."""

    @abstractmethod
    def read(self, name: str | None, data: bytes) -> Event | None:
        """The event for one SSE event (None for one that carries nothing for the client, e.g. chat's
        `[DONE]`). Raises `UpstreamStreamError` for an error event, `UpstreamBadResponse` for one that
        cannot be read."""

    @property
    @abstractmethod
    def ended(self) -> bool:
        """Whether the stream's terminal event has been read: the rest of the body is only its end."""

    @abstractmethod
    def check_complete(self) -> None:
        """At the end of the body: raise `UpstreamStreamError` if the stream stopped short."""

    def reported(self) -> Usage | None:
        """What the provider has reported of the usage so far (for a stream cut before its final count)."""
        return None


class Api(ABC):
    """One API, as clients send it and as providers that speak it receive it."""

    name: ClassVar[str]  # chat | embeddings | responses | messages: the ledger's `operation`
    operation: ClassVar[str]  # the GenAI `gen_ai.operation.name`: chat | embeddings
    streams: ClassVar[bool] = True
    # Request headers of this API that a provider speaking it natively also receives.
    native_headers: ClassVar[tuple[str, ...]] = ()
    # The shape guardrails read this API's bodies and events in (embeddings: their own scan).
    guard_shape: ClassVar[GuardShape | None] = None

    # -- client side --------------------------------------------------------------------------

    @abstractmethod
    def validate(self, body: dict[str, Any]) -> str:
        """Check the body (a 400 `InvalidRequest` naming the field when it is wrong); its model name."""

    @abstractmethod
    def shape(self, body: Mapping[str, Any]) -> Shape: ...

    def prompt_tokens(self, body: Mapping[str, Any], tok: Tokenizer) -> int | None:
        """The prompt's tokens as a provider speaking this API counts them, for admission near a cap:
        exact where `tok` is, else `tok`'s documented bound; None when the body holds something that
        cannot be counted exactly (images, audio, files): the cheap bound stands then."""
        return None

    @abstractmethod
    def error_body(self, error: GatewayError) -> dict[str, Any]:
        """An error in this API's shape (the status and headers are the error's own)."""

    def stream_error(self, error: GatewayError, state: StreamState) -> list[dict[str, Any]]:
        """The events that end a stream broken after it started (by default one error body)."""
        return [self.error_body(error)]

    def frame(self, data: Mapping[str, Any] | None, raw: bytes | None = None) -> bytes:
        """One stream event as server-sent-event bytes (from `raw` when given, else from `data`):
        named by its `type`, as Responses and Messages events are."""
        payload = raw if raw is not None else encode(data)
        kind = data.get("type") if data is not None else None
        return b"event: " + str(kind or "message").encode() + b"\ndata: " + payload + b"\n\n"

    def stream_end(self) -> bytes:
        """What closes a successful stream after its last event (chat's `[DONE]`)."""
        return b""

    def set_model(self, data: dict[str, Any], model: str) -> str | None:
        """Put the model name the client should see into a whole answer; the name it replaced (None:
        nothing changed)."""
        return _rename(data, model)

    def set_stream_model(self, data: dict[str, Any], model: str) -> str | None:
        """The same for one stream event (most events carry no model)."""
        holder = self.stream_model_holder(data)
        return None if holder is None else _rename(holder, model)

    def stream_model_holder(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """The object of a stream event that names the model, if any."""
        return None

    @abstractmethod
    def output_text(self, data: Mapping[str, Any]) -> str:
        """The generated text of a whole answer (content and tool-call arguments), for estimates."""

    def event_text(self, data: Mapping[str, Any]) -> str:
        """The text one stream event sends, for estimates and capture."""
        return ""

    def finish_reasons(self, data: Mapping[str, Any]) -> list[str]:
        """Why a whole answer (or a stream event) ended, in the conventions' terms (stop, length...)."""
        return []

    def response_id(self, data: Mapping[str, Any]) -> str | None:
        """The provider's id of a whole answer (or of the response a stream event belongs to)."""
        value = data.get("id")
        return value if isinstance(value, str) else None

    def observe(self, state: StreamState, data: Mapping[str, Any]) -> None:
        """Note what a stream event says that the events ending the stream may need."""
        if state.response_id is None:
            state.response_id = self.response_id(data)

    # -- wire side ------------------------------------------------------------------------------

    @abstractmethod
    def usage(self, data: Mapping[str, Any]) -> Usage | None:
        """The usage a provider reported in a whole response, in the gateway's terms."""

    @abstractmethod
    def check_response(self, data: Mapping[str, Any]) -> None:
        """Raise `UpstreamBadResponse` when a provider's whole response lacks what this API promises."""

    def stream_reader(self, *, hide_usage: bool = False) -> StreamReader:
        raise NotImplementedError(f"{self.name} does not stream")


@dataclass(slots=True)
class StreamState:
    """What a relayed stream has said so far, for the events that end it (ids, sequence numbers)."""

    response_id: str | None = None
    model: str | None = None
    created: int | None = None
    sequence: int = -1
    started: bool = False


def encode(data: Any) -> bytes:
    """JSON bytes of an answer the gateway changed or built; 502 for a provider's answer nested too
    deep to encode again (orjson stops at 255 levels), which is checked here rather than on every event."""
    try:
        return orjson.dumps(data)
    except orjson.JSONEncodeError as exc:
        raise UpstreamFailed(f"The provider's answer could not be passed on ({exc}).") from None


def _rename(holder: dict[str, Any], model: str) -> str | None:
    old = holder.get("model")
    if old == model:
        return None
    holder["model"] = model
    return old if isinstance(old, str) else ""


def renamed(raw: bytes, old: str, new: str) -> bytes | None:
    """`raw` (a provider's JSON bytes) with its first `"model": <old>` pair naming `new`, without
    parsing and re-encoding the whole body; None when the bytes hold no such pair as written. An
    unescaped `"model":"..."` can only be a key and its value (quotes inside strings are escaped),
    and the answers of every API here name their model before any nested object could."""
    if not old:
        return None
    value, replacement = orjson.dumps(old), orjson.dumps(new)
    for separator in (b'":', b'": '):
        pair = b'"model' + separator + value
        at = raw.find(pair)
        if at >= 0:
            end = at + len(pair)
            return raw[:at] + b'"model' + separator + replacement + raw[end:]
    return None
