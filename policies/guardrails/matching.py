"""Pattern detectors that scan whole texts and stream windows with the same rules.

Every pattern is compiled twice. `re` scans whole texts: it is the faster engine for these patterns.
`regex` scans stream windows, because it can say that a match may still be forming at the end of the
text (`partial=True`), which is exactly what a stream window needs to know to hold back no more than
necessary. Built-in patterns keep to syntax both engines read the same way: explicit ASCII classes
(no `\\w`, `\\s`, `\\d`), fixed-width lookarounds, bounded repeats.

Case-insensitive keyword rules run case-sensitively over `ascii_lower(text)`: it lowercases ASCII
letters only, so offsets are unchanged and `re` keeps its fast literal scans.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import regex

from policies.guardrails.verdicts import Finding

Match = re.Match[str] | regex.Match[str]
Convert = Callable[[Match, str], Finding | None]

_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


@functools.lru_cache(maxsize=16)
def ascii_lower(text: str) -> str:
    """Lowercase A-Z only, so every offset in the result is the offset in `text`."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def _regex_flags(flags: int) -> int:
    out = regex.V0
    for plain, other in ((re.IGNORECASE, regex.IGNORECASE), (re.MULTILINE, regex.MULTILINE), (re.DOTALL, regex.DOTALL)):
        if flags & plain:
            out |= other
    return out


class DualPattern:
    """One pattern source compiled by `re` (whole texts) and by `regex` (stream windows)."""

    __slots__ = ("full", "source", "stream")

    def __init__(self, source: str, flags: int = 0) -> None:
        self.source = source
        self.full = re.compile(source, flags)
        self.stream = regex.compile(source, _regex_flags(flags))


@dataclass(slots=True)
class WindowScan:
    """What a detector found in a stream window.

    `findings` are final: no continuation of the stream can change them. `hold` is the earliest offset
    from which text must be held back because a match may still be forming there (the window length
    when nothing is forming). `open_finding` is the match already complete at `hold` that more text
    could still extend, and `committable` says whether that match is certain to stay a match of the
    same type whatever follows (so its placeholder may be sent before its end is known).
    """

    findings: list[Finding] = field(default_factory=list)
    hold: int = 0
    open_finding: Finding | None = None
    committable: bool = False
    source: Detector | None = None


class Detector(Protocol):
    """Anything that finds spans in text, for whole texts and for stream windows."""

    def find(self, text: str, pos: int = 0) -> list[Finding]:
        """Findings in `text` starting at or after `pos` (text before `pos` is context only)."""
        ...

    def scan_window(self, text: str, pos: int) -> WindowScan:
        """Like `find` for a text that may continue: final findings plus how much to hold."""
        ...

    def extent_at(self, text: str, pos: int) -> tuple[int, bool] | None:
        """For a committed match starting at `pos`: its current end and whether it is still open."""
        ...


class PatternDetector:
    """One compiled pattern plus a converter that validates a match and types it.

    `convert(match, text)` returns a Finding (with the span to redact, which may be a group) or None
    when a validator rejects the candidate. `lowered` runs the pattern over `ascii_lower(text)`.
    `prefilter(subject)` may rule a whole text out cheaply (whole texts only: in a stream window the
    start of a match may be all there is so far). `gate` does the same for stream windows: a window
    in which it finds nothing can hold no match and no beginning of one (see `literal_gate`).
    `committable(match)` marks rules whose complete matches stay matches however the text goes on
    (fixed prefixes followed by a greedy run, no validator that more text could undo).
    """

    def __init__(
        self,
        pattern: DualPattern,
        convert: Convert,
        *,
        lowered: bool = False,
        committable: Callable[[Match], bool] | None = None,
        prefilter: Callable[[str], bool] | None = None,
        gate: re.Pattern[str] | None = None,
    ) -> None:
        self.pattern = pattern
        self.convert = convert
        self.lowered = lowered
        self.committable = committable
        self.prefilter = prefilter
        self.gate = gate

    def _subject(self, text: str) -> str:
        return ascii_lower(text) if self.lowered else text

    def find(self, text: str, pos: int = 0) -> list[Finding]:
        subject = self._subject(text)
        if self.prefilter is not None and not self.prefilter(subject):
            return []
        out: list[Finding] = []
        for m in self.pattern.full.finditer(subject, pos):
            if m.end() > m.start():
                finding = self.convert(m, text)
                if finding is not None:
                    out.append(finding)
        return out

    def scan_window(self, text: str, pos: int) -> WindowScan:
        subject = self._subject(text)
        scan = WindowScan(hold=len(text), source=self)
        if self.gate is not None and not self.gate.search(subject, pos):
            return scan
        stream = self.pattern.stream
        for m in stream.finditer(subject, pos, partial=True):
            if m.partial:
                scan.hold = min(scan.hold, m.start())
                break
            if m.end() == m.start():
                continue
            if m.end() >= len(subject) or stream.fullmatch(subject, m.start(), partial=True) is not None:
                # Complete now, but more text could make it longer (or, with a validator, undo it).
                scan.hold = m.start()
                scan.open_finding = self.convert(m, text)
                scan.committable = scan.open_finding is not None and bool(self.committable and self.committable(m))
                break
            finding = self.convert(m, text)
            if finding is not None:
                scan.findings.append(finding)
        return scan

    def extent_at(self, text: str, pos: int) -> tuple[int, bool] | None:
        subject = self._subject(text)
        stream = self.pattern.stream
        m = stream.match(subject, pos, partial=True)
        if m is None:
            return None
        is_open = m.partial or m.end() >= len(subject) or stream.fullmatch(subject, pos, partial=True) is not None
        return m.end(), is_open


def literal_gate(literals: Sequence[str], *, boundary: str = "") -> re.Pattern[str]:
    """A window gate for rules whose matches start with one of `literals`: it finds a literal, or a
    proper prefix of one at the very end of the window (a match may be starting there). `boundary` is
    a character class that must not precede that prefix, as the rules' own lookbehinds require."""
    whole = "|".join(re.escape(lit) for lit in sorted(set(literals), key=len, reverse=True))
    prefixes = sorted({lit[:k] for lit in literals for k in range(1, len(lit))}, key=len, reverse=True)
    lead = f"(?<!{boundary})" if boundary else ""
    return re.compile(f"{whole}|{lead}(?:{'|'.join(re.escape(p) for p in prefixes)})\\Z")


class CompositeDetector:
    """Several detectors scanned as one: findings concatenated, the earliest hold wins."""

    def __init__(self, parts: Sequence[Detector]) -> None:
        self.parts = tuple(parts)

    def find(self, text: str, pos: int = 0) -> list[Finding]:
        out: list[Finding] = []
        for part in self.parts:
            out.extend(part.find(text, pos))
        return out

    def scan_window(self, text: str, pos: int) -> WindowScan:
        merged = WindowScan(hold=len(text))
        for part in self.parts:
            scan = part.scan_window(text, pos)
            merged.findings.extend(scan.findings)
            if scan.hold < merged.hold or (scan.hold == merged.hold and scan.open_finding and not merged.open_finding):
                merged.hold = scan.hold
                merged.open_finding = scan.open_finding
                merged.committable = scan.committable
                merged.source = scan.source
        # Findings past the hold are found again once the window moves on; drop them now.
        merged.findings = [f for f in merged.findings if f.end <= merged.hold]
        return merged

    def extent_at(self, text: str, pos: int) -> tuple[int, bool] | None:
        raise NotImplementedError("extent_at is asked of the part that reported the open match")
