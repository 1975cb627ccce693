"""Stream codec for OpenAI Chat Completions: `chat.completion.chunk` dicts.

Channels: each choice's `content` and `refusal`, each tool call's `arguments` (JSON), the legacy
`function_call.arguments` (JSON). A tool call whose name is not allowed blocks on the delta that names
it. Chunks without choices (the usage chunk) and `finish_reason` chunks flush the held text first, in
an extra chunk before them that copies their envelope. `logprobs` are dropped from chunks while text
guardrails are on: they would spell out held text.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from policies.guardrails.holdback import HoldBack
from policies.guardrails.shapes.base import Event

_TEXT_KEYS = ("content", "refusal")
Channel = tuple[int, str, int]  # (choice index, "content" | "refusal" | "args" | "fargs", tool call index)


class ChatCodec:
    """Chat completion chunks in, guarded chunks out."""

    next_sequence_number: int | None = None  # chat chunks are not numbered

    def __init__(self, hold: HoldBack[Channel]) -> None:
        self.hold = hold
        self._tool_names: dict[tuple[int, int], str] = {}
        self._envelope: Event | None = None

    def feed(self, chunk: Event) -> list[Event]:
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices:
            return [*self._flush(chunk, None), chunk]
        self._envelope = chunk
        hold = self.hold
        before: list[Event] = []
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
            if self._blocked() is not None:
                return []
            for key in _TEXT_KEYS:
                if isinstance(delta.get(key), str):
                    delta[key] = hold.push((index, key, 0), delta[key])
            self._push_tool_args(index, delta)
            if self._blocked() is not None:
                return []
            new_choice = {**choice, "delta": delta}
            if hold.text_guards and new_choice.get("logprobs") is not None:
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
        if self._blocked() is not None:
            return []
        return [*before, {**chunk, "choices": new_choices}] if keep else before

    def finish(self) -> list[Event]:
        return self._flush(self._envelope, None) if self._envelope is not None else []

    def rewrite(self, events: list[Event], texts: Mapping[Channel, str]) -> list[Event]:
        """Put each channel's whole (webhook-redacted) text in its first chunk and empty it in the rest."""
        out = copy.deepcopy(events)
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

    def _blocked(self) -> str | None:
        """`blocked_by`, read through a call: the hold-back sets it, which type narrowing cannot see."""
        return self.hold.blocked_by

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
            self.hold.check_tool(name)
            if self._blocked() is not None:
                return

    def _push_tool_args(self, index: int, delta: dict[str, Any]) -> None:
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            new_calls = []
            for call in calls:
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                    channel = (index, "args", int(call.get("index") or 0))
                    text = self.hold.push(channel, function["arguments"], json=True)
                    call = {**call, "function": {**function, "arguments": text}}
                new_calls.append(call)
            delta["tool_calls"] = new_calls
        legacy = delta.get("function_call")
        if isinstance(legacy, dict) and isinstance(legacy.get("arguments"), str):
            text = self.hold.push((index, "fargs", 0), legacy["arguments"], json=True)
            delta["function_call"] = {**legacy, "arguments": text}

    def _flush(self, envelope: Event | None, choice: int | None) -> list[Event]:
        """Scan what each window (of one choice, or all) holds as final text; chunks carrying it."""
        flushed: dict[int, dict[str, Any]] = {}
        for channel in self.hold.channels():
            if choice is not None and channel[0] != choice:
                continue
            text = self.hold.flush(channel)
            if self._blocked() is not None:
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


def _has_payload(delta: dict[str, Any]) -> bool:
    """Whether a delta still says something once held text is taken out of it."""
    return any(key not in _TEXT_KEYS or value for key, value in delta.items())
