"""The HTTP edge under abuse, over raw sockets on loopback: oversized and endless heads, dribbled
heads and bodies, too many connections, malformed HTTP; every answer is the error object of the API
the path names (OpenAI's, Anthropic's under /v1/messages) and the connection closes. Responses
themselves (streams, slow upstreams) are never cut."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import pytest

from tests.gateway_harness import ADMIN_KEY, GatewayProcess, base_config
from tests.standin import StandIn

TIMEOUT = 0.5  # header and body timeouts of the gateways here; bounds below are 10x that
CHAT = b'{"model": "mock-chat", "messages": [{"role": "user", "content": "hi"}]}'


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool  # the server closed the connection after this answer

    def error(self) -> dict[str, Any]:
        assert self.headers["content-type"] == "application/json"
        assert self.headers["x-request-id"]
        error = json.loads(self.body)["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert self.headers["x-agentgw-error-code"] == error["code"]  # answers the protocol writes too
        return dict(error)


def connect(port: int, timeout: float = 10 * TIMEOUT) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_answer(sock: socket.socket, method: str = "GET") -> Answer:
    """One response; when it says `connection: close`, also whether the server then really closed."""
    response = http.client.HTTPResponse(sock, method=method)
    response.begin()
    body = response.read()
    headers = {k.lower(): v for k, v in response.getheaders()}
    closed = False
    if headers.get("connection") == "close":
        try:
            closed = sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
    return Answer(response.status, headers, body, closed)


def read_status(sock: socket.socket) -> int:
    """One response on a connection that stays open (keep-alive)."""
    response = http.client.HTTPResponse(sock)
    response.begin()
    response.read()
    return response.status


def exchange(port: int, *parts: bytes | float, method: str = "GET") -> Answer:
    """Send `parts` (bytes are written, floats are pauses in seconds), then read one answer."""
    with connect(port) as sock:
        for part in parts:
            if isinstance(part, float):
                time.sleep(part)
            else:
                sock.sendall(part)
        return read_answer(sock, method)


def request(path: str = "/healthz", method: str = "GET", headers: bytes = b"", body: bytes = b"") -> bytes:
    length = f"Content-Length: {len(body)}\r\n".encode() if body else b""
    auth = f"Authorization: Bearer {ADMIN_KEY}\r\n".encode()
    return f"{method} {path} HTTP/1.1\r\nHost: gw\r\n".encode() + auth + length + headers + b"\r\n" + body


def wait_until(condition: Any, timeout: float = 10 * TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def edge_config(standin: StandIn, **server: Any) -> dict[str, Any]:
    config = base_config(standin)
    config["server"].update(header_timeout_seconds=TIMEOUT, body_timeout_seconds=TIMEOUT, keep_alive_seconds=1)
    config["server"].update(server)
    for provider in ("standin-openai", "standin-anthropic"):
        config["providers"][provider]["timeout"] = {"connect": 2, "read": 10}
    return config


@pytest.fixture(scope="module")
def gateway(standin_server: StandIn, module_gateway_factory: Any) -> Any:
    return module_gateway_factory(edge_config(standin_server))


# Sizes and counts


def test_a_head_over_the_size_limit_is_431_and_closed(gateway: Any) -> None:
    answer = exchange(gateway.server.port, request(headers=b"X-Big: " + b"a" * 100_000 + b"\r\n"))
    assert answer.status == 431
    assert answer.error()["code"] == "headers_too_large"
    assert answer.headers["connection"] == "close" and answer.closed


def test_a_head_over_the_limit_on_messages_is_anthropics_error_to_its_sdk(gateway: Any) -> None:
    """The edge answers before the app, in the shape of the API the path names: the Anthropic SDK reads
    the 431 as its own error type, with the gateway's message."""
    client = anthropic.Anthropic(base_url=gateway.url, api_key=ADMIN_KEY, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as raised:
        client.messages.create(
            model="mock-chat", max_tokens=16, messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-big": "a" * 100_000},
        )  # fmt: skip
    assert raised.value.status_code == 431
    assert raised.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": raised.value.body["error"]["message"]},
    }
    assert "exceed 65536 bytes" in raised.value.body["error"]["message"]
    assert raised.value.response.headers["x-agentgw-error-code"] == "headers_too_large"


