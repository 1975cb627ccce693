"""The upstream clients against a raw HTTP/1.1 server on loopback that answers as scripted: each
client keeps the contract of `gateway.upstream.base` (bodies, streams, pooling, every bound, every
error type), the gateway's own `httptools` client checked side by side with aiohttp and httpx."""

from __future__ import annotations

import asyncio
import datetime
import gc
import gzip
import ipaddress
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.errors import UpstreamConnectError, UpstreamStreamError, UpstreamTimeout
from gateway.upstream import Timeouts, UpstreamClient, create_client
from gateway.upstream.httptools_client import HttptoolsClient

# (client, event loop): the gateway serves on uvloop; its own client is also checked on asyncio's loop.
CLIENTS = [("httptools", "uvloop"), ("httptools", "asyncio"), ("aiohttp", "uvloop"), ("httpx", "uvloop")]
FAST = Timeouts(connect=2, read=2, total=5)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[None]]


class Server:
    """Reads each request's head and body (content-length), hands them to the handler."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.requests: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions?x=1"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                self.requests.append(head + body)
                await self.handler(reader, writer, head + body)
                if writer.is_closing():
                    return
        finally:
            self.open -= 1
            writer.close()


def answer(body: bytes, *, status: str = "200 OK", extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


async def json_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
    writer.write(answer(b'{"ok": true}', extra="x-Mixed-Case: yes\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n"))
    await writer.drain()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def run(main: Callable[[], Coroutine[Any, Any, None]], loop: str = "uvloop") -> None:
    if loop == "uvloop":
        uvloop.run(main())
    else:
        asyncio.run(main())


def each_client(test: Callable[[UpstreamClient], Awaitable[None]]) -> Callable[[str, str], None]:
    """The test, once per client and loop."""

    def on(kind: str, loop: str) -> None:
        async def main() -> None:
            client = create_client(kind, max_connections=10)  # type: ignore[arg-type]
            try:
                await test(client)
            finally:
                await client.aclose()

        run(main, loop)

    on.__name__, on.__doc__ = test.__name__, test.__doc__
    return pytest.mark.parametrize(("kind", "loop"), CLIENTS)(on)


def own_client(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """The test on uvloop (it makes its own `HttptoolsClient`)."""

    def on() -> None:
        run(test)

    on.__name__, on.__doc__ = test.__name__, test.__doc__
    return on


@each_client
async def test_a_body_is_read_and_the_connection_kept_alive(client: UpstreamClient) -> None:
    async with Server(json_answer) as server:
        for _ in range(3):
            response = await client.send(
                "POST", server.url, headers={"authorization": "Bearer k"}, body=b"{}", timeouts=FAST
            )
            assert response.status == 200
            assert response.headers["x-mixed-case"] == "yes"
            assert response.headers.get("content-type") == "application/json"
            assert await response.read() == b'{"ok": true}'
        assert server.connections == 1
        sent = server.requests[0]
        assert sent.startswith(b"POST /v1/chat/completions?x=1 HTTP/1.1\r\n")
        assert b"authorization: bearer k\r\n" in sent.lower()
        assert sent.endswith(b"\r\n\r\n{}")


@each_client
async def test_a_stream_arrives_piece_by_piece(client: UpstreamClient) -> None:
    release = asyncio.Event()

    async def stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        writer.write(chunk(b"data: one\n\n"))
        await writer.drain()
        await release.wait()
        writer.write(chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        await writer.drain()

    async with Server(stream) as server:
        response = await client.send("POST", server.url, headers={}, body=b"{}", timeouts=FAST)
        pieces = response.iter_chunks()
        assert await anext(pieces) == b"data: one\n\n"  # before the rest was even written
        release.set()
        rest = b"".join([piece async for piece in pieces])
        assert rest == b"data: [DONE]\n\n"
        await response.finish()
        again = await client.send("POST", server.url, headers={}, body=b"{}", timeouts=FAST)
        await again.aclose()
        assert server.connections == 1  # a stream that ended cleanly gave its connection back


@each_client
async def test_a_body_ended_by_the_close_is_whole(client: UpstreamClient) -> None:
    async def close_delimited(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        writer.write(b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{"a":')
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b" 1}")
        await writer.drain()
        writer.close()

    async with Server(close_delimited) as server:
        response = await client.send("POST", server.url, headers={}, body=b"{}", timeouts=FAST)
        assert await response.read() == b'{"a": 1}'


@each_client
async def test_a_provider_that_never_answers_times_out(client: UpstreamClient) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        await asyncio.sleep(5)

    async with Server(silent) as server:
        with pytest.raises(UpstreamTimeout):
            await client.send(
                "POST", server.url, headers={}, body=b"{}", timeouts=Timeouts(connect=1, read=0.3, total=1)
            )


@each_client
async def test_a_body_that_stalls_times_out(client: UpstreamClient) -> None:
    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npart")
        await writer.drain()
        await asyncio.sleep(5)

    async with Server(stalls) as server:
        response = await client.send("POST", server.url, headers={}, body=b"{}", timeouts=Timeouts(1, 0.3, None))
        with pytest.raises(UpstreamTimeout):
            await response.read()


@each_client
async def test_a_refused_connection_is_a_connect_error(client: UpstreamClient) -> None:
    async with Server(json_answer) as server:
        url = server.url
    await asyncio.sleep(0.05)
    with pytest.raises(UpstreamConnectError):
        await client.send("POST", url, headers={}, body=b"{}", timeouts=FAST)


@each_client
async def test_a_body_cut_short_is_a_stream_error(client: UpstreamClient) -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this")
        await writer.drain()
        writer.close()

    async with Server(cut) as server:
        response = await client.send("POST", server.url, headers={}, body=b"{}", timeouts=FAST)
        with pytest.raises(UpstreamStreamError):
            await response.read()
        stream = await client.send("POST", server.url, headers={}, body=b"{}", timeouts=FAST)
        with pytest.raises(UpstreamStreamError):
            async for _ in stream.iter_chunks():
                pass
        await stream.aclose()


@each_client
async def test_a_compressed_body_is_decompressed(client: UpstreamClient) -> None:
    async def gzipped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        writer.write(answer(gzip.compress(b'{"zipped": true}'), extra="content-encoding: gzip\r\n"))
        await writer.drain()

    async with Server(gzipped) as server:
        response = await client.send("POST", server.url, headers={}, body=b"{}", timeouts=FAST)
        assert await response.read() == b'{"zipped": true}'


@each_client
async def test_read_with_a_limit_stops_there(client: UpstreamClient) -> None:
    async def big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        writer.write(answer(b"x" * 200_000))
        await writer.drain()

    async with Server(big) as server:
        response = await client.send("POST", server.url, headers={}, body=b"{}", timeouts=FAST)
        assert await response.read(limit=1000) == b"x" * 1000


@each_client
async def test_a_large_request_body_arrives_whole(client: UpstreamClient) -> None:
    body = bytes(range(256)) * 12_000  # 3 MB
    async with Server(json_answer) as server:
        response = await client.send("POST", server.url, headers={}, body=body, timeouts=FAST)
        await response.read()
        assert server.requests[0].endswith(body)


# The gateway's own client: what the others do differently or do not promise.


async def own(max_connections: int = 10) -> HttptoolsClient:
    return HttptoolsClient(max_connections=max_connections)


@own_client
async def test_an_idle_connection_the_server_dropped_is_replaced_once_for_a_get() -> None:
    """The keep-alive race: the server closes a connection just as it is reused, sending nothing.
    A GET goes again on a new connection; a second such failure is the caller's."""

    async def answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        writer.write(answer(b"{}"))
        await writer.drain()

    client = await own()
    async with Server(answers) as server:
        await (await client.send("GET", server.url, headers={}, body=None, timeouts=FAST)).read()
        conn = client._pools[("http", "127.0.0.1", server.port)][0]
        assert not conn.closed
        server.handler = _close_at_once  # it reads the next request and closes: to the client, the race
        with pytest.raises(UpstreamConnectError):  # the new connection is closed too: no third try
            await client.send("GET", server.url, headers={}, body=None, timeouts=FAST)
        assert (len(server.requests), server.connections) == (3, 2)
        server.handler = answers
        third = await client.send("GET", server.url, headers={}, body=None, timeouts=FAST)
        assert await third.read() == b"{}"
    await client.aclose()


