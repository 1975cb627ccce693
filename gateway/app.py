"""The ASGI application: routes, error rendering, and the lifespan that owns shared resources."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, Router
from starlette.types import Receive, Scope, Send

from gateway.apis import API
from gateway.config import Config
from gateway.config_file import ConfigError, load_config
from gateway.console.routes import Console
from gateway.endpoints.agents import agents, compare
from gateway.endpoints.budgets import budgets
from gateway.endpoints.calls import call_endpoint
from gateway.endpoints.count_tokens import count_tokens
from gateway.endpoints.evals import list_runs, post_run
from gateway.endpoints.feedback import export_feedback, post_feedback
from gateway.endpoints.guardrail_scores import guardrail_scores
from gateway.endpoints.guardrail_triggers import guardrail_triggers
from gateway.endpoints.health import healthz, metrics, readyz, refresh_breakers
from gateway.endpoints.latency import latency
from gateway.endpoints.mcp_servers import mcp_servers
from gateway.endpoints.models import list_models, list_routes
from gateway.endpoints.overview import overview
from gateway.endpoints.session_search import find_sessions
from gateway.endpoints.sessions import session
from gateway.endpoints.usage import usage
from gateway.gc_tuning import tune_for_serving
from gateway.log_scrub import scrubber
from gateway.mcp.endpoint import McpEndpoint
from gateway.middleware import EdgeMiddleware
from gateway.runtime import Services, build_runtime, open_services
from gateway.shutdown import Shutdown
from gateway.telemetry.tracing import SpanSink
from gateway.telemetry.worker_metrics import Family, WorkerMetrics

log = logging.getLogger("agentgw")


def create_app(
    config: Config,
    config_path: str | Path | None = None,
    *,
    span_sink: SpanSink | None = None,
    worker: WorkerMetrics | None = None,
    console_secret: str | None = None,
) -> GatewayApp:
    """The gateway for a validated config. With `config_path`, SIGHUP reloads from that file.
    `span_sink` replaces the configured trace exporter (tests read spans from memory). `worker`: this
    process is one of `agentgw serve --workers N`, and /metrics shows every worker's series;
    `console_secret` signs console sessions when the config names no secret (the workers of one
    server share it, so a session started on one is valid on the others)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: GatewayApp) -> AsyncIterator[None]:
        scrubber.add(config.secrets())
        scrubber.install()
        watch = worker is None or worker.worker == 0  # one worker of `serve --workers N` watches for anomalies
        async with open_services(config, span_sink, shutdown, watch=watch) as services, mcp.running():
            app.state.runtime = build_runtime(config, services)
            tune_for_serving()
            stop_watching = _watch_sighup(app, services, config_path) if config_path is not None else None
            publishing = _publish_metrics(app, services, worker) if worker is not None else None
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
                if publishing is not None:
                    publishing.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await publishing

    mcp = McpEndpoint(config.server.max_body_bytes)  # its sessions live as long as the process
    routes = [
        Route("/v1/chat/completions", Endpoint(call_endpoint(API["chat"])), methods=["POST"]),
        Route("/v1/embeddings", Endpoint(call_endpoint(API["embeddings"])), methods=["POST"]),
        Route("/v1/responses", Endpoint(call_endpoint(API["responses"])), methods=["POST"]),
        Route("/v1/messages", Endpoint(call_endpoint(API["messages"])), methods=["POST"]),
        Route("/v1/messages/count_tokens", Endpoint(count_tokens), methods=["POST"]),
        Route("/v1/models", Endpoint(list_models), methods=["GET"]),
        Route("/v1/usage", Endpoint(usage), methods=["GET"]),
        Route("/v1/guardrails/scores", Endpoint(guardrail_scores), methods=["GET"]),
        Route("/v1/usage/latency", Endpoint(latency), methods=["GET"]),
        Route("/v1/overview", Endpoint(overview), methods=["GET"]),
        Route("/v1/agents", Endpoint(agents), methods=["GET"]),
        Route("/v1/agents/compare", Endpoint(compare), methods=["GET"]),
        Route("/v1/guardrails/triggers", Endpoint(guardrail_triggers), methods=["GET"]),
        Route("/v1/routes", Endpoint(list_routes), methods=["GET"]),
        Route("/v1/budgets", Endpoint(budgets), methods=["GET"]),
        Route("/v1/sessions", Endpoint(find_sessions), methods=["GET"]),
        Route("/v1/sessions/{session_id}", Endpoint(session), methods=["GET"]),
        Route("/v1/feedback", Endpoint(post_feedback), methods=["POST"]),
        Route("/v1/feedback/export", Endpoint(export_feedback), methods=["GET"]),
        Route("/v1/evals/runs", Endpoint(post_run), methods=["POST"]),
        Route("/v1/evals/runs", Endpoint(list_runs), methods=["GET"]),
        Route("/metrics", Endpoint(metrics), methods=["GET"]),
        Route("/healthz", Endpoint(healthz), methods=["GET"]),
        Route("/readyz", Endpoint(readyz), methods=["GET"]),
        Route("/mcp", mcp, methods=["POST", "DELETE"]),  # the MCP gateway (GET: 405, no standing stream)
        Route("/v1/mcp/servers", Endpoint(mcp_servers), methods=["GET"]),
    ]
    console_config = config.console
    if console_secret is not None and console_config.session_secret is None:
        console_config = console_config.model_copy(update={"session_secret": console_secret})
    console = Console(console_config)  # the web console at /ui; its sessions live as long as the process
    routes += console.routes()
    shutdown = Shutdown()  # the server begins it on SIGTERM (gateway.serving.server.GatewayServer)
    app = GatewayApp(routes, lifespan)
    app.state.shutdown = shutdown
    app.state.console = console
    return app


