"""`HoldBack`: the API-independent core of stream guarding, one window per text channel.

A *channel* is one growing text of a streamed response (a choice's content, a tool call's arguments,
a Responses output part, a Messages content block...), named by a hashable key the API's codec picks.
Each channel has a window: the text received but not yet sent. On every `push` the window is scanned
by every output detector (`Detector.scan_window`), which reports final findings and the earliest
offset where a match may still be forming (a partial match at the end of the text, or a complete one
that more text could extend). Only text from that offset on is held back; the rest is released at
once, redacted. A match therefore can never be split by a chunk boundary: the part of it that has
arrived is always held.

The hold is bounded by `max_hold` characters. When a match that is certain to stay a match (a key
prefix followed by its run of key characters, a PEM header) grows past it, its placeholder is
released and the rest of the match is swallowed as it arrives; a block guardrail blocks at that
point. A partial match that is still not a match after `max_hold` characters is given up and released.

A block sets `blocked_by` before the offending text is released. Tool names are judged by
`check_tool`. What each channel released is kept (`sent`) when a codec must repeat it in full (the
Responses API's done events) or when webhooks judge the whole texts at the end.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from policies.guardrails.matching import Detector, WindowScan
from policies.guardrails.redact import JsonState, advance, merge, render
from policies.guardrails.verdicts import Action, Verdict

if TYPE_CHECKING:
    from policies.guardrails.guards import TextGuard, ToolGuard, WebhookGuard

_CONTEXT = 64  # characters of sent text kept for lookbehinds
C = TypeVar("C", bound=Hashable)  # a codec's channel key


@dataclass(slots=True)
class _Committed:
    source: Detector
    guard: str


@dataclass(slots=True)
class _Window:
    json: bool
    pending: str = ""
    context: str = ""
    state: JsonState = field(default_factory=JsonState)
    committed: _Committed | None = None
    sent: list[str] = field(default_factory=list)  # what went out, when `keep_sent` or a webhook needs it


class HoldBack(Generic[C]):
    """Windows per channel over one streamed response: push text in, get releasable text out."""

    def __init__(
        self,
        text_guards: Sequence[TextGuard],
        tool_guards: Sequence[ToolGuard],
        webhooks: Sequence[WebhookGuard],
        *,
        max_hold: int = 128,
        keep_sent: bool = False,
    ) -> None:
        self.text_guards = tuple(text_guards)
        self.tool_guards = tuple(tool_guards)
        self.webhooks = tuple(webhooks)
        self.max_hold = max_hold
        self.blocked_by: str | None = None
        self.scanning = bool(self.text_guards or self.webhooks)  # whether text goes through windows at all
        self._record = bool(self.webhooks) or keep_sent
        self._counts: dict[str, tuple[Action, set[str], list[int]]] = {}
        self._windows: dict[C, _Window] = {}

    @property
    def verdicts(self) -> tuple[Verdict, ...]:
        """Every output verdict so far."""
        out = []
        for name, (action, entities, count) in self._counts.items():
            out.append(Verdict(name, "output", action, tuple(sorted(entities)), count[0]))
        return tuple(out)

    def channels(self) -> list[C]:
        """Every channel seen so far, in order of first text."""
        return list(self._windows)

    def push(self, channel: C, text: str, json: bool = False) -> str:
        """More text on a channel: what of it (and of what was held) can be released now, redacted.
        Sets `blocked_by` (and returns "") on a block."""
        if not text or not self.scanning:
            return text
        window = self._windows.get(channel)
        if window is None:
            window = self._windows[channel] = _Window(json=json)
        if not self.text_guards:
            window.sent.append(text)
            return text
        window.pending += text
        return self._advance(window, final=False)

    def flush(self, channel: C) -> str:
        """The channel's text is complete: scan what is held as final text and release it."""
        window = self._windows.get(channel)
        if window is None or not (window.pending or window.committed):
            return ""
        return self._advance(window, final=True)

    def sent(self, channel: C) -> str | None:
        """All a channel released so far (recorded only with `keep_sent` or webhooks), else None."""
        window = self._windows.get(channel)
        if window is None or not self._record:
            return None
        return "".join(window.sent)

    def settle(self, channel: C, text: str, json: bool = False) -> str:
        """What a place carrying a channel's whole `text` must say: what the channel released (flush
        it first), or, for a channel never streamed, `text` scanned as a final text."""
        if not self.scanning:
            return text
        if channel not in self._windows:
            released = self.push(channel, text, json)
            return released + self.flush(channel) if self.blocked_by is None else ""
        sent = self.sent(channel)
        return text if sent is None else sent

    def texts(self) -> list[tuple[C, str, bool]]:
        """(channel, all it released, is JSON) for every channel that released text, for webhooks."""
        return [(c, "".join(w.sent), w.json) for c, w in self._windows.items() if w.sent]

    def check_tool(self, name: str) -> None:
        """Judge a tool name (whole or as streamed so far); sets `blocked_by` when a block guardrail
        refuses it."""
        for guard in self.tool_guards:
            if not guard.policy.allowed(name):
                self.count(guard.name, guard.action, {"tool"}, 1)
                if guard.action == "block":
                    self.blocked_by = guard.name
                    return

    def count(self, name: str, action: Action, entities: set[str], count: int) -> None:
        entry = self._counts.setdefault(name, (action, set(), [0]))
        entry[1].update(entities)
        entry[2][0] += count

    def _advance(self, window: _Window, *, final: bool) -> str:
        """Release what can be released from the window; keep the rest. Sets `blocked_by` on a block."""
        out: list[str] = []
        if window.committed is not None and not self._extend(window, final):
            return ""
        text = window.context + window.pending
        base = len(window.context)
        scans: list[tuple[TextGuard, WindowScan]] = []
        hold = len(text)
        for guard in self.text_guards:
            if final:
                scan = WindowScan(guard.detector.find(text, base), len(text))
            else:
                scan = guard.detector.scan_window(text, base)
            if guard.action == "block" and scan.findings:
                self.count(guard.name, "block", {f.entity for f in scan.findings}, len(scan.findings))
                self.blocked_by = guard.name
                return ""
            scans.append((guard, scan))
            hold = min(hold, scan.hold)
        end = hold
        commit: tuple[TextGuard, WindowScan] | None = None
        if not final and len(text) - hold > self.max_hold:
            opened = [(g, s) for g, s in scans if s.hold == hold and s.open_finding is not None]
            if opened and opened[0][1].committable and opened[0][0].action != "flag":
                commit = opened[0]
                if commit[0].action == "block":
                    finding = commit[1].open_finding
                    assert finding is not None
                    self.count(commit[0].name, "block", {finding.entity}, 1)
                    self.blocked_by = commit[0].name
                    return ""
            elif not opened or opened[0][1].committable:
                # A partial match this long is given up (and a flagged one needs no holding).
                end = len(text) - self.max_hold
            # else: a complete match that more text could still undo stays held (its length is bounded)
        findings = sorted((f for _, s in scans for f in s.findings), key=lambda f: f.start)
        for f in findings:
            if f.start < end < f.end:
                end = f.start
        sent = [(g, [f for f in s.findings if f.end <= end]) for g, s in scans]
        for guard, found in sent:
            if found:
                self.count(guard.name, guard.action, {f.entity for f in found}, len(found))
        spans = merge(f for g, found in sent if g.action == "redact" for f in found)
        out.append(render(text, base, end, spans, window.state if window.json else None))
        if window.json:
            window.state = advance(window.state, text, base, end)
        window.context = text[max(0, end - _CONTEXT) : end]
        window.pending = text[end:]
        if commit is not None and commit[0].action == "redact" and end == hold:
            guard, scan = commit
            assert scan.open_finding is not None and scan.source is not None
            self.count(guard.name, "redact", {scan.open_finding.entity}, 1)
            out.append(scan.open_finding.placeholder)
            window.committed = _Committed(scan.source, guard.name)
        result = "".join(out)
        if self._record:
            window.sent.append(result)
        return result

    def _extend(self, window: _Window, final: bool) -> bool:
        """A committed match: swallow it as it grows. True once it has ended (the rest is normal text)."""
        assert window.committed is not None
        text = window.context + window.pending
        base = len(window.context)
        extent = window.committed.source.extent_at(text, base)
        if extent is not None and extent[1] and not final:
            return False
        end = base if extent is None else extent[0]
        if window.json:
            window.state = advance(window.state, text, base, end)
        window.context = text[max(0, end - _CONTEXT) : end]
        window.pending = text[end:]
        window.committed = None
        return True
