"""A provider stand-in that costs as little as Python allows: a raw asyncio Protocol on uvloop.

It answers `POST .../chat/completions` with one fixed, realistic OpenAI `chat.completion` body
(usage included), `GET` on any path with a tiny `{"status":"ok"}`, and anything else with 404.
The HTTP/1.1 parser is deliberately minimal but correct for what benchmark clients send:
keep-alive (the default on HTTP/1.1, opt-in on HTTP/1.0), `Connection: close`, pipelined
requests in one read, requests split across reads, and `Content-Length` bodies. A chunked request
body is refused with 411 and the connection closed (no client used by the benches sends one).

Run: python bench/static_upstream.py --port 9100   (prints "listening on 127.0.0.1:PORT" when up)
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import cast

import uvloop

MAX_HEAD_BYTES = 64 * 1024

COMPLETION = {
    "id": "chatcmpl-bench0000000000000000000000001",
    "object": "chat.completion",
    "created": 1_730_000_000,
    "model": "gpt-4o-mini-2024-07-18",
    "system_fingerprint": "fp_bench000001",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello! I hope you are having a wonderful day.",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 14,
        "completion_tokens": 11,
        "total_tokens": 25,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
}


def _response(status: str, body: bytes, *, close: bool = False) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {'close' if close else 'keep-alive'}\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body


COMPLETION_BODY = json.dumps(COMPLETION, separators=(",", ":")).encode()
OK = _response("200 OK", COMPLETION_BODY)
OK_CLOSE = _response("200 OK", COMPLETION_BODY, close=True)
HEALTH = _response("200 OK", b'{"status":"ok"}')
HEALTH_CLOSE = _response("200 OK", b'{"status":"ok"}', close=True)
NOT_FOUND = _response("404 Not Found", b'{"error":{"message":"not found","type":"not_found"}}')
NOT_FOUND_CLOSE = _response("404 Not Found", b'{"error":{"message":"not found","type":"not_found"}}', close=True)
BAD_REQUEST = _response("400 Bad Request", b'{"error":{"message":"bad request"}}', close=True)
LENGTH_REQUIRED = _response("411 Length Required", b'{"error":{"message":"send Content-Length"}}', close=True)


class HttpHead:
    """What the server needs from one request head."""

    __slots__ = ("content_length", "keep_alive", "method", "path")

    def __init__(self, method: bytes, path: bytes, content_length: int, keep_alive: bool) -> None:
        self.method = method
        self.path = path
        self.content_length = content_length
        self.keep_alive = keep_alive


def parse_head(head: bytes) -> HttpHead | bytes:
    """Parse a request head (without the blank line); return the head, or an error response."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return BAD_REQUEST
    method, path, version = parts
    keep_alive = version == b"HTTP/1.1"
    content_length = 0
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            return BAD_REQUEST
        name = name.strip().lower()
        if name == b"content-length":
            try:
                content_length = int(value.strip())
            except ValueError:
                return BAD_REQUEST
            if content_length < 0:
                return BAD_REQUEST
        elif name == b"connection":
            token = value.strip().lower()
            if token == b"close":
                keep_alive = False
            elif token == b"keep-alive":
                keep_alive = True
        elif name == b"transfer-encoding":
            return LENGTH_REQUIRED
    return HttpHead(method, path, content_length, keep_alive)


STREAM_WORDS = ["Hello!", " I", " hope", " you", " are", " having", " a", " wonderful", " day", "."]
STREAM_DELAY = 0.02  # seconds between the first chunk and the rest, so time to first chunk stands apart


def _event(payload: dict[str, object]) -> bytes:
    data = b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _stream_chunks(include_usage: bool) -> tuple[bytes, bytes]:
    """The head plus first SSE event, and the rest of the stream (chunked transfer encoding)."""
    base = {
        "id": COMPLETION["id"],
        "object": "chat.completion.chunk",
        "created": COMPLETION["created"],
        "model": COMPLETION["model"],
        "system_fingerprint": COMPLETION["system_fingerprint"],
    }
    extra: dict[str, object] = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _event({**base, "choices": [choice], **extra})

    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: keep-alive\r\n\r\n"
    )
    first = head + chunk({"role": "assistant", "content": ""})
    rest = b"".join(chunk({"content": word}) for word in STREAM_WORDS) + chunk({}, "stop")
    if include_usage:
        rest += _event({**base, "choices": [], "usage": COMPLETION["usage"]})
    done = b"data: [DONE]\n\n"
    rest += f"{len(done):x}\r\n".encode() + done + b"\r\n0\r\n\r\n"
    return first, rest


STREAM = _stream_chunks(include_usage=False)
STREAM_WITH_USAGE = _stream_chunks(include_usage=True)


def answer(head: HttpHead, body: bytes = b"") -> bytes | tuple[bytes, bytes]:
    close = not head.keep_alive
    if head.method == b"POST" and head.path.split(b"?", 1)[0].endswith(b"/chat/completions"):
        if b'"stream":true' in body.replace(b" ", b""):
            return STREAM_WITH_USAGE if b'"include_usage":true' in body.replace(b" ", b"") else STREAM
        return OK_CLOSE if close else OK
    if head.method == b"POST" and head.path.endswith(b"/v1/traces"):  # a collector for the tracing benches
        return HEALTH_CLOSE if close else HEALTH
    if head.method == b"GET":
        return HEALTH_CLOSE if close else HEALTH
    return NOT_FOUND_CLOSE if close else NOT_FOUND


def _write_if_open(transport: asyncio.Transport, data: bytes) -> None:
    if not transport.is_closing():
        transport.write(data)


class UpstreamProtocol(asyncio.Protocol):
    """One connection: buffer bytes, answer every complete request in order."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transport is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out: list[bytes] = []
        close = False
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD_BYTES:
                    out.append(BAD_REQUEST)
                    close = True
                break
            head = parse_head(bytes(self.buffer[:end]))
            if isinstance(head, bytes):
                out.append(head)
                close = True
                break
            total = end + 4 + head.content_length
            if len(self.buffer) < total:
                break  # the body is still on its way
            body = bytes(self.buffer[end + 4 : total])
            del self.buffer[:total]
            reply = answer(head, body)
            if isinstance(reply, tuple):  # a stream: the first event now, the rest a moment later
                first, rest = reply
                out.append(first)
                assert self.transport is not None
                transport = self.transport
                asyncio.get_running_loop().call_later(STREAM_DELAY, _write_if_open, transport, rest)
                continue
            out.append(reply)
            if not head.keep_alive:
                close = True
                break
        assert self.transport is not None
        if out:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])
        if close:
            self.buffer.clear()
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, host, port, backlog=1024, reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    print(f"listening on {host}:{bound}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