async def _close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
    writer.close()


@each_client
async def test_a_post_is_never_sent_twice(client: UpstreamClient) -> None:
    """A POST whose reused connection closes before any answer may have been started on (and billed)
    by the provider: the failure is the caller's, the request is not repeated behind its back, whether
    the close comes at once (the keep-alive race) or after a while."""
    for delay in (0.0, 0.3):

        async def then_closes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
            if len(server.requests) % 2:  # the first request on each connection is answered
                writer.write(answer(b"{}"))
                await writer.drain()
                return
            await asyncio.sleep(delay)  # noqa: B023 - the handler runs within its loop turn
            writer.close()

        async with Server(then_closes) as server:
            await (await client.send("POST", server.url, headers={}, body=b"{}", timeouts=FAST)).read()
            with pytest.raises((UpstreamConnectError, UpstreamStreamError)):
                await (await client.send("POST", server.url, headers={}, body=b"{}", timeouts=FAST)).read()
            assert (len(server.requests), server.connections) == (2, 1)


@own_client
async def test_the_server_s_connection_close_is_honoured() -> None:
    async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        writer.write(answer(b"{}", extra="connection: close\r\n"))
        await writer.drain()

    client = await own()
    async with Server(closing) as server:
        for _ in range(2):
            await (await client.send("POST", server.url, headers={}, body=b"{}", timeouts=FAST)).read()
        assert server.connections == 2
        assert not client._pools.get(("http", "127.0.0.1", server.port))
    await client.aclose()


