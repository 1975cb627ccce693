"""One HTTP/1.1 connection of the httptools upstream client: the request written, its answer parsed by
httptools (llhttp) as the bytes arrive, kept for the pool (`gateway.upstream.httptools_client`).

The connection holds what has arrived of the current answer (status, headers, body pieces, whether it
is complete, what broke it) and wakes whoever waits for more. Its bounds are its own: the answer's
head may not exceed `MAX_HEAD_BYTES`, and reading pauses while more than `HIGH_WATER` bytes of body
wait to be taken. Bytes nobody asked for (a second answer to one request, anything sent to an idle
connection) are not taken as the answer and get the connection closed.
"""

from __future__ import annotations

import asyncio
import collections
from typing import cast

import httptools

from gateway.errors import UpstreamStreamError

KEEPALIVE_S = 30.0  # an idle connection older than this is closed rather than reused
MAX_HEAD_BYTES = 64 * 1024  # a response's status line and headers
HIGH_WATER = 256 * 1024  # body bytes buffered for the caller before reading pauses


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: a request is written, its response parsed as the bytes arrive."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.idle_since = 0.0
        self.reused = False  # it served a request before this one
        self.closed = False
        self.error: Exception | None = None
        self._write_ready: asyncio.Future[None] | None = None
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.received = 0  # bytes of this response so far
        self.head_from = 0  # where the current head's bytes began (after any 1xx)
        self.head: asyncio.Future[None] | None = None
        self.body: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.complete = False  # the whole response (head and body) has been parsed
        self.keep_alive = False
        self.data_waiter: asyncio.Future[None] | None = None
        self.paused = False
        self._framed = False  # content-length or chunked: the body's end is in the bytes, not the close
        self._unasked = False  # bytes came after the response ended: they answer nothing that was asked

    def start(self) -> asyncio.Future[None]:
        """Ready for a new request; the returned future resolves when its response head is in."""
        self._reset()
        self.head = self.loop.create_future()
        return self.head

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transport is not a subclass

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        try:
            self.parser.feed_data(data)
            if not self.status and self.received - self.head_from > MAX_HEAD_BYTES:  # (httptools buffers a field)
                self._fail(UpstreamStreamError(f"the provider's response head is larger than {MAX_HEAD_BYTES} bytes"))
            if self._unasked:  # out of step with its requests (or idle and sent something): not reused
                self.close()
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamStreamError("the provider switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(UpstreamStreamError(f"the provider's answer is not valid HTTP ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.resume_writing()  # a writer waiting for the buffer to drain: it never will
        if exc is None and self.status and self.error is None and not self._framed and not self.complete:
            self.complete = True  # a body delimited by the close: its end is the close
            self._wake()
            return
        if not self.complete:
            broken = UpstreamStreamError(
                f"the connection closed ({type(exc).__name__})" if exc else "the connection closed"
            )
            self._fail(broken)
        self._wake()

    def pause_writing(self) -> None:
        if self._write_ready is None:
            self._write_ready = self.loop.create_future()

    def resume_writing(self) -> None:
        ready, self._write_ready = self._write_ready, None
        if ready is not None and not ready.done():
            ready.set_result(None)

    async def drain(self) -> None:
        if self._write_ready is not None:
            await self._write_ready

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self.complete or self.head is None:
            self._unasked = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._unasked:
            return
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        if self._unasked:
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (103 Early Hints): the real one follows
            self.headers = {}
            self.head_from = self.received  # its head counts apart; `received` stays: the server answered
            return
        self.status = status
        self._framed = "content-length" in self.headers or "chunked" in self.headers.get("transfer-encoding", "")
        if self.head is not None and not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self._unasked:
            return
        self.body.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if not self.status or self._unasked:  # the end of an interim answer, or of one nobody asked for
            return
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()
        self._wake()

    # for the response

    def _fail(self, error: Exception) -> None:
        self.error = self.error or error
        if self.head is not None and not self.head.done():
            self.head.set_exception(error)
            self.head.exception()  # retrieved: whoever awaits it sees it, nobody is warned otherwise
        self.close()
        self._wake()

    def _wake(self) -> None:
        waiter, self.data_waiter = self.data_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def take(self) -> bytes | None:
        """The body bytes buffered so far (None: none yet)."""
        if not self.body:
            return None
        data = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        self.body.clear()
        self.buffered = 0
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()
        return data

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()

    def reusable(self, now: float) -> bool:
        transport = self.transport
        return (
            transport is not None
            and not self.closed
            and not transport.is_closing()
            and now - self.idle_since < KEEPALIVE_S
        )
