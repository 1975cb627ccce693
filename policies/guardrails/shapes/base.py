"""What each client API contributes to the guardrails: walkers over its bodies and a stream codec.

A `Shape` names, for one API, where the texts of a request and of a whole response are (`Slot`s) and
which tool names they declare or call. A `Codec` maps that API's stream events onto the text channels
of a `HoldBack` and rebuilds the events with the text the hold-back releases.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from policies.guardrails.holdback import HoldBack
from policies.guardrails.messages import Path, Slot, with_edits

Api = Literal["chat", "responses", "messages"]
Event = dict[str, Any]
C = TypeVar("C", bound=Hashable)
Location = tuple[C, Path, str, bool]
"""A text an event carries: its channel, its path in the event, the text, and whether the event repeats
the channel's whole text there (a done event) rather than adding to it (a delta)."""


class Codec(Protocol):
    """One streamed response in one API's event shape, over a `HoldBack` it was built with."""

    def feed(self, event: Event) -> list[Event]:
        """The events to send for one upstream event: maybe none (all its text is held), maybe more
        (held text flushed in events of its own before the event that ends a channel). Once the
        hold-back has blocked, what it returns is discarded by the `StreamGuard`."""
        ...

    def finish(self) -> list[Event]:
        """The upstream stream ended: events carrying whatever is still held."""
        ...

    def rewrite(self, events: list[Event], texts: Mapping[Any, str]) -> list[Event]:
        """Held events with each listed channel's text replaced by a new whole text (webhook redactions):
        the whole text in the channel's first delta, nothing in its other deltas, the whole text again
        wherever an event repeats the channel in full. The events given are not mutated."""
        ...

    @property
    def next_sequence_number(self) -> int | None:
        """For APIs whose events are numbered: the number the next event (an error event) must carry."""
        ...


@dataclass(frozen=True, slots=True)
class Shape:
    """The walkers and the stream codec of one client API."""

    request_slots: Callable[[Mapping[str, Any]], list[Slot]]
    request_tool_names: Callable[[Mapping[str, Any]], list[str]]
    response_slots: Callable[[Mapping[str, Any]], list[Slot]]
    response_tool_names: Callable[[Mapping[str, Any]], list[str]]
    redaction_extras: Callable[[Mapping[str, Any], Iterable[Path]], dict[Path, Any]]
    """Further edits a redacted response needs (logprobs that would spell out what was redacted)."""
    codec: Callable[[HoldBack[Any]], Codec]
    repeats_texts: bool = False
    """Whether its stream repeats whole texts in later events (so the hold-back keeps what it sent)."""


def rewrite_events(
    events: list[Event], texts: Mapping[C, str], locate: Callable[[Event], Iterable[Location[C]]]
) -> list[Event]:
    """`Codec.rewrite` for codecs that can `locate` every text in an event: each listed channel's new
    whole text goes into its first delta that said something and every place that repeats it whole;
    its other deltas say nothing. Only the containers on edited paths are copied."""
    placed: set[C] = set()
    out: list[Event] = []
    for event in events:
        edits: dict[Path, Any] = {}
        for channel, path, text, whole in locate(event):
            if channel not in texts or not (whole or text):
                continue  # a delta that said nothing (an empty start part) stays as it is
            new = texts[channel] if whole or channel not in placed else ""
            if not whole:
                placed.add(channel)
            if new != text:
                edits[path] = new
        out.append(with_edits(event, edits))
    return out
