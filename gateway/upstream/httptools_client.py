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
  `connection.KEEPALIVE_S`, and whenever the server says `connection: close` or the body did not end cleanly.
- A pooled connection the server closed meanwhile (nothing came back) is replaced by a new one, once,
  for a request safe to repeat; a POST is never sent twice (the same rule as aiohttp's).
- `accept-encoding: identity` is sent; a body the server compressed anyway (gzip, deflate) is
  decompressed; any other content coding is refused as a broken answer.
- Bounds: every wait is bounded by the read timeout and what is left of the total one; the
  connection bounds the answer's head and what it buffers (`gateway.upstream.connection`).
- No cookies, no redirects, no proxies: none is wanted between a gateway and its providers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import ssl
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.errors import UpstreamConnectError, UpstreamStreamError, UpstreamTimeout
from gateway.upstream.base import Timeouts, UpstreamClient, UpstreamResponse
from gateway.upstream.connection import Connection

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

    def __init__(self, client: HttptoolsClient, origin: _Origin, conn: Connection, deadline: _Deadline) -> None:
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
            with _failures("timed out reading the response body", "the connection broke while reading the body"):
                while (data := await self._next()) is not None:
                    body += data
                    if limit is not None and len(body) >= limit:
                        break
        finally:
            self._release()
        return bytes(body if limit is None else body[:limit])

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        with _failures("timed out waiting for the next part of the stream", "the stream broke"):
            while (data := await self._next()) is not None:
                if data:
                    yield data

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


@contextlib.contextmanager
def _failures(timed_out: str, broke: str) -> Iterator[None]:
    """A body's failures, said for what the caller was doing (reading it whole, or streaming it)."""
    try:
        yield
    except UpstreamTimeout:
        raise UpstreamTimeout(timed_out) from None
    except UpstreamStreamError as exc:
        raise UpstreamStreamError(f"{broke} ({exc})") from None
    except zlib.error:
        raise UpstreamStreamError(f"{broke} (the provider's compressed body is corrupt)") from None


def _decoder(coding: str) -> zlib._Decompress:
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if coding == "deflate":
        return zlib.decompressobj(32 + zlib.MAX_WBITS)  # zlib-wrapped (what the name means); gzip too
    raise UpstreamStreamError(f"the provider answered in a content coding the gateway did not ask for ({coding})")


class HttptoolsClient(UpstreamClient):
    def __init__(self, *, max_connections: int) -> None:
        self._pools: dict[tuple[str, str, int], list[Connection]] = {}
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

    def _pooled(self, origin: _Origin, loop: asyncio.AbstractEventLoop) -> Connection | None:
        pool = self._pools.get(origin.key)
        now = loop.time()
        while pool:
            conn = pool.pop()
            if conn.reusable(now):
                conn.reused = True
                return conn
            conn.close()
        return None

    def _idle(self, origin: _Origin, conn: Connection) -> None:
        if self._closed:
            conn.close()
            return
        conn.idle_since = conn.loop.time()
        self._pools.setdefault(origin.key, []).append(conn)

    async def _connect(
        self, origin: _Origin, loop: asyncio.AbstractEventLoop, timeouts: Timeouts, deadline: _Deadline
    ) -> Connection:
        tls = self._tls_context() if origin.tls else None
        try:
            async with asyncio.timeout(deadline.within(loop, timeouts.connect)):
                _, conn = await loop.create_connection(
                    lambda: Connection(loop),
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

    async def _exchange(self, conn: Connection, head: bytes, body: bytes | None, deadline: _Deadline) -> None:
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
                try:
                    async with asyncio.timeout(deadline.next_wait(conn.loop)):
                        await conn.drain()  # at once unless the socket's buffer is full
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
