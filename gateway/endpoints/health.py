"""GET /healthz (the process answers), GET /readyz (ready to serve), GET /metrics (Prometheus)."""

from __future__ import annotations

import hmac
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.auth import Role
from gateway.endpoints.budgets import visible
from gateway.endpoints.intake import runtime_of
from gateway.errors import AuthenticationFailed, NotFound
from gateway.runtime import Runtime
from gateway.telemetry.metrics import Metrics
from policies.state import StoreUnavailable

# Budgets shown as gauges: those named in config (a key's agents together are one per key). Agent and
# task budgets exist per caller-chosen id, which would make unbounded series; /v1/budgets answers for them.
GAUGED_SCOPES = ("team", "key", "key_agents")


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Ready when the config is loaded and the state store answers. The ledger's state is shown but
    does not decide: while its database is down, calls are still answered and their events wait in
    the local spool, so taking every replica out of the load balancer would only turn a metering
    outage into a full one (the spool and its alert rule watch the ledger instead). Nor do the token
    encodings, shown as `token_counts`: while one loads (a second or two after start-up) or if it
    cannot be, the gateway's own counts fall back to a character-based estimate (they are marked
    estimated either way: only a provider's count is exact)."""
    runtime = getattr(request.app.state, "runtime", None)
    checks = {"config": "ok" if runtime is not None else "not loaded"}
    body: dict[str, Any] = {}
    if runtime is not None:
        try:
            await runtime.services.policies.store.ping()
            checks["state_store"] = "ok"
        except StoreUnavailable:
            checks["state_store"] = "unreachable"
        if runtime.services.ledger is not None:
            body["ledger"] = runtime.services.ledger.describe()
        body["token_counts"] = runtime.services.counter.describe()
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks, **body}, status_code=200 if ready else 503
    )


async def metrics(request: Request) -> Response:
    """Prometheus text format. It holds no secret and no caller-chosen ids beyond bounded agent
    names, but it does show every team's spend and budgets: with `telemetry.metrics.token` set, a
    scrape must send that token as a bearer token (gateway keys are not accepted: a scraper needs no
    access to the API); without it, anyone who can reach the port can read it."""
    runtime = runtime_of(request)
    metrics = runtime.services.telemetry.metrics
    if metrics is None:
        raise NotFound("Metrics are turned off in this gateway's config (telemetry.metrics.enabled).")
    token = runtime.config.telemetry.metrics.token
    if token is not None:
        check_bearer(request.headers.get("authorization"), token.get_secret_value())
    refresh_breakers(runtime, metrics)
    await update_budgets(runtime, metrics)
    return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


def refresh_breakers(runtime: Runtime, metrics: Metrics) -> None:
    """The breaker gauges from the router's targets, and the upstream MCP servers' state, now."""
    metrics.update_breakers(
        [t for item in runtime.router.describe() if item["type"] == "model" for t in item["targets"]]
    )
    metrics.update_mcp_servers({name: u.health.state != "down" for name, u in runtime.mcp.upstreams.items()})


def check_bearer(authorization: str | None, token: str) -> None:
    """A 401 unless `authorization` is `Bearer <token>` (compared in constant time)."""
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
        raise AuthenticationFailed(
            "GET /metrics needs the metrics token (telemetry.metrics.token) as 'Authorization: Bearer <token>'."
        )


async def update_budgets(runtime: Runtime, metrics: Metrics) -> None:
    """Cap and remaining USD of every team and key budget, read at scrape time; when the state store
    is unreachable the gauges keep their last values (the scrape itself still answers)."""
    budgets = visible(runtime, list(runtime.config.teams), Role.ADMIN, "", "", None)
    try:
        for budget in budgets:
            scope = budget.scope
            if scope.kind not in GAUGED_SCOPES:
                continue
            status = await runtime.services.policies.budgets.status(budget)
            name = scope.name if scope.model is None else f"{scope.name}:{scope.model}"
            metrics.budget_cap.labels(scope.kind, name).set(status.cap / 1e9)
            metrics.budget_remaining.labels(scope.kind, name).set(status.remaining / 1e9)
    except StoreUnavailable:
        return
