"""The `agentops:` section of config.yaml: workflow versions, online evaluation, anomaly alerts.

```yaml
agentops:
  versions: {variables: ["(?s)<context>.*?</context>"]}    # what varies per call, on top of the built-ins
  alerts: {url: "https://hooks.example.com/agentops"}       # new versions and anomalies
  online_eval: {enabled: true, key: judge, judge_model: gpt-4o-mini, sample_rate: 0.02}
  anomalies: {interval_seconds: 300}
```
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_RUBRIC = (
    "The answer responds to the user's last request correctly and completely, follows the system "
    "instructions, and invents no facts."
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VersionsConfig(_Strict):
    """How calls are fingerprinted into workflow versions (`gateway.agentops.fingerprint`)."""

    enabled: bool = True
    builtin_variables: bool = Field(
        default=True,
        description="Treat dates, times, weekdays, UUIDs, long hex and prefixed ids, emails and numbers of five "
        "or more digits in a system prompt as variable: they never make a new version.",
    )
    variables: list[str] = Field(
        default_factory=list,
        description="More regular expressions for the variable parts of system prompts (user names, retrieved "
        "context); what they match is replaced by <var> before the prompt is hashed.",
    )
    keep_prompts: bool = Field(
        default=False,
        description="Store each new version's normalised system prompt in the ledger (for comparing versions); "
        "otherwise only its digest and length, unless content capture is on.",
    )
    max_new_per_hour: int = Field(
        default=20,
        ge=1,
        description="New versions of one agent announced per hour; beyond, they are recorded but not announced, "
        "and one warning says the agent's prompt has variable parts the gateway does not recognise.",
    )

    @field_validator("variables")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for i, pattern in enumerate(patterns):
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"variables.{i}: not a regular expression ({exc})") from None
            if compiled.match(""):
                raise ValueError(f"variables.{i}: the pattern matches the empty string")
        return patterns


class AlertsConfig(_Strict):
    """Where agentops events are posted (JSON): a version seen for the first time, an anomaly."""

    url: str | None = Field(default=None, pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=5.0, gt=0, le=300)

    def secrets(self) -> list[str]:
        return [value for value in self.headers.values() if len(value) >= 4]


class OnlineEvalConfig(_Strict):
    """A fraction of each agent's answered calls scored by a judge model, off the request path. The
    judge's calls go through the gateway as the key `key` (its team, limits and budget: the judge's
    own), attributed to the task `online-eval`."""

    enabled: bool = False
    key: str | None = Field(default=None, description="The name of a key in `keys:` the judge's calls run as.")
    judge_model: str | None = Field(default=None, description="A model or route of this gateway.")
    sample_rate: float = Field(default=0.01, ge=0, le=1, description="Fraction of each agent's calls judged.")
    agents: dict[str, float] = Field(default_factory=dict, description="Per-agent sample rates (agent name: rate).")
    rubric: str = Field(default=DEFAULT_RUBRIC, min_length=1, max_length=4000)
    structured_output: bool = Field(
        default=True, description="Ask the judge for a JSON schema (response_format); off for models without it."
    )
    max_queue: int = Field(default=100, ge=1, le=100_000, description="Samples waiting; beyond, new ones are dropped.")
    concurrency: int = Field(default=2, ge=1, le=64, description="Judge calls at once.")
    max_chars: int = Field(default=8000, ge=256, description="The conversation and answer shown to the judge, cut.")

    @field_validator("agents")
    @classmethod
    def _rates(cls, rates: dict[str, float]) -> dict[str, float]:
        for agent, rate in rates.items():
            if not 0 <= rate <= 1:
                raise ValueError(f"agents.{agent}: a sample rate is between 0 and 1")
        return rates

    def rate(self, agent: str) -> float:
        return self.agents.get(agent, self.sample_rate)


class AnomaliesConfig(_Strict):
    """Baselines per agent (and per version) of cost per task, error rate, latency, guardrail triggers
    and judge scores, read from the ledger once per interval (`gateway.agentops.watch`)."""

    enabled: bool = True
    interval_seconds: int = Field(
        default=300, ge=1, le=86400, description="One point of every series per interval (aligned on the epoch)."
    )
    settle_seconds: float = Field(
        default=30.0, ge=0, le=3600, description="Wait after an interval ends for late ledger writes."
    )
    alpha: float = Field(default=0.1, gt=0, lt=1, description="EWMA weight of the newest interval.")
    z_threshold: float = Field(default=3.0, gt=0, description="Departure from the baseline, in standard deviations.")
    consecutive: int = Field(default=2, ge=1, le=100, description="Intervals in a row that depart before an alert.")
    min_relative_change: float = Field(
        default=0.25, ge=0, description="And by at least this fraction of the baseline (cost, latency)."
    )
    min_calls: int = Field(default=20, ge=1, description="Intervals with fewer calls of a series are skipped.")
    warmup_intervals: int = Field(default=12, ge=2, description="Points a baseline needs before it may alert.")
    history_hours: float = Field(default=24.0, gt=0, le=24 * 35, description="Ledger read at start to warm up.")
    seasonal: Literal["none", "daily"] = Field(
        default="none", description="`daily`: a baseline per hour of the day (UTC), for traffic with a daily shape."
    )
    relearn_after: int = Field(
        default=12, ge=1, description="A departure lasting this many intervals becomes the new baseline."
    )


class AgentOpsConfig(_Strict):
    versions: VersionsConfig = VersionsConfig()
    alerts: AlertsConfig = AlertsConfig()
    online_eval: OnlineEvalConfig = OnlineEvalConfig()
    anomalies: AnomaliesConfig = AnomaliesConfig()

    def secrets(self) -> list[str]:
        return self.alerts.secrets()

    def problems(self, keys: dict[str, frozenset[str]], names: set[str]) -> list[str]:
        """References to check against the rest of the config: the judge's key (name: its models) and model."""
        online = self.online_eval
        if not online.enabled:
            return []
        out = []
        if online.key is None or online.judge_model is None:
            out.append("agentops.online_eval: `key` and `judge_model` are required when it is enabled")
            return out
        if online.key not in keys:
            out.append(f"agentops.online_eval.key: unknown key '{online.key}' (declare it under keys:)")
        elif "*" not in keys[online.key] and online.judge_model not in keys[online.key]:
            out.append(f"agentops.online_eval.key: the key '{online.key}' may not use '{online.judge_model}'")
        if online.judge_model not in names:
            out.append(f"agentops.online_eval.judge_model: unknown model or route '{online.judge_model}'")
        return out
