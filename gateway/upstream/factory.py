"""Builds the configured UpstreamClient implementation."""

from __future__ import annotations

from typing import Literal

from gateway.upstream.base import UpstreamClient

ClientKind = Literal["httptools", "aiohttp", "httpx", "httpx-aiohttp"]


def create_client(kind: ClientKind, *, max_connections: int) -> UpstreamClient:
    """Must be called with an event loop running (aiohttp binds its session to it)."""
    if kind == "httptools":
        from gateway.upstream.httptools_client import HttptoolsClient

        return HttptoolsClient(max_connections=max_connections)
    if kind == "aiohttp":
        from gateway.upstream.aiohttp_client import AiohttpClient

        return AiohttpClient(max_connections=max_connections)
    from gateway.upstream.httpx_client import HttpxClient

    return HttpxClient(max_connections=max_connections, transport="aiohttp" if kind == "httpx-aiohttp" else "default")
