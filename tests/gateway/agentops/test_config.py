"""The `agentops:` section: the online judge's key and model must resolve, anomaly settings are bounded."""

from __future__ import annotations

import pytest

from gateway.config_file import ConfigError, parse_config

BASE = """
providers:
  mock: {type: mock}
models:
  m1: {provider: mock}
  judge: {provider: mock}
teams:
  t: {}
keys:
  - {name: k, key: "a-long-enough-key", team: t}
  - {name: judge-key, key: "another-long-key", team: t, models: [m1]}
"""


def problems(agentops: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + "agentops:\n" + agentops, "test.yaml", {})
    return info.value.problems


def test_the_online_judge_must_resolve() -> None:
    assert any("`key` and `judge_model` are required" in p for p in problems("  online_eval: {enabled: true}\n"))
    found = problems("  online_eval: {enabled: true, key: nobody, judge_model: nothing}\n")
    assert any("unknown key 'nobody'" in p for p in found)
    assert any("unknown model or route 'nothing'" in p for p in found)
    refused = problems("  online_eval: {enabled: true, key: judge-key, judge_model: judge}\n")
    assert any("the key 'judge-key' may not use 'judge'" in p for p in refused)
    config = parse_config(BASE + "agentops:\n  online_eval: {enabled: true, key: k, judge_model: judge}\n", "t", {})
    assert config.agentops.online_eval.rate("anyone") == 0.01


def test_bounds_and_patterns() -> None:
    assert any("interval_seconds" in p for p in problems("  anomalies: {interval_seconds: 0}\n"))
    assert any("sample_rate" in p for p in problems("  online_eval: {sample_rate: 1.5}\n"))
    assert any("matches the empty string" in p for p in problems("  versions: {variables: ['x*']}\n"))
