"""Token counts the gateway makes itself, for calls whose provider reported none.

tiktoken's encodings load in a background thread at start-up (from TIKTOKEN_CACHE_DIR, or by
download where that is possible); until one is loaded, or when none can be, counts are a
character-based estimate. Either way the usage is marked `estimated`: the provider's own count
is the only truth.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("agentgw.tokens")

DEFAULT_ENCODING = "o200k_base"
KNOWN_ENCODINGS = ("o200k_base", "cl100k_base")
TOKENS_PER_MESSAGE = 3  # OpenAI's chat format overhead per message, and for priming the reply
TOKENS_PER_IMAGE = 85  # a low-detail image; the provider's count is the truth anyway
# Longer texts are counted by scaling the tokens of their first SAMPLE_CHARS (~3 ms of encoding; an
# 8 MiB body counted whole would hold the event loop for ~240 ms). Counts are estimates either way.
SAMPLE_CHARS = 200_000
CHARS_PER_TOKEN = 4.0


class TokenCounter:
    def __init__(self) -> None:
        self._encodings: dict[str, Any] = {}
        self._failed: set[str] = set()
        self._lock = threading.Lock()

    def preload(self, names: Iterable[str] = KNOWN_ENCODINGS) -> threading.Thread:
        """Load encodings off the request path; returns the (daemon) thread doing it."""
        thread = threading.Thread(target=self._load_all, args=(tuple(names),), name="tiktoken-loader", daemon=True)
        thread.start()
        return thread

    def _load_all(self, names: tuple[str, ...]) -> None:
        for name in names:
            try:
                import tiktoken

                encoding = tiktoken.get_encoding(name)
            except Exception as exc:  # a missing file, no network, an unknown name: estimate instead
                log.warning(
                    "tiktoken encoding %s unavailable (%s); token counts will be estimated",
                    name,
                    type(exc).__name__,
                )
                with self._lock:
                    self._failed.add(name)
                continue
            with self._lock:
                self._encodings[name] = encoding

    def loaded(self, name: str) -> bool:
        return name in self._encodings

    @staticmethod
    def encoding_for(model: str, configured: str | None) -> str:
        """The encoding to count a model's tokens with: the configured one, else tiktoken's guess."""
        if configured:
            return configured
        try:
            from tiktoken.model import encoding_name_for_model

            return str(encoding_name_for_model(model))
        except (KeyError, ImportError):
            return DEFAULT_ENCODING

    @staticmethod
    def known_encoding(model: str) -> str | None:
        """tiktoken's encoding for an OpenAI model name, None for a name it does not know."""
        try:
            from tiktoken.model import encoding_name_for_model

            return str(encoding_name_for_model(model))
        except (KeyError, ImportError):
            return None

    def exact(self, encoding: str) -> Callable[[str], int] | None:
        """An exact count of a text's tokens in `encoding` (no sampling, however long: call it off the
        event loop for long texts; tiktoken releases the GIL), None while the encoding is not loaded."""
        enc = self._encodings.get(encoding)
        if enc is None:
            return None

        def count(text: str) -> int:
            return len(enc.encode(text, disallowed_special=())) if text else 0

        return count

    def count_text(self, text: str, encoding: str) -> int:
        if not text:
            return 0
        enc = self._encodings.get(encoding) or self._encodings.get(DEFAULT_ENCODING)
        if enc is None:
            return math.ceil(len(text) / CHARS_PER_TOKEN)
        if len(text) > SAMPLE_CHARS:  # counted on the event loop: scale a sample rather than stall it
            sample = len(enc.encode(text[:SAMPLE_CHARS], disallowed_special=()))
            return math.ceil(sample * len(text) / SAMPLE_CHARS)
        return len(enc.encode(text, disallowed_special=()))

    def count_messages(self, messages: Iterable[Any], encoding: str) -> int:
        """Prompt tokens of OpenAI chat messages, the way OpenAI's cookbook counts them."""
        total = TOKENS_PER_MESSAGE  # the reply is primed with <|start|>assistant<|message|>
        for message in messages:
            if not isinstance(message, dict):
                continue
            total += TOKENS_PER_MESSAGE + self.count_text(str(message.get("role", "")), encoding)
            total += self._content_tokens(message.get("content"), encoding)
            for call in message.get("tool_calls") or ():
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    text = f"{function.get('name', '')}{function.get('arguments', '')}"
                    total += self.count_text(text, encoding)
            if isinstance(message.get("name"), str):
                total += 1 + self.count_text(message["name"], encoding)
        return total

    def count_inputs(self, inputs: Any, encoding: str) -> int:
        """Tokens of an embeddings `input`: text, a list of texts, or token arrays."""
        if isinstance(inputs, str):
            return self.count_text(inputs, encoding)
        if isinstance(inputs, list) and inputs and isinstance(inputs[0], int):
            return len(inputs)
        return sum(self.count_inputs(item, encoding) for item in inputs or ())

    def _content_tokens(self, content: Any, encoding: str) -> int:
        if isinstance(content, str):
            return self.count_text(content, encoding)
        if not isinstance(content, list):
            return 0
        total = 0
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text":
                total += self.count_text(str(part.get("text", "")), encoding)
            elif part.get("type") == "image_url":
                total += TOKENS_PER_IMAGE
        return total
