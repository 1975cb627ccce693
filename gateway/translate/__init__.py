"""Translations between the APIs the gateway speaks to clients and the ones providers speak.

    chat_to_messages     a Chat Completions call carried over Anthropic's Messages API
    messages_to_chat     a Messages call carried over Chat Completions (any OpenAI-compatible server)
    responses_to_chat    a Responses call carried over Chat Completions

Chat Completions is the pivot: a call whose API the target's provider does not speak natively is
translated to chat, and from chat to the provider's own API when that is not chat either.
"""

from gateway.translate.base import StreamTranslation, TranslationError

__all__ = ["StreamTranslation", "TranslationError"]
