"""Workflow versions: what changes a version and what does not, in each API's shape."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.agentops.config import VersionsConfig
from gateway.agentops.fingerprint import Fingerprinter

GUARDS: tuple[tuple[str, ...], str] = (("pii",), "g1")
TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web.",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    },
}


def chat(system: str, tools: list[Any] | None = None, user: str = "hi") -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "m",
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
    }
    if tools is not None:
        body["tools"] = tools
    return body


def version(body: dict[str, Any], api: str = "chat", model: str = "m", guards: Any = GUARDS, **config: Any) -> str:
    return Fingerprinter(VersionsConfig(**config)).fingerprint(api, body, model, guards)


def test_a_version_is_short_stable_and_ignores_the_conversation() -> None:
    first = version(chat("You are a helpful travel agent.", user="Book me a flight"))
    assert first.startswith("fp-") and len(first) == 15
    assert version(chat("You are a helpful travel agent.", user="And a hotel?")) == first
    assert version(chat("You are a  helpful\n travel agent. ")) == first  # whitespace is normalised


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b["messages"][0].update(content="You are a terse travel agent."),  # the prompt
        lambda b: b.update(tools=[TOOL]),  # a tool added
        lambda b: b["messages"].insert(1, {"role": "developer", "content": "Answer in French."}),
    ],
)
def test_what_defines_behaviour_makes_a_new_version(change: Any) -> None:
    body = chat("You are a helpful travel agent.")
    before = version(body)
    change(body)
    assert version(body) != before


def test_model_guardrails_and_tool_schemas_are_parts() -> None:
    body = chat("Agent.", [TOOL])
    base = version(body)
    assert version(body, model="other") != base
    assert version(body, guards=(("pii",), "g2")) != base  # the same names, another setting
    changed = {"type": "function", "function": {**TOOL["function"], "parameters": {"type": "object"}}}
    assert version(chat("Agent.", [changed])) != base
    reordered = chat("Agent.", [{"type": "function", "function": {"name": "a"}}, TOOL])
    assert version(reordered) == version(chat("Agent.", [TOOL, {"type": "function", "function": {"name": "a"}}]))


def test_variable_parts_do_not_make_versions() -> None:
    prompts = [
        "Today is 2026-12-05T09:14:00Z. Ticket 84512399 from ana@example.com, "
        "session 3f2b1c4e-9a0d-4e6f-8b7a-1c2d3e4f5a6b.",
        "Today is 2027-01-31T23:59:59Z. Ticket 10000001 from bo@example.org, "
        "session 00000000-1111-2222-3333-444444444444.",
    ]
    assert version(chat(prompts[0])) == version(chat(prompts[1]))
    long_form = ["It is Thursday, December 5, 2026 at 9:14 AM.", "It is Monday, March 1st, 2027 at 17:02."]
    assert version(chat(long_form[0])) == version(chat(long_form[1]))
    assert version(chat(prompts[0]), builtin_variables=False) != version(chat(prompts[1]), builtin_variables=False)


def test_the_operator_marks_what_else_varies() -> None:
    ana = chat("Be kind. <user>Ana, premium plan</user> Answer briefly.")
    bo = chat("Be kind. <user>Bo, free plan</user> Answer briefly.")
    assert version(ana) != version(bo)
    rules = {"variables": ["(?s)<user>.*?</user>"]}
    assert version(ana, **rules) == version(bo, **rules)
    assert version(chat("Be rude. <user>Ana</user> Answer briefly."), **rules) != version(ana, **rules)


def test_each_api_in_its_own_shape() -> None:
    responses = {
        "model": "m",
        "instructions": "You are a helpful travel agent.",
        "input": "hi",
        "tools": [
            {
                "type": "function",
                "name": "search",
                "description": "Search the web.",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
            }
        ],
    }
    messages = {
        "model": "m",
        "system": [{"type": "text", "text": "You are a helpful travel agent."}],
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [
            {
                "name": "search",
                "description": "Search the web.",
                "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
            }
        ],
    }
    same = version(chat("You are a helpful travel agent.", [TOOL]))
    assert version(responses, "responses") == same == version(messages, "messages")
    assert version({"model": "e", "input": "x"}, "embeddings") != same


def test_the_cache_is_keyed_by_exact_bytes_and_bounded() -> None:
    fingerprinter = Fingerprinter(VersionsConfig(), cache_size=2)
    for day in range(1, 6):
        fingerprinter.fingerprint("chat", chat(f"Today is 2026-12-0{day}."), "m", GUARDS)
    fingerprinter.fingerprint("chat", chat("Today is 2026-12-05."), "m", GUARDS)
    assert (fingerprinter.misses, fingerprinter.hits) == (5, 1)
    assert len(fingerprinter._cache) == 2
    assert (
        len({fingerprinter.fingerprint("chat", chat(f"Today is 2026-12-0{d}."), "m", GUARDS) for d in range(1, 6)}) == 1
    )


def test_bad_variable_patterns_are_config_errors() -> None:
    with pytest.raises(ValueError, match=r"variables\.0"):
        VersionsConfig(variables=["(unclosed"])
    with pytest.raises(ValueError, match="empty string"):
        VersionsConfig(variables=[".*"])


def test_a_prompt_on_one_long_line_is_read_sentence_by_sentence() -> None:
    body = " ".join(["Plan trips for the travel desk and answer with three options."] * 12)
    first = version(chat(f"Today is 2026-12-05. Ticket 84512399. {body}"))
    assert version(chat(f"Today is 2027-02-11. Ticket 10000002. {body}")) == first
    assert version(chat(f"Today is 2027-02-11. Ticket 10000002. {body} Be brief.")) != first


def test_the_line_cache_is_bounded() -> None:
    fingerprinter = Fingerprinter(VersionsConfig(), cache_size=8)
    normalise = fingerprinter.normalise
    normalise._max_chars = 1000
    for i in range(200):
        normalise(f"Line {i} of a prompt that changes everywhere: {'x' * i}")
    assert normalise._chars <= 1000 and len(normalise._lines) < 20
