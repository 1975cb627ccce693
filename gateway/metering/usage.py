"""Token usage of one call, in the gateway's own terms, with the OpenAI wire mapping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)  # not frozen: one or two per call, and frozen fields cost ~0.1 us each to set
class Usage:
    """Tokens one call consumed.

    `input_tokens` counts every prompt token, cached ones included (OpenAI's `prompt_tokens`);
    `cached_tokens` is the part read from the provider's cache and `cache_write_tokens` the part
    written to it (Anthropic bills both apart). `reasoning_tokens` is part of `output_tokens`.
    `estimated` is true when the gateway counted the tokens itself because the provider did not.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @classmethod
    def from_openai(cls, usage: Any) -> Usage | None:
        """Read OpenAI's `usage` object (chat or embeddings); None when absent or malformed."""
        if not isinstance(usage, dict):
            return None
        prompt = _count(usage.get("prompt_tokens"))
        completion = _count(usage.get("completion_tokens"))
        if prompt is None and completion is None:
            return None
        prompt_details = usage.get("prompt_tokens_details")
        completion_details = usage.get("completion_tokens_details")
        return cls(
            input_tokens=prompt or 0,
            output_tokens=completion or 0,
            cached_tokens=_detail(prompt_details, "cached_tokens"),
            cache_write_tokens=_detail(prompt_details, "cache_write_tokens"),
            reasoning_tokens=_detail(completion_details, "reasoning_tokens"),
        )

    @classmethod
    def from_anthropic(cls, usage: dict[str, Any]) -> Usage:
        """Read Anthropic's `usage` object. Its `input_tokens` leaves out cached tokens, so the prompt
        total adds the cache reads and writes back in. Missing or malformed fields count as 0."""
        fresh = _count(usage.get("input_tokens")) or 0
        cache_read = _count(usage.get("cache_read_input_tokens")) or 0
        cache_write = _count(usage.get("cache_creation_input_tokens")) or 0
        return cls(
            input_tokens=fresh + cache_read + cache_write,
            output_tokens=_count(usage.get("output_tokens")) or 0,
            cached_tokens=cache_read,
            cache_write_tokens=cache_write,
        )

    def to_openai(self) -> dict[str, Any]:
        """OpenAI's chat `usage` object for this usage."""
        usage: dict[str, Any] = {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }
        return usage


MAX_TOKENS = 2**31 - 1  # no call uses more; a larger number is the provider's mistake


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return min(value, MAX_TOKENS)
    return None


def _detail(details: Any, name: str) -> int:
    if not isinstance(details, dict):
        return 0
    return _count(details.get(name)) or 0
