"""Custom detectors: the `regex` guardrail (named patterns) and the `denylist` guardrail (words).

A finding's entity is the pattern's name, or `denylist`, and it redacts to a placeholder typed by
it: `patterns: {ticket: ...}` gives `[TICKET]`; the denylist gives `[REDACTED]`. Patterns are
compiled (and so validated) when the config loads; see `config.py` for the errors a bad one gives.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import regex

from policies.guardrails.matching import CompositeDetector, Convert, Detector, DualPattern, Match, PatternDetector
from policies.guardrails.verdicts import Finding

PLACEHOLDER = "[REDACTED]"


def placeholder(name: str) -> str:
    """`[TICKET]` for a pattern named `ticket` (`order-id` -> `[ORDER_ID]`)."""
    typed = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper()
    return f"[{typed}]" if typed else PLACEHOLDER


def compile_custom(source: str) -> DualPattern:
    """Compile a user pattern with both engines; raises `ValueError` with the reason (not the pattern)."""
    try:
        pattern = DualPattern(source)
    except (re.error, regex.error) as exc:
        raise ValueError(f"not a valid regular expression ({getattr(exc, 'msg', exc)})") from None
    if pattern.full.fullmatch(""):
        raise ValueError("matches the empty string")
    return pattern


def denylist_source(words: Iterable[str], case_sensitive: bool) -> str:
    """One alternation of the words, longest first, bounded by non-word characters where a word
    starts or ends with a word character (so `ass` does not match `class`, and `c++` still matches)."""
    parts = []
    for word in sorted({w for w in words if w}, key=len, reverse=True):
        escaped = re.escape(word)
        lead = r"(?<!\w)" if re.match(r"\w", word) else ""
        tail = r"(?!\w)" if re.search(r"\w$", word) else ""
        parts.append(lead + escaped + tail)
    source = "|".join(parts)
    return source if case_sensitive else f"(?i:{source})"


class RegexDetector(CompositeDetector):
    """Named custom patterns; each finding is typed with its pattern's name."""

    def __init__(self, patterns: Mapping[str, str]) -> None:
        parts: list[Detector] = []
        for name, source in patterns.items():
            parts.append(PatternDetector(compile_custom(source), _converter(name, placeholder(name))))
        super().__init__(parts)


class DenylistDetector(PatternDetector):
    """Listed words and phrases, matched as whole words."""

    def __init__(self, words: Iterable[str], case_sensitive: bool = False) -> None:
        super().__init__(DualPattern(denylist_source(words, case_sensitive)), _converter("denylist", PLACEHOLDER))


def _converter(entity: str, replacement: str) -> Convert:
    def convert(m: Match, _text: str) -> Finding | None:
        return Finding(m.start(), m.end(), entity, replacement) if m.end() > m.start() else None

    return convert
