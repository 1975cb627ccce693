"""Chat completion chunks -> Anthropic Messages stream events: a state machine, no I/O.

`StreamTranslator` (a `StreamTranslation`) is fed `chat.completion.chunk` dicts in order and
returns the Messages events they become, as dicts with their `type`: `message_start` once, then
`content_block_start` / `content_block_delta` / `content_block_stop` for each text and tool_use
block, and from `finish` the closing `message_delta` and `message_stop`. Only choice 0 is read
(a Messages answer has one). A malformed chunk raises ValueError.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.metering.usage import Usage
from gateway.translate.messages_to_chat.response import (
    map_finish_reason,
    matched_stop_sequence,
    message_id_from,
    tool_use_id,
    usage_to_anthropic,
)

Event = dict[str, Any]


@dataclass(slots=True)
class _ToolCall:
    """A chat tool call being streamed: its chat id and the index of its tool_use block."""

    call_id: str | None
    block: int


class StreamTranslator:
    """One streamed call's chat chunks in, Anthropic stream events out.

    `model` is the name the client asked for; `message_id` replaces the id derived from the
    first chunk's; `input_tokens` is what `message_start` reports (the gateway's estimate of
    the prompt, if it has one; the final count comes in `message_delta`).
    """

    def __init__(self, *, model: str, message_id: str | None = None, input_tokens: int = 0) -> None:
        self._model = model
        self._id = message_id
        self._input_tokens = input_tokens
        self._started = False
        self._finished = False
        self._blocks = 0  # how many content blocks were started
        self._open: int | None = None  # the index of the open block
        self._open_is_text = False
        self._tools: dict[int, _ToolCall] = {}  # chat tool_calls index -> its block
        self._finish_reason: Any = None
        self._stop_sequence: str | None = None
        self._refused = False
        self._usage: Usage | None = None  # from the stream's own usage chunk

    @property
    def message_id(self) -> str | None:
        """The message id, once the first chunk (or `finish`) fixed it."""
        return self._id

    @property
    def stop_reason(self) -> str:
        """The stop reason as it stands (final once the stream's last chunk was fed)."""
        finish_reason = "content_filter" if self._refused else self._finish_reason
        return map_finish_reason(finish_reason, tool_calls=bool(self._tools), stop_sequence=self._stop_sequence)

    def feed(self, event: Mapping[str, Any]) -> list[Event]:
        """Take one chat chunk; return the Messages events it becomes (the first adds message_start)."""
        if self._finished:
            return []
        events = self._start(event.get("id"))
        usage = event.get("usage")
        if isinstance(usage, dict):
            self._usage = Usage.from_openai(usage) or self._usage
        choices = event.get("choices")
        if choices is None:
            return events
        if not isinstance(choices, list):
            raise ValueError("chat chunk has malformed choices")
        for choice in choices:
            if not isinstance(choice, dict):
                raise ValueError("chat chunk has a malformed choice")
            if choice.get("index", 0) == 0:
                events += self._choice(choice)
        return events

    def finish(self, usage: Usage | None) -> list[Event]:
        """The closing events: the open block's stop, `message_delta` and `message_stop`.

        `usage` is the call's final count; None falls back to the stream's own usage chunk, then to 0s.
        """
        if self._finished:
            return []
        self._finished = True
        events = self._start(None) + self._close()
        counts = usage_to_anthropic(usage or self._usage or Usage())
        stop_reason = self.stop_reason
        stop_sequence = self._stop_sequence if stop_reason == "stop_sequence" else None
        delta = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
        return [*events, {"type": "message_delta", "delta": delta, "usage": counts}, {"type": "message_stop"}]

    # --- events -------------------------------------------------------------------------------------

    def _start(self, chat_id: Any) -> list[Event]:
        if self._started:
            return []
        self._started = True
        self._id = self._id or message_id_from(chat_id)
        usage = {
            "input_tokens": self._input_tokens,
            "output_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        }
        message: Event = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        return [{"type": "message_start", "message": message}]

    def _choice(self, choice: dict[str, Any]) -> list[Event]:
        delta = choice.get("delta") or {}
        if not isinstance(delta, dict):
            raise ValueError("chat chunk has a malformed delta")
        events = self._text(delta.get("content"))
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            self._refused = True
            events += self._text(refusal)
        tool_calls = delta.get("tool_calls")
        if tool_calls is not None:
            if not isinstance(tool_calls, list):
                raise ValueError("chat chunk has malformed tool_calls")
            for position, call in enumerate(tool_calls):
                events += self._tool_call(call, position)
        if choice.get("finish_reason") is not None:
            self._finish_reason = choice["finish_reason"]
            self._stop_sequence = matched_stop_sequence(choice)
        return events

    def _text(self, text: Any) -> list[Event]:
        if not isinstance(text, str) or not text:
            return []
        events = [] if self._open_is_text else self._close() + self._open_block({"type": "text", "text": ""}, True)
        return [*events, self._delta({"type": "text_delta", "text": text})]

    def _tool_call(self, call: Any, position: int) -> list[Event]:
        """A tool call delta: the first for an index (with id and name) opens a tool_use block, the
        arguments stream as `input_json_delta`."""
        if not isinstance(call, dict):
            raise ValueError("chat chunk has a malformed tool call")
        index = call.get("index", position)
        function = call.get("function") or {}
        if not isinstance(index, int) or not isinstance(function, dict):
            raise ValueError("chat chunk has a malformed tool call")
        call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else None
        events: list[Event] = []
        known = self._tools.get(index)
        if known is None or (call_id is not None and known.call_id is not None and call_id != known.call_id):
            events += self._start_tool(index, call_id, function.get("name"))
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            # OpenAI streams parallel calls one after another; a late delta for an earlier call
            # still names that call's block, which the SDK's accumulator accepts.
            block = self._tools[index].block
            events.append(self._delta({"type": "input_json_delta", "partial_json": arguments}, block))
        return events

    def _start_tool(self, index: int, call_id: str | None, name: Any) -> list[Event]:
        if not isinstance(name, str) or not name:
            raise ValueError("chat chunk starts a tool call without a name")
        events = self._close()
        assert self._id is not None  # set by message_start
        block_id = call_id or tool_use_id(self._id, len(self._tools))
        block = {"type": "tool_use", "id": block_id, "name": name, "input": {}}
        events += self._open_block(block, False)
        self._tools[index] = _ToolCall(call_id, self._blocks - 1)
        return events

    def _open_block(self, block: dict[str, Any], is_text: bool) -> list[Event]:
        self._open, self._open_is_text = self._blocks, is_text
        self._blocks += 1
        return [{"type": "content_block_start", "index": self._open, "content_block": block}]

    def _delta(self, delta: dict[str, Any], index: int | None = None) -> Event:
        return {"type": "content_block_delta", "index": self._open if index is None else index, "delta": delta}

    def _close(self) -> list[Event]:
        if self._open is None:
            return []
        index, self._open, self._open_is_text = self._open, None, False
        return [{"type": "content_block_stop", "index": index}]
