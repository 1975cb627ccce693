"""Guardrails built from config: what each type needs at run time, behind one small interface each.

* `TextGuard` (pii, secrets, regex, denylist): a detector that finds spans.
* `InjectionGuard` (prompt_injection): the patterns, the learned models (one for user content, one
  for tool results), a threshold, which roles it reads.
* `ToolGuard` (tool_access): a name policy.
* `WebhookGuard` (webhook): a client for the external service.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.guardrails.classifier import ClassifierUnavailable, InjectionClassifier
from policies.guardrails.config import (
    DenylistConfig,
    GuardrailConfig,
    PiiConfig,
    PromptInjectionConfig,
    RegexConfig,
    SecretsConfig,
    ToolAccessConfig,
    WebhookConfig,
)
from policies.guardrails.injection import InjectionScore, InjectionScorer, without_mentions
from policies.guardrails.learned import LearnedScorer, scorer
from policies.guardrails.matching import Detector
from policies.guardrails.patterns import DenylistDetector, RegexDetector
from policies.guardrails.pii import PiiDetector
from policies.guardrails.secrets import SecretsDetector
from policies.guardrails.tools import ToolPolicy
from policies.guardrails.verdicts import Action, Phase
from policies.guardrails.webhook import PostJson, WebhookClient


class GuardrailConfigError(ValueError):
    """A guardrail cannot be built: an unknown name, a missing dependency, a webhook without a client."""


@dataclass(frozen=True, slots=True)
class TextGuard:
    name: str
    action: Action
    phases: frozenset[Phase]
    detector: Detector


@dataclass(frozen=True, slots=True)
class InjectionGuard:
    name: str
    action: Action
    phases: frozenset[Phase]
    threshold: float
    roles: frozenset[str]
    scorer: InjectionScorer
    classifier: InjectionClassifier | None = None
    direct: LearnedScorer | None = None
    indirect: LearnedScorer | None = None

    def score(self, text: str, role: str = "user") -> InjectionScore:
        """Patterns first; when they stay under the threshold, the optional classifier or the learned
        models: `direct` for user content, `indirect` for tool and function results (instructions
        addressed to the agent inside data; it was trained on classic attacks planted in data too).
        The higher score wins; `signals` names its stage.

        The learned models read texts of at least `MIN_WORDS` words, without the attack phrases a
        text quotes when it talks about attacks (the patterns score those quotes at a discount)."""
        result = self.scorer.score(text)
        if result.score >= self.threshold:
            return result
        if self.classifier is not None:
            return _higher(result, self.classifier.score(text), "classifier")
        learned: list[tuple[float, str]] = []
        said = without_mentions(text)
        if len(said.split(None, MIN_WORDS)) < MIN_WORDS:
            return result  # a word or two says too little for the learned models: the patterns decide
        if role in TOOL_ROLES:
            if self.indirect is not None:
                learned.append((self.indirect.score(said), "learned_indirect"))
        elif self.direct is not None:
            learned.append((self.direct.score(said), "learned"))
        return _higher(result, *max(learned)) if learned else result


TOOL_ROLES = frozenset({"tool", "function"})
MIN_WORDS = 4


def _higher(result: InjectionScore, learned: float, stage: str) -> InjectionScore:
    if learned <= result.score:
        return result
    categories = tuple(sorted({*result.categories, stage}))
    return InjectionScore(round(learned, 4), categories, tuple(sorted({*result.signals, stage})))


@dataclass(frozen=True, slots=True)
class ToolGuard:
    name: str
    action: Action
    phases: frozenset[Phase]
    policy: ToolPolicy


@dataclass(frozen=True, slots=True)
class WebhookGuard:
    name: str
    action: Action
    phases: frozenset[Phase]
    fail_closed: bool
    client: WebhookClient


Guard = TextGuard | InjectionGuard | ToolGuard | WebhookGuard


def build_guard(name: str, config: GuardrailConfig, post_json: PostJson | None) -> Guard:
    """The run-time guardrail for one named config."""
    phases = frozenset(config.phases)
    if isinstance(config, PiiConfig):
        return TextGuard(name, config.action, phases, PiiDetector(config.entities, config.phone_regions))
    if isinstance(config, SecretsConfig):
        return TextGuard(name, config.action, phases, SecretsDetector(config.kinds))
    if isinstance(config, RegexConfig):
        return TextGuard(name, config.action, phases, RegexDetector(config.patterns))
    if isinstance(config, DenylistConfig):
        return TextGuard(name, config.action, phases, DenylistDetector(config.words, config.case_sensitive))
    if isinstance(config, PromptInjectionConfig):
        roles = frozenset({"user", "tool", "function"} if config.scan_tool_results else {"user"})
        classifier = None
        if config.detector == "classifier":
            try:
                classifier = InjectionClassifier()
            except ClassifierUnavailable as exc:
                raise GuardrailConfigError(f"guardrail {name!r}: {exc}") from None
        direct = indirect = None
        if config.detector == "learned":
            direct, indirect = scorer("direct"), scorer("indirect")
        return InjectionGuard(
            name, config.action, phases, config.threshold, roles, InjectionScorer(), classifier, direct, indirect
        )
    if isinstance(config, ToolAccessConfig):
        return ToolGuard(name, config.action, phases, ToolPolicy(config.allow, config.deny))
    if isinstance(config, WebhookConfig):
        if post_json is None:
            raise GuardrailConfigError(f"guardrail {name!r} is a webhook but no post_json client was given")
        client = WebhookClient(config.url, config.timeout_ms, config.headers, post_json)
        return WebhookGuard(name, config.action, phases, config.on_error == "block", client)
    raise GuardrailConfigError(f"guardrail {name!r}: unknown type")