class GatewayApp:
    """The gateway as an ASGI app: Starlette's public `Router` (routes and lifespan) under the edge
    middleware, which gives every request its id and renders every error, Starlette's own 404 and
    405 included, in OpenAI's shape. It is not a `Starlette` application on purpose: that would put
    two more layers (a 500 page and exception handlers) around every request and every streamed
    event, for errors the edge middleware already answers (measured: bench/apis_bench.py)."""

    def __init__(self, routes: Sequence[BaseRoute], lifespan: Callable[[GatewayApp], Any]) -> None:
        self.state = State()
        # `/v1/models/` is an unknown endpoint (404 in OpenAI's shape), not a 307 whose Location would
        # be built from whatever Host header the caller sent.
        self.router = Router(routes, redirect_slashes=False, lifespan=lifespan)
        self._stack = EdgeMiddleware(self.router)

    @property
    def routes(self) -> list[BaseRoute]:
        return self.router.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self  # requests find the runtime here; the router raises 404/405 for the edge
        await self._stack(scope, receive, send)


class Endpoint:
    """An async request handler as a plain ASGI app (Starlette routes use it as is, without the
    per-request exception-handler wrapping a bare function gets; EdgeMiddleware handles errors)."""

    def __init__(self, handler: Callable[[Request], Awaitable[Response]]) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handler(Request(scope, receive, send))
        await response(scope, receive, send)


def _publish_metrics(app: GatewayApp, services: Services, worker: WorkerMetrics) -> asyncio.Task[None] | None:
    """Share this worker's series with the other workers (gateway.telemetry.worker_metrics)."""
    metrics = services.telemetry.metrics
    if metrics is None:
        return None
    metrics.fleet = worker

    def families() -> list[Family]:
        refresh_breakers(app.state.runtime, metrics)
        return metrics.families()

    return asyncio.create_task(worker.run(families), name="worker-metrics")


def _watch_sighup(app: GatewayApp, services: Services, path: str | Path) -> Callable[[], None] | None:
    """Reload the config on SIGHUP; a bad new config is logged and the running one kept."""
    loop = asyncio.get_running_loop()

    def reload() -> None:
        try:
            config = load_config(path)
            scrubber.add(config.secrets())
            runtime = build_runtime(config, services)
        except ConfigError as exc:
            log.error("config reload refused, keeping the running config: %s", exc)
            return
        except Exception as exc:  # e.g. a guardrail that cannot be built: the running config stays
            log.error("config reload refused, keeping the running config: %s: %s", type(exc).__name__, exc)
            return
        running = app.state.runtime.config
        restart_only = ("server", "ledger", "telemetry", "state", "console")
        if any(getattr(config, name) != getattr(running, name) for name in restart_only):
            log.warning("config reload: changes under %s take effect after a restart", ", ".join(restart_only))
        agentops = config.agentops.model_copy(update={"versions": running.agentops.versions})
        if agentops != running.agentops:
            log.warning("config reload: changes under agentops (but agentops.versions) take effect after a restart")
        app.state.runtime = runtime
        log.info("config reloaded from %s", path)

    try:
        loop.add_signal_handler(signal.SIGHUP, reload)
    except (NotImplementedError, RuntimeError, ValueError):
        return None

    def stop() -> None:
        loop.remove_signal_handler(signal.SIGHUP)

    return stop