@own_client
async def test_connections_in_use_are_bounded() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        await asyncio.sleep(0.1)
        writer.write(answer(b"{}"))
        await writer.drain()

    client = await own(max_connections=2)
    async with Server(slow) as server:

        async def call() -> bytes:
            return await (await client.send("POST", server.url, headers={}, body=b"{}", timeouts=FAST)).read()

        assert await asyncio.gather(*(call() for _ in range(6))) == [b"{}"] * 6
        assert server.most_open == 2
        held = [await client.send("POST", server.url, headers={}, body=b"{}", timeouts=FAST) for _ in range(2)]
        with pytest.raises(UpstreamTimeout):  # both in use and held: a third waits no longer than its connect timeout
            await client.send("POST", server.url, headers={}, body=b"{}", timeouts=Timeouts(0.2, 1, None))
        for response in held:
            await response.aclose()
        await call()  # the slots came back
    await client.aclose()


@own_client
async def test_a_cancelled_call_drops_its_connection_and_frees_its_slot() -> None:
    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        if len(server.requests) == 1:
            await asyncio.sleep(5)
        writer.write(answer(b"{}"))
        await writer.drain()

    client = await own(max_connections=1)
    async with Server(stalls) as server:
        task = asyncio.create_task(client.send("POST", server.url, headers={}, body=b"{}", timeouts=FAST))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        response = await client.send("POST", server.url, headers={}, body=b"{}", timeouts=FAST)
        assert await response.read() == b"{}"
        assert server.connections == 2
    await client.aclose()


@own_client
async def test_a_stream_without_its_end_is_not_pooled() -> None:
    async def never_ends(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunk(b"data: [DONE]\n\n"))
        await writer.drain()
        await asyncio.sleep(5)

    client = await own()
    async with Server(never_ends) as server:
        response = await client.send("POST", server.url, headers={}, body=b"{}", timeouts=FAST)
        async for piece in response.iter_chunks():
            assert piece == b"data: [DONE]\n\n"
            break
        await response.finish()  # waits the grace for the end, which does not come
        assert not client._pools.get(("http", "127.0.0.1", server.port))
    await client.aclose()


