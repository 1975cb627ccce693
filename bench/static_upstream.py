"""A provider stand-in that costs as little as Python allows: a raw asyncio Protocol on uvloop.

Every answer is bytes encoded once at start-up, in the shape the real API sends, all saying the
same text with the same usage (14 input tokens, 11 output):

  POST .../chat/completions   an OpenAI `chat.completion`, or with `"stream": true` its chunks
                              (a usage chunk too when `stream_options.include_usage` is true)
                              and `data: [DONE]`
  POST .../responses          an OpenAI Responses `response`, or its semantic events with
                              `sequence_number`, from `response.created` to `response.completed`
  POST .../messages           an Anthropic `message`, or its named events from `message_start`
                              to `message_stop` (usage in `message_start` and `message_delta`)
  GET  any path               a tiny `{"status":"ok"}`; anything else is 404

A stream's first event (chat's role chunk, Responses' `response.created` and `.in_progress`,
Messages' `message_start`, `content_block_start` and `ping`) is written at once and the rest
STREAM_DELAY later, so the time to the first event stands apart from the whole stream's.

The HTTP/1.1 parser is deliberately minimal but correct for what benchmark clients send:
keep-alive (the default on HTTP/1.1, opt-in on HTTP/1.0), `Connection: close`, pipelined
requests in one read, requests split across reads, and `Content-Length` bodies. A chunked request
body is refused with 411 and the connection closed (no client used by the benches sends one).

Run: python bench/static_upstream.py --port 9100   (prints "listening on 127.0.0.1:PORT" when up)
"""

from __future__ import annotations

import argparse
import asyncio
from typing import cast

import uvloop
from upstream_answers import (
    CHAT_COMPLETION,
    MESSAGE,
    RESPONSE,
    Stream,
    chat_stream,
    encode,
    messages_stream,
    responses_stream,
)

MAX_HEAD_BYTES = 64 * 1024


def _response(status: str, body: bytes, *, close: bool = False) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {'close' if close else 'keep-alive'}\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body


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


STREAM_DELAY = 0.02  # seconds between the first event and the rest, so time to first event stands apart
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
    b"Connection: keep-alive\r\n\r\n"
)


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _chunked(stream: Stream) -> tuple[bytes, bytes]:
    """The head plus the events sent at once, and the rest with the last chunk (chunked encoding)."""
    now, later = stream
    return STREAM_HEAD + b"".join(map(_chunk, now)), b"".join(map(_chunk, later)) + b"0\r\n\r\n"


class Answers:
    """One API's answers, each encoded once: whole (keep-alive or closing) and streamed."""

    __slots__ = ("stream", "whole", "whole_close")

    def __init__(self, whole: bytes, stream: Stream) -> None:
        self.whole = _response("200 OK", whole)
        self.whole_close = _response("200 OK", whole, close=True)
        self.stream = _chunked(stream)


CHAT = Answers(encode(CHAT_COMPLETION), chat_stream(include_usage=False))
CHAT_STREAM_WITH_USAGE = _chunked(chat_stream(include_usage=True))
RESPONSES = Answers(encode(RESPONSE), responses_stream())
MESSAGES = Answers(encode(MESSAGE), messages_stream())


def _api_answer(path: bytes, body: bytes, close: bool) -> bytes | tuple[bytes, bytes] | None:
    """The answer to a POST of one of the APIs, or None for another path."""
    if path.endswith(b"/chat/completions"):
        answers = CHAT
    elif path.endswith(b"/responses"):
        answers = RESPONSES
    elif path.endswith(b"/messages"):
        answers = MESSAGES
    else:
        return None
    compact = body.replace(b" ", b"")
    if b'"stream":true' not in compact:
        return answers.whole_close if close else answers.whole
    if answers is CHAT and b'"include_usage":true' in compact:
        return CHAT_STREAM_WITH_USAGE
    return answers.stream


def answer(head: HttpHead, body: bytes = b"") -> bytes | tuple[bytes, bytes]:
    close = not head.keep_alive
    if head.method == b"POST":
        path = head.path.split(b"?", 1)[0]
        reply = _api_answer(path, body, close)
        if reply is not None:
            return reply
        if path.endswith(b"/v1/traces"):  # a collector for the tracing benches
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
