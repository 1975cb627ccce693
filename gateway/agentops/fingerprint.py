"""Workflow versions: what defines an agent's behaviour on a call, fingerprinted into a short id.

The parts, read from the request body in each API's own shape:

    system   chat: the leading system and developer messages; responses: `instructions` and the
             leading system and developer input items; messages: `system`. Text only, whitespace
             collapsed, variable parts replaced (below).
    tools    name, description and schema of every tool offered, sorted by name.
    model    the model or route asked for.
    guards   the guardrails in force for the caller (names and their config).

`fp-` and 12 hex digits of a BLAKE2b over those parts is the version. An agent that sends
`X-Agent-Version` names its own versions; the header wins.

Variable parts. Prompts often carry today's date, a user's name, an order number or retrieved
context: each would make a new version per call. Before hashing, the system prompt's matches of the
operator's `agentops.versions.variables` regexes become `<var>`, and (unless turned off) dates,
times, weekdays, UUIDs, long hex and prefixed ids (`req_8f3a...`), emails and numbers of five or
more digits become placeholders. What the regexes cannot know (a name in free text) an agent marks
itself, by wrapping it in a tag one rule matches (`(?s)<user>.*?</user>`), or names its versions
with the header.

Cost. The request path extracts the parts (a walk over the leading messages), serialises the tools
as sent, and hashes those exact bytes; a bounded cache maps that hash to the version, so the
normalisation and the canonical hash run once per distinct prompt (measured in
bench/agentops_bench.py).
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.agentops.config import VersionsConfig

CACHE_SIZE = 4096
PREFIX = "fp-"
_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?"
    r"|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
# Applied in this order (the longer forms first, so a date-time is one placeholder), to lines that hold
# a digit: every pattern but the email's and the weekday's needs one, and most lines of a prompt have none.
DIGIT_VARIABLES: tuple[tuple[str, str], ...] = (
    (r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b", "<uuid>"),
    (r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b", "<date>"),
    (rf"\b{_MONTH}\.? \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}\b", "<date>"),
    (rf"\b\d{{1,2}}(?:st|nd|rd|th)? {_MONTH}\.?,? \d{{4}}\b", "<date>"),
    (r"\b\d{1,2}/\d{1,2}/\d{2,4}\b", "<date>"),
    (r"\b\d{1,2}:\d{2}(?::\d{2})?(?:\s?(?:[AaPp]\.[Mm]\.|[AaPp][Mm]\b))?(?:\s?(?:UTC|GMT)\b)?", "<time>"),
    (r"\b[A-Za-z]{2,8}_[A-Za-z0-9]{8,}\b", "<id>"),
    (r"\b[0-9a-fA-F]{16,}\b", "<id>"),
    (r"\b\d{5,}\b", "<n>"),
)
EMAIL = (r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", "<email>")  # on lines with an @
WEEKDAY = (r"\b(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b", "<weekday>")  # lines with "day"
BUILTIN_VARIABLES = (EMAIL, *DIGIT_VARIABLES, WEEKDAY)
_DIGITS = b"0123456789"
LINE_CACHE_CHARS = 2_000_000  # the normalised lines kept (raw and normalised characters)
LONG_LINE = 400  # a longer line is cached sentence by sentence


@dataclass(frozen=True, slots=True)
class Parts:
    """What defines a call's behaviour, normalised: the version's description in the registry."""

    system: str  # normalised
    tools: tuple[tuple[str, str], ...]  # (name, canonical JSON of the definition), sorted
    model: str
    guardrails: tuple[str, ...]

    @property
    def tool_names(self) -> list[str]:
        return [name for name, _ in self.tools]

    @property
    def prompt_digest(self) -> str:
        return hashlib.blake2b(self.system.encode(), digest_size=8).hexdigest()

    def version(self, guard_digest: str) -> str:
        h = hashlib.blake2b(digest_size=6)
        for piece in (self.system, self.model, guard_digest):
            h.update(piece.encode())
            h.update(b"\0")
        for name, definition in self.tools:
            h.update(name.encode())
            h.update(b"\1")
            h.update(definition.encode())
            h.update(b"\0")
        return PREFIX + h.hexdigest()


@dataclass(slots=True)
class Raw:
    """The parts as the agent sent them (not normalised), read from a body."""

    system: str
    tools: list[Any]


class Normaliser:
    """The operator's variable patterns over the whole prompt, then, line by line (a long line sentence by
    sentence), the built-in ones and whitespace. A line's normal form is kept (bounded), so a prompt
    whose one line changes per call costs the patterns of that line only."""

    def __init__(self, config: VersionsConfig, max_chars: int = LINE_CACHE_CHARS) -> None:
        self._operator = [re.compile(p) for p in config.variables]
        self._builtin = config.builtin_variables
        self._digit_rules = [(re.compile(p), placeholder) for p, placeholder in DIGIT_VARIABLES]
        self._email = re.compile(EMAIL[0])
        self._weekday = re.compile(WEEKDAY[0])
        self._lines: dict[str, str] = {}
        self._chars = 0
        self._max_chars = max_chars

    def __call__(self, text: str) -> str:
        for pattern in self._operator:
            text = pattern.sub("<var>", text)
        out = []
        for line in text.split("\n"):
            if len(line) > LONG_LINE:  # a prompt on one line: its sentences are cached instead
                normal = ". ".join(self._cached(sentence) for sentence in line.split(". ")).strip()
            else:
                normal = self._cached(line)
            if normal:
                out.append(normal)
        return " ".join(out)

    def _cached(self, line: str) -> str:
        normal = self._lines.get(line)
        if normal is None:
            normal = self._line(line)
            self._chars += len(line) + len(normal)
            if self._chars > self._max_chars:  # prompts that vary everywhere: start again
                self._lines.clear()
                self._chars = len(line) + len(normal)
            self._lines[line] = normal
        return normal

    def _line(self, line: str) -> str:
        if self._builtin:
            if "@" in line:
                line = self._email.sub(EMAIL[1], line)
            raw = line.encode()
            if len(raw.translate(None, _DIGITS)) != len(raw):
                for pattern, placeholder in self._digit_rules:
                    line = pattern.sub(placeholder, line)
            if "day" in line:
                line = self._weekday.sub(WEEKDAY[1], line)
        return " ".join(line.split())


class Fingerprinter:
    """Versions of calls, cached by the exact bytes of their parts (bounded: least recently used out)."""

    def __init__(self, config: VersionsConfig, cache_size: int = CACHE_SIZE) -> None:
        self.normalise = Normaliser(config)
        self._cache: OrderedDict[bytes, tuple[str, Parts]] = OrderedDict()
        self._size = cache_size
        self.hits = self.misses = 0

    def fingerprint(self, api: str, body: Mapping[str, Any], model: str, guards: tuple[tuple[str, ...], str]) -> str:
        """The version id of a call in API `api`; `guards` are the guardrail names and config digest."""
        return self.lookup(api, body, model, guards)[0]

    def lookup(
        self, api: str, body: Mapping[str, Any], model: str, guards: tuple[tuple[str, ...], str]
    ) -> tuple[str, Parts]:
        raw = RAW_PARTS.get(api, _no_parts)(body)
        tools = orjson.dumps(raw.tools) if raw.tools else b""
        pieces = (model.encode(), guards[1].encode(), raw.system.encode(), tools, b"")  # each ends with a NUL
        digest = hashlib.blake2b(b"\0".join(pieces), digest_size=16).digest()
        found = self._cache.get(digest)
        if found is not None:
            self.hits += 1
            self._cache.move_to_end(digest)
            return found
        self.misses += 1
        parts = Parts(self.normalise(raw.system), canonical_tools(raw.tools), model, guards[0])
        found = (parts.version(guards[1]), parts)
        self._cache[digest] = found
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return found


def canonical_tools(tools: Sequence[Any]) -> tuple[tuple[str, str], ...]:
    """Each tool as (name, its definition as canonical JSON: name, description and schema), sorted."""
    out = []
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        inner = tool.get("function")
        function: dict[str, Any] = inner if isinstance(inner, dict) else tool
        name = function.get("name") or tool.get("type") or ""
        schema = function.get("parameters", function.get("input_schema"))
        definition = {"description": function.get("description"), "schema": schema}
        if not function.get("name"):  # a hosted or server tool: its settings are its definition
            definition = {k: v for k, v in tool.items() if k != "name"}
        out.append((str(name), orjson.dumps(definition, option=orjson.OPT_SORT_KEYS).decode()))
    return tuple(sorted(out))


# -- where each API keeps the parts ---------------------------------------------------------------


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text")
        )
    return ""


def _leading_system(items: Any) -> list[str]:
    """The text of the system and developer messages before the first other message."""
    out: list[str] = []
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict) or item.get("role") not in ("system", "developer"):
            break
        out.append(_text(item.get("content")))
    return out


def _chat(body: Mapping[str, Any]) -> Raw:
    tools = [*(body.get("tools") or ()), *(body.get("functions") or ())]
    return Raw("\n\n".join(_leading_system(body.get("messages"))), tools)


def _responses(body: Mapping[str, Any]) -> Raw:
    instructions = body.get("instructions")
    system = [instructions] if isinstance(instructions, str) else []
    return Raw("\n\n".join(system + _leading_system(body.get("input"))), list(body.get("tools") or ()))


def _messages(body: Mapping[str, Any]) -> Raw:
    return Raw(_text(body.get("system")), list(body.get("tools") or ()))


def _no_parts(body: Mapping[str, Any]) -> Raw:
    return Raw("", [])


RAW_PARTS: dict[str, Callable[[Mapping[str, Any]], Raw]] = {
    "chat": _chat,
    "responses": _responses,
    "messages": _messages,
}
