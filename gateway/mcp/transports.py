"""The official MCP SDK's client for one configured upstream server, on the transport its config names.

Each server gets its own HTTP client carrying that server's headers (its credentials): nothing of
the gateway's caller, and nothing of another server's, is ever sent. Stdio servers are started with
their configured `env` over the SDK's short list of inherited variables (PATH, HOME, ...), never the
gateway's whole environment.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import httpx2
from mcp import Client, StdioServerParameters, stdio_client
from mcp.client.session import MessageHandlerFnT
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import Implementation

from gateway import __version__
from gateway.mcp.config import McpServerConfig, SseServer, StdioServer

# httpx2 (the SDK's HTTP client) logs every request at INFO: a line per tool call at the gateway's
# default level, where a model call logs none. Its warnings stay.
logging.getLogger("httpx2").setLevel(logging.WARNING)


def sdk_client(config: McpServerConfig, on_message: MessageHandlerFnT | None = None) -> Client:
    """An unopened SDK client for `config` (`async with` opens the connection). It negotiates the
    protocol revision (the 2026-07-28 requests, else the initialize handshake) and keeps no response
    cache: the gateway asks for what it needs when it needs it."""
    info = Implementation(name="agentgw", version=__version__)
    if isinstance(config, StdioServer):
        env = {name: value.get_secret_value() for name, value in config.env.items()}
        params = StdioServerParameters(command=config.command, args=list(config.args), env=env, cwd=config.cwd)
        transport: Any = stdio_client(params, errlog=sys.stderr)
    else:
        headers = {name: value.get_secret_value() for name, value in config.headers.items()}
        if isinstance(config, SseServer):
            transport = sse_client(
                config.url,
                headers=headers,
                timeout=config.connect_timeout_seconds,
                sse_read_timeout=max(300.0, config.timeout_seconds),
            )
        else:
            timeout = httpx2.Timeout(config.connect_timeout_seconds, read=max(300.0, config.timeout_seconds))
            http = httpx2.AsyncClient(headers=headers, timeout=timeout)
            transport = streamable_http_client(config.url, http_client=http)
            transport = _closing(transport, http)
    return Client(transport, client_info=info, cache=None, message_handler=on_message)


class _closing:
    """The streamable HTTP transport, closing the HTTP client it was given when it closes."""

    def __init__(self, transport: Any, http: httpx2.AsyncClient) -> None:
        self._transport = transport
        self._http = http

    async def __aenter__(self) -> Any:
        try:
            return await self._transport.__aenter__()
        except BaseException:
            await self._http.aclose()
            raise

    async def __aexit__(self, *exc: Any) -> Any:
        try:
            return await self._transport.__aexit__(*exc)
        finally:
            await self._http.aclose()
