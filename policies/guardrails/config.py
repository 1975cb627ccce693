"""Guardrail configuration: one pydantic model per `type`, united in `GuardrailConfig`.

Every model is strict (unknown keys are errors) and frozen. Validation does the work that would
otherwise fail per request: custom regexes are compiled (a bad one is an error naming it), phone
regions are checked against the phone metadata, and combinations that make no sense are refused
with a message saying why (prompt injection cannot redact, tool access cannot redact, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self, get_args

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from policies.guardrails.patterns import compile_custom
from policies.guardrails.pii import DEFAULT_PHONE_REGIONS, PII_ENTITIES
from policies.guardrails.secrets import SECRET_KINDS
from policies.guardrails.verdicts import Action, Phase

PiiEntity = Literal["email", "phone", "credit_card", "iban", "us_ssn", "ipv4", "ipv6"]
SecretKind = Literal[
    "openai", "anthropic", "google", "aws", "github", "gitlab", "slack", "stripe", "jwt", "private_key", "generic"
]
assert set(PII_ENTITIES) == set(get_args(PiiEntity)) and set(SECRET_KINDS) == set(get_args(SecretKind))


def _both_phases() -> list[Phase]:
    return ["input", "output"]


def _input_phase() -> list[Phase]:
    return ["input"]


def _all_pii() -> list[PiiEntity]:
    return list(get_args(PiiEntity))


class _Guardrail(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Action = "block"
    phases: list[Phase] = Field(default_factory=_both_phases, min_length=1)

    @field_validator("phases")
    @classmethod
    def _unique_phases(cls, phases: list[Phase]) -> list[Phase]:
        if len(set(phases)) != len(phases):
            raise ValueError("phases must not repeat")
        return phases


class PiiConfig(_Guardrail):
    """Emails, phone numbers, payment cards, IBANs, US SSNs and IP addresses."""

    type: Literal["pii"] = "pii"
    action: Action = "redact"
    entities: list[PiiEntity] = Field(default_factory=_all_pii, min_length=1)
    phone_regions: list[str] = Field(default_factory=lambda: list(DEFAULT_PHONE_REGIONS))

    @field_validator("phone_regions")
    @classmethod
    def _known_regions(cls, regions: list[str]) -> list[str]:
        unknown = [r for r in regions if r not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"unknown phone regions {unknown} (use ISO 3166 codes such as US, GB, DE)")
        return regions


class SecretsConfig(_Guardrail):
    """Provider keys, tokens, JWTs, private keys and credentials assigned to names; `kinds` narrows it."""

    type: Literal["secrets"] = "secrets"
    action: Action = "redact"
    kinds: list[SecretKind] | None = Field(default=None, min_length=1)


class PromptInjectionConfig(_Guardrail):
    """Scores user content (and tool results) for injection; blocks or flags at `threshold`.

    `detector: patterns` (the default) runs the patterns alone. `detector: learned` runs the patterns
    first and, when they do not reach the threshold, the learned model shipped in the package: the
    `direct` model for user content, the `indirect` model for tool results (instructions addressed to
    the agent inside data); the score is the higher of the two. It catches several times the attacks
    the patterns do, at a false-positive rate that is not yet the patterns' zero (README): opt in,
    ideally with `action: flag` first. `detector: classifier` adds the optional
    `securevector-guardian-model` classifier to the patterns instead.
    """

    type: Literal["prompt_injection"] = "prompt_injection"
    phases: list[Phase] = Field(default_factory=_input_phase, min_length=1)
    threshold: float = Field(default=0.5, gt=0.0, le=1.0)
    scan_tool_results: bool = True
    detector: Literal["learned", "patterns", "classifier"] = "patterns"

    @model_validator(mode="after")
    def _input_only(self) -> Self:
        if self.action == "redact":
            raise ValueError("prompt_injection cannot redact (a score marks a text, not a span): use block or flag")
        if "output" in self.phases:
            raise ValueError("prompt_injection scans inputs (user content and tool results): phases must be [input]")
        return self


class RegexConfig(_Guardrail):
    """Named custom patterns (Python regular expressions); a match redacts to its name: `ticket` -> `[TICKET]`."""

    type: Literal["regex"] = "regex"
    action: Action = "redact"
    patterns: dict[str, str] = Field(min_length=1)

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: dict[str, str]) -> dict[str, str]:
        for name, source in patterns.items():
            try:
                compile_custom(source)
            except ValueError as exc:
                raise ValueError(f"pattern {name!r} {exc}") from None
        return patterns


class DenylistConfig(_Guardrail):
    """Words and phrases matched as whole words; `case_sensitive` defaults to false."""

    type: Literal["denylist"] = "denylist"
    action: Action = "block"
    words: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    case_sensitive: bool = False


class ToolAccessConfig(_Guardrail):
    """Which tool names may be declared in a request (`input`) and called in a response (`output`).

    `allow` (None: everything) and `deny` take fnmatch globs (`search_*`); deny wins over allow.
    """

    type: Literal["tool_access"] = "tool_access"
    allow: list[str] | None = None
    deny: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _no_redact(self) -> Self:
        if self.action == "redact":
            raise ValueError("tool_access cannot redact a tool call: use block or flag")
        if self.allow is None and not self.deny:
            raise ValueError("tool_access needs an allow list, a deny list or both")
        return self


class WebhookConfig(_Guardrail):
    """An external guardrail service called over HTTP by the gateway (see `webhook.py` for the contract).

    `on_error` says what a timeout, a connection error or a malformed answer means: `allow` (fail
    open) or `block` (fail closed). `action: flag` records the service's verdicts without acting.
    """

    type: Literal["webhook"] = "webhook"
    url: str = Field(pattern=r"^https?://[^\s/]+")
    timeout_ms: int = Field(default=1000, ge=1, le=60_000)
    on_error: Literal["allow", "block"]
    headers: dict[str, str] = Field(default_factory=dict, repr=False)


GuardrailConfig = Annotated[
    PiiConfig | SecretsConfig | PromptInjectionConfig | RegexConfig | DenylistConfig | ToolAccessConfig | WebhookConfig,
    Field(discriminator="type"),
]

_GUARDRAILS = TypeAdapter(dict[str, GuardrailConfig])


def parse_guardrails(data: Mapping[str, Any]) -> dict[str, GuardrailConfig]:
    """Validate a `guardrails:` config section (name -> settings); raises pydantic's ValidationError."""
    return _GUARDRAILS.validate_python(dict(data))
