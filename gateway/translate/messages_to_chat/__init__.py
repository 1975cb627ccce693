"""An Anthropic Messages call carried over Chat Completions (any OpenAI-compatible server), in one import.

Pure functions and a stream state machine, no I/O: `request` turns the client's Messages request
into a chat request (`messages` holds the system prompt and turns), `response` a whole chat
completion into a Messages `message`, `stream` chat chunks into Messages stream events.
"""

from gateway.translate.base import TranslationError
from gateway.translate.messages_to_chat.request import DROPPED_FIELDS, to_chat_request
from gateway.translate.messages_to_chat.response import (
    from_chat_response,
    map_finish_reason,
    usage_to_anthropic,
)
from gateway.translate.messages_to_chat.stream import StreamTranslator

__all__ = [
    "DROPPED_FIELDS",
    "StreamTranslator",
    "TranslationError",
    "from_chat_response",
    "map_finish_reason",
    "to_chat_request",
    "usage_to_anthropic",
]