@pytest.mark.parametrize(
    ("target", "shape"),
    [("/v1/messages?beta=true", "anthropic"), ("http://gw/v1/messages", "anthropic"),
     ("/v1/%6Dessages", "anthropic"), ("/v1/messages/count_tokens", "anthropic"),
     ("/v1/messagesX", "openai"), ("/v1/chat/completions", "openai")],
)  # fmt: skip
def test_the_edge_reads_the_path_as_the_app_routes_it(gateway: Any, target: str, shape: str) -> None:
    """A query, an absolute-form target or percent-encoding do not change the API, so not the shape."""
    big = b"X-Big: " + b"a" * 100_000 + b"\r\n"
    answer = exchange(gateway.server.port, request(target, "POST", big, b"{}"))
    assert answer.status == 431 and answer.headers["x-agentgw-error-code"] == "headers_too_large"
    body = json.loads(answer.body)
    assert (body["type"] == "error" and set(body["error"]) == {"type", "message"}) if shape == "anthropic" else (
        body["error"]["code"] == "headers_too_large"
    )  # fmt: skip


def test_a_head_just_under_the_limit_is_served(gateway: Any) -> None:
    answer = exchange(gateway.server.port, request(headers=b"X-Big: " + b"a" * 60_000 + b"\r\n"))
    assert answer.status == 200


def test_a_huge_header_is_refused_before_it_is_all_sent(gateway: Any) -> None:
    """8 MB in one header value: the answer comes while the client is still sending."""
    with connect(gateway.server.port) as sock:
        sock.sendall(request()[:-2] + b"X-Big: ")
        sent = 0
        try:
            while sent < 8 * 1024 * 1024:
                sock.sendall(b"a" * 65536)
                sent += 65536
        except OSError:
            pass  # the gateway stopped reading: that is the point
        answer = read_answer(sock)
    assert answer.status == 431 and answer.closed


def test_more_header_fields_than_allowed_is_431(gateway: Any) -> None:
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(101))
    answer = exchange(gateway.server.port, request(headers=many))
    assert answer.status == 431
    assert answer.error()["code"] == "headers_too_large"
    assert "header fields" in answer.error()["message"]


def test_up_to_the_header_count_is_served(gateway: Any) -> None:
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(95))  # plus Host and Authorization
    assert exchange(gateway.server.port, request(headers=many)).status == 200


@pytest.mark.parametrize("pause", [None, 0.2], ids=["one-write", "trailer-alone"])
def test_oversized_trailer_fields_are_431(gateway: Any, pause: float | None) -> None:
    """A chunked body's trailer fields are buffered like headers: they get the same bound, also when
    the read that holds them ends the request (the trailer sent alone, after a pause)."""
    chunked = request("/v1/chat/completions", "POST", headers=b"Transfer-Encoding: chunked\r\n")
    chunk = b"%x\r\n%s\r\n" % (len(CHAT), CHAT)
    trailer = b"0\r\nX-Trailer: " + b"a" * 70_000 + b"\r\n\r\n"
    parts = (chunked + chunk + trailer,) if pause is None else (chunked + chunk, pause, trailer)
    answer = exchange(gateway.server.port, *parts)
    assert answer.status == 431 and answer.closed
    assert "trailer" in answer.error()["message"]


def test_a_body_in_many_tiny_chunks_is_read(gateway: Any) -> None:
    chunked = request("/v1/chat/completions", "POST", headers=b"Transfer-Encoding: chunked\r\n")
    body = json.dumps({"model": "mock-chat", "messages": [{"role": "user", "content": "x" * 20_000}]}).encode()
    chunks = b"".join(b"1\r\n%s\r\n" % body[i : i + 1] for i in range(len(body)))
    assert exchange(gateway.server.port, chunked + chunks + b"0\r\n\r\n").status == 200


def test_a_body_larger_than_the_head_limit_in_the_same_write_is_a_body(gateway: Any) -> None:
    """The head limit counts the head only, whatever else the same read carries."""
    content = "x" * 200_000
    body = json.dumps({"model": "mock-chat", "messages": [{"role": "user", "content": content}]}).encode()
    answer = exchange(gateway.server.port, request("/v1/chat/completions", "POST", body=body))
    assert answer.status == 200, answer.body


def test_pipelined_requests_are_all_answered(gateway: Any) -> None:
    with connect(gateway.server.port) as sock:
        sock.sendall(request() + request("/v1/chat/completions", "POST", body=CHAT) + request())
        replies = sock.makefile("rb")
        statuses = []
        for _ in range(3):  # http.client reads one response per connection: parse them here
            statuses.append(int(replies.readline().split()[1]))
            length = 0
            while (line := replies.readline()) != b"\r\n":
                name, _, value = line.partition(b":")
                length = int(value) if name.lower() == b"content-length" else length
            replies.read(length)
    assert statuses == [200, 200, 200]


