"""UpstreamClient on asyncio and httptools' C response parser: HTTP/1.1 with a keep-alive pool.

What a gateway needs from a client is narrow: POST a JSON body, read a JSON answer or an SSE stream,
keep connections alive, bound every wait. aiohttp does all that and much more (cookies, redirects,
proxies, multipart, tracing), at 68 us of CPU per call at c=16; this client writes the request in one
`transport.write`, parses the answer with the parser uvicorn already uses (httptools, on llhttp),
and takes 20 (`python bench/upstream_bench.py`: both, and httpx, against the same stand-in). The
contract (`gateway.upstream.base`) is the same for every client, and tests/gateway/upstream checks
each against the same scripted server.

- One pool of idle connections per scheme, host and port; at most `max_connections` in use at once
  (a call beyond waits, within its connect timeout). An idle connection is dropped after
  `KEEPALIVE_S`, and whenever the server says `connection: close` or the body did not end cleanly.
- A pooled connection the server closed meanwhile (nothing came back) is replaced by a new one, once,
  for a request safe to repeat; a POST is never sent twice (the same rule as aiohttp's).
- `accept-encoding: identity` is sent; a body the server compressed anyway (gzip, deflate) is
  decompressed; any other content coding is refused as a broken answer.
- Bounds: the response head may not exceed `MAX_HEAD_BYTES`; reading pauses while more than
  `HIGH_WATER` bytes of a body wait for the caller; every wait is bounded by the read timeout and
  what is left of the total one.
- No cookies, no redirects, no proxies: none is wanted between a gateway and its providers.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import re
import ssl
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

from gateway.errors import UpstreamConnectError, UpstreamStreamError, UpstreamTimeout
from gateway.upstream.base import Timeouts, UpstreamClient, UpstreamResponse

KEEPALIVE_S = 30.0  # an idle connection older than this is closed rather than reused
MAX_HEAD_BYTES = 64 * 1024  # a response's status line and headers
HIGH_WATER = 256 * 1024  # body bytes buffered for the caller before reading pauses
WRITE_CHUNK = 256 * 1024  # a large request body is written in pieces of this size, with flow control
END_OF_BODY_GRACE_S = 0.5  # as the aiohttp client: how long finish() waits for the end of a stream's body
# A reused connection that closes with nothing received was most likely closed by the server while
# idle (the keep-alive race). A request safe to repeat is sent again on a new connection, once; a
# POST never is (the provider may have started on it), as with aiohttp: that failure is the caller's.
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "accept-encoding"})
_BREAKS = re.compile(r"[\r\n\x00]")  # in a header name or value, they would end the header early


@dataclass(frozen=True, slots=True)
class _Origin:
    key: tuple[str, str, int]  # scheme, host, port: one pool each
    host: str
    port: int
    tls: bool
    host_header: str
    target: str  # path and query


@functools.lru_cache(maxsize=1024)
def _origin(url: str) -> _Origin:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UpstreamConnectError(f"the request failed (not an http(s) URL: {parts.scheme or 'no scheme'})")
    tls = parts.scheme == "https"
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError:
        raise UpstreamConnectError("the request failed (the URL's port is not valid)") from None
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == (443 if tls else 80) else f"{shown}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Origin((parts.scheme, host, port), host, port, tls, host_header, target)


class _Connection(asyncio.Protocol):
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


class _Deadline:
    """The read timeout for each wait, within what is left of the total timeout."""

    __slots__ = ("read", "until")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeouts: Timeouts) -> None:
        self.read = timeouts.read
        self.until = None if timeouts.total is None else loop.time() + timeouts.total

    def next_wait(self, loop: asyncio.AbstractEventLoop) -> float:
        return self.within(loop, self.read)

    def within(self, loop: asyncio.AbstractEventLoop, seconds: float) -> float:
        """`seconds`, or what is left of the total when that is less."""
        if self.until is None:
            return seconds
        return max(0.0, min(seconds, self.until - loop.time()))


class HttptoolsResponse(UpstreamResponse):
    _released = True  # until fully built: a refused coding raises in __init__ and send() frees the slot

    def __init__(self, client: HttptoolsClient, origin: _Origin, conn: _Connection, deadline: _Deadline) -> None:
        self._client, self._origin, self._conn, self._deadline = client, origin, conn, deadline
        self.status = conn.status
        self.headers = conn.headers
        coding = conn.headers.get("content-encoding", "identity").strip().lower()
        self._decoder = None if coding == "identity" else _decoder(coding)
        self._released = False

    async def _next(self) -> bytes | None:
        """The next body bytes, decoded (b"" when a piece decoded to nothing); None at the end."""
        conn = self._conn
        while True:
            data = conn.take()
            if data is not None:
                return data if self._decoder is None else self._decoder.decompress(data)
            if conn.complete:  # (before the error: one after the end is about the connection, not this body)
                return None if self._decoder is None else (self._decoder.flush() or None)
            if conn.error is not None:
                raise conn.error
            waiter = conn.data_waiter = conn.loop.create_future()
            try:
                async with asyncio.timeout(self._deadline.next_wait(conn.loop)):
                    await waiter
            except TimeoutError:
                raise UpstreamTimeout("timed out waiting for the provider's answer") from None

    async def read(self, limit: int | None = None) -> bytes:
        body = bytearray()
        try:
            while (data := await self._next()) is not None:
                body += data
                if limit is not None and len(body) >= limit:
                    break
        except UpstreamTimeout:
            raise UpstreamTimeout("timed out reading the response body") from None
        except UpstreamStreamError as exc:
            raise UpstreamStreamError(f"the connection broke while reading the body ({exc})") from None
        except zlib.error:
            raise UpstreamStreamError("the provider's compressed body is corrupt") from None
        finally:
            self._release()
        return bytes(body if limit is None else body[:limit])

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        try:
            while (data := await self._next()) is not None:
                if data:
                    yield data
        except UpstreamTimeout:
            raise UpstreamTimeout("timed out waiting for the next part of the stream") from None
        except UpstreamStreamError as exc:
            raise UpstreamStreamError(f"the stream broke ({exc})") from None
        except zlib.error:
            raise UpstreamStreamError("the provider's compressed stream is corrupt") from None

    async def finish(self) -> None:
        conn = self._conn
        if self._released:
            return
        grace_ends = conn.loop.time() + END_OF_BODY_GRACE_S
        while not conn.complete and conn.error is None and not conn.body:  # body: data after the last event
            waiter = conn.data_waiter = conn.loop.create_future()
            try:
                async with asyncio.timeout_at(grace_ends):
                    await waiter
            except TimeoutError:
                break
        self._release()  # back to the pool only after a clean end

    async def aclose(self) -> None:
        self._release()

    def __del__(self) -> None:
        """A response dropped without being read or closed still gives its slot back (its connection,
        in an unknown state, is closed), as aiohttp's does: a leak would starve the pool."""
        if not self._released:
            self._released = True
            with contextlib.suppress(Exception):  # the loop may be gone
                self._conn.close()
            self._client._slots.release()

    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        conn = self._conn
        if conn.complete and conn.keep_alive and not conn.body and conn.error is None and not conn.closed:
            self._client._idle(self._origin, conn)
        else:
            conn.close()  # its state is unknown (or the server closes it): not reused
        self._client._slots.release()


