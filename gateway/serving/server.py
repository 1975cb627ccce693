"""The one place the `server:` section becomes a running uvicorn: its settings, and one process."""

from __future__ import annotations

import contextlib
import logging
import math
import socket
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from gateway.config import ServerConfig
from gateway.serving.limits import EdgeConfig, EdgeLimits
from gateway.serving.protocol import EdgeProtocol
from gateway.shutdown import Shutdown

log = logging.getLogger("agentgw")

STARTUP_FAILURE = 3  # uvicorn's exit status when the server never started


def uvicorn_config(app: ASGIApp | str, server: ServerConfig, **options: Any) -> EdgeConfig:
    """uvicorn's Config for `server`, serving through `EdgeProtocol`. `app` is the ASGI app or, for
    uvicorn's multiprocess mode, an import string (`factory=True` for an app factory). `options` are
    further uvicorn Config arguments or overrides of these (the CLI's --host, the tests' loop)."""
    settings: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "loop": "uvloop",
        "http": EdgeProtocol,
        "ws": "none",  # the gateway has no websocket endpoint: no upgrade path to defend
        "log_level": server.log_level,
        "access_log": server.access_log,
        "timeout_keep_alive": server.keep_alive_seconds,
        "timeout_graceful_shutdown": math.ceil(server.graceful_shutdown_seconds) or None,
        "server_header": False,
        "proxy_headers": False,  # the gateway does not use client addresses: one layer less per request
    }
    return EdgeConfig(app, limits=EdgeLimits.of(server), **{**settings, **options})


def serve(config: EdgeConfig) -> int:
    """Serve in this process until SIGINT or SIGTERM (which drain in-flight requests first).
    Returns 0, or STARTUP_FAILURE when the server never started."""
    make_room_for(config.limits.max_connections)
    server = GatewayServer(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0 if server.started else STARTUP_FAILURE


class GatewayServer(uvicorn.Server):
    """uvicorn's server, telling the app when its graceful shutdown begins: calls still running when
    the grace is nearly over are cut by the app itself, each in its API's shape (`gateway.shutdown`)."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        state = getattr(self.config.loaded_app, "state", None)
        shutdown = getattr(state, "shutdown", None)
        if isinstance(shutdown, Shutdown):
            shutdown.begin(self.config.timeout_graceful_shutdown)
        await super().shutdown(sockets)


def make_room_for(connections: int) -> None:
    """Each client connection may hold an upstream one: raise the soft file-descriptor limit to fit
    both (up to the hard limit), so `max_connections` is what bounds them, not accept() failing."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * connections + 256
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if raised > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    if raised < wanted:
        log.warning(
            "open-file limit %d is below the %d that server.max_connections=%d may need", raised, wanted, connections
        )
