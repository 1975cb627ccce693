"""uvicorn's httptools protocol with the bounds a public edge needs, enforced where the bytes arrive.

uvicorn itself bounds neither the size of a request head nor the time it takes to arrive: httptools
buffers a header value until its end (a 50 MB header is 50 MB of Python bytes, grown piece by
piece), and a connection that dribbles its head or its body is never timed out. `EdgeProtocol`
adds, per connection (`EdgeLimits`):

- the head (request line and headers) is parsed only up to `max_header_bytes` (a chunked body's
  trailer fields and chunk framing get as much again), with at most `max_headers` fields: beyond
  either, 431;
- a request's head must be complete `header_timeout` after the connection opened (or, on a
  keep-alive connection, after the request's first byte): else 408; a connection that sent nothing
  by then is closed silently;
- a body may not go quiet for `body_timeout` while the gateway is waiting for it: else 408;
- a connection beyond `max_connections` open ones gets 503 to its first request;
- malformed HTTP (NUL or DEL in a header, duplicate Content-Length, Content-Length with chunked,
  raw non-ASCII in the target, ...) gets 400.

Each of these answers is the error object of the API the request's path names, as far as it was read
(Anthropic's under `/v1/messages`, else OpenAI's: `wire.error_response`), with `connection: close`;
the write side is then shut and what the client still sends is read and dropped for a moment before
the connection closes, so the client reads the answer instead of a reset. None of the clocks runs
while a response is being produced: streams and long upstream calls are not cut.

On the hot path (a whole request in one read) this costs a few attribute checks per read and no
timer: the timers are armed only when a read ends in the middle of a head or a body.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from gateway.errors import (
    GatewayError,
    HeadersTooLarge,
    InvalidRequest,
    RequestTimeout,
    ServiceUnavailable,
)
from gateway.serving.limits import EdgeConfig
from gateway.serving.wire import error_response

log = logging.getLogger("agentgw.edge")

# Where the connection is in its current request.
_AWAIT = 0  # between requests: no byte of the next one parsed yet
_HEAD = 1  # the request line and headers are arriving
_BODY = 2  # the head is complete (a cycle serves the request), its body is arriving

CHUNK_FRAMING = 32  # bytes a chunk's size line and CRLFs may take (16 hex digits), without extensions
LINGER_SECONDS = 2.0  # after an answer the protocol wrote itself: how long to drain the client's leftovers


class _Refused(Exception):
    """Raised in a parser callback to stop parsing; the answer is in `EdgeProtocol._refusal`."""


class _Trailers(list[tuple[bytes, bytes]]):
    """Where a chunked body's trailer fields go (`EdgeProtocol.headers` once a head is complete): none is
    kept, the app has its headers already, and together they are bounded as a head is, whatever read
    they came in (they may all come in the one that ends the body)."""

    def __init__(self, protocol: EdgeProtocol) -> None:
        super().__init__()
        self.protocol = protocol
        self.size = 0

    def append(self, field: tuple[bytes, bytes]) -> None:
        name, value = field
        self.size += len(name) + len(value) + 4
        if self.size > self.protocol.limits.max_header_bytes:
            self.protocol._refusal = HeadersTooLarge(self.protocol._framing_error())
            raise _Refused


class EdgeProtocol(HttpToolsProtocol):
    """One client connection, bounded as the module docstring says. Needs an `EdgeConfig`."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not isinstance(config, EdgeConfig):
            raise TypeError("EdgeProtocol needs an EdgeConfig: build it with gateway.serving.uvicorn_config")
        super().__init__(config, server_state, app_state, _loop)
        self.limits = config.limits
        self._phase = _AWAIT
        self._head_bytes = 0  # bytes of the current head read so far
        self._framing_left = 0  # bytes a body may still spend on anything but content (chunk lines, trailers)
        self._trailers = _Trailers(self)
        self._last_read = 0.0  # loop time of the last read of a body
        self._read_timer: asyncio.TimerHandle | None = None
        self._linger_timer: asyncio.TimerHandle | None = None
        self._refusal: GatewayError | None = None
        self._closing = False  # answered and closing: nothing more is parsed
        self._over_capacity = False

    # Connection events

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._over_capacity = len(self.connections) > self.limits.max_connections
        self._read_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._cancel_read_timer()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._closing:
            return  # answered: what still arrives is dropped until the connection closes
        try:
            if self._phase != _BODY and len(data) <= self.limits.max_header_bytes - self._head_bytes:
                self._head_bytes += len(data)  # the usual read: a whole small request, or part of a head
                self.parser.feed_data(data)
            else:
                self._feed(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
                return
            # No websockets here: the request was served as plain HTTP; what followed its head is dropped.
        except httptools.HttpParserError as exc:
            self._refuse(self._refusal or _malformed(exc))
            return
        if self._phase == _BODY:
            self._last_read = self.loop.time()
        if self._read_timer is None and not self._closing:
            self._arm_read_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._phase == _HEAD and self._read_timer is None and not self.transport.is_closing():
            # Part of the next (pipelined) request is in: its head clock starts now, not the idle one.
            self._unset_keepalive_if_required()
            self._arm_read_timer()

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = _HEAD

    def on_headers_complete(self) -> None:
        if self._read_timer is not None:  # (inline: this and on_message_complete run for every request)
            self._read_timer.cancel()
            self._read_timer = None
        # Counted here, not per header: the byte bound already holds the list to what 64 KiB can carry.
        if len(self.headers) > self.limits.max_headers:
            self._refusal = HeadersTooLarge(
                f"The request has more than {self.limits.max_headers} header fields, the most this gateway accepts."
            )
            raise _Refused
        if self._over_capacity:
            self._refusal = ServiceUnavailable(
                f"The gateway is at its limit of {self.limits.max_connections} open connections; retry shortly.",
                retry_after=1,
            )
            raise _Refused
        super().on_headers_complete()
        self._phase = _BODY
        self._framing_left = self.limits.max_header_bytes
        self._trailers.size = 0
        self.headers = self._trailers  # uvicorn's `on_header` adds trailer fields here, not to the app's

    def on_chunk_header(self) -> None:
        self._framing_left += CHUNK_FRAMING

    def on_body(self, body: bytes) -> None:
        self._framing_left += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._phase = _AWAIT
        self._head_bytes = 0
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    # The bounds

    def _feed(self, data: bytes | memoryview) -> None:
        """Parse a read that is a body's or may hold more head than is left of `max_header_bytes`,
        never letting a head grow past that, nor a body's framing:
        a chunked body's trailer fields are buffered like headers, and chunk extensions are not
        content, so what a body carries besides its content gets the same allowance as a head."""
        limit = self.limits.max_header_bytes
        while self._phase != _BODY:
            allowance = limit - self._head_bytes
            if len(data) <= allowance:
                self._head_bytes += len(data)
                break
            # This read may carry more head than allowed: parse only the allowance, then look again
            # (the head may have ended inside it, and a body or the next request follow).
            self._head_bytes = limit
            view = memoryview(data)
            self.parser.feed_data(view[:allowance])
            if self._phase != _BODY and self._head_bytes >= limit:
                too_large = f"The request line and headers exceed {limit} bytes, the most this gateway accepts."
                self._refuse(HeadersTooLarge(too_large))
                return
            data = view[allowance:]
        if self._phase == _BODY:
            self._framing_left -= len(data)  # on_body gives back what was content
        self.parser.feed_data(data)
        if self._phase == _BODY and self._framing_left < 0:
            self._refuse(HeadersTooLarge(self._framing_error()))

    def _framing_error(self) -> str:
        return f"The request's chunk framing and trailer fields exceed {self.limits.max_header_bytes} bytes."

    def _arm_read_timer(self) -> None:
        """After a read that left a request unfinished, start the clock it is held to."""
        if self._phase == _BODY:
            self._last_read = self.loop.time()
            self._read_timer = self.loop.call_later(self.limits.body_timeout, self._body_stalled)
        elif not self._response_owed():
            self._read_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def _cancel_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _head_timed_out(self) -> None:
        self._read_timer = None
        if self._phase == _HEAD:
            self._refuse(RequestTimeout(f"The request headers did not arrive within {self.limits.header_timeout:g} s."))
        elif self._phase == _AWAIT and not self._response_owed():
            self.transport.close()  # no request began: nothing to answer

    def _body_stalled(self) -> None:
        self._read_timer = None
        if self._phase != _BODY or self._closing:
            return
        now = self.loop.time()
        if self.flow.read_paused or self.cycle.waiting_for_100_continue:
            self._last_read = now  # the gateway is not reading (or owes a 100 Continue): not the client's silence
        quiet = now - self._last_read
        if quiet < self.limits.body_timeout:
            self._read_timer = self.loop.call_later(self.limits.body_timeout - quiet, self._body_stalled)
            return
        self._refuse(RequestTimeout(f"The request body stalled: nothing arrived for {self.limits.body_timeout:g} s."))

    def _response_owed(self) -> bool:
        cycle = self.cycle
        return cycle is not None and not cycle.response_complete

    def _refuse(self, error: GatewayError) -> None:
        """Answer `error` if the wire allows it, then close: the protocol's last word on a connection.

        An error about the request a cycle serves (found in its body) is answered if that cycle has
        not started its own response; an error about a request no cycle serves yet is answered if no
        earlier response is still owed. Otherwise the connection just closes."""
        if self._closing:
            return
        self._closing = True
        self._cancel_read_timer()
        self._unset_keepalive_if_required()
        cycle = self.cycle
        owed = self._response_owed()
        about_cycle = self._phase == _BODY  # else it is about a request no cycle serves yet
        answer = (owed and not cycle.response_started and not self.pipeline) if about_cycle else not owed
        if owed:
            cycle.disconnected = True  # the app hears http.disconnect; whatever it still sends is dropped
            cycle.message_event.set()
        log.debug("refused %s: %d %s", self.client, error.status, error.message)
        if not answer or self.transport.is_closing():
            self.transport.close()
            return
        self.transport.write(error_response(error, self.server_state.default_headers, self._path()))
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self._linger_timer = self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()

    def _path(self) -> str:
        """The current request's path as the app would route it (parsed and percent-decoded as uvicorn
        does), as far as its target was read; "" between requests or for a target that does not parse."""
        if self._phase == _AWAIT or not self.url:
            return ""
        try:
            path = (httptools.parse_url(self.url).path or b"").decode("ascii")
        except (httptools.HttpParserInvalidURLError, UnicodeDecodeError):
            return ""
        return urllib.parse.unquote(path) if "%" in path else path


def _malformed(exc: httptools.HttpParserError) -> InvalidRequest:
    """llhttp's reasons are fixed phrases ('Invalid header value char', 'Duplicate Content-Length'):
    safe to show, and they tell the caller what to fix."""
    reason = str(exc) if not isinstance(exc, httptools.HttpParserCallbackError) else ""
    return InvalidRequest(f"Malformed HTTP request: {reason or 'the request could not be read'}.")
