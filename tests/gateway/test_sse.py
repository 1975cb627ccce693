"""The SSE decoder must give the same events however the bytes are split."""

from __future__ import annotations

import pytest

from gateway.sse import Decoder, Event

STREAM = (
    b": keep-alive comment\n\n"
    b'event: message_start\ndata: {"a": 1}\n\n'
    b"data: line one\ndata: line two\n\n"
    b"data:no-space\r\n\r\n"
    b"event: ping\r\ndata: {}\r\n\r\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    Event(b'{"a": 1}', "message_start"),
    Event(b"line one\nline two"),
    Event(b"no-space"),
    Event(b"{}", "ping"),
    Event(b"[DONE]"),
]


def decode(pieces: list[bytes]) -> list[Event]:
    decoder = Decoder()
    events: list[Event] = []
    for piece in pieces:
        events += decoder.feed(piece)
    return events + decoder.flush()


def test_whole_stream() -> None:
    assert decode([STREAM]) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 13])
def test_any_split(size: int) -> None:
    pieces = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    assert decode(pieces) == EXPECTED


def test_every_two_way_split() -> None:
    for cut in range(len(STREAM) + 1):
        assert decode([STREAM[:cut], STREAM[cut:]]) == EXPECTED, cut


def test_unterminated_last_event_is_flushed() -> None:
    assert decode([b'data: {"x": 1}']) == [Event(b'{"x": 1}')]


def test_lone_cr_line_endings() -> None:
    assert decode([b"data: a\r\rdata: b\r\r"]) == [Event(b"a"), Event(b"b")]
