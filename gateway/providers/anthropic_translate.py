"""The OpenAI Chat Completions <-> Anthropic Messages translation, in one import.

Pure functions and a stream state machine, no I/O. The request side lives in
`anthropic_request`, the response and stream side in `anthropic_response`; this module gathers
their public names so callers need not know the split.
"""

from gateway.providers.anthropic_request import (
    DROPPED_OPENAI_FIELDS,
    JSON_OBJECT_INSTRUCTION,
    JSON_TOOL_KEY,
    TranslationError,
    to_anthropic_request,
)
from gateway.providers.anthropic_response import (
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