def _decoder(coding: str) -> zlib._Decompress:
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if coding == "deflate":
        return zlib.decompressobj(32 + zlib.MAX_WBITS)  # zlib-wrapped (what the name means); gzip too
    raise UpstreamStreamError(f"the provider answered in a content coding the gateway did not ask for ({coding})")


class HttptoolsClient(UpstreamClient):
    def __init__(self, *, max_connections: int) -> None:
        self._pools: dict[tuple[str, str, int], list[_Connection]] = {}
        self._slots = asyncio.Semaphore(max_connections)
        self._tls: ssl.SSLContext | None = None
        self._closed = False

    async def send(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None, timeouts: Timeouts
    ) -> UpstreamResponse:
        origin = _origin(url)
        head = _request_head(method, origin, headers, body)
        loop = asyncio.get_running_loop()
        deadline = _Deadline(loop, timeouts)
        if self._slots.locked():  # every connection is in use: wait for one, as for a connect
            try:
                async with asyncio.timeout(deadline.within(loop, timeouts.connect)):
                    await self._slots.acquire()
            except TimeoutError:
                raise UpstreamTimeout("no response within the configured timeout") from None
        else:
            await self._slots.acquire()  # at once
        try:
            for fresh in (False, True):
                conn = self._pooled(origin, loop) if not fresh else None
                if conn is None:
                    conn = await self._connect(origin, loop, timeouts, deadline)
                try:
                    await self._exchange(conn, head, body, deadline)
                    return HttptoolsResponse(self, origin, conn, deadline)  # (refuses a coding it cannot read)
                except UpstreamStreamError as exc:
                    conn.close()
                    if conn.reused and conn.received == 0 and method in _IDEMPOTENT and not fresh:
                        continue  # the server had closed this idle connection: a new one, once
                    raise UpstreamConnectError(f"the request failed ({exc})") from None
                except BaseException:
                    conn.close()
                    raise
            raise AssertionError("unreachable")  # pragma: no cover
        except BaseException:
            self._slots.release()
            raise

    def _pooled(self, origin: _Origin, loop: asyncio.AbstractEventLoop) -> _Connection | None:
        pool = self._pools.get(origin.key)
        now = loop.time()
        while pool:
            conn = pool.pop()
            if conn.reusable(now):
                conn.reused = True
                return conn
            conn.close()
        return None

    def _idle(self, origin: _Origin, conn: _Connection) -> None:
        if self._closed:
            conn.close()
            return
        conn.idle_since = conn.loop.time()
        self._pools.setdefault(origin.key, []).append(conn)

    async def _connect(
        self, origin: _Origin, loop: asyncio.AbstractEventLoop, timeouts: Timeouts, deadline: _Deadline
    ) -> _Connection:
        tls = self._tls_context() if origin.tls else None
        try:
            async with asyncio.timeout(deadline.within(loop, timeouts.connect)):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop),
                    origin.host,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls else None,
                )
        except TimeoutError:
            raise UpstreamTimeout("no response within the configured timeout") from None
        except ssl.SSLError as exc:
            raise UpstreamConnectError(f"could not connect (TLS: {exc.reason or type(exc).__name__})") from None
        except OSError as exc:
            raise UpstreamConnectError(f"could not connect ({exc.strerror or 'refused'})") from None
        return conn

    async def _exchange(self, conn: _Connection, head: bytes, body: bytes | None, deadline: _Deadline) -> None:
        """Write the request and wait for the response head."""
        arrived = conn.start()
        transport = conn.transport
        assert transport is not None
        if conn.closed or transport.is_closing():
            raise UpstreamStreamError("the connection closed")
        if body is None or len(body) <= WRITE_CHUNK:
            transport.write(head + body if body else head)
        else:
            transport.write(head)
            view = memoryview(body)
            for start in range(0, len(body), WRITE_CHUNK):
                transport.write(view[start : start + WRITE_CHUNK])
                if conn._write_ready is not None:
                    try:
                        async with asyncio.timeout(deadline.next_wait(conn.loop)):
                            await conn.drain()
                    except TimeoutError:
                        raise UpstreamTimeout("timed out sending the request body") from None
                if conn.error is not None:
                    raise conn.error
                if conn.closed or conn.complete:  # answered early: the rest is not sent, so never reused
                    conn.keep_alive = False
                    break
        try:
            async with asyncio.timeout(deadline.next_wait(conn.loop)):
                await arrived
        except TimeoutError:
            raise UpstreamTimeout("no response within the configured timeout") from None

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    async def aclose(self) -> None:
        self._closed = True
        for pool in self._pools.values():
            for conn in pool:
                conn.close()
        self._pools.clear()


def _request_head(method: str, origin: _Origin, headers: Mapping[str, str], body: bytes | None) -> bytes:
    lines = [f"{method} {origin.target} HTTP/1.1\r\nhost: {origin.host_header}\r\naccept-encoding: identity\r\n"]
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"content-length: {len(body) if body else 0}\r\n")
    for name, value in headers.items():
        if name.lower() in _OWN_HEADERS:
            continue
        if _BREAKS.search(name) or _BREAKS.search(value):
            raise UpstreamConnectError("the request failed (a header name or value holds a line break)")
        lines.append(f"{name}: {value}\r\n")
    lines.append("\r\n")
    try:
        return "".join(lines).encode("latin-1")
    except UnicodeEncodeError:
        raise UpstreamConnectError("the request failed (a header holds characters HTTP cannot carry)") from None
