"""The upstream MCP servers across config reloads, and the view of them one config gives.

`Upstreams` lives as long as the process: each config (the first, and every SIGHUP reload) asks it
for its servers. A server whose config is unchanged keeps its connection; a new or changed one gets
a new `Upstream`; one no longer configured (or replaced) is retired, closed once the requests running
on it have finished. Calls in flight finish on the server they started with; sessions with the
gateway's own MCP endpoint are not touched (they belong to the endpoint, not to a config).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.mcp.config import McpConfig, McpServerConfig
from gateway.mcp.upstream import Upstream
from policies.mcp_access import McpAccess

log = logging.getLogger("agentgw.mcp")


class Upstreams:
    """Every upstream server the process holds a connection (or may hold one) to."""

    def __init__(self) -> None:
        self._by_name: dict[str, Upstream] = {}

    def for_config(self, servers: Mapping[str, McpServerConfig]) -> dict[str, Upstream]:
        """The servers of a config: the running ones it leaves unchanged, new ones for the rest. Those
        it drops or changes are retired (closed when idle)."""
        current: dict[str, Upstream] = {}
        for name, config in servers.items():
            existing = self._by_name.get(name)
            if existing is not None and existing.config == config and not existing.retired:
                current[name] = existing
                continue
            if existing is not None:
                log.info("MCP server %s: its config changed; a new connection for new calls", name)
                existing.retire()
            current[name] = Upstream(name, config)
        for name, upstream in self._by_name.items():
            if name not in servers:
                log.info("MCP server %s: no longer configured; closing once its calls finish", name)
                upstream.retire()
        self._by_name = current
        return dict(current)

    async def aclose(self) -> None:
        upstreams, self._by_name = list(self._by_name.values()), {}
        await asyncio.gather(*(upstream.aclose() for upstream in upstreams), return_exceptions=True)


@dataclass(frozen=True, slots=True)
class McpServers:
    """The MCP side of one config: its servers and its access rules."""

    config: McpConfig
    upstreams: dict[str, Upstream]
    access: McpAccess = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "access", McpAccess(self.config.access))

    def allows(self, team: str, key: str, agent: str, name: str) -> bool:
        return self.access.allows(team, key, agent, name)

    def reachable(self, team: str, key: str, agent: str) -> list[Upstream]:
        """The servers some rule could let this caller use (their items are checked one by one)."""
        return [u for name, u in self.upstreams.items() if self.access.may_reach(team, key, agent, name)]

    def describe(self) -> list[dict[str, Any]]:
        """Each server, where it is and its health (no credentials)."""
        out = []
        for name, upstream in sorted(self.upstreams.items()):
            config = upstream.config
            out.append(
                {
                    "name": name,
                    "transport": config.transport,
                    "location": config.location,
                    "description": config.description,
                    "timeout_seconds": config.timeout_seconds,
                    "in_flight": upstream.in_flight,
                    **upstream.health.as_dict(),
                }
            )
        return out
