"""One upstream MCP server: a shared connection to it, its timeouts, what it offers, and its health.

The connection (the SDK's `Client`) is opened on first use, by a task of its own that holds it open
(the SDK's transports live in task groups that must close in the task that opened them); every
request of every caller goes over it. A connection that breaks (the process died, the server went
away) is dropped, and the next request opens a new one. Each request is bounded by the server's
`timeout_seconds`, opening by `connect_timeout_seconds`: a server that hangs costs the caller a
timeout error, never a hang.

Errors leave here as the gateway's own (`UpstreamFailed`, `UpstreamTimedOut`, `UpstreamRejected`),
their messages naming the server and what happened, never the server's credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mcp import Client
from mcp.client.session import MessageHandlerFnT
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, Tool, ToolListChangedNotification

from gateway.errors import UpstreamFailed, UpstreamTimedOut
from gateway.mcp.config import McpServerConfig, StdioServer
from gateway.mcp.transports import sdk_client
from gateway.secret_mask import SecretMask

log = logging.getLogger("agentgw.mcp")

T = TypeVar("T")
CATALOG_SECONDS = 60.0  # a server's tool list is asked again after this long (or when it says it changed)
MISS_SECONDS = 2.0  # a name not in the list asks the server again, at most this often (callers choose names)
MAX_PAGES = 50
CLOSE_SECONDS = 5.0
MAX_MESSAGE = 500


class UpstreamRejected(UpstreamFailed):
    """The server answered the request with a JSON-RPC error of its own (an unknown tool, arguments it
    refused, a failure it reported): passed on with its code and its message, scrubbed."""

    def __init__(self, message: str, *, rpc_code: int) -> None:
        super().__init__(message)
        self.rpc_code = rpc_code


@dataclass(slots=True)
class Health:
    """What the gateway has seen of one server since it started talking to it."""

    state: str = "idle"  # idle (not yet used) | up | down
    since: float = field(default_factory=time.time)
    protocol_version: str | None = None
    server_name: str | None = None
    requests: int = 0
    failures: int = 0
    timeouts: int = 0
    last_ok: float | None = None
    last_failure: float | None = None
    last_error: str | None = None  # connect | timeout | closed | rejected | failed
    latency_ms: float | None = None  # exponentially weighted, answered requests only

    def ok(self, seconds: float) -> None:
        now = time.time()
        if self.state != "up":
            self.state, self.since = "up", now
        self.requests += 1
        self.last_ok = now
        ms = seconds * 1000
        self.latency_ms = ms if self.latency_ms is None else 0.8 * self.latency_ms + 0.2 * ms

    def failed(self, kind: str, *, down: bool) -> None:
        now = time.time()
        self.requests += 1
        self.failures += 1
        self.timeouts += kind == "timeout"
        self.last_failure, self.last_error = now, kind
        if down and self.state != "down":
            self.state, self.since = "down", now

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "since": self.since,
            "protocol_version": self.protocol_version,
            "requests": self.requests,
            "failures": self.failures,
            "timeouts": self.timeouts,
            "last_ok": self.last_ok,
            "last_failure": self.last_failure,
            "last_error": self.last_error,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 3),
        }


class Upstream:
    """One configured server: `request()` runs a call on its connection, bounded and accounted for."""

    def __init__(self, name: str, config: McpServerConfig) -> None:
        self.name = name
        self.config = config
        self.health = Health()
        self.in_flight = 0
        self.retired = False
        self._mask = SecretMask(config.secrets(), min_length=4)
        self._connection: _Connection | None = None
        self._opening = asyncio.Lock()
        self._tools: dict[str, Tool] = {}
        self._tools_at = -CATALOG_SECONDS
        self._listed_at = float("-inf")  # when the server last answered tools/list
        self._closing: asyncio.Task[None] | None = None

    @property
    def network_transport(self) -> str:
        return "pipe" if isinstance(self.config, StdioServer) else "tcp"

    async def request(self, work: Callable[[Client], Awaitable[T]], what: str) -> T:
        """`work` on this server's connection within `timeout_seconds`. `what` names the request in
        errors (`tools/call create_issue`)."""
        timeout = self.config.timeout_seconds
        self.in_flight += 1
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                connection = await self._connected()
                try:
                    result = await work(connection.client)
                except MCPError as exc:
                    if exc.code == CONNECTION_CLOSED:
                        connection.broken()
                        raise self._failure(
                            "closed", f"The MCP server '{self.name}' closed the connection during {what}."
                        ) from None
                    self.health.failed("rejected", down=False)
                    message = self._mask.mask(exc.message)[:MAX_MESSAGE]
                    raise UpstreamRejected(
                        f"The MCP server '{self.name}' refused {what}: {message}", rpc_code=exc.code
                    ) from None
        except TimeoutError:
            self.health.failed("timeout", down=True)
            raise UpstreamTimedOut(
                f"The MCP server '{self.name}' did not answer {what} within {timeout:g} s."
            ) from None
        except (UpstreamFailed, asyncio.CancelledError):
            raise
        except Exception as exc:  # the transport broke: a refused connection, a dead process, bad bytes
            if self._connection is not None:
                self._connection.broken()
            log.warning("MCP server %s: %s failed: %s", self.name, what, _describe(exc, self._mask))
            raise self._failure("failed", f"The MCP server '{self.name}' could not be reached for {what}.") from None
        else:
            self.health.ok(time.perf_counter() - started)
            return result
        finally:
            self.in_flight -= 1
            if self.retired and self.in_flight == 0:
                self._close_soon()

    def _failure(self, kind: str, message: str) -> UpstreamFailed:
        self.health.failed(kind, down=True)
        return UpstreamFailed(message)

    async def _connected(self) -> _Connection:
        connection = self._connection
        if connection is not None and connection.alive:
            return connection
        async with self._opening:
            connection = self._connection
            if connection is None or not connection.alive:
                if connection is not None:
                    await connection.close()
                connection = self._connection = _Connection(self.config, self._on_message)
                try:
                    async with asyncio.timeout(self.config.connect_timeout_seconds):
                        await connection.opened()
                except TimeoutError:
                    await connection.close()
                    self.health.failed("connect", down=True)
                    raise UpstreamFailed(
                        f"The MCP server '{self.name}' did not connect within "
                        f"{self.config.connect_timeout_seconds:g} s."
                    ) from None
                if not connection.alive:
                    error = connection.error
                    log.warning("MCP server %s: could not connect: %s", self.name, _describe(error, self._mask))
                    self.health.failed("connect", down=True)
                    raise UpstreamFailed(f"The MCP server '{self.name}' could not be reached.")
                client = connection.client
                self.health.protocol_version = client.protocol_version
                info = client.server_info
                self.health.server_name = info.name if info is not None else None
                self._tools_at = -CATALOG_SECONDS  # a new connection: its tools are asked again
        return connection

    async def _on_message(self, message: Any) -> None:
        root = getattr(message, "root", message)
        if isinstance(root, ToolListChangedNotification):
            self._tools_at = -CATALOG_SECONDS

    # -- what the server offers -------------------------------------------------------------------

    async def tools(self, *, fresh: bool = False) -> dict[str, Tool]:
        """The server's tools by its own names: its last answer when recent and the server has not
        failed since, else asked anew."""
        recent = time.monotonic() - self._tools_at < CATALOG_SECONDS
        if not fresh and recent and self.health.state != "down":
            return self._tools

        async def listing(client: Client) -> list[Tool]:
            tools: list[Tool] = []
            cursor: str | None = None
            for _ in range(MAX_PAGES):
                page = await client.list_tools(cursor=cursor)
                tools += page.tools
                cursor = page.next_cursor
                if not cursor:
                    break
            return tools

        found = await self.request(listing, "tools/list")
        self._tools = {tool.name: tool for tool in found}
        self._tools_at = self._listed_at = time.monotonic()
        return self._tools

    async def tool(self, name: str) -> Tool | None:
        """One of the server's tools. A name not in the list it gave asks it again (it may have added
        the tool since), unless it was just asked: unknown names cost the server one listing per
        `MISS_SECONDS` at most, however many a caller sends."""
        listed = self._listed_at
        tools = await self.tools()
        if name not in tools and self._listed_at == listed and time.monotonic() - listed >= MISS_SECONDS:
            tools = await self.tools(fresh=True)
        return tools.get(name)

    # -- lifecycle --------------------------------------------------------------------------------

    def retire(self) -> None:
        """No longer configured: close once the requests running on it have finished."""
        self.retired = True
        if self.in_flight == 0:
            self._close_soon()

    def _close_soon(self) -> None:
        if self._connection is not None and self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self.aclose(), name="mcp-upstream-close")

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()


class _Connection:
    """An open SDK client, held by a task of its own until `close()`."""

    def __init__(self, config: McpServerConfig, on_message: MessageHandlerFnT) -> None:
        self._config = config
        self._on_message = on_message
        self._client: Client | None = None
        self.error: BaseException | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._done = False
        self._task = asyncio.get_running_loop().create_task(self._hold(), name="mcp-upstream")

    @property
    def alive(self) -> bool:
        return self._client is not None and not self._done and not self._stop.is_set()

    @property
    def client(self) -> Client:
        assert self._client is not None
        return self._client

    async def opened(self) -> None:
        await self._ready.wait()

    async def _hold(self) -> None:
        try:
            async with sdk_client(self._config, self._on_message) as client:
                self._client = client
                self._ready.set()
                await self._stop.wait()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # what ended it (exception groups included) is kept for the log
            self.error = exc
        finally:
            self._done = True
            self._ready.set()

    def broken(self) -> None:
        """Requests found it dead: the next one opens a new connection."""
        self._stop.set()

    async def close(self) -> None:
        self._stop.set()
        if self._client is None:  # still opening (a server that never answers): nothing to close politely
            self._task.cancel()
        if not self._task.done():
            done, _ = await asyncio.wait({self._task}, timeout=CLOSE_SECONDS)
            if not done:
                self._task.cancel()
                with contextlib.suppress(BaseException):
                    await self._task


def _describe(exc: BaseException | None, secrets: SecretMask) -> str:
    """An exception for the log: its type and message (exception groups: their first leaf), scrubbed."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if exc is None:
        return "unknown error"
    return secrets.mask(f"{type(exc).__name__}: {exc}")[:MAX_MESSAGE]
