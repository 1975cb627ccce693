"""The version of a call, on the request path: the agent's own (`X-Agent-Version`) or the gateway's
fingerprint of what defines its behaviour (`gateway.agentops.fingerprint`), noted in the registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.agentops.config import VersionsConfig
from gateway.agentops.fingerprint import Fingerprinter
from gateway.agentops.registry import VersionRegistry
from gateway.context import CallContext
from gateway.guards import Guards


class Versions:
    """One config's fingerprinting (a reload builds another), over the process's registry."""

    def __init__(self, config: VersionsConfig, guards: Guards, registry: VersionRegistry) -> None:
        self.enabled = config.enabled
        self.fingerprinter = Fingerprinter(config)
        self._guards = guards
        self.registry = registry

    def assign(self, ctx: CallContext, api: str, body: Mapping[str, Any], model: str) -> str | None:
        """The call's version (None when fingerprinting is off and the agent named none)."""
        if ctx.version is not None:
            if self.enabled and not self.registry.knows(ctx.team, ctx.agent, ctx.version):
                parts = self.fingerprinter.lookup(api, body, model, self._guards.identity(ctx.principal))[1]
                self.registry.note(ctx.team, ctx.agent, ctx.version, "header", parts)
            return ctx.version
        if not self.enabled:
            return None
        version, parts = self.fingerprinter.lookup(api, body, model, self._guards.identity(ctx.principal))
        self.registry.note(ctx.team, ctx.agent, version, "fingerprint", parts)
        return version
