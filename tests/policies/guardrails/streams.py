"""Event sequences as OpenAI (Responses) and Anthropic (Messages) stream them, and what a client
reads back from the events a guard sent. Every sent event is validated against the official SDK types."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from typing import Any, get_args

from anthropic.types import RawMessageStreamEvent
from openai.types.responses import ResponseStreamEvent
from pydantic import BaseModel

Event = dict[str, Any]
SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"  # a thinking block's, opaque


def _by_type(union: Any) -> dict[str, type[BaseModel]]:
    """Each event model of an SDK union by its `type` literal (the discriminator)."""
    while not isinstance(union, type) and get_args(union) and not isinstance(get_args(union)[0], type):
        union = get_args(union)[0]  # unwrap Annotated[Union[...], ...]
    return {get_args(m.model_fields["type"].annotation)[0]: m for m in get_args(union)}


_RESPONSES_EVENTS = _by_type(ResponseStreamEvent)
_MESSAGES_EVENTS = _by_type(RawMessageStreamEvent)


def responses_model(event: Event) -> Any:
    """The event as the OpenAI SDK types it (validated: a missing or mistyped field fails)."""
    return _RESPONSES_EVENTS[event["type"]].model_validate(event)


def messages_model(event: Event) -> Any:
    """The event as the Anthropic SDK types it (validated: a missing or mistyped field fails)."""
    return _MESSAGES_EVENTS[event["type"]].model_validate(event)


# --- OpenAI Responses ---------------------------------------------------------------------------


def response_object(status: str, output: list[Event], usage: Event | None = None) -> Event:
    return {
        "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
        "object": "response",
        "created_at": 1741476542,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": "gpt-4.1-2025-04-14",
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }


def message_item(text: str, *, status: str = "completed", kind: str = "output_text", item_id: str = "msg_1") -> Event:
    part: Event = (
        {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        if kind == "output_text"
        else {"type": "refusal", "refusal": text}
    )
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": [part]}


def call_item(kind: str, name: str, text: str, *, status: str = "completed", item_id: str = "fc_1") -> Event:
    field = "arguments" if kind == "function_call" else "input"
    item: Event = {"id": item_id, "type": kind, "call_id": "call_1", "name": name, field: text}
    if kind == "function_call":
        item["status"] = status
    return item


def reasoning_item(summary: str | None, item_id: str = "rs_1") -> Event:
    parts = [] if summary is None else [{"type": "summary_text", "text": summary}]
    return {"id": item_id, "type": "reasoning", "summary": parts}


def responses_events(*items: tuple[Any, ...], logprobs: bool = False) -> list[Event]:
    """A whole Responses stream: `("message", pieces)`, `("refusal", pieces)`, `("reasoning", pieces)`
    (a summary), `("function_call", name, pieces)` or `("custom_tool_call", name, pieces)`."""
    events: list[Event] = [
        {"type": "response.created", "response": response_object("in_progress", [])},
        {"type": "response.in_progress", "response": response_object("in_progress", [])},
    ]
    done_items = []
    for index, spec in enumerate(items):
        item_events, item = _item_events(index, spec, logprobs)
        events += item_events
        done_items.append(item)
    usage = {
        "input_tokens": 36,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 87,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 123,
    }
    events.append({"type": "response.completed", "response": response_object("completed", done_items, usage)})
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return events


def _item_events(index: int, spec: tuple[Any, ...], logprobs: bool) -> tuple[list[Event], Event]:
    kind = spec[0]
    pieces: list[str] = spec[-1]
    text = "".join(pieces)
    where = {"output_index": index}
    if kind in ("message", "refusal"):
        item_id = f"msg_{index}"
        ids = {"item_id": item_id, **where, "content_index": 0}
        part_kind = "output_text" if kind == "message" else "refusal"
        empty = message_item("", kind=part_kind, item_id=item_id)["content"][0]
        done_part = message_item(text, kind=part_kind, item_id=item_id)["content"][0]
        if kind == "message":
            lp = [{"token": p, "logprob": -0.01, "top_logprobs": []} for p in pieces] if logprobs else []
            deltas = [
                {"type": "response.output_text.delta", **ids, "delta": p, "logprobs": lp[i : i + 1]}
                for i, p in enumerate(pieces)
            ]
            done = {"type": "response.output_text.done", **ids, "text": text, "logprobs": lp}
            done_part = {**done_part, "logprobs": lp}
        else:
            deltas = [{"type": "response.refusal.delta", **ids, "delta": p} for p in pieces]
            done = {"type": "response.refusal.done", **ids, "refusal": text}
        item = message_item(text, kind=part_kind, item_id=item_id)
        item["content"] = [done_part]
        events = [
            {"type": "response.output_item.added", **where, "item": {**item, "status": "in_progress", "content": []}},
            {"type": "response.content_part.added", **ids, "part": empty},
            *deltas,
            done,
            {"type": "response.content_part.done", **ids, "part": done_part},
            {"type": "response.output_item.done", **where, "item": item},
        ]
        return events, item
    if kind == "reasoning":
        item_id = f"rs_{index}"
        ids = {"item_id": item_id, **where, "summary_index": 0}
        item = reasoning_item(text, item_id)
        events = [
            {"type": "response.output_item.added", **where, "item": reasoning_item(None, item_id)},
            {"type": "response.reasoning_summary_part.added", **ids, "part": {"type": "summary_text", "text": ""}},
            *({"type": "response.reasoning_summary_text.delta", **ids, "delta": p} for p in pieces),
            {"type": "response.reasoning_summary_text.done", **ids, "text": text},
            {"type": "response.reasoning_summary_part.done", **ids, "part": {"type": "summary_text", "text": text}},
            {"type": "response.output_item.done", **where, "item": item},
        ]
        return events, item
    name = spec[1]
    item_id = f"fc_{index}" if kind == "function_call" else f"ctc_{index}"
    ids = {"item_id": item_id, **where}
    item = call_item(kind, name, text, item_id=item_id)
    if kind == "function_call":
        deltas = [{"type": "response.function_call_arguments.delta", **ids, "delta": p} for p in pieces]
        done = {"type": "response.function_call_arguments.done", **ids, "arguments": text}
    else:
        deltas = [{"type": "response.custom_tool_call_input.delta", **ids, "delta": p} for p in pieces]
        done = {"type": "response.custom_tool_call_input.done", **ids, "input": text}
    added = call_item(kind, name, "", status="in_progress", item_id=item_id)
    events = [{"type": "response.output_item.added", **where, "item": added}, *deltas, done]
    events.append({"type": "response.output_item.done", **where, "item": item})
    return events, item


def check_responses_events(events: Iterable[Event]) -> None:
    """Every event is a valid Responses stream event and the numbers strictly increase."""
    numbers = []
    for event in events:
        responses_model(event)
        numbers.append(event["sequence_number"])
    assert numbers == sorted(set(numbers)), numbers


_RESPONSE_DELTAS = {
    "text": "response.output_text.delta",
    "refusal": "response.refusal.delta",
    "args": "response.function_call_arguments.delta",
    "input": "response.custom_tool_call_input.delta",
    "summary": "response.reasoning_summary_text.delta",
}


def streamed(events: Iterable[Event], kind: str = "text", index: int = 0) -> str:
    """What a client reads from the deltas of one channel."""
    delta_type = _RESPONSE_DELTAS[kind]
    return "".join(e["delta"] for e in events if e["type"] == delta_type and e["output_index"] == index)


def whole_texts(events: Iterable[Event], index: int = 0) -> list[str]:
    """Every whole text a done, part-done, item-done or completed event repeats for one output item."""
    out: list[str] = []
    for event in events:
        kind = event["type"]
        if kind.endswith(".done") and "delta" not in event and event.get("output_index") == index:
            for field in ("text", "refusal", "arguments", "input"):
                if isinstance(event.get(field), str):
                    out.append(event[field])
            part = event.get("part") or {}
            out += [part[f] for f in ("text", "refusal") if isinstance(part.get(f), str)]
            out += list(_item_strings(event.get("item") or {}))
        elif kind == "response.completed":
            out += list(_item_strings(event["response"]["output"][index]))
    return out


def _item_strings(item: Event) -> Iterator[str]:
    for field in ("arguments", "input"):
        if isinstance(item.get(field), str):
            yield item[field]
    for part in item.get("content") or ():
        yield from (part[f] for f in ("text", "refusal") if isinstance(part.get(f), str))
    for part in item.get("summary") or ():
        yield part["text"]


# --- Anthropic Messages -------------------------------------------------------------------------


def messages_events(*blocks: tuple[Any, ...], stop_reason: str = "end_turn") -> list[Event]:
    """A whole Messages stream: `("text", pieces)`, `("thinking", pieces)` or `("tool_use", name, pieces)`
    (pieces of the input's JSON text)."""
    events: list[Event] = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 472, "output_tokens": 2},
            },
        },
    ]
    ids = itertools.count(1)
    for index, spec in enumerate(blocks):
        kind, pieces = spec[0], spec[-1]
        if kind == "text":
            start = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in pieces]
        elif kind == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": p} for p in pieces]
            deltas.append({"type": "signature_delta", "signature": SIGNATURE})
        else:
            start = {"type": "tool_use", "id": f"toolu_01T1x1fJ34qAmk2tNTrN{next(ids)}", "name": spec[1], "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in ["", *pieces]]
        events.append({"type": "content_block_start", "index": index, "content_block": start})
        if index == 0:
            events.append({"type": "ping"})
        events += [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
        events.append({"type": "content_block_stop", "index": index})
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": 89},
        }
    )
    events.append({"type": "message_stop"})
    return events


def check_messages_events(events: Iterable[Event]) -> None:
    """Every event (but `ping`, which the SDK skips) is a valid Messages stream event."""
    for event in events:
        if event["type"] != "ping":
            messages_model(event)


def blocks_of(events: Iterable[Event]) -> dict[int, str]:
    """What a client rebuilds per block: text, thinking, or the tool input's JSON text."""
    out: dict[int, str] = {}
    stopped: set[int] = set()
    for event in events:
        if event["type"] == "content_block_start":
            block = event["content_block"]
            out[event["index"]] = block.get("text") or block.get("thinking") or ""
        elif event["type"] == "content_block_delta":
            assert event["index"] not in stopped, "a delta after its block stopped"
            delta = event["delta"]
            out[event["index"]] += delta.get("text") or delta.get("thinking") or delta.get("partial_json") or ""
        elif event["type"] == "content_block_stop":
            stopped.add(event["index"])
    return out


def tool_input(events: Iterable[Event], index: int) -> Any:
    return json.loads(blocks_of(events)[index])
