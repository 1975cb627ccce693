"""What the gateway runs on. `Services` live as long as the process (the upstream HTTP client,
the ledger, the token counter); a `Runtime` is everything built from one config (keys, catalog,
providers, prices). SIGHUP builds a new Runtime over the same Services and swaps it in; calls
already running keep the one they started with."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from gateway import __version__
from gateway.admission import Gate, Policies
from gateway.agentops.service import AgentOps, open_agentops
from gateway.agentops.versions import Versions
from gateway.auth import KeyStore, Principal
from gateway.config import Config
from gateway.errors import (
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    PermissionDenied,
    ServiceUnavailable,
)
from gateway.guards import Guards
from gateway.mcp.registry import McpServers, Upstreams
from gateway.metering.ledger import Ledger, open_ledger
from gateway.metering.meter import Meter
from gateway.metering.tokens import TokenCounter
from gateway.pipeline.forward import Forwarder
from gateway.providers import Provider, build_providers
from gateway.shutdown import Shutdown
from gateway.telemetry import Metrics, Telemetry, Tracing
from gateway.telemetry.tracing import SpanSink
from gateway.upstream import UpstreamClient, create_client
from policies.state import open_store
from routing import Catalog, HealthTracker, NoTarget, Plan, RequestFeatures, Router, reason_code

log = logging.getLogger("agentgw")


@dataclass(frozen=True, slots=True)
class Services:
    client: UpstreamClient
    counter: TokenCounter
    ledger: Ledger | None
    telemetry: Telemetry
    health: HealthTracker  # per target: latency, breaker; survives config reloads
    policies: Policies  # the state store, rate limiter and budget engine
    shutdown: Shutdown  # the calls in flight, cut when a graceful shutdown runs out of time
    agentops: AgentOps  # version registry, online evaluation, anomaly watcher, their alerts
    mcp: Upstreams = field(default_factory=Upstreams)  # upstream MCP servers; across reloads


@dataclass(frozen=True, slots=True)
class Runtime:
    config: Config
    services: Services
    keys: KeyStore
    router: Router
    providers: dict[str, Provider]
    forwarder: Forwarder
    meter: Meter
    gate: Gate
    guards: Guards
    versions: Versions  # workflow versions of calls (gateway.agentops)
    mcp: McpServers

    @property
    def catalog(self) -> Catalog:
        return self.router.catalog

    def check_requested(self, principal: Principal, model: str) -> None:
        """404 when the name is neither a model nor a route, 403 when the key may not ask for it."""
        if model not in self.router.catalog:
            raise ModelNotFound(f"The model '{model}' does not exist on this gateway.", param="model")
        principal.check_model(model)

    def plan(self, features: RequestFeatures) -> Plan:
        """The router's plan for the call, or the error that says why no target can serve it."""
        try:
            plan = self.router.plan(features)
        except NoTarget as none:
            raise _no_target(none, features) from None
        if plan is None:
            raise ModelNotFound(
                f"The model '{features.requested_model}' does not exist on this gateway.", param="model"
            )
        return plan


def _no_target(none: NoTarget, features: RequestFeatures) -> GatewayError:
    """503 when a target may come back, 403 when the key may use none, else 400 (capabilities, size,
    or a model of the other kind: a chat call to an embeddings model and back), naming `model`, or
    the field only a native provider serves."""
    if none.category == "unavailable":
        return ServiceUnavailable(none.message, retry_after=none.retry_after_s, param="model")
    if none.category == "forbidden":
        return PermissionDenied(none.message, param="model")
    codes = {reason_code(reason) for _, reason in none.considered if reason is not None}
    param = features.native_param if codes == {"api"} else "model"  # what only a native provider serves
    return InvalidRequest(none.message, param=param)


def build_runtime(config: Config, services: Services) -> Runtime:
    providers = build_providers(config.providers, services.client)
    apis = {name: provider.apis for name, provider in providers.items()}
    router = Router(config.models, config.routes, config.routing, services.health, provider_apis=apis)
    meter = Meter(config.models, services.counter, services.ledger)
    gate = Gate(config, services.policies, meter.prices)
    guards = Guards(config, services.client)
    return Runtime(
        config=config,
        services=services,
        keys=KeyStore(config.keys),
        router=router,
        providers=providers,
        forwarder=Forwarder(providers, services.health),
        meter=meter,
        gate=gate,
        guards=guards,
        versions=Versions(config.agentops.versions, guards, services.agentops.registry),
        # last: nothing after it can fail, so a refused reload never retires the running servers
        mcp=McpServers(config.mcp, services.mcp.for_config(config.mcp.servers)),
    )


@contextlib.asynccontextmanager
async def open_services(
    config: Config, span_sink: SpanSink | None, shutdown: Shutdown | None = None, *, watch: bool = True
) -> AsyncIterator[Services]:
    """The process-wide resources, opened in order and closed in reverse (the ledger flushes last
    thing, after the server has drained the in-flight calls). `span_sink` replaces the configured
    trace exporter (tests read spans from memory); `watch`: this process runs the anomaly watcher."""
    counter = TokenCounter()
    counter.preload()
    client = create_client(config.server.upstream_client, max_connections=config.server.max_upstream_connections)
    tracing = Tracing(config.telemetry.tracing, sink=span_sink, version=__version__)
    metrics = Metrics() if config.telemetry.metrics.enabled else None
    telemetry = Telemetry(tracing, metrics, config.telemetry.capture_content)
    policies = Policies(
        open_store(config.state),
        client,
        on_store_error=config.state.on_store_error,
        hold_seconds=config.state.reservation_ttl_seconds,
        slices=config.state.slices,
    )
    if metrics is not None:
        metrics.watch_store(policies.failure, policies.retries, policies.calls.slices)
        metrics.watch_spans(tracing.dropped)
    ledger = None
    try:
        if config.ledger.enabled:
            ledger = opened = open_ledger(config.ledger)
            await opened.start()
            policies.budgets.spend = opened  # budgets missing from the state store are rebuilt from it
            if metrics is not None:
                metrics.watch_ledger(lambda: opened.queue_depth, lambda: opened.dropped)
                metrics.watch_ledger_writes(
                    lambda: opened.written, lambda: opened.write_failures, lambda: opened.spooled
                )
        capture = config.telemetry.capture_content.enabled
        async with open_agentops(config.agentops, client, ledger, metrics, capture=capture, watch=watch) as agentops:
            services = Services(
                client, counter, ledger, telemetry, HealthTracker(), policies, shutdown or Shutdown(), agentops
            )
            try:
                yield services
            finally:
                await services.mcp.aclose()  # upstream MCP connections (stdio servers stopped)
    finally:
        try:
            await policies.drain(config.state.shutdown_retry_seconds)  # settlements of the calls that just finished
            await policies.store.aclose()
            if ledger is not None:
                await ledger.close()
                log.info("ledger flushed: %d events written this run", ledger.written)
        finally:
            await client.aclose()
            tracing.shutdown()
