"""The `server:` section becomes uvicorn's settings in one place, for `agentgw serve` and the tests."""

from __future__ import annotations

import pickle

import pytest
import uvicorn
from uvicorn.server import ServerState

from gateway.config import ServerConfig
from gateway.serving import EdgeConfig, EdgeLimits, EdgeProtocol, uvicorn_config


def test_the_section_is_mapped_onto_uvicorn_and_the_protocol() -> None:
    server = ServerConfig(
        host="0.0.0.0",
        port=9000,
        keep_alive_seconds=9,
        graceful_shutdown_seconds=2.5,
        max_header_bytes=4096,
        max_headers=20,
        header_timeout_seconds=1.5,
        body_timeout_seconds=7,
        max_connections=5,
    )
    config = uvicorn_config("gateway.app:create_app", server)
    assert (config.host, config.port, config.loop) == ("0.0.0.0", 9000, "uvloop")
    assert config.http is EdgeProtocol and config.ws == "none"
    assert config.timeout_keep_alive == 9 and config.timeout_graceful_shutdown == 3
    assert config.limit_concurrency is None  # max_connections is the protocol's, answered in JSON
    assert config.limits == EdgeLimits(
        max_header_bytes=4096, max_headers=20, header_timeout=1.5, body_timeout=7, max_connections=5
    )


def test_options_override_the_section() -> None:
    config = uvicorn_config("gateway.app:create_app", ServerConfig(), port=1234, loop="asyncio", log_level="error")
    assert (config.port, config.loop, config.log_level) == (1234, "asyncio", "error")


def test_the_defaults_are_the_documented_ones() -> None:
    limits = EdgeLimits.of(ServerConfig())
    assert limits == EdgeLimits(
        max_header_bytes=65536, max_headers=100, header_timeout=10, body_timeout=60, max_connections=1000
    )
    assert ServerConfig().keep_alive_seconds == 75


def test_the_config_survives_the_trip_to_a_worker_process() -> None:
    """uvicorn's multiprocess mode pickles the config for each worker (with the app as an import string)."""
    config = uvicorn_config("gateway.app:create_app", ServerConfig(max_headers=42), factory=True)
    copy = pickle.loads(pickle.dumps(config))  # noqa: S301 - our own object, round-tripped
    assert isinstance(copy, EdgeConfig) and copy.limits.max_headers == 42 and copy.http is EdgeProtocol


def test_the_protocol_refuses_a_config_without_limits() -> None:
    config = uvicorn.Config("gateway.app:create_app")
    with pytest.raises(TypeError, match="EdgeConfig"):
        EdgeProtocol(config, ServerState(), {})
