"""The bounds of the HTTP edge, as a value object, and the uvicorn config that carries them to the
protocol (uvicorn builds one protocol instance per connection from its config alone)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import uvicorn

from gateway.config import ServerConfig


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """What a client connection may cost while it sends its request (see `ServerConfig` for each
    field's meaning and default). Nothing here bounds a response."""

    max_header_bytes: int
    max_headers: int
    header_timeout: float
    body_timeout: float
    max_connections: int

    @classmethod
    def of(cls, server: ServerConfig) -> EdgeLimits:
        return cls(
            max_header_bytes=server.max_header_bytes,
            max_headers=server.max_headers,
            header_timeout=server.header_timeout_seconds,
            body_timeout=server.body_timeout_seconds,
            max_connections=server.max_connections,
        )


class EdgeConfig(uvicorn.Config):
    """uvicorn's Config with the edge limits on it. Picklable (a module-level class holding plain
    values), so uvicorn's multiprocess mode can hand it to worker processes."""

    def __init__(self, app: Any, *, limits: EdgeLimits, **options: Any) -> None:
        super().__init__(app, **options)
        self.limits = limits
