"""Applying findings to text: merge overlaps, replace spans with typed placeholders.

Tool-call arguments are JSON text, redacted as text (so a streamed and a whole response give the
same bytes) without breaking the JSON: a span is cut to the string literals it touches, never splits
an escape sequence (`\\n`, `\\u00e9`), and a bare token outside a string (a card number written as a
JSON number) becomes a quoted placeholder. `JsonState` is the small lexer state (inside a string or
not, escape in progress) that a stream window carries from one chunk to the next.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from policies.guardrails.verdicts import Finding

_IN_STRING_SPECIAL = re.compile(r'["\\]')
_STRUCTURE = frozenset(' \t\r\n{}[],:"')


class JsonState(NamedTuple):
    """Lexer state at a position of a JSON text: inside a string literal, and escape progress
    (0 none, -1 just after a backslash, n hex digits of a `\\u` escape still to come)."""

    in_string: bool = False
    escape: int = 0


def advance(state: JsonState, text: str, start: int, end: int) -> JsonState:
    """The lexer state after reading `text[start:end]` from `state`."""
    in_string, escape = state
    i = start
    while i < end:
        if escape:
            ch = text[i]
            escape = 4 if escape == -1 and ch == "u" else (0 if escape == -1 else escape - 1)
            i += 1
            continue
        if not in_string:
            j = text.find('"', i, end)
            if j < 0:
                break
            in_string, i = True, j + 1
            continue
        m = _IN_STRING_SPECIAL.search(text, i, end)
        if m is None:
            break
        if m.group() == '"':
            in_string = False
        else:
            escape = -1
        i = m.end()
    return JsonState(in_string, escape)


def merge(findings: Iterable[Finding]) -> list[Finding]:
    """Sorted, with overlapping spans united (the leftmost, then longest, finding names the union)."""
    out: list[Finding] = []
    for f in sorted(findings, key=lambda f: (f.start, -f.end)):
        if out and f.start < out[-1].end:
            last = out[-1]
            if f.end > last.end:
                out[-1] = Finding(last.start, f.end, last.entity, last.placeholder)
        else:
            out.append(f)
    return out


def render(text: str, start: int, end: int, findings: list[Finding], json_state: JsonState | None = None) -> str:
    """`text[start:end]` with each (merged, sorted, inside the range) finding replaced by its placeholder.

    With `json_state` (the lexer state at `start`), the text is JSON and is kept valid.
    """
    parts: list[str] = []
    pos = start
    state = json_state
    for f in findings:
        if json_state is None or state is None:
            parts.append(text[pos : f.start])
            parts.append(f.placeholder)
            pos = f.end
            continue
        state = advance(state, text, pos, f.start)
        parts.append(text[pos : f.start])
        parts.append(_json_span(text, f, state))
        state = advance(state, text, f.start, f.end)
        pos = f.end
    parts.append(text[pos:end])
    return "".join(parts)


def _json_span(text: str, f: Finding, state: JsonState) -> str:
    """The replacement for `text[f.start:f.end]` that keeps the JSON valid."""
    out: list[str] = []
    in_string, escape = state
    run_start: int | None = None  # start of the current replaceable run
    safe_end: int | None = None  # last offset in the run where no escape is open
    bare_start: int | None = None

    def close_run(upto: int) -> None:
        nonlocal run_start, safe_end
        if run_start is not None:
            cut = safe_end if safe_end is not None else run_start
            out.append(f.placeholder if cut > run_start else "")
            out.append(text[cut:upto])
        run_start = safe_end = None

    def close_bare(upto: int) -> None:
        nonlocal bare_start
        if bare_start is not None:
            out.append(f'"{f.placeholder}"')
            bare_start = None

    for i in range(f.start, f.end):
        ch = text[i]
        if in_string:
            if escape:
                escape = 4 if escape == -1 and ch == "u" else (0 if escape == -1 else escape - 1)
                if run_start is None:
                    out.append(ch)  # the tail of an escape begun before the span stays as it is
                elif escape == 0:
                    safe_end = i + 1
                continue
            if ch == '"':
                close_run(i)
                out.append(ch)
                in_string = False
                continue
            if run_start is None:
                run_start = i
            if ch == "\\":
                escape = -1
            else:
                safe_end = i + 1
            continue
        if ch in _STRUCTURE:
            close_bare(i)
            out.append(ch)
            if ch == '"':
                in_string = True
            continue
        if bare_start is None:
            bare_start = i
    close_run(f.end)
    close_bare(f.end)
    return "".join(out)
