"""The process's agentops services, opened after the ledger and closed before it: alerts, the version
registry, the online evaluator and the anomaly watcher (each only when configured)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.agentops.alerts import Alerts
from gateway.agentops.config import AgentOpsConfig
from gateway.agentops.online import OnlineEvaluator
from gateway.agentops.registry import VersionRegistry
from gateway.agentops.watch import AnomalyWatcher
from gateway.upstream import UpstreamClient

if TYPE_CHECKING:
    from gateway.metering.ledger import Ledger
    from gateway.telemetry import Metrics


@dataclass(frozen=True, slots=True)
class AgentOps:
    alerts: Alerts
    registry: VersionRegistry
    online: OnlineEvaluator | None = None
    watcher: AnomalyWatcher | None = None


@contextlib.asynccontextmanager
async def open_agentops(
    config: AgentOpsConfig,
    client: UpstreamClient,
    ledger: Ledger | None,
    metrics: Metrics | None,
    *,
    capture: bool = False,
    watch: bool = True,
) -> AsyncIterator[AgentOps]:
    """`watch`: this process runs the anomaly watcher (one worker of `serve --workers N` does)."""
    alerts = Alerts(config.alerts, client)
    registry = VersionRegistry(config.versions, ledger, alerts, metrics, keep_prompts=capture)
    online = OnlineEvaluator(config.online_eval, ledger, metrics) if config.online_eval.enabled else None
    watcher = None
    if watch and config.anomalies.enabled and ledger is not None:
        watcher = AnomalyWatcher(config.anomalies, ledger, alerts, metrics)
    registry.start()
    if online is not None:
        online.start()
    if watcher is not None:
        watcher.start()
    try:
        yield AgentOps(alerts, registry, online, watcher)
    finally:
        if watcher is not None:
            await watcher.close()
        if online is not None:
            await online.close()
        await registry.close()
        await alerts.drain()
