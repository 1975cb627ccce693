"""The `mcp:` section of config.yaml: the upstream MCP servers the gateway federates, who may use
what of them, and what a tool call costs.

```yaml
mcp:
  servers:                          # a union tagged on `transport`
    github: {transport: streamable_http, url: "https://mcp.example.com/mcp",
             headers: {authorization: "Bearer ${GITHUB_MCP_TOKEN}"}, timeout_seconds: 30}
    search: {transport: sse, url: "http://127.0.0.1:9000/sse", cost_per_call_usd: 0.002}
    files:  {transport: stdio, command: mcp-server-files, args: ["/srv/docs"], env: {LOG: "warn"}}
  access:                           # nothing is allowed unless a rule allows it; deny wins
    - {team: research, allow: ["github__*", "search__*"], deny: ["github__delete_*"]}
```
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from policies.mcp_access import McpAccessRule

SERVER_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")  # no underscores: `__` separates server and tool
_RESERVED_HEADERS = frozenset({"mcp-session-id", "mcp-protocol-version", "content-type", "accept", "content-length"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Server(_Strict):
    description: str | None = None
    timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="A tool call, prompt or resource read (and a listing) with no answer by then is cut: the "
        "client gets upstream_timeout.",
    )
    connect_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="Opening the connection (and, for stdio, starting the process)."
    )
    cost_per_call_usd: float = Field(default=0.0, ge=0, description="What one tool call of this server costs.")
    tool_costs: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict,
        description="USD per call for named tools (the server's own names); others cost `cost_per_call_usd`.",
    )

    def cost_nanos(self, tool: str) -> int:
        return round(self.tool_costs.get(tool, self.cost_per_call_usd) * 1e9)

    def secrets(self) -> list[str]:
        return []

    @property
    def location(self) -> str:
        """Where the server is, fit to show (no credentials, no query)."""
        raise NotImplementedError


class _HttpServer(_Server):
    url: str = Field(pattern=r"^https?://[^\s/]+", description="The server's MCP endpoint.", repr=False)
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="Sent to this server only (its credentials: `${ENV_VAR}`)."
    )

    @field_validator("headers")
    @classmethod
    def _own_headers(cls, headers: dict[str, SecretStr]) -> dict[str, SecretStr]:
        clash = sorted(name for name in headers if name.lower() in _RESERVED_HEADERS)
        if clash:
            raise ValueError(f"the MCP transport sets these headers itself: {', '.join(clash)}")
        return headers

    def secrets(self) -> list[str]:
        values = [v.get_secret_value() for v in self.headers.values()]
        parts = urlsplit(self.url)
        values += [part for part in (parts.password, parts.username, parts.query) if part]
        return [v for v in values if len(v) >= 4]

    @property
    def location(self) -> str:
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


class StreamableHttpServer(_HttpServer):
    """A server speaking MCP's streamable HTTP transport (any protocol revision the SDK speaks)."""

    transport: Literal["streamable_http"]


class SseServer(_HttpServer):
    """A server on the older HTTP+SSE transport (protocol 2024-11-05): `url` is its SSE endpoint."""

    transport: Literal["sse"]


class StdioServer(_Server):
    """A server the gateway starts as a child process and speaks to over its stdin and stdout. The
    process gets `env` and a few harmless variables (PATH, HOME, ...), never the gateway's own
    environment (which holds provider keys); it runs as the gateway's user."""

    transport: Literal["stdio"]
    command: str = Field(min_length=1, description="An executable (looked up on PATH) and nothing else.")
    args: list[str] = Field(default_factory=list)
    env: dict[str, SecretStr] = Field(default_factory=dict, description="Its environment, beside PATH, HOME...")
    cwd: str | None = None

    def secrets(self) -> list[str]:
        return [v for v in (s.get_secret_value() for s in self.env.values()) if len(v) >= 4]

    @property
    def location(self) -> str:
        return f"stdio:{self.command}"


McpServerConfig = Annotated[StreamableHttpServer | SseServer | StdioServer, Field(discriminator="transport")]


class McpConfig(_Strict):
    servers: dict[str, McpServerConfig] = Field(default_factory=dict)
    access: list[McpAccessRule] = Field(
        default_factory=list,
        description="Who may see and use which tools, prompts and resources (`policies.mcp_access`).",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed to call /mcp (a request with another Origin header is refused).",
    )

    @field_validator("servers")
    @classmethod
    def _names(cls, servers: dict[str, McpServerConfig]) -> dict[str, McpServerConfig]:
        bad = [name for name in servers if not SERVER_NAME.match(name)]
        if bad:
            raise ValueError(
                f"server name '{bad[0]}': lower-case letters, digits and '-', starting with a letter, at most "
                "32 (tools are named <server>__<tool>)"
            )
        return servers

    def problems(self, teams: Iterable[str], keys: Iterable[str]) -> list[str]:
        """References the root config must resolve: teams and keys named by access rules."""
        team_names, key_names = set(teams), set(keys)
        problems = []
        for i, rule in enumerate(self.access):
            if rule.team is not None and rule.team not in team_names:
                problems.append(f"mcp.access.{i}.team: unknown team '{rule.team}'")
            if rule.key is not None and rule.key not in key_names:
                problems.append(f"mcp.access.{i}.key: unknown key '{rule.key}'")
        return problems

    def secrets(self) -> list[str]:
        return [secret for server in self.servers.values() for secret in server.secrets()]
