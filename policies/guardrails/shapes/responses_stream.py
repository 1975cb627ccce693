"""Stream codec for the OpenAI Responses API: server-sent event dicts with a `type`.

Channels are (kind, `output_index`, part index): `text` and `refusal` per content part
(`response.output_text.delta`, `response.refusal.delta`), `args` per function call (JSON,
`response.function_call_arguments.delta`), `input` per custom tool call
(`response.custom_tool_call_input.delta`), `summary` and `reasoning` per reasoning summary part and
reasoning content part. Delta events carry what the hold-back releases (an event left with nothing is
dropped); `logprobs` are emptied while text guardrails are on.

Every `.done` event, `response.content_part.done`, `response.reasoning_summary_part.done`,
`response.output_item.done` and the terminal `response.completed` / `response.incomplete` /
`response.failed` repeat whole texts: the channels they close are flushed first (a delta event
carrying what was held, before them) and their texts are rewritten to exactly what was sent, so a
redacted text never leaks through a done event. `.added` events may carry initial text: it is pushed
like a delta. A `function_call` or `custom_tool_call` item's name is judged on the event that first
carries it (`response.output_item.added`), before that event is sent.

Every event the codec emits is renumbered: `sequence_number` stays strictly increasing (and gapless)
whatever was dropped or added; `next_sequence_number` is the number an error event must carry.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policies.guardrails.holdback import HoldBack
from policies.guardrails.messages import Path, with_edits
from policies.guardrails.shapes.base import Event, Location, rewrite_events
from policies.guardrails.shapes.responses import call_name, item_texts

Channel = tuple[str, int, int]  # (kind, output_index, content or summary index)
Spot = Location[Channel]

# delta event type -> (channel kind, the event's part index field); the reverse for synthesized deltas
_DELTAS: dict[str, tuple[str, str]] = {
    "response.output_text.delta": ("text", "content_index"),
    "response.refusal.delta": ("refusal", "content_index"),
    "response.function_call_arguments.delta": ("args", ""),
    "response.custom_tool_call_input.delta": ("input", ""),
    "response.reasoning_summary_text.delta": ("summary", "summary_index"),
    "response.reasoning_text.delta": ("reasoning", "content_index"),
}
_DELTA_OF = {kind: (event_type, index) for event_type, (kind, index) in _DELTAS.items()}
# done event type -> (channel kind, part index field, whole text field)
_DONES: dict[str, tuple[str, str, str]] = {
    "response.output_text.done": ("text", "content_index", "text"),
    "response.refusal.done": ("refusal", "content_index", "refusal"),
    "response.function_call_arguments.done": ("args", "", "arguments"),
    "response.custom_tool_call_input.done": ("input", "", "input"),
    "response.reasoning_summary_text.done": ("summary", "summary_index", "text"),
    "response.reasoning_text.done": ("reasoning", "content_index", "text"),
}
# content part type -> (channel kind, its text field)
_PART_KINDS = {
    "output_text": ("text", "text"),
    "refusal": ("refusal", "refusal"),
    "reasoning_text": ("reasoning", "text"),
}
_STARTS = ("response.output_item.added", "response.content_part.added", "response.reasoning_summary_part.added")
_TERMINAL = ("response.completed", "response.incomplete", "response.failed")


class ResponsesCodec:
    """Responses stream events in, guarded and renumbered events out."""

    def __init__(self, hold: HoldBack[Channel]) -> None:
        self.hold = hold
        self._next: int | None = None
        self._item_ids: dict[int, str] = {}
        self._named: dict[int, str] = {}

    @property
    def next_sequence_number(self) -> int | None:
        return self._next

    def feed(self, event: Event) -> list[Event]:
        kind = event.get("type")
        delta = _DELTAS.get(kind) if isinstance(kind, str) else None
        if delta is not None:
            return self._delta(event, delta)
        if not isinstance(kind, str):
            return [self._emit(event)]
        self._check_names(event)
        if self._blocked() is not None:
            return []
        locations = list(locate(event))
        start = kind in _STARTS
        out = [] if start else self._flush(self._closed_by(event, kind, locations))
        edits: dict[Path, Any] = {}
        for channel, path, text, _ in locations:
            json = channel[0] == "args"
            new = self.hold.push(channel, text, json) if start else self.hold.settle(channel, text, json)
            if self._blocked() is not None:
                return []
            if new != text:
                edits[path] = new
            if channel[0] == "text" and self.hold.text_guards:
                logprobs = (*path[:-1], "logprobs")
                if _get(event, logprobs):
                    edits[logprobs] = []
        out.append(self._emit(with_edits(event, edits)))
        return out

    def finish(self) -> list[Event]:
        return self._flush(self.hold.channels())

    def rewrite(self, events: list[Event], texts: Mapping[Channel, str]) -> list[Event]:
        return rewrite_events(events, texts, locate)

    def _delta(self, event: Event, spec: tuple[str, str]) -> list[Event]:
        text = event.get("delta")
        index = int(event.get("output_index") or 0)
        if isinstance(event.get("item_id"), str):
            self._item_ids[index] = event["item_id"]
        if not isinstance(text, str):
            return [self._emit(event)]
        channel = (spec[0], index, int(event.get(spec[1]) or 0) if spec[1] else 0)
        released = self.hold.push(channel, text, spec[0] == "args")
        if not released or self._blocked() is not None:
            return []
        new = {**event, "delta": released}
        if self.hold.text_guards and event.get("logprobs"):
            new["logprobs"] = []
        return [self._emit(new)]

    def _check_names(self, event: Event) -> None:
        """Judge each tool call item's name once, on the first event that carries it."""
        for index, item in _items(event):
            name = call_name(item)
            if isinstance(item.get("id"), str):
                self._item_ids.setdefault(index, item["id"])
            if name and self._named.get(index) != name:
                self._named[index] = name
                self.hold.check_tool(name)
                if self._blocked() is not None:
                    return

    def _closed_by(self, event: Event, kind: str, locations: list[Spot]) -> list[Channel]:
        """The channels an event closes: all at the end, an output item's, or those it repeats."""
        if kind in _TERMINAL:
            return self.hold.channels()
        if kind == "response.output_item.done":
            index = int(event.get("output_index") or 0)
            return [c for c in self.hold.channels() if c[1] == index]
        return [location[0] for location in locations]

    def _flush(self, channels: list[Channel]) -> list[Event]:
        """Delta events carrying what the channels still hold, scanned as final text."""
        out: list[Event] = []
        for channel in channels:
            text = self.hold.flush(channel)
            if self._blocked() is not None:
                return []
            if text:
                out.append(self._emit(self._synthesized(channel, text)))
        return out

    def _synthesized(self, channel: Channel, text: str) -> Event:
        kind, index, part = channel
        event_type, part_field = _DELTA_OF[kind]
        event: Event = {"type": event_type, "item_id": self._item_ids.get(index, ""), "output_index": index}
        if part_field:
            event[part_field] = part
        event["delta"] = text
        if kind == "text":
            event["logprobs"] = []
        return event

    def _emit(self, event: Event) -> Event:
        number = event.get("sequence_number")
        if self._next is None:
            self._next = number if isinstance(number, int) else 0
        if number != self._next:
            event = {**event, "sequence_number": self._next}
        self._next += 1
        return event

    def _blocked(self) -> str | None:
        """`blocked_by`, read through a call: the hold-back sets it, which type narrowing cannot see."""
        return self.hold.blocked_by


