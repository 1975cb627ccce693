"""How each provider counts a prompt, for admission's exact count near a cap (`Api.prompt_tokens`).

- OpenAI and OpenAI-compatible servers whose model has a tiktoken encoding (a known OpenAI model
  name, or `tokenizer:` in the model's config): the encoding itself, exactly, with OpenAI's chat
  format overhead (3 tokens a message, 1 for a name, 3 to prime the reply: the cookbook's count,
  which is what OpenAI bills for text messages). What OpenAI renders in a format it does not publish
  (tool definitions, tool calls, response schemas) is bounded: the tokens of its JSON plus
  `per_tool` (and `tools_base` once).
- Anthropic: its tokenizer is not public. The bound is 1.5 x the o200k_base count of every text
  (published comparisons put Claude's tokenizers at 1.2 to 1.35 x o200k on prose and code), plus 8
  tokens a message, 24 a tool and 600 once when tools are given (above the tool-use system prompts
  Anthropic's pricing page lists per model, a few hundred tokens each).
- The built-in mock: its own count (words and punctuation marks), exactly.
- Anything else (a model on an OpenAI-compatible server that tiktoken does not know, no encoding
  loaded): no exact count; the cheap bound stands (`gateway.apis.sizes.reserve_prompt_tokens`).

A prompt with images, audio or files is not counted exactly either: what they cost depends on their
pixels and on the model; the cheap bound stands for them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from gateway.metering.tokens import TokenCounter

ANTHROPIC_FACTOR = 1.5
ANTHROPIC_ENCODING = "o200k_base"


@dataclass(frozen=True, slots=True)
class Tokenizer:
    """A provider's token count: `text` counts one text (exactly, or as a documented upper bound), and
    the format's overheads per message, per name, to prime the reply, per tool and for tools at all."""

    name: str
    text: Callable[[str], int]
    per_message: int = 3
    per_name: int = 1
    priming: int = 3
    per_tool: int = 12
    tools_base: int = 16


def tokenizer_for(kind: str, model: str, configured: str | None, counter: TokenCounter) -> Tokenizer | None:
    """The tokenizer of a provider of `kind` serving `model` (its upstream name), or None when there is
    no exact count for it. `configured` is the model's `tokenizer:` (a tiktoken encoding name)."""
    if kind == "mock":
        from gateway.providers.mock import count_tokens

        return Tokenizer("mock", count_tokens)
    if kind == "anthropic":
        encode = counter.exact(ANTHROPIC_ENCODING)
        if encode is None:
            return None
        return Tokenizer(
            f"anthropic<={ANTHROPIC_FACTOR}x{ANTHROPIC_ENCODING}",
            _scaled(encode, ANTHROPIC_FACTOR),
            per_message=8,
            per_name=8,
            priming=8,
            per_tool=24,
            tools_base=600,
        )
    encoding = configured or counter.known_encoding(model)
    encode = counter.exact(encoding) if encoding else None
    return None if encode is None or encoding is None else Tokenizer(encoding, encode)


def _scaled(encode: Callable[[str], int], factor: float) -> Callable[[str], int]:
    def count(text: str) -> int:
        return math.ceil(encode(text) * factor) if text else 0

    return count
