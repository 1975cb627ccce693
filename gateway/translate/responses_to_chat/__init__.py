"""A Responses call carried over Chat Completions, in one import.

Pure functions and a stream state machine, no I/O: `request` turns a `POST /v1/responses` body into
a chat completion request, `response` a chat completion into the Responses `response` object, and
`stream` chat chunks into Responses stream events (plus the events a broken stream ends with).
"""

from gateway.translate.base import TranslationError
from gateway.translate.responses_to_chat.request import (
    DROPPED_RESPONSES_FIELDS,
    STATEFUL_PARAMS,
    to_chat_request,
)
from gateway.translate.responses_to_chat.response import (
    from_chat_response,
    new_response_id,
    response_object,
    responses_usage,
)
from gateway.translate.responses_to_chat.stream import ChatStreamError, StreamTranslator, stream_error_events

__all__ = [
    "DROPPED_RESPONSES_FIELDS",
    "STATEFUL_PARAMS",
    "ChatStreamError",
    "StreamTranslator",
    "TranslationError",
    "from_chat_response",
    "new_response_id",
    "response_object",
    "responses_usage",
    "stream_error_events",
    "to_chat_request",
]
