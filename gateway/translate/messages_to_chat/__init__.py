"""An Anthropic Messages call carried over Chat Completions (any OpenAI-compatible server), in one import.

Pure functions and a stream state machine, no I/O: `request` turns the client's Messages request
into a chat request (`messages` holds the system prompt and turns), `response` a whole chat
completion into a Messages `message`, `stream` chat chunks into Messages stream events.

Where the two APIs differ:

- dropped: `thinking` and `redacted_thinking` blocks, the `thinking` and `output_config.effort`
  settings, `top_k`, `cache_control` everywhere, `citations`, and the fields in `DROPPED_FIELDS`;
  a chat model's own reasoning text is not returned (no thinking block without Anthropic's signature);
- refused (`TranslationError`, param = dotted path): server tools (`tools.N`), their blocks in the
  history, `mcp_servers`, PDF and file documents, file images, `max_tokens` 0;
- tool results become `tool` messages right after the assistant turn, the rest of that user turn
  a user message after them; an image in a tool result moves to that user message (the tool
  message says so); `is_error` prefixes the result with "Error: ";
- tool call arguments the model wrote as broken JSON or as a non-object become `input: {}`
  (whole responses; a stream passes the arguments as they come);
- `stop_sequence` only when the server names the matched stop (vLLM); tool calls always stop
  for `tool_use` unless cut short (`max_tokens`) or filtered (`refusal`);
- usage: `input_tokens` leaves out cache reads and writes, as Anthropic's does.
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
