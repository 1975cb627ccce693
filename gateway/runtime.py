"""What the gateway runs on. `Services` live as long as the process (the upstream HTTP client,
the ledger, the token counter); a `Runtime` is everything built from one config (keys, catalog,
providers, prices). SIGHUP builds a new Runtime over the same Services and swaps it in; calls
already running keep the one they started with."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.admission import Gate, Policies
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
from gateway.metering.ledger import Ledger
from gateway.metering.meter import Meter
from gateway.metering.tokens import TokenCounter
from gateway.pipeline.forward import Forwarder
from gateway.providers import Provider, build_providers
from gateway.telemetry import Telemetry
from gateway.upstream import UpstreamClient
from routing import Catalog, HealthTracker, NoTarget, Plan, RequestFeatures, Router, reason_code


@dataclass(frozen=True, slots=True)
class Services:
    client: UpstreamClient
    counter: TokenCounter
    ledger: Ledger | None
    telemetry: Telemetry
    health: HealthTracker  # per target: latency, breaker; survives config reloads
    policies: Policies  # the state store, rate limiter and budget engine


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
    return Runtime(
        config=config,
        services=services,
        keys=KeyStore(config.keys),
        router=router,
        providers=providers,
        forwarder=Forwarder(providers, services.health),
        meter=meter,
        gate=Gate(config, services.policies, meter.prices),
        guards=Guards(config, services.client),
    )