def test_oversized_attempts_leave_no_connection_behind(gateway: Any) -> None:
    baseline = gateway.server.connections
    big = request(headers=b"X-Big: " + b"a" * 2_000_000 + b"\r\n")

    def attempt() -> None:
        with connect(gateway.server.port) as sock:
            with contextlib.suppress(OSError):  # the gateway stops reading: that is the point
                sock.sendall(big)
            read_answer(sock)

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wait_until(lambda: gateway.server.connections <= baseline), gateway.server.connections


# Time


def test_headers_dribbled_slower_than_the_timeout_get_408_and_close(gateway: Any) -> None:
    """Slowloris: a byte every 0.1 s keeps the connection busy but never finishes the head."""
    started = time.monotonic()
    with connect(gateway.server.port) as sock:
        try:
            for byte in request():
                sock.sendall(bytes([byte]))
                time.sleep(0.1)
        except OSError:
            pass
        answer = read_answer(sock)
    assert answer.status == 408
    assert answer.error()["code"] == "request_timeout"
    assert answer.closed
    assert time.monotonic() - started < 10 * TIMEOUT


def test_a_stalled_body_gets_408_and_close(gateway: Any) -> None:
    head = request("/v1/chat/completions", "POST", body=CHAT)[: -len(CHAT)]
    started = time.monotonic()
    answer = exchange(gateway.server.port, head + CHAT[:10])
    assert answer.status == 408
    assert "body" in answer.error()["message"]
    assert answer.closed and time.monotonic() - started < 10 * TIMEOUT


def test_a_slow_but_steady_body_is_read(gateway: Any) -> None:
    """The body clock measures silence, not the whole upload."""
    head = request("/v1/chat/completions", "POST", body=CHAT)[: -len(CHAT)]
    parts: list[bytes | float] = [head]
    for i in range(0, len(CHAT), 10):
        parts += [TIMEOUT / 3, CHAT[i : i + 10]]
    assert exchange(gateway.server.port, *parts).status == 200


def test_a_connection_that_sends_nothing_is_closed(gateway: Any) -> None:
    with connect(gateway.server.port) as sock:
        assert sock.recv(1) == b""  # closed without a word: no request to answer


def test_the_head_clock_starts_again_for_each_request(gateway: Any) -> None:
    """A keep-alive connection may live far longer than the head timeout, request after request."""
    with connect(gateway.server.port) as sock:
        for _ in range(4):
            sock.sendall(request())
            assert read_status(sock) == 200
            time.sleep(TIMEOUT / 2)


def test_an_idle_keep_alive_connection_is_closed(gateway: Any) -> None:
    with connect(gateway.server.port) as sock:
        sock.sendall(request())
        assert read_status(sock) == 200
        started = time.monotonic()
        assert sock.recv(1) == b""
        assert time.monotonic() - started < 5  # keep_alive_seconds: 1


def test_a_stream_outlives_every_timeout(gateway: Any) -> None:
    """stream-slow sends 20+ chunks 0.2 s apart: about eight times the head and body timeouts."""
    body = json.dumps({"model": "oa-stream-slow", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    answer = exchange(gateway.server.port, request("/v1/chat/completions", "POST", body=body.encode()))
    assert answer.status == 200
    events = [line for line in answer.body.decode().splitlines() if line.startswith("data: ")]
    assert len(events) > 20 and events[-1] == "data: [DONE]"


def test_a_slow_upstream_answer_is_not_cut(gateway: Any) -> None:
    body = json.dumps({"model": "oa-slow-1", "messages": [{"role": "user", "content": "hi"}]})
    answer = exchange(gateway.server.port, request("/v1/chat/completions", "POST", body=body.encode()))
    assert answer.status == 200, answer.body


def test_an_early_answer_is_the_only_answer(gateway: Any) -> None:
    """A body declared too large is answered 413 at once; the body that never follows is not
    answered again with a 408."""
    head = request("/v1/chat/completions", "POST", headers=b"Content-Length: 99999999\r\n")
    with connect(gateway.server.port) as sock:
        sock.sendall(head)
        answer = read_answer(sock)
        assert answer.status == 413
        time.sleep(3 * TIMEOUT)
        try:
            rest = sock.recv(65536)
        except ConnectionResetError:
            rest = b""
    assert rest == b""


# Connections


@pytest.fixture
def small_gateway(standin: StandIn, gateway_factory: Any) -> Any:
    return gateway_factory(edge_config(standin, max_connections=2, keep_alive_seconds=30))


def test_a_connection_beyond_the_limit_gets_503(small_gateway: Any) -> None:
    port = small_gateway.server.port
    with connect(port) as first, connect(port) as second:
        for sock in (first, second):
            sock.sendall(request())
            assert read_status(sock) == 200
        answer = exchange(port, request())
        assert answer.status == 503
        assert answer.error()["code"] == "service_unavailable"
        assert answer.headers["retry-after"] == "1" and answer.closed
        first.sendall(request())  # connections already open are still served
        assert read_status(first) == 200
    assert wait_until(lambda: small_gateway.server.connections == 0)
    assert exchange(port, request()).status == 200


# Malformed HTTP and what the router would have answered


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"GET /healthz HTTP/1.1\r\nHost: gw\r\nX-A: a\x00b\r\n\r\n", "header value"),
        (b"GET /healthz HTTP/1.1\r\nHost: gw\r\nX-A: a\x7fb\r\n\r\n", "header value"),
        (b"GET /healthz HTTP/1.1\r\nHost: gw\r\nX\x7fA: b\r\n\r\n", "header"),
        (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
            "Content-Length",
        ),
        (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            "Transfer-Encoding",
        ),
        ("GET /v1/mod\u00e9ls HTTP/1.1\r\nHost: gw\r\n\r\n".encode(), "url"),
        (b"GET /healthz HTTP/1.1\nHost: gw\n\n", ""),
        (b"GET /healthz HTTP/9.9\r\nHost: gw\r\n\r\n", ""),
        (b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", ""),
    ],
    ids=[
        "nul",
        "del",
        "del-in-name",
        "duplicate-length",
        "length-and-chunked",
        "non-ascii-path",
        "bare-lf",
        "version",
        "bad-chunk",
    ],
)
def test_malformed_http_is_400_in_openais_shape(gateway: Any, raw: bytes, reason: str) -> None:
    answer = exchange(gateway.server.port, raw)
    assert answer.status == 400
    error = answer.error()
    assert error["code"] == "invalid_request" and error["type"] == "invalid_request_error"
    assert error["message"].startswith("Malformed HTTP request") and reason in error["message"]
    assert answer.closed


