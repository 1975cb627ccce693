"""SIGHUP with MCP servers: servers added and removed, access rules changed, without dropping the
sessions or the tool calls in flight (`agentgw serve` as a process: signals need one)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.shared.exceptions import MCPError

from tests.gateway_harness import GatewayProcess, base_config
from tests.mcp_standin import servers as mcp_standin
from tests.mcp_standin.client import gateway_client
from tests.standin import ServerThread, StandIn


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[ServerThread, ServerThread]]:
    github, search = mcp_standin.serve_http("github"), mcp_standin.serve_http("search")
    yield github, search
    github.stop()
    search.stop()


def config(standin: StandIn, servers: dict[str, str], allow: list[str]) -> dict[str, Any]:
    config = base_config(standin)
    config["mcp"] = {
        "servers": {name: {"transport": "streamable_http", "url": url + "/mcp"} for name, url in servers.items()},
        "access": [{"allow": allow}],
    }
    return config


async def reloaded(gateway: GatewayProcess, times: int) -> None:
    deadline = time.monotonic() + 15
    while gateway.output().count("config reloaded") < times:
        assert time.monotonic() < deadline, gateway.output()
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_reload_adds_and_removes_servers_without_dropping_sessions_in_flight(
    mode: str, standin: StandIn, upstreams: tuple[ServerThread, ServerThread], tmp_path: Path
) -> None:
    github, search = upstreams
    gateway = GatewayProcess(config(standin, {"github": github.url}, ["*"]), tmp_path / "gw").start()
    try:

        async def main() -> None:
            async with gateway_client(gateway.url, mode=mode) as client:
                names = {tool.name for tool in (await client.list_tools()).tools}
                assert "github__echo" in names and not any(n.startswith("search__") for n in names)
                in_flight = asyncio.create_task(client.call_tool("github__slow", {"seconds": 1.5}))
                await asyncio.sleep(0.3)
                gateway.write_config(config(standin, {"search": search.url}, ["*"]))
                gateway.signal(signal.SIGHUP)
                await reloaded(gateway, 1)
                # the same session: the new server is there, the removed one is gone
                names = {tool.name for tool in (await client.list_tools()).tools}
                assert "search__echo" in names and not any(n.startswith("github__") for n in names)
                assert (await client.call_tool("search__echo", {"text": "found"})).content[0].text == "found"
                with pytest.raises(MCPError) as gone:
                    await client.call_tool("github__echo", {"text": "still?"})
                assert gone.value.data["code"] == "tool_not_found"
                # the call that was running on the removed server finished on it
                assert (await in_flight).content[0].text == "late"
                # a rule taken away takes effect at once, for this session too (no stale grant)
                gateway.write_config(config(standin, {"search": search.url}, ["search__add"]))
                gateway.signal(signal.SIGHUP)
                await reloaded(gateway, 2)
                with pytest.raises(MCPError) as revoked:
                    await client.call_tool("search__echo", {"text": "again"})
                assert revoked.value.data["code"] == "tool_not_found"
                assert [tool.name for tool in (await client.list_tools()).tools] == ["search__add"]

        asyncio.run(main())
    finally:
        gateway.stop()
