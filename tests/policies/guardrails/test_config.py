"""Config validation: clear errors for what cannot work, at load time."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from policies.guardrails import GuardrailConfigError, GuardrailSet, parse_guardrails


def error(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        parse_guardrails({"g": data})
    return str(info.value)


def test_defaults() -> None:
    configs = parse_guardrails(
        {
            "pii": {"type": "pii"},
            "inj": {"type": "prompt_injection"},
            "tools": {"type": "tool_access", "deny": ["shell*"]},
        }
    )
    assert configs["pii"].action == "redact" and configs["pii"].phases == ["input", "output"]
    assert configs["inj"].phases == ["input"] and configs["inj"].threshold == 0.5
    assert configs["tools"].action == "block"


def test_bad_regex_names_the_pattern() -> None:
    message = error({"type": "regex", "patterns": {"ticket": "TCK-[0-9]+", "broken": "(unclosed"}})
    assert "'broken'" in message and "not a valid regular expression" in message


def test_regex_matching_nothing_is_refused() -> None:
    assert "empty string" in error({"type": "regex", "patterns": {"maybe": "x*"}})


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"type": "prompt_injection", "action": "redact"}, "cannot redact"),
        ({"type": "prompt_injection", "phases": ["input", "output"]}, "phases must be [input]"),
        ({"type": "prompt_injection", "threshold": 1.5}, "less than or equal to 1"),
        ({"type": "tool_access", "deny": ["x"], "action": "redact"}, "cannot redact"),
        ({"type": "tool_access"}, "allow list, a deny list"),
        ({"type": "pii", "entities": ["email", "passport"]}, "entities"),
        ({"type": "pii", "phone_regions": ["XX"]}, "unknown phone regions"),
        ({"type": "secrets", "kinds": ["openai", "aws_v2"]}, "kinds"),
        ({"type": "denylist", "words": []}, "at least 1"),
        ({"type": "webhook", "url": "ftp://x", "on_error": "allow"}, "url"),
        ({"type": "webhook", "url": "https://guard.local/check"}, "on_error"),
        ({"type": "pii", "phases": ["input", "input"]}, "must not repeat"),
        ({"type": "pii", "colour": "blue"}, "Extra inputs are not permitted"),
        ({"type": "antivirus"}, "does not match any of the expected tags"),
    ],
)
def test_validation_errors(data: dict[str, Any], words: str) -> None:
    assert words in error(data)


def test_set_errors() -> None:
    configs = parse_guardrails({"hook": {"type": "webhook", "url": "https://guard.local/v1", "on_error": "block"}})
    with pytest.raises(GuardrailConfigError, match="no post_json"):
        GuardrailSet.from_config(configs, ["hook"])
    with pytest.raises(GuardrailConfigError, match="unknown guardrail 'nope'"):
        GuardrailSet.from_config(configs, ["nope"])
    with pytest.raises(GuardrailConfigError, match="max_hold"):
        GuardrailSet.from_config({}, [], max_hold=8)


def test_configs_are_frozen() -> None:
    config = parse_guardrails({"pii": {"type": "pii"}})["pii"]
    with pytest.raises(ValidationError):
        config.action = "block"  # type: ignore[misc]


def test_headers_stay_out_of_repr() -> None:
    config = parse_guardrails(
        {
            "hook": {
                "type": "webhook",
                "url": "https://guard.local",
                "on_error": "allow",
                "headers": {"Authorization": "Bearer s3cr3t"},
            }
        }
    )["hook"]
    assert "s3cr3t" not in repr(config)
