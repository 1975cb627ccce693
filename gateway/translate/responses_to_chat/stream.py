"""Chat completion chunks -> Responses stream events: a state machine, no I/O.

`StreamTranslator` implements `StreamTranslation`. The first chunk opens the response
(`response.created`, `response.in_progress`); text and refusal deltas stream into a `message` item
and each tool call into a `function_call` item, one item after another as OpenAI sends them: an
item is closed (its `.done` events, then `response.output_item.done`) when the next one starts or
when `finish` closes the response with `response.completed` or `response.incomplete`. Every event
carries `sequence_number`, 0, 1, 2, ... in the order emitted.

`stream_error_events` are the events a Responses stream ends with when the provider breaks after
the stream began: an `error` event, then `response.failed`. The `error` event carries its fields
both flat (`code`, `message`, `param`, as the API reference documents) and nested under `error`
(as OpenAI's API sends them): the nested object is what makes the openai SDK raise `APIError` and
so the Agents SDK fail the run; a client that does not raise still sees `response.failed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.metering.usage import Usage
from gateway.translate.responses_to_chat.response import (
    Item,
    function_call_item,
    incomplete_reason,
    item_id,
    message_item,
    refusal_part,
    response_object,
    text_part,
    url_citations,
)


class ChatStreamError(Exception):
    """A chunk carrying `error`: the provider failed after its stream began."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass
class _Message:
    id: str
    output_index: int
    parts: list[dict[str, Any]] = field(default_factory=list)  # {"type", "text", "annotations"}

    def part_index(self, kind: str) -> int | None:
        return next((i for i, part in enumerate(self.parts) if part["type"] == kind), None)


@dataclass
class _Call:
    id: str
    output_index: int
    call_id: str
    name: str
    arguments: str = ""


def _part(part: dict[str, Any]) -> dict[str, Any]:
    if part["type"] == "refusal":
        return refusal_part(part["text"])
    return text_part(part["text"], list(part["annotations"]))


