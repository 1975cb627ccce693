"""Stream codec for the Anthropic Messages API: event dicts with a `type`.

Channels are (kind, block `index`): `text` (`text_delta`, and any text a `content_block_start`
carries), `input` (a tool use block's `input_json_delta.partial_json`, JSON text redacted without
breaking it) and `thinking` (`thinking_delta`, guarded like text: clients show it). A
`content_block_delta` carries what the hold-back releases and is dropped when that is nothing. A
block's channel is flushed (in a delta event of its own) before its `signature_delta` and its
`content_block_stop`; every channel before `message_delta` and `message_stop`. A `tool_use` block's
name is judged on its `content_block_start`, before that event is sent. Other events (`ping`,
`citations_delta`, `signature_delta`, server tool results) pass as they are.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policies.guardrails.holdback import HoldBack
from policies.guardrails.messages import Path, with_edits
from policies.guardrails.shapes.base import Event, Location, rewrite_events
from policies.guardrails.shapes.leaves import json_leaves
from policies.guardrails.shapes.messages import TOOL_USES

Channel = tuple[str, int, Path]  # (kind, block index, path of a leaf in a start event's input or ())
Spot = Location[Channel]

# delta type -> (channel kind, its text field); the reverse for the deltas that carry flushed text
_DELTAS = {
    "text_delta": ("text", "text"),
    "input_json_delta": ("input", "partial_json"),
    "thinking_delta": ("thinking", "thinking"),
}
_DELTA_OF = {kind: (delta_type, field) for delta_type, (kind, field) in _DELTAS.items()}
_START_TEXTS = {"text": "text", "thinking": "thinking"}  # block type -> its text field


class MessagesCodec:
    """Messages stream events in, guarded events out."""

    next_sequence_number: int | None = None  # Messages events are not numbered

    def __init__(self, hold: HoldBack[Channel]) -> None:
        self.hold = hold

    def feed(self, event: Event) -> list[Event]:
        kind = event.get("type")
        if kind == "content_block_delta":
            return self._delta(event)
        if kind == "content_block_start":
            return self._start(event)
        if kind == "content_block_stop":
            return self._then(self._flush_block(int(event.get("index") or 0)), event)
        if kind in ("message_delta", "message_stop"):
            return self._then(self._flush(self.hold.channels()), event)
        return [event]

    def finish(self) -> list[Event]:
        return self._flush(self.hold.channels())

    def rewrite(self, events: list[Event], texts: Mapping[Channel, str]) -> list[Event]:
        return rewrite_events(events, texts, locate)

    def _delta(self, event: Event) -> list[Event]:
        delta = event.get("delta")
        index = int(event.get("index") or 0)
        spec = _DELTAS.get(str(delta.get("type"))) if isinstance(delta, dict) else None
        if spec is None or not isinstance(delta, dict):
            if isinstance(delta, dict) and delta.get("type") == "signature_delta":
                return self._then(self._flush_block(index), event)
            return [event]
        text = delta.get(spec[1])
        if not isinstance(text, str):
            return [event]
        released = self.hold.push((spec[0], index, ()), text, spec[0] == "input")
        if not released or self._blocked() is not None:
            return []
        return [{**event, "delta": {**delta, spec[1]: released}}]

    def _start(self, event: Event) -> list[Event]:
        block = event.get("content_block")
        if not isinstance(block, dict):
            return [event]
        if block.get("type") == "tool_use" and isinstance(block.get("name"), str):
            self.hold.check_tool(block["name"])
            if self._blocked() is not None:
                return []
        edits: dict[Path, Any] = {}
        for channel, path, text, whole in locate(event):
            new = self.hold.settle(channel, text) if whole else self.hold.push(channel, text)
            if self._blocked() is not None:
                return []
            if new != text:
                edits[path] = new
        return [with_edits(event, edits)]

    def _flush_block(self, index: int) -> list[Event]:
        return self._flush([c for c in self.hold.channels() if c[1] == index])

    def _flush(self, channels: list[Channel]) -> list[Event]:
        """Delta events carrying what the channels still hold, scanned as final text."""
        out: list[Event] = []
        for kind, index, leaf in channels:
            if kind not in _DELTA_OF:
                continue  # a start event's input leaf is settled whole, never held
            text = self.hold.flush((kind, index, leaf))
            if self._blocked() is not None:
                return []
            if text:
                delta_type, field = _DELTA_OF[kind]
                out.append({"type": "content_block_delta", "index": index, "delta": {"type": delta_type, field: text}})
        return out

    def _then(self, flushed: list[Event], event: Event) -> list[Event]:
        return [] if self._blocked() is not None else [*flushed, event]

    def _blocked(self) -> str | None:
        """`blocked_by`, read through a call: the hold-back sets it, which type narrowing cannot see."""
        return self.hold.blocked_by


def locate(event: Event) -> Iterator[Spot]:
    """Every text an event carries: a delta's text, a start event's initial text (both add to their
    channel), and the string leaves of a start event's tool input (each whole, a channel of its own)."""
    kind = event.get("type")
    index = int(event.get("index") or 0)
    if kind == "content_block_delta":
        delta = event.get("delta")
        spec = _DELTAS.get(str(delta.get("type"))) if isinstance(delta, dict) else None
        if spec is not None and isinstance(delta, dict) and isinstance(delta.get(spec[1]), str):
            yield (spec[0], index, ()), ("delta", spec[1]), delta[spec[1]], False
    elif kind == "content_block_start":
        block = event.get("content_block")
        if not isinstance(block, dict):
            return
        field = _START_TEXTS.get(str(block.get("type")))
        if field is not None and isinstance(block.get(field), str) and block[field]:
            yield (field, index, ()), ("content_block", field), block[field], False
        elif block.get("type") in TOOL_USES and isinstance(block.get("input"), dict):
            for path, text in json_leaves(block["input"]):
                yield ("leaf", index, path), ("content_block", "input", *path), text, True
