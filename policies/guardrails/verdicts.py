"""What a scan reports: findings (internal, carry offsets), verdicts (public, carry no text) and results.

A `Finding` points into the scanned text and so must never leave the guardrail package: it is what
redaction works from. A `Verdict` is what the gateway records on the span, the ledger event and the
metrics: guardrail name, phase, action, entity types and a count, and never the matched text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["block", "redact", "flag"]
Phase = Literal["input", "output"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One match in one text: `[start, end)` is the span to replace with `placeholder` when redacting."""

    start: int
    end: int
    entity: str
    placeholder: str

    def __repr__(self) -> str:  # offsets and type only: a finding is never printed with its text
        return f"Finding({self.start}, {self.end}, {self.entity!r})"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one guardrail decided in one phase of one call.

    `entities` are the detected types (for example `("email", "phone")` or `("openai",)`), sorted;
    `count` is how many matches (or, for prompt injection, how many texts scored over the threshold).
    `score` is the highest prompt-injection score of the call's scanned texts (set on every
    prompt-injection verdict: with `action: flag` a call under the threshold still gets a verdict, with
    `count` 0, so the scores can be read as a distribution), else None. `signals` says which stage of
    the detector fired: pattern ids, `learned` or `learned_indirect` for the learned models.
    """

    guardrail: str
    phase: Phase
    action: Action
    entities: tuple[str, ...]
    count: int
    score: float | None = None
    signals: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Plain data for a span attribute, a ledger column or a log line."""
        out: dict[str, Any] = {
            "guardrail": self.guardrail,
            "phase": self.phase,
            "action": self.action,
            "entities": list(self.entities),
            "count": self.count,
        }
        if self.score is not None:
            out["score"] = round(self.score, 3)
        if self.signals:
            out["signals"] = list(self.signals)
        return out


@dataclass(frozen=True, slots=True)
class ScanResult:
    """The outcome of scanning one request or one non-streaming response.

    `body` is what to forward: the very object that was scanned when nothing was redacted (so the
    gateway can forward the original bytes), otherwise a copy with the redactions applied (the
    scanned object itself is never mutated). When `blocked_by` is set, `body` is the original and must
    not be forwarded; the gateway answers 400 `guardrail_blocked` naming `blocked_by`.
    """

    body: Any
    verdicts: tuple[Verdict, ...] = ()
    blocked_by: str | None = None
    modified: bool = False

    @property
    def blocked(self) -> bool:
        return self.blocked_by is not None


@dataclass(slots=True)
class StreamStep:
    """What a `StreamGuard` hands back for one chunk: the chunks to send now, or a block.

    When `blocked_by` is set, `chunks` is empty: the gateway ends the stream with one error event
    naming the guardrail and sends nothing else.
    """

    chunks: list[dict[str, Any]] = field(default_factory=list)
    blocked_by: str | None = None
