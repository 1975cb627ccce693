"""Server-sent events: an incremental decoder for provider streams and the encoder for ours."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(slots=True)  # not frozen: one per event of a stream, and frozen fields cost ~0.1 us each to set
class Event:
    data: bytes
    event: str | None = None


class Decoder:
    """Feed it bytes as they arrive; it returns the complete events so far.

    Handles LF, CRLF and CR line endings (even split across chunks), comments, multi-line data.
    """

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[Event]:
        buffer = self._buffer + chunk
        if b"\r" in buffer:
            # A CR at the very end may be the first half of a CRLF: keep it for the next chunk.
            held = buffer.endswith(b"\r")
            if held:
                buffer = buffer[:-1]
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if held:
                buffer += b"\r"
        events: list[Event] = []
        start = 0
        while (end := buffer.find(b"\n\n", start)) >= 0:
            event = _parse_block(buffer[start:end])
            if event is not None:
                events.append(event)
            start = end + 2
        self._buffer = buffer[start:]
        return events

    def flush(self) -> list[Event]:
        """Whatever is left when the stream ends without a final blank line."""
        rest, self._buffer = self._buffer.rstrip(b"\r\n"), b""
        event = _parse_block(rest) if rest else None
        return [event] if event is not None else []

    @property
    def pending(self) -> int:
        return len(self._buffer)


def _parse_block(block: bytes) -> Event | None:
    name: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            name = value.decode("utf-8", "replace")
    if not data and name is None:
        return None
    return Event(b"\n".join(data), name)


DONE = b"data: [DONE]\n\n"


def encode_data(payload: bytes) -> bytes:
    """One `data:` event around an already-serialized JSON payload."""
    return b"data: " + payload + b"\n\n"


def encode_json(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"
