"""A Chat Completions call carried over Anthropic's Messages API, in one import.

Pure functions and a stream state machine, no I/O. The request side lives in `request`, the
response and stream side in `response`; this module gathers their public names.
"""

from gateway.translate.base import TranslationError
from gateway.translate.chat_to_messages.request import (
    DROPPED_OPENAI_FIELDS,
    JSON_OBJECT_INSTRUCTION,
    JSON_TOOL_KEY,
    to_anthropic_request,
)
from gateway.translate.chat_to_messages.response import (
    AnthropicStreamError,
    StreamTranslator,
    from_anthropic_response,
    map_stop_reason,
    usage_from_anthropic,
)

__all__ = [
    "DROPPED_OPENAI_FIELDS",
    "JSON_OBJECT_INSTRUCTION",
    "JSON_TOOL_KEY",
    "AnthropicStreamError",
    "StreamTranslator",
    "TranslationError",
    "from_anthropic_response",
    "map_stop_reason",
    "to_anthropic_request",
    "usage_from_anthropic",
]
