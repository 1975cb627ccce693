"""The official MCP client pointed at a gateway under test."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.gateway_harness import ADMIN_KEY


@contextlib.asynccontextmanager
async def gateway_client(
    url: str, key: str = ADMIN_KEY, headers: dict[str, str] | None = None, mode: str = "auto", **options: Any
) -> AsyncIterator[Client]:
    """An SDK client session with the gateway's /mcp, the gateway key as its credential. `mode`:
    `auto` (the 2026-07-28 requests) or `legacy` (the initialize handshake and a session)."""
    auth = {"authorization": f"Bearer {key}", **(headers or {})}
    async with httpx2.AsyncClient(headers=auth, timeout=30) as http:
        transport = streamable_http_client(url.rstrip("/") + "/mcp", http_client=http)
        async with Client(transport, mode=mode, **options) as client:
            yield client
