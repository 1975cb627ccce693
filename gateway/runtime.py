"""What the gateway runs on. `Services` live as long as the process (the upstream HTTP client,
the ledger, the token counter); a `Runtime` is everything built from one config (keys, catalog,
providers, prices). SIGHUP builds a new Runtime over the same Services and swaps it in; calls
already running keep the one they started with."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.auth import KeyStore, Principal
from gateway.config import Config
from gateway.errors import ModelNotFound
from gateway.forward import Forwarder
from gateway.metering.ledger import Ledger
from gateway.metering.meter import Meter
from gateway.metering.tokens import TokenCounter
from gateway.providers import Provider, build_providers
from gateway.telemetry import Telemetry
from gateway.upstream import UpstreamClient
from routing import Catalog, Plan


@dataclass(frozen=True, slots=True)
class Services:
    client: UpstreamClient
    counter: TokenCounter
    ledger: Ledger | None
    telemetry: Telemetry


@dataclass(frozen=True, slots=True)
class Runtime:
    config: Config
    services: Services
    keys: KeyStore
    catalog: Catalog
    providers: dict[str, Provider]
    forwarder: Forwarder
    meter: Meter

    def plan_for(self, principal: Principal, model: str, kind: str) -> Plan:
        """The plan for a requested model or route: 404 when unknown, 403 when not allowed."""
        plan = self.catalog.plan(model)
        if plan is None:
            raise ModelNotFound(f"The model '{model}' does not exist on this gateway.", param="model")
        principal.check_model(model)
        if any(t.spec.kind != kind for t in plan.targets):
            raise ModelNotFound(f"The model '{model}' does not serve {kind} requests.", param="model")
        return plan


def build_runtime(config: Config, services: Services) -> Runtime:
    providers = build_providers(config.providers, services.client)
    return Runtime(
        config=config,
        services=services,
        keys=KeyStore(config.keys),
        catalog=Catalog(config.models, config.routes),
        providers=providers,
        forwarder=Forwarder(providers),
        meter=Meter(config.models, services.counter, services.ledger),
    )
