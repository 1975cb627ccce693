"""The MCP gateway end to end: the official MCP client against the gateway's /mcp, the gateway
against stand-in MCP servers built with the official SDK, all on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from mcp.shared.exceptions import MCPError

from tests.gateway_harness import ADMIN_KEY, AGENT_KEY, base_config
from tests.mcp import standin as mcp_standin
from tests.mcp.client import gateway_client
from tests.standin import ServerThread, StandIn

UPSTREAM_TOKEN = "upstream-github-SECRET-token-0001"


@pytest.fixture(scope="module")
def upstream() -> Iterator[ServerThread]:
    server = mcp_standin.serve_http("github")
    yield server
    server.stop()


def mcp_config(standin: StandIn, upstream_url: str, **mcp: Any) -> dict[str, Any]:
    config = base_config(standin)
    config["mcp"] = {
        "servers": {
            "github": {
                "transport": "streamable_http",
                "url": upstream_url + "/mcp",
                "headers": {"authorization": f"Bearer {UPSTREAM_TOKEN}"},
                "timeout_seconds": 5,
            }
        },
        "access": [{"allow": ["*"], "deny": ["github__delete_*"]}],
        **mcp,
    }
    return config


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_tools_listed_and_called_through_the_gateway(
    mode: str, standin: StandIn, upstream: ServerThread, gateway_factory: Callable[..., Any]
) -> None:
    gateway = gateway_factory(mcp_config(standin, upstream.url))
    mcp_standin.SEEN.clear()

    async def main() -> None:
        async with gateway_client(gateway.url, mode=mode) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            assert {"github__echo", "github__add", "github__fetch_page"} <= tools
            assert "github__delete_repo" not in tools  # denied: hidden
            result = await client.call_tool("github__add", {"a": 2, "b": 3})
            assert not result.is_error
            assert result.structured_content == {"result": 5}
            with pytest.raises(MCPError) as denied:
                await client.call_tool("github__delete_repo", {"name": "agentgw"})
            assert denied.value.code == -32602
            assert denied.value.data["code"] == "tool_not_found"
            assert "not available to this key" in denied.value.message

    asyncio.run(main())
    calls = [seen for seen in mcp_standin.SEEN if seen["server"] == "github"]
    assert [c["tool"] for c in calls] == ["add"]  # the denied call never reached the server
    headers = calls[0]["headers"]
    assert headers.get("authorization") == f"Bearer {UPSTREAM_TOKEN}"  # the server's own credential
    assert ADMIN_KEY not in str(headers)  # never the gateway key
