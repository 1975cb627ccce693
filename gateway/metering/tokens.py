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
# A call's texts are counted exactly up to SAMPLE_CHARS characters in all; the rest is scaled at the
# rate seen in what was counted. Counting runs on the event loop: tiktoken takes about 3 ms for this
# many characters of English and up to 30 ms for its worst inputs (a run of one letter, CJK), where an
# 8 MiB body counted whole would hold the loop for seconds. Counts are estimates either way.
SAMPLE_CHARS = 50_000
WINDOWS = 8  # a long text is sampled in this many windows spread over it, not only its start
MIN_WINDOWS_CHARS = 4_000
CHARS_PER_TOKEN = 4.0


class Sample:
    """What one call has left of exact counting, and the tokens per character seen so far."""

    __slots__ = ("chars", "left", "tokens")

    def __init__(self, chars: int = SAMPLE_CHARS) -> None:
        self.left = chars
        self.chars = 0
        self.tokens = 0

    def took(self, chars: int, tokens: int) -> None:
        self.left -= chars
        self.chars += chars
        self.tokens += tokens

    def scale(self, chars: int) -> int:
        """Tokens for `chars` characters not counted, at the rate of those that were."""
        rate = self.tokens / self.chars if self.chars else 1 / CHARS_PER_TOKEN
        return math.ceil(chars * rate)


class TokenCounter:
    def __init__(self) -> None:
        self._encodings: dict[str, Any] = {}
        self._failed: set[str] = set()
        self._preloading: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def preload(self, names: Iterable[str] = KNOWN_ENCODINGS) -> threading.Thread:
        """Load encodings off the request path; returns the (daemon) thread doing it."""
        self._preloading = tuple(names)
        thread = threading.Thread(target=self._load_all, args=(self._preloading,), name="tiktoken-loader", daemon=True)
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

    def describe(self) -> dict[str, str]:
        """Each preloaded encoding's state: `loading`, `loaded` (counted with tiktoken) or `unavailable`
        (it could not be loaded: counts are a character-based estimate)."""
        with self._lock:
            return {
                name: "loaded" if name in self._encodings else "unavailable" if name in self._failed else "loading"
                for name in self._preloading
            }

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

    def count_text(self, text: str, encoding: str, sample: Sample | None = None) -> int:
        """Tokens of `text`: counted exactly while `sample` (one per call) lasts; a text longer than
        what is left of it is counted in windows spread over it and scaled, and once the sample is
        spent, texts are scaled at the rate seen so far."""
        if not text:
            return 0
        enc = self._encodings.get(encoding) or self._encodings.get(DEFAULT_ENCODING)
        if enc is None:
            return math.ceil(len(text) / CHARS_PER_TOKEN)
        sample = Sample() if sample is None else sample
        if len(text) <= sample.left:
            tokens = len(enc.encode(text, disallowed_special=()))
            sample.took(len(text), tokens)
            return tokens
        if sample.left < MIN_WINDOWS_CHARS:
            return sample.scale(len(text))
        size = sample.left // WINDOWS
        stride = len(text) // WINDOWS
        windows = [text[i * stride : i * stride + size] for i in range(WINDOWS)]
        counted = sum(len(enc.encode(window, disallowed_special=())) for window in windows)
        sample.took(size * WINDOWS, counted)
        return math.ceil(counted * len(text) / (size * WINDOWS))

    def count_messages(self, messages: Iterable[Any], encoding: str, sample: Sample | None = None) -> int:
        """Prompt tokens of OpenAI chat messages, the way OpenAI's cookbook counts them."""
        sample = Sample() if sample is None else sample
        total = TOKENS_PER_MESSAGE  # the reply is primed with <|start|>assistant<|message|>
        for message in messages:
            if not isinstance(message, dict):
                continue
            total += TOKENS_PER_MESSAGE + self.count_text(str(message.get("role", "")), encoding, sample)
            total += self._content_tokens(message.get("content"), encoding, sample)
            for call in message.get("tool_calls") or ():
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    text = f"{function.get('name', '')}{function.get('arguments', '')}"
                    total += self.count_text(text, encoding, sample)
            if isinstance(message.get("name"), str):
                total += 1 + self.count_text(message["name"], encoding, sample)
        return total

    def count_inputs(self, inputs: Any, encoding: str, sample: Sample | None = None) -> int:
        """Tokens of an embeddings `input`: text, a list of texts, or token arrays."""
        sample = Sample() if sample is None else sample
        if isinstance(inputs, str):
            return self.count_text(inputs, encoding, sample)
        if isinstance(inputs, list) and inputs and isinstance(inputs[0], int):
            return len(inputs)
        return sum(self.count_inputs(item, encoding, sample) for item in inputs or ())

    def _content_tokens(self, content: Any, encoding: str, sample: Sample) -> int:
        if isinstance(content, str):
            return self.count_text(content, encoding, sample)
        if not isinstance(content, list):
            return 0
        total = 0
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text":
                total += self.count_text(str(part.get("text", "")), encoding, sample)
            elif part.get("type") == "image_url":
                total += TOKENS_PER_IMAGE
        return total
