"""Everything built from one config: keys, catalog, providers. SIGHUP builds a new one and swaps it
in; calls already running keep the one they started with."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.auth import KeyStore, Principal
from gateway.config import Config
from gateway.errors import ModelNotFound
from gateway.forward import Forwarder
from gateway.providers import Provider, build_providers
from gateway.upstream import UpstreamClient
from routing import Catalog, Plan


@dataclass(frozen=True, slots=True)
class Runtime:
    config: Config
    keys: KeyStore
    catalog: Catalog
    providers: dict[str, Provider]
    forwarder: Forwarder

    def plan_for(self, principal: Principal, model: str, kind: str) -> Plan:
        """The plan for a requested model or route: 404 when unknown, 403 when not allowed."""
        plan = self.catalog.plan(model)
        if plan is None:
            raise ModelNotFound(f"The model '{model}' does not exist on this gateway.", param="model")
        principal.check_model(model)
        if any(t.spec.kind != kind for t in plan.targets):
            raise ModelNotFound(f"The model '{model}' does not serve {kind} requests.", param="model")
        return plan


def build_runtime(config: Config, client: UpstreamClient) -> Runtime:
    providers = build_providers(config.providers, client)
    return Runtime(
        config=config,
        keys=KeyStore(config.keys),
        catalog=Catalog(config.models, config.routes),
        providers=providers,
        forwarder=Forwarder(providers),
    )