@own_client
async def test_interim_answers_are_skipped_and_heads_are_bounded() -> None:
    async def early_hints(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n" + answer(b"{}"))
        await writer.drain()

    async def endless_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\n" + b"x-filler: " + b"y" * 100_000)  # and on, never ending
        await writer.drain()
        await asyncio.sleep(5)

    client = await own()
    async with Server(early_hints) as server:
        response = await client.send("POST", server.url, headers={}, body=b"{}", timeouts=FAST)
        assert (response.status, await response.read()) == (200, b"{}")
        assert "link" not in response.headers
    async with Server(endless_head) as server:
        with pytest.raises(UpstreamConnectError, match="larger than 65536 bytes"):
            await client.send("POST", server.url, headers={}, body=b"{}", timeouts=FAST)
    await client.aclose()


@own_client
async def test_a_content_coding_it_cannot_read_is_refused_and_its_connection_dropped() -> None:
    async def brotli(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        writer.write(answer(b"\x1b\x00", extra="content-encoding: br\r\n"))
        await writer.drain()

    client = await own(max_connections=1)
    async with Server(brotli) as server:
        for _ in range(3):  # the slot came back
            with pytest.raises(UpstreamConnectError, match=r"content coding .* \(br\)"):
                await client.send("POST", server.url, headers={}, body=b"{}", timeouts=FAST)
        gc.collect()
        assert server.connections == 3
        assert client._slots._value == 1  # given back once each: the bound did not grow
    await client.aclose()


@own_client
async def test_bytes_after_the_answer_are_not_its_body_and_the_connection_is_dropped() -> None:
    async def two_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        writer.write(answer(b"{}") + answer(b"unasked", extra="retry-after: 999\r\n"))  # out of step
        await writer.drain()

    client = await own()
    async with Server(two_answers) as server:
        for _ in range(2):
            response = await client.send("POST", server.url, headers={}, body=b"{}", timeouts=FAST)
            assert await response.read() == b"{}"
            assert response.headers["content-length"] == "2" and "retry-after" not in response.headers
        assert server.connections == 2  # the first connection was not reused
    await client.aclose()


@own_client
async def test_a_response_dropped_unread_gives_its_slot_back() -> None:
    client = await own(max_connections=1)
    async with Server(json_answer) as server:
        for _ in range(3):
            await client.send("POST", server.url, headers={}, body=b"{}", timeouts=FAST)  # never read, never closed
            gc.collect()
        response = await client.send("POST", server.url, headers={}, body=b"{}", timeouts=Timeouts(0.5, 1, 2))
        assert await response.read() == b'{"ok": true}'
    await client.aclose()


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_sending_a_large_body_is_bounded_by_the_timeouts_and_the_close(loop: str) -> None:
    """A provider that stops reading a large body: the total timeout ends the call. One that resets
    the connection mid-body: the call fails at once (neither waits on a buffer that never drains)."""

    async def main() -> None:
        done = asyncio.Event()

        async def stops_reading(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            await done.wait()
            writer.transport.abort()

        async def resets(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(0.3)
            writer.transport.abort()

        client = await own()
        body = b"x" * (64 << 20)
        cases: list[tuple[Callable[..., Awaitable[None]], Timeouts, type[Exception]]] = [
            (stops_reading, Timeouts(1, 0.5, 1.5), UpstreamTimeout),
            (resets, Timeouts(1, 1, None), UpstreamConnectError),
        ]
        for handler, timeouts, error in cases:
            listening = await asyncio.start_server(handler, "127.0.0.1", 0)
            url = f"http://127.0.0.1:{listening.sockets[0].getsockname()[1]}/"
            with pytest.raises(error):
                await asyncio.wait_for(client.send("POST", url, headers={}, body=body, timeouts=timeouts), 5)
            done.set()
            listening.close()
            await asyncio.sleep(0.05)  # the server's side ends before the loop does
        await client.aclose()

    run(main, loop)


@own_client
async def test_an_interim_answer_counts_as_an_answer() -> None:
    """After a 103 the provider has the request: a close then is a failure, not a stale connection
    to retry (even for a request safe to repeat)."""

    async def hints_then_dies(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        if len(server.requests) == 1:
            writer.write(answer(b"{}"))
        else:
            writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n")
            writer.close()
        await writer.drain()

    client = await own()
    async with Server(hints_then_dies) as server:
        await (await client.send("GET", server.url, headers={}, body=None, timeouts=FAST)).read()
        with pytest.raises(UpstreamConnectError):
            await client.send("GET", server.url, headers={}, body=None, timeouts=FAST)
        assert len(server.requests) == 2
    await client.aclose()


@own_client
async def test_a_body_ended_by_a_reset_is_broken_and_a_bad_url_is_refused() -> None:
    async def resets(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\ndata: par")
        await writer.drain()
        await asyncio.sleep(0.2)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # RST, not FIN: the body did not end

    client = await own()
    async with Server(resets) as server:
        response = await client.send("POST", server.url, headers={}, body=b"{}", timeouts=FAST)
        with pytest.raises(UpstreamStreamError):
            await response.read()
    for url in ("http://127.0.0.1:99999/x", "ftp://127.0.0.1/x", "http:///x"):
        with pytest.raises(UpstreamConnectError):
            await client.send("POST", url, headers={}, body=b"{}", timeouts=FAST)
    await client.aclose()


@own_client
async def test_a_corrupt_compressed_body_is_a_broken_answer() -> None:
    async def corrupt(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        writer.write(answer(b"\x1f\x8b\x08\x00not gzip at all", extra="content-encoding: gzip\r\n"))
        await writer.drain()

    client = await own()
    async with Server(corrupt) as server:
        response = await client.send("POST", server.url, headers={}, body=b"{}", timeouts=FAST)
        with pytest.raises(UpstreamStreamError, match="compressed body is corrupt"):
            await response.read()
        stream = await client.send("POST", server.url, headers={}, body=b"{}", timeouts=FAST)
        with pytest.raises(UpstreamStreamError, match="compressed body is corrupt"):
            async for _ in stream.iter_chunks():
                pass
        await stream.aclose()
    await client.aclose()


@own_client
async def test_a_header_cannot_smuggle_another() -> None:
    client = await own()
    async with Server(json_answer) as server:
        for headers in ({"x-a": "1\r\nx-injected: 2"}, {"x-a\nb": "1"}, {"x-a": "caf\u00e9 \u2603"}):
            with pytest.raises(UpstreamConnectError):
                await client.send("POST", server.url, headers=headers, body=b"{}", timeouts=FAST)
        assert server.requests == []
    await client.aclose()


@own_client
async def test_repeated_headers_are_joined_and_own_headers_win() -> None:
    client = await own()
    async with Server(json_answer) as server:
        response = await client.send(
            "POST", server.url, headers={"Host": "evil", "content-length": "1", "x-a": "1"}, body=b"{}", timeouts=FAST
        )
        assert response.headers["set-cookie"] == "a=1, b=2"
        await response.read()
        sent = server.requests[0].decode()
        assert f"host: 127.0.0.1:{server.port}\r\n" in sent and "evil" not in sent
        assert "content-length: 2\r\n" in sent and "accept-encoding: identity\r\n" in sent
    await client.aclose()


def self_signed(tmp_path: Path) -> tuple[Path, Path, str]:
    """A key and a certificate for 127.0.0.1, and the certificate as PEM text."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agentgw test upstream")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_text(pem)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path, pem


def test_https_is_verified(tmp_path: Path) -> None:
    """Over TLS the provider's certificate is checked against the trusted roots (and its name
    against the URL's host): an unknown one is refused before anything is sent."""
    cert_path, key_path, pem = self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_path, key_path)

    async def main() -> None:
        server = Server(json_answer)
        listening = await asyncio.start_server(server._serve, "127.0.0.1", 0, ssl=server_tls)
        url = f"https://127.0.0.1:{listening.sockets[0].getsockname()[1]}/v1/chat/completions"
        try:
            client = await own()
            with pytest.raises(UpstreamConnectError, match="TLS: CERTIFICATE_VERIFY_FAILED"):
                await client.send("POST", url, headers={}, body=b"{}", timeouts=FAST)
            assert server.requests == []
            client._tls = ssl.create_default_context(cadata=pem)  # as if a trusted CA had signed it
            for _ in range(2):
                response = await client.send("POST", url, headers={}, body=b"{}", timeouts=FAST)
                assert await response.read() == b'{"ok": true}'
            assert server.connections == 1  # one kept alive (the refused handshake never got that far)
            assert server.requests[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:")
            await client.aclose()
        finally:
            listening.close()

    run(main)
