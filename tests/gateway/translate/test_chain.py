"""A translated answer or stream event the gateway cannot read is the provider's fault: 502 bad_response."""

from __future__ import annotations

import pytest

from gateway.errors import UpstreamBadResponse
from gateway.metering.usage import Usage
from gateway.translate.chain import ChatOverMessages, MessagesOverChat


def test_an_unreadable_message_is_the_providers_bad_response() -> None:
    with pytest.raises(UpstreamBadResponse, match=r"the provider's message could not be translated \(") as raised:
        ChatOverMessages(1024).response({"content": "not a list"}, Usage())
    assert raised.value.__suppress_context__


def test_an_unreadable_stream_event_is_the_providers_bad_response() -> None:
    stream = MessagesOverChat().stream()
    with pytest.raises(UpstreamBadResponse, match="the provider's stream event could not be translated"):
        stream.feed({"choices": "not a list"})


def test_a_readable_answer_passes_through() -> None:
    message = {"id": "msg_1", "model": "c", "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn"}
    answer = ChatOverMessages(1024).response(message, Usage())
    assert answer["choices"][0]["message"]["content"] == "hi"
