"""The ASGI application: routes, error rendering, and the lifespan that owns shared resources."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.config import Config
from gateway.config_file import ConfigError, load_config
from gateway.endpoints.chat import chat_completions, embeddings
from gateway.endpoints.health import healthz, readyz
from gateway.endpoints.models import list_models
from gateway.endpoints.usage import usage
from gateway.errors import GatewayError, InvalidRequest, MethodNotAllowed, UnknownEndpoint
from gateway.metering.ledger import Ledger
from gateway.metering.tokens import TokenCounter
from gateway.middleware import RequestIdMiddleware
from gateway.runtime import Services, build_runtime
from gateway.upstream import create_client

log = logging.getLogger("agentgw")


def create_app(config: Config, config_path: str | Path | None = None) -> Starlette:
    """The gateway for a validated config. With `config_path`, SIGHUP reloads from that file."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with _services(config) as services:
            app.state.runtime = build_runtime(config, services)
            stop_watching = _watch_sighup(app, services, config_path) if config_path is not None else None
            log.info(
                "agentgw ready: %d providers, %d models, %d routes, %d keys",
                len(config.providers),
                len(config.models),
                len(config.routes),
                len(config.keys),
            )
            try:
                yield
            finally:
                if stop_watching is not None:
                    stop_watching()

    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/usage", usage, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(RequestIdMiddleware)],
        exception_handlers={GatewayError: render_error, HTTPException: render_http_exception},
        lifespan=lifespan,
    )


def render_error(request: Request, exc: Exception) -> Response:
    """The one place a GatewayError becomes an HTTP response."""
    assert isinstance(exc, GatewayError)
    return Response(exc.json(), status_code=exc.status, media_type="application/json", headers=exc.headers())


def render_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405 (no such path, wrong method), in the same shape."""
    assert isinstance(exc, HTTPException)
    where = f"{request.method} {request.url.path}"
    error: GatewayError
    if exc.status_code == 405:
        error = MethodNotAllowed(f"Method not allowed: {where}")
    elif exc.status_code == 404:
        error = UnknownEndpoint(f"No such endpoint: {where}")
    else:
        error = InvalidRequest(f"{exc.detail}: {where}")
    response = render_error(request, error)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


@contextlib.asynccontextmanager
async def _services(config: Config) -> AsyncIterator[Services]:
    """The process-wide resources, opened in order and closed in reverse (the ledger flushes last
    thing, after uvicorn has drained the in-flight calls)."""
    counter = TokenCounter()
    counter.preload()
    client = create_client(config.server.upstream_client, max_connections=config.server.max_upstream_connections)
    ledger = None
    try:
        if config.ledger.enabled:
            ledger = Ledger(
                config.ledger.path,
                batch_size=config.ledger.batch_size,
                flush_interval=config.ledger.flush_interval_ms / 1000,
                retention_days=config.ledger.retention_days,
            )
            await ledger.start()
        yield Services(client, counter, ledger)
    finally:
        try:
            if ledger is not None:
                await ledger.close()
                log.info("ledger flushed: %d events written this run", ledger.written)
        finally:
            await client.aclose()


def _watch_sighup(app: Starlette, services: Services, path: str | Path) -> Callable[[], None] | None:
    """Reload the config on SIGHUP; a bad new config is logged and the running one kept."""
    loop = asyncio.get_running_loop()

    def reload() -> None:
        try:
            config = load_config(path)
        except ConfigError as exc:
            log.error("config reload refused, keeping the running config: %s", exc)
            return
        running = app.state.runtime.config
        if config.server != running.server or config.ledger != running.ledger:
            log.warning("config reload: changes under `server:` and `ledger:` take effect only after a restart")
        app.state.runtime = build_runtime(config, services)
        log.info("config reloaded from %s", path)

    try:
        loop.add_signal_handler(signal.SIGHUP, reload)
    except (NotImplementedError, RuntimeError, ValueError):
        return None

    def stop() -> None:
        loop.remove_signal_handler(signal.SIGHUP)

    return stop
