"""Serving the gateway over HTTP: uvicorn, configured from the `server:` section, through a protocol
that bounds what a connection may cost while it sends its request (`protocol.EdgeProtocol`)."""

from gateway.serving.limits import EdgeConfig, EdgeLimits
from gateway.serving.protocol import EdgeProtocol
from gateway.serving.server import serve, uvicorn_config

__all__ = ["EdgeConfig", "EdgeLimits", "EdgeProtocol", "serve", "uvicorn_config"]
