"""An Anthropic Messages call carried over Chat Completions (any OpenAI-compatible server), in one import.

Pure functions, no I/O: `request` turns the client's Messages request into a chat request
(`messages` holds the system prompt and turns).
"""

from gateway.translate.base import TranslationError
from gateway.translate.messages_to_chat.request import DROPPED_FIELDS, to_chat_request

__all__ = [
    "DROPPED_FIELDS",
    "TranslationError",
    "to_chat_request",
]