def test_head_on_a_post_endpoint_is_405_without_a_body(gateway: Any) -> None:
    answer = exchange(gateway.server.port, request("/v1/chat/completions", "HEAD"), method="HEAD")
    assert answer.status == 405
    assert answer.body == b""
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["allow"] == "POST"


def test_head_on_a_get_endpoint_is_answered_without_a_body(gateway: Any) -> None:
    answer = exchange(gateway.server.port, request("/healthz", "HEAD"), method="HEAD")
    assert answer.status == 200 and answer.body == b""


@pytest.mark.parametrize("path", ["/v1/sessions/x/", "/v1/models/", "/healthz/"])
def test_a_trailing_slash_is_404_not_a_redirect(gateway: Any, path: str) -> None:
    answer = exchange(gateway.server.port, request(path).replace(b"Host: gw", b"Host: evil.example"))
    assert answer.status == 404
    assert "location" not in answer.headers
    assert answer.error()["code"] == "unknown_endpoint"


# The real `agentgw serve`


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


@pytest.fixture
def served(standin: StandIn, tmp_path: Path) -> Iterator[GatewayProcess]:
    if not Path("/proc/self/status").exists():
        pytest.skip("reads memory from /proc")
    process = GatewayProcess(edge_config(standin), tmp_path)
    yield process.start()
    process.stop()


def test_agentgw_serve_holds_its_memory_against_huge_headers(served: GatewayProcess) -> None:
    """20 connections each sending an 8 MB header (the abuse run grew memory by over 1 GB): the
    gateway reads at most 64 KiB of each, answers 431, and its memory stays where it was. Measured
    once the token encodings have loaded (tens of MB, in a thread at start-up: on a busy machine
    that can take long enough to land inside the measurement)."""
    assert served.process is not None
    pid = served.process.pid
    for _ in range(20):
        assert exchange(served.port, request()).status == 200

    def encodings_settled() -> bool:
        counts = json.loads(exchange(served.port, request("/readyz")).body)["token_counts"]
        return bool(counts) and "loading" not in counts.values()

    assert wait_until(encodings_settled, timeout=60)
    before, peak_before = rss_kib(pid), rss_kib(pid, "VmHWM")
    statuses: list[int] = []

    def attempt() -> None:
        with connect(served.port) as sock:
            try:
                sock.sendall(request()[:-2] + b"X-Big: ")
                for _ in range(128):
                    sock.sendall(b"a" * 65536)
            except OSError:
                pass
            try:
                statuses.append(read_answer(sock).status)
            except OSError:
                statuses.append(0)

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after, peak_after = rss_kib(pid), rss_kib(pid, "VmHWM")
    assert after - before < 32 * 1024, (before, after)
    assert peak_after - max(peak_before, before) < 64 * 1024, (peak_before, peak_after)
    assert statuses.count(431) >= 15, statuses
    assert exchange(served.port, request()).status == 200