def locate(event: Event) -> Iterator[Spot]:
    """Every text an event carries, with its channel and path in the event; `whole` when the event
    repeats the channel's whole text rather than adding to it."""
    kind = event.get("type")
    if not isinstance(kind, str):
        return
    index = int(event.get("output_index") or 0)
    spec = _DELTAS.get(kind)
    if spec is not None:
        if isinstance(event.get("delta"), str):
            yield (spec[0], index, int(event.get(spec[1]) or 0) if spec[1] else 0), ("delta",), event["delta"], False
        return
    done = _DONES.get(kind)
    if done is not None:
        channel_kind, part_field, text_field = done
        if isinstance(event.get(text_field), str):
            sub = int(event.get(part_field) or 0) if part_field else 0
            yield (channel_kind, index, sub), (text_field,), event[text_field], True
        return
    whole = kind not in _STARTS
    part = event.get("part")
    if isinstance(part, dict):
        if kind.startswith("response.reasoning_summary_part."):
            channel_kind, key, sub = "summary", "text", int(event.get("summary_index") or 0)
        elif part.get("type") in _PART_KINDS:
            (channel_kind, key), sub = _PART_KINDS[part["type"]], int(event.get("content_index") or 0)
        else:
            return
        if isinstance(part.get(key), str):
            yield (channel_kind, index, sub), ("part", key), part[key], whole
        return
    for output_index, item in _items(event):
        base: Path = ("item",) if "item" in event else ("response", "output", output_index)
        for channel_kind, sub, path, text in item_texts(item):
            yield (channel_kind, output_index, sub), (*base, *path), text, whole


def _items(event: Event) -> Iterator[tuple[int, dict[str, Any]]]:
    """The output items an event carries, with their output index."""
    item = event.get("item")
    if isinstance(item, dict):
        yield int(event.get("output_index") or 0), item
        return
    response = event.get("response")
    output = response.get("output") if isinstance(response, dict) else None
    if isinstance(output, list):
        for i, each in enumerate(output):
            if isinstance(each, dict):
                yield i, each


def _get(event: Event, path: Path) -> Any:
    node: Any = event
    for key in path:
        if isinstance(node, dict) and isinstance(key, str):
            node = node.get(key)
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            return None
    return node
