"""`StreamGuard`: output guardrails on a streamed response, event by event, in any client API.

The hold-back itself (`holdback.py`) knows nothing of APIs: each text channel has a window that holds
back only what could still be the start of a match (for plain prose, about the last word; never more
than `max_hold` characters), so a match split across events is always caught. A codec per API
(`shapes/*_stream.py`) maps its events to channel texts and rebuilds them with the released text:
Chat Completions chunks, Responses events (renumbered, done events rewritten to what was sent),
Messages events (blocks flushed before they stop).

A block stops the stream before the offending text is released: `feed` returns `blocked_by` and no
events, and the gateway ends the stream with an error event in the client's shape (a Responses error
event carries `next_sequence_number`). A tool call whose name is not allowed blocks on the event that
names it, before that event is sent.

With a webhook on the output phase every event is held until `finish()`, since the service judges
whole texts; the gateway should expect the first byte at the end of such streams.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from policies.guardrails.holdback import HoldBack
from policies.guardrails.judging import run_webhooks
from policies.guardrails.messages import Slot
from policies.guardrails.shapes import Api, shape
from policies.guardrails.verdicts import StreamStep, Verdict

if TYPE_CHECKING:
    from policies.guardrails.guards import TextGuard, ToolGuard, WebhookGuard


class StreamGuard:
    """Holds, redacts or blocks one streamed response. Feed every event in order, then `finish()`."""

    def __init__(
        self,
        text_guards: Sequence[TextGuard],
        tool_guards: Sequence[ToolGuard],
        webhooks: Sequence[WebhookGuard],
        *,
        max_hold: int = 128,
        api: Api = "chat",
    ) -> None:
        api_shape = shape(api)
        self.api = api
        self.webhooks = tuple(webhooks)
        self._hold: HoldBack[Any] = HoldBack(
            text_guards, tool_guards, webhooks, max_hold=max_hold, keep_sent=api_shape.repeats_texts
        )
        self._codec = api_shape.codec(self._hold)
        self._queued: list[dict[str, Any]] = []

    @property
    def blocked_by(self) -> str | None:
        """The guardrail that blocked the stream, once one has."""
        return self._hold.blocked_by

    @property
    def verdicts(self) -> tuple[Verdict, ...]:
        """Every output verdict so far (complete after `finish()` or a block)."""
        return self._hold.verdicts

    @property
    def next_sequence_number(self) -> int | None:
        """Responses streams: the `sequence_number` the gateway's error event must carry after a block
        (every event the guard emits is renumbered). None for APIs whose events are not numbered."""
        return self._codec.next_sequence_number

    def feed(self, event: dict[str, Any]) -> StreamStep:
        """The events to send now for this upstream event (maybe none, maybe extra flush events first)."""
        if self._hold.blocked_by is not None:
            return StreamStep([], self._hold.blocked_by)
        out = self._codec.feed(event)
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
        if self._hold.blocked_by is not None:
            return StreamStep([], self._hold.blocked_by)
        out = self._codec.finish()
        blocked_by = self._blocked()
        if blocked_by is not None:
            return StreamStep([], blocked_by)
        if not self.webhooks:
            return StreamStep(out)
        queued = [*self._queued, *out]
        self._queued = []
        return await self._judge(queued)

    def _blocked(self) -> str | None:
        """`blocked_by`, read through a call: the codec sets it, which type narrowing cannot see."""
        return self._hold.blocked_by

    async def _judge(self, queued: list[dict[str, Any]]) -> StreamStep:
        recorded = self._hold.texts()
        slots = [Slot((), text, "assistant", json) for _, text, json in recorded]
        texts = [s.text for s in slots]
        verdicts: list[Verdict] = []
        blocked_by = await run_webhooks(list(self.webhooks), "output", slots, texts, verdicts) if slots else None
        for v in verdicts:
            self._hold.count(v.guardrail, v.action, set(v.entities), v.count)
        if blocked_by is not None:
            self._hold.blocked_by = blocked_by
            return StreamStep([], blocked_by)
        changed = {c: t for (c, _, _), s, t in zip(recorded, slots, texts, strict=True) if t != s.text}
        return StreamStep(self._codec.rewrite(queued, changed) if changed else queued)
