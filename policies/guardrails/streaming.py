"""`StreamGuard`: output guardrails on a streamed chat completion, chunk by chunk.

Each text channel (a choice's `content`, its `refusal`, each tool call's `arguments`) has a window:
the text received but not yet sent. On every chunk the window is scanned by every output detector
(`Detector.scan_window`), which reports final findings and the earliest offset where a match may
still be forming (a partial match at the end of the text, or a complete one that more text could
extend). Only text from that offset on is held back; the rest goes out at once, redacted. A match
therefore can never be split by a chunk boundary: the part of it that has arrived is always held.

The hold is bounded by `max_hold` characters. When a match that is certain to stay a match (a key
prefix followed by its run of key characters, a PEM header) grows past it, its placeholder is sent
and the rest of the match is swallowed as it arrives; a block guardrail blocks at that point. A
partial match that is still not a match after `max_hold` characters is given up and released.

A block stops the stream before the offending text is released: `feed` returns `blocked_by` and no
chunks, and the gateway ends the stream with an error event. A tool call whose name is not allowed
blocks on the delta that names it. Chunks without choices (the usage chunk) and `finish_reason`
chunks flush the held text first, in an extra chunk before them that copies their envelope.
`logprobs` are dropped from chunks while text guardrails are on: they would spell out held text.

With a webhook on the output phase every chunk is held until `finish()`, since the service judges
whole texts; the gateway should expect the first byte at the end of such streams.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from policies.guardrails.matching import Detector, WindowScan
from policies.guardrails.redact import JsonState, advance, merge, render
from policies.guardrails.verdicts import Action, StreamStep, Verdict

if TYPE_CHECKING:
    from policies.guardrails.guards import TextGuard, ToolGuard, WebhookGuard

_CONTEXT = 64  # characters of sent text kept for lookbehinds
_TEXT_KEYS = ("content", "refusal")
Channel = tuple[int, str, int]  # (choice index, "content" | "refusal" | "args" | "fargs", tool call index)


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
    sent: list[str] = field(default_factory=list)  # what went out, when a webhook needs it at the end


class StreamGuard:
    """Holds, redacts or blocks one streamed response. Feed every chunk in order, then `finish()`."""

    def __init__(
        self,
        text_guards: Sequence[TextGuard],
        tool_guards: Sequence[ToolGuard],
        webhooks: Sequence[WebhookGuard],
        *,
        max_hold: int = 128,
    ) -> None:
        self.text_guards = tuple(text_guards)
        self.tool_guards = tuple(tool_guards)
        self.webhooks = tuple(webhooks)
        self.max_hold = max_hold
        self.blocked_by: str | None = None
        self._counts: dict[str, tuple[Action, set[str], list[int]]] = {}
        self._windows: dict[Channel, _Window] = {}
        self._tool_names: dict[tuple[int, int], str] = {}
        self._envelope: dict[str, Any] | None = None
        self._queued: list[dict[str, Any]] = []

    @property
    def verdicts(self) -> tuple[Verdict, ...]:
        """Every output verdict so far (complete after `finish()` or a block)."""
        out = []
        for name, (action, entities, count) in self._counts.items():
            out.append(Verdict(name, "output", action, tuple(sorted(entities)), count[0]))
        return tuple(out)

    def feed(self, chunk: dict[str, Any]) -> StreamStep:
        """The chunks to send now for this upstream chunk (maybe none, maybe an extra flush chunk first)."""
        if self.blocked_by is not None:
            return StreamStep([], self.blocked_by)
        out = self._feed(chunk)
        blocked_by = self._blocked()
        if blocked_by is not None:
            self._queued.clear()
            return StreamStep([], blocked_by)
        if self.webhooks:
            self._queued.extend(out)
            return StreamStep()
        return StreamStep(out)

    async def finish(self) -> StreamStep:
        """End of stream: flush and scan what is held (and run the webhooks on whole texts)."""
        if self.blocked_by is not None:
            return StreamStep([], self.blocked_by)
        out = self._flush(self._envelope, None) if self._envelope is not None else []
        blocked_by = self._blocked()
        if blocked_by is not None:
            return StreamStep([], blocked_by)
        if not self.webhooks:
            return StreamStep(out)
        queued = [*self._queued, *out]
        self._queued = []
        return await self._judge(queued)

    def _feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices:
            return [*self._flush(chunk, None), chunk]
        self._envelope = chunk
        before: list[dict[str, Any]] = []
        new_choices = []
        keep = chunk.get("usage") is not None
        for choice in choices:
            if not isinstance(choice, dict):
                new_choices.append(choice)
                keep = True
                continue
            index = int(choice.get("index") or 0)
            delta = choice.get("delta")
            delta = dict(delta) if isinstance(delta, dict) else {}
            self._check_tools(index, delta)
            if self.blocked_by is not None:
                return []
            for key in _TEXT_KEYS:
                if isinstance(delta.get(key), str):
                    delta[key] = self._push((index, key, 0), delta[key])
            self._push_tool_args(index, delta)
            if self._blocked() is not None:
                return []
            new_choice = {**choice, "delta": delta}
            if self.text_guards and new_choice.get("logprobs") is not None:
                new_choice["logprobs"] = None
            if choice.get("finish_reason") is not None:
                before.extend(self._flush(chunk, index))
                for key in _TEXT_KEYS:
                    if key in delta:
                        delta[key] = ""
                keep = True
            elif _has_payload(delta):
                keep = True
            new_choices.append(new_choice)
        if self.blocked_by is not None:
            return []
        return [*before, {**chunk, "choices": new_choices}] if keep else before

    def _blocked(self) -> str | None:
        """`blocked_by`, read through a call: the helpers set it, which type narrowing cannot see."""
        return self.blocked_by

    def _check_tools(self, index: int, delta: dict[str, Any]) -> None:
        calls = delta.get("tool_calls")
        named: list[tuple[int, str]] = []
        if isinstance(calls, list):
            for call in calls:
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict) and isinstance(function.get("name"), str):
                    named.append((int(call.get("index") or 0), function["name"]))
        legacy = delta.get("function_call")
        if isinstance(legacy, dict) and isinstance(legacy.get("name"), str):
            named.append((-1, legacy["name"]))
        for k, piece in named:
            name = self._tool_names.get((index, k), "") + piece
            self._tool_names[(index, k)] = name
            for guard in self.tool_guards:
                if not guard.policy.allowed(name):
                    self._count(guard.name, guard.action, {"tool"}, 1)
                    if guard.action == "block":
                        self.blocked_by = guard.name
                        return

    def _push_tool_args(self, index: int, delta: dict[str, Any]) -> None:
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            new_calls = []
            for call in calls:
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                    text = self._push((index, "args", int(call.get("index") or 0)), function["arguments"])
                    call = {**call, "function": {**function, "arguments": text}}
                new_calls.append(call)
            delta["tool_calls"] = new_calls
        legacy = delta.get("function_call")
        if isinstance(legacy, dict) and isinstance(legacy.get("arguments"), str):
            delta["function_call"] = {**legacy, "arguments": self._push((index, "fargs", 0), legacy["arguments"])}

    def _push(self, channel: Channel, text: str) -> str:
        if not text or not (self.text_guards or self.webhooks):
            return text
        window = self._windows.get(channel)
        if window is None:
            window = self._windows[channel] = _Window(json=channel[1] in ("args", "fargs"))
        if not self.text_guards:
            window.sent.append(text)
            return text
        window.pending += text
        return self._advance(window, final=False)

    def _flush(self, envelope: dict[str, Any] | None, choice: int | None) -> list[dict[str, Any]]:
        """Scan what each window (of one choice, or all) holds as final text; chunks carrying it."""
        flushed: dict[int, dict[str, Any]] = {}
        for channel, window in self._windows.items():
            if (choice is not None and channel[0] != choice) or not (window.pending or window.committed):
                continue
            text = self._advance(window, final=True)
            if self.blocked_by is not None:
                return []
            if not text:
                continue
            delta = flushed.setdefault(channel[0], {})
            if channel[1] in _TEXT_KEYS:
                delta[channel[1]] = text
            elif channel[1] == "args":
                delta.setdefault("tool_calls", []).append({"index": channel[2], "function": {"arguments": text}})
            else:
                delta["function_call"] = {"arguments": text}
        if not flushed or envelope is None:
            return []
        base = {k: v for k, v in envelope.items() if k != "choices"}
        if "usage" in base:
            base["usage"] = None
        choices = [{"index": i, "delta": d, "finish_reason": None} for i, d in sorted(flushed.items())]
        return [{**base, "choices": choices}]

    def _advance(self, window: _Window, *, final: bool) -> str:
        """Send what can be sent from the window; keep the rest. Sets `blocked_by` on a block."""
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
                self._count(guard.name, "block", {f.entity for f in scan.findings}, len(scan.findings))
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
                    self._count(commit[0].name, "block", {finding.entity}, 1)
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
                self._count(guard.name, guard.action, {f.entity for f in found}, len(found))
        spans = merge(f for g, found in sent if g.action == "redact" for f in found)
        out.append(render(text, base, end, spans, window.state if window.json else None))
        if window.json:
            window.state = advance(window.state, text, base, end)
        window.context = text[max(0, end - _CONTEXT) : end]
        window.pending = text[end:]
        if commit is not None and commit[0].action == "redact" and end == hold:
            guard, scan = commit
            assert scan.open_finding is not None and scan.source is not None
            self._count(guard.name, "redact", {scan.open_finding.entity}, 1)
            out.append(scan.open_finding.placeholder)
            window.committed = _Committed(scan.source, guard.name)
        result = "".join(out)
        if self.webhooks:
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

    def _count(self, name: str, action: Action, entities: set[str], count: int) -> None:
        entry = self._counts.setdefault(name, (action, set(), [0]))
        entry[1].update(entities)
        entry[2][0] += count

    async def _judge(self, queued: list[dict[str, Any]]) -> StreamStep:
        from policies.guardrails.engine import _run_webhooks
        from policies.guardrails.messages import Slot

        channels = [c for c, w in self._windows.items() if w.sent]
        slots = [Slot((), "".join(self._windows[c].sent), "assistant", self._windows[c].json) for c in channels]
        texts = [s.text for s in slots]
        verdicts: list[Verdict] = []
        blocked_by = await _run_webhooks(list(self.webhooks), "output", slots, texts, verdicts) if slots else None
        for v in verdicts:
            self._count(v.guardrail, v.action, set(v.entities), v.count)
        if blocked_by is not None:
            self.blocked_by = blocked_by
            return StreamStep([], blocked_by)
        changed = {c: t for c, s, t in zip(channels, slots, texts, strict=True) if t != s.text}
        return StreamStep(_rewrite(queued, changed) if changed else queued)


def _has_payload(delta: dict[str, Any]) -> bool:
    """Whether a delta still says something once held text is taken out of it."""
    return any(key not in _TEXT_KEYS or value for key, value in delta.items())


def _rewrite(chunks: list[dict[str, Any]], texts: dict[Channel, str]) -> list[dict[str, Any]]:
    """Put each channel's whole (webhook-redacted) text in its first chunk and empty it in the rest."""
    out = copy.deepcopy(chunks)
    placed: set[Channel] = set()
    for chunk in out:
        for choice in chunk.get("choices") or ():
            index = int(choice.get("index") or 0)
            delta = choice.get("delta") or {}
            for key in _TEXT_KEYS:
                channel = (index, key, 0)
                if channel in texts and isinstance(delta.get(key), str):
                    delta[key] = "" if channel in placed else texts[channel]
                    placed.add(channel)
            for call in delta.get("tool_calls") or ():
                channel = (index, "args", int(call.get("index") or 0))
                function = call.get("function") or {}
                if channel in texts and isinstance(function.get("arguments"), str):
                    function["arguments"] = "" if channel in placed else texts[channel]
                    placed.add(channel)
    return out
