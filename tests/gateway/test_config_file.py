"""Loading config.yaml: strict keys with paths, ${ENV_VAR} interpolation, references, key hashing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from gateway.config_file import ConfigError, load_config, parse_config

BASE = """
providers:
  mock: {type: mock}
models:
  m1: {provider: mock}
teams:
  t: {}
keys:
  - {name: k, key: "a-long-enough-key", team: t}
"""


def parse(text: str, **env: str):
    return parse_config(text, "test.yaml", env)


def problems(text: str, **env: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text, **env)
    return info.value.problems


def test_shipped_config_is_valid() -> None:
    config = load_config(Path(__file__).parents[2] / "config.yaml")
    assert "mock" in config.providers
    assert config.keys[0].role == "admin"


def test_minimal_config_loads_with_defaults() -> None:
    config = parse(BASE)
    assert config.server.port == 8080
    assert config.models["m1"].upstream is None


def test_unknown_key_names_its_path_and_suggests() -> None:
    text = BASE.replace("mock: {type: mock}", "mock: {type: openai, base_ur: 'http://x'}")
    assert problems(text) == ["providers.mock.base_ur: unknown key (did you mean 'base_url'?)"]


def test_misplaced_key_is_refused() -> None:
    text = BASE + "\nport: 9000\n"
    assert problems(text) == ["port: unknown key (it belongs under server)"]


def test_unknown_provider_type() -> None:
    text = BASE.replace("{type: mock}", "{type: bogus}")
    assert problems(text) == ["providers.mock.type: must be one of openai, anthropic, mock"]


def test_env_interpolation_and_defaults() -> None:
    text = BASE.replace(
        "{type: mock}", "{type: openai, api_key: '${OPENAI_KEY}', base_url: '${URL:-http://127.0.0.1:9/v1}'}"
    )
    config = parse(text, OPENAI_KEY="sk-test-123")
    provider = config.providers["mock"]
    assert provider.api_key.get_secret_value() == "sk-test-123"  # type: ignore[union-attr]
    assert str(provider.base_url) == "http://127.0.0.1:9/v1"  # type: ignore[union-attr]


def test_missing_env_var_is_a_clear_error() -> None:
    text = BASE.replace("{type: mock}", "{type: openai, api_key: '${OPENAI_KEY}'}")
    assert problems(text) == ["providers.mock.api_key: environment variable OPENAI_KEY is not set"]


def test_escaped_dollar_stays_literal() -> None:
    text = BASE.replace("t: {}", "t: {description: 'costs $${HOME}'}")
    assert parse(text).teams["t"].description == "costs ${HOME}"


def test_dangling_references_are_reported_together() -> None:
    text = BASE.replace("m1: {provider: mock}", "m1: {provider: nope}").replace("team: t}", "team: x, models: [zz]}")
    assert problems(text) == [
        "models.m1.provider: unknown provider 'nope'",
        "keys.0.team: unknown team 'x' (declare it under teams:)",
        "keys.0.models.0: unknown model or route 'zz'",
    ]


def test_duplicate_yaml_keys_are_refused() -> None:
    text = BASE.replace("  m1: {provider: mock}", "  m1: {provider: mock}\n  m1: {provider: mock}")
    [problem] = problems(text)
    assert "duplicate key 'm1'" in problem


def test_keys_are_kept_only_as_digests() -> None:
    config = parse(BASE)
    key = config.keys[0]
    assert key.key_sha256 == hashlib.sha256(b"a-long-enough-key").hexdigest()
    assert "a-long-enough-key" not in config.model_dump_json()
    assert "a-long-enough-key" not in repr(config)


def test_short_keys_are_refused() -> None:
    [problem] = problems(BASE.replace("a-long-enough-key", "short"))
    assert problem.startswith("keys.0: `key` must be a string of at least")


def test_not_yaml_and_not_a_mapping() -> None:
    assert problems("a: [1,")[0].startswith("not valid YAML")
    assert problems("- 1\n- 2") == ["the top level must be a mapping of sections"]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "absent.yaml")
    assert "cannot read the file" in info.value.problems[0]


def test_the_full_example_config_is_valid() -> None:
    env = {
        "OPENAI_API_KEY": "sk-test",
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "CRAWLER_KEY": "crawler-key-000001",
        "JUDGE_KEY": "judge-key-000001",
        "OTLP_TOKEN": "t",
        "GITHUB_MCP_TOKEN": "gh-token",
    }
    text = (Path(__file__).parents[2] / "examples" / "config.full.yaml").read_text()
    config = parse_config(text, "config.full.yaml", env)
    assert set(config.routes) == {"smart", "canary", "auto", "capped", "fast"}
    assert config.teams["research"].task_budget is not None
    assert config.agentops.online_eval.rate("crawler") == 0.05


@pytest.mark.parametrize(("word", "section"), [("team", "teams"), ("model", "models"), ("key", "keys")])
def test_a_misspelt_section_suggests_the_section(word: str, section: str) -> None:
    assert problems(BASE + f"\n{word}: {{}}\n") == [f"{word}: unknown key (did you mean '{section}'?)"]


def test_metrics_token_comes_from_the_environment_and_is_a_secret() -> None:
    text = BASE + 'telemetry: {metrics: {token: "${METRICS_TOKEN}"}}\n'
    config = parse(text, METRICS_TOKEN="scrape-me-0123456789abcdef")
    assert config.telemetry.metrics.token is not None
    assert config.telemetry.metrics.token.get_secret_value() == "scrape-me-0123456789abcdef"
    assert "scrape-me-0123456789abcdef" in config.secrets()  # scrubbed from logs like provider keys
    assert "scrape-me" not in repr(config.telemetry.metrics)
    assert problems(text.replace("${METRICS_TOKEN}", "short"))[0].startswith("telemetry.metrics.token")
