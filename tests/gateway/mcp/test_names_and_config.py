"""How the gateway names upstream tools and resources, and the `mcp:` section's validation."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import Config
from gateway.mcp import names
from gateway.mcp.config import McpConfig


def test_tool_and_resource_names_round_trip() -> None:
    assert names.split(names.qualified("github", "create_issue")) == ("github", "create_issue")
    assert names.split(names.qualified("github", "a__b")) == ("github", "a__b")
    assert names.split("no-separator") is None and names.split("__x") is None
    uri = names.resource_uri("files", "file:///srv/a+b.txt")
    assert uri == "files+file:///srv/a+b.txt" and names.split_uri(uri) == ("files", "file:///srv/a+b.txt")


def base(**mcp: Any) -> dict[str, Any]:
    return {
        "providers": {"mock": {"type": "mock"}},
        "models": {"m": {"provider": "mock"}},
        "teams": {"research": {}},
        "keys": [{"name": "k", "key": "k" * 16, "team": "research"}],
        "mcp": mcp,
    }


@pytest.mark.parametrize(
    ("mcp", "problem"),
    [
        ({"servers": {"Git_Hub": {"transport": "stdio", "command": "x"}}}, "server name 'Git_Hub'"),
        ({"servers": {"gh": {"transport": "sse", "url": "ftp://x"}}}, "url"),
        (
            {
                "servers": {
                    "gh": {"transport": "streamable_http", "url": "http://x", "headers": {"Mcp-Session-Id": "1"}}
                }
            },
            "sets these headers itself",
        ),
        ({"access": [{"team": "nobody", "allow": ["*"]}]}, "mcp.access.0.team: unknown team 'nobody'"),
        ({"access": [{"key": "nobody", "allow": ["*"]}]}, "mcp.access.0.key: unknown key 'nobody'"),
    ],
)
def test_config_problems_are_named(mcp: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError) as refused:
        Config.model_validate(base(**mcp))
    assert problem in str(refused.value)


def test_upstream_credentials_are_secrets_and_not_shown() -> None:
    config = McpConfig.model_validate(
        {
            "servers": {
                "gh": {
                    "transport": "streamable_http",
                    "url": "https://user:pw-SECRET@mcp.example.com:8443/mcp?token=t0k3n",
                    "headers": {"authorization": "Bearer gh-SECRET-token"},
                },
                "files": {"transport": "stdio", "command": "srv", "env": {"API_TOKEN": "env-SECRET-value"}},
            }
        }
    )
    secrets = set(config.secrets())
    assert {"Bearer gh-SECRET-token", "pw-SECRET", "token=t0k3n", "env-SECRET-value"} <= secrets
    assert config.servers["gh"].location == "https://mcp.example.com:8443/mcp"
    assert "SECRET" not in repr(config)