class StreamTranslator:
    """Turns `chat.completion.chunk` dicts into Responses stream events (see the module docstring).

    Only choice 0 is read. `feed` raises `ChatStreamError` for a chunk carrying `error` and
    ValueError for a malformed chunk.
    """

    def __init__(self, request: Mapping[str, Any], *, model: str, response_id: str, created_at: int) -> None:
        self._request = request
        self._model = model
        self._response_id = response_id
        self._created_at = created_at
        self._sequence = 0
        self._started = False
        self._ended = False
        self._items: list[_Message | _Call] = []
        self._statuses: list[str] = []
        self._open: _Message | _Call | None = None
        self._calls: dict[int, _Call] = {}  # chat tool_calls index -> its item
        self._finish_reason: str | None = None
        self._usage: Usage | None = None

    @property
    def next_sequence_number(self) -> int:
        """The sequence number the next event gets (for events the gateway writes itself)."""
        return self._sequence

    @property
    def usage(self) -> Usage | None:
        """The usage the provider's last usage chunk reported, if any."""
        return self._usage

    @property
    def finish_reason(self) -> str | None:
        return self._finish_reason

    @property
    def output(self) -> list[Item]:
        """The output items so far, as the response object lists them."""
        return [self._snapshot(item) for item in self._items]

    def feed(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Take one chat chunk (the usage chunk with `choices: []` included); return the events."""
        if self._ended:
            return []
        if not isinstance(event, Mapping):
            raise ValueError("chat stream chunk is not an object")
        if event.get("error") is not None:
            raise _stream_error(event["error"])
        events = self._start()
        self._usage = Usage.from_openai(event.get("usage")) or self._usage
        choices = event.get("choices")
        if choices is None:
            return events
        if not isinstance(choices, list):
            raise ValueError("chat stream chunk has malformed choices")
        for choice in choices:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                events += self._choice(choice)
        return events

    def finish(self, usage: Usage | None) -> list[dict[str, Any]]:
        """Close the open item and the response; `usage` wins over the provider's usage chunk."""
        if self._ended:
            return []
        events = self._start()
        if not self._items:  # an empty reply is still a message, with empty text
            events += self._delta("output_text", "")
        incomplete = incomplete_reason(self._finish_reason)
        events += self._close_open("incomplete" if incomplete else "completed")
        response = response_object(
            self._request,
            response_id=self._response_id,
            created_at=self._created_at,
            model=self._model,
            status="incomplete" if incomplete else "completed",
            output=self.output,
            usage=usage or self._usage,
            incomplete=incomplete,
        )
        events.append(self._event("response.incomplete" if incomplete else "response.completed", response=response))
        self._ended = True
        return events

    def fail(self, error_code: str, message: str, *, error_type: str = "server_error") -> list[dict[str, Any]]:
        """The events that end this stream when the provider broke: see `stream_error_events`."""
        if self._ended:
            return []
        events = self._start()
        if self._open is not None:
            self._statuses[self._open.output_index] = "incomplete"
        closing = stream_error_events(
            error_code,
            message,
            response_id=self._response_id,
            created_at=self._created_at,
            model=self._model,
            sequence_number=self._sequence,
            request=self._request,
            output=self.output,
            error_type=error_type,
        )
        self._sequence += len(closing)
        self._ended = True
        return events + closing

    # --- chunk contents ---------------------------------------------------------------------------

    def _choice(self, choice: dict[str, Any]) -> list[dict[str, Any]]:
        delta = choice.get("delta")
        if delta is None:
            delta = {}
        if not isinstance(delta, dict):
            raise ValueError("chat stream choice has a malformed delta")
        events: list[dict[str, Any]] = []
        for key, kind in (("content", "output_text"), ("refusal", "refusal")):
            if isinstance(delta.get(key), str) and delta[key]:
                events += self._delta(kind, delta[key])
        text_index = self._open.part_index("output_text") if isinstance(self._open, _Message) else None
        if isinstance(self._open, _Message) and text_index is not None:
            self._open.parts[text_index]["annotations"] += url_citations(delta.get("annotations"))
        calls = delta.get("tool_calls")
        if calls is None:
            calls = []
        if not isinstance(calls, list):
            raise ValueError("chat stream delta has malformed tool_calls")
        for call in calls:
            events += self._tool_call(call)
        if isinstance(choice.get("finish_reason"), str):
            self._finish_reason = choice["finish_reason"]
        return events

    def _delta(self, kind: str, text: str) -> list[dict[str, Any]]:
        """Text or refusal: into the open message, opening it and its part when needed."""
        events: list[dict[str, Any]] = []
        message = self._open
        if not isinstance(message, _Message):
            events += self._close_open("completed")
            message = _Message(item_id("msg", self._response_id, len(self._items)), len(self._items))
            events += self._add_item(message)
        index = message.part_index(kind)
        if index is None:
            index = len(message.parts)
            message.parts.append({"type": kind, "text": "", "annotations": []})
            part = _part(message.parts[index])
            events.append(self._event("response.content_part.added", **self._at(message, index), part=part))
        message.parts[index]["text"] += text
        if text and kind == "refusal":
            events.append(self._event("response.refusal.delta", **self._at(message, index), delta=text))
        elif text:
            fields = self._at(message, index)
            events.append(self._event("response.output_text.delta", **fields, delta=text, logprobs=[]))
        return events

    def _tool_call(self, delta: Any) -> list[dict[str, Any]]:
        function = (delta.get("function") or {}) if isinstance(delta, dict) else None
        index = delta.get("index", 0) if isinstance(delta, dict) else None
        if not isinstance(function, dict) or not isinstance(index, int):
            raise ValueError("chat stream tool call delta is malformed")
        given_name = function.get("name")
        name = given_name if isinstance(given_name, str) else ""
        events: list[dict[str, Any]] = []
        call = self._calls.get(index)
        if call is None:
            events += self._open_call(index, delta.get("id"), name)
            call = self._calls[index]
        elif not call.name:
            call.name = name
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            call.arguments += arguments
            # a delta for a call already closed (a provider interleaving calls) only reaches the
            # final response object: its .done events have been sent
            if call is self._open:
                fields = {"item_id": call.id, "output_index": call.output_index, "delta": arguments}
                events.append(self._event("response.function_call_arguments.delta", **fields))
        return events

    def _open_call(self, index: int, given_id: Any, name: str) -> list[dict[str, Any]]:
        events = self._close_open("completed")
        output_index = len(self._items)
        call_id = given_id if isinstance(given_id, str) and given_id else f"call_{self._response_id}_{index}"
        call = _Call(item_id("fc", self._response_id, output_index), output_index, call_id, name)
        self._calls[index] = call
        return events + self._add_item(call)

    # --- items ------------------------------------------------------------------------------------

    def _add_item(self, item: _Message | _Call) -> list[dict[str, Any]]:
        self._items.append(item)
        self._statuses.append("in_progress")
        self._open = item
        added = self._event("response.output_item.added", output_index=item.output_index, item=self._snapshot(item))
        return [added]

    def _close_open(self, status: str) -> list[dict[str, Any]]:
        item, self._open = self._open, None
        if item is None:
            return []
        events: list[dict[str, Any]] = []
        if isinstance(item, _Message):
            for index, part in enumerate(item.parts):
                fields = self._at(item, index)
                if part["type"] == "refusal":
                    events.append(self._event("response.refusal.done", **fields, refusal=part["text"]))
                else:
                    events.append(self._event("response.output_text.done", **fields, text=part["text"], logprobs=[]))
                events.append(self._event("response.content_part.done", **fields, part=_part(part)))
        else:
            fields = {"item_id": item.id, "output_index": item.output_index, "arguments": item.arguments}
            events.append(self._event("response.function_call_arguments.done", **fields))
        self._statuses[item.output_index] = status
        done = self._event("response.output_item.done", output_index=item.output_index, item=self._snapshot(item))
        return [*events, done]

    def _snapshot(self, item: _Message | _Call) -> Item:
        status = self._statuses[item.output_index]
        if isinstance(item, _Message):
            return message_item(item.id, [_part(part) for part in item.parts], status)
        return function_call_item(item.id, item.call_id, item.name, item.arguments, status)

    # --- events -----------------------------------------------------------------------------------

    def _start(self) -> list[dict[str, Any]]:
        if self._started:
            return []
        self._started = True
        response = response_object(
            self._request,
            response_id=self._response_id,
            created_at=self._created_at,
            model=self._model,
            status="in_progress",
            output=[],
        )
        return [
            self._event("response.created", response=response),
            self._event("response.in_progress", response=dict(response)),
        ]

    def _at(self, message: _Message, content_index: int) -> dict[str, Any]:
        return {"item_id": message.id, "output_index": message.output_index, "content_index": content_index}

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event


def _stream_error(error: Any) -> ChatStreamError:
    if not isinstance(error, dict):
        return ChatStreamError(str(error))
    code = next((error[key] for key in ("code", "type") if isinstance(error.get(key), str)), None)
    return ChatStreamError(str(error.get("message") or "provider stream error"), code)


def stream_error_events(
    error_code: str,
    message: str,
    *,
    response_id: str,
    created_at: int,
    model: str,
    sequence_number: int,
    request: Mapping[str, Any] | None = None,
    output: list[Item] | None = None,
    error_type: str = "server_error",
) -> list[dict[str, Any]]:
    """The events that end a Responses stream the provider broke: `error`, then `response.failed`.

    `sequence_number` is the next one of the stream (the translator's `next_sequence_number`); the
    two events take it and the one after. `request` and `output` (the items streamed so far) fill
    the failed response object like the others of the stream.
    """
    error = {"type": error_type, "code": error_code, "message": message, "param": None}
    failed = response_object(
        request or {},
        response_id=response_id,
        created_at=created_at,
        model=model,
        status="failed",
        output=output or [],
        error={"code": error_code, "message": message},
    )
    flat = {"code": error_code, "message": message, "param": None}
    return [
        {"type": "error", "sequence_number": sequence_number, **flat, "error": error},
        {"type": "response.failed", "sequence_number": sequence_number + 1, "response": failed},
    ]
