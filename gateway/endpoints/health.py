"""GET /healthz (the process answers), GET /readyz (ready to serve), GET /metrics (Prometheus)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.endpoints.intake import runtime_of
from gateway.errors import NotFound
from policies.state import StoreUnavailable


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Ready when the config is loaded and the state store answers."""
    runtime = getattr(request.app.state, "runtime", None)
    checks = {"config": "ok" if runtime is not None else "not loaded"}
    if runtime is not None:
        try:
            await runtime.services.policies.store.ping()
            checks["state_store"] = "ok"
        except StoreUnavailable:
            checks["state_store"] = "unreachable"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


async def metrics(request: Request) -> Response:
    """Prometheus text format; like /healthz it needs no key (scrapers rarely carry one), and it
    holds no secret and no caller-chosen ids beyond bounded agent names."""
    runtime = runtime_of(request)
    metrics = runtime.services.telemetry.metrics
    if metrics is None:
        raise NotFound("Metrics are turned off in this gateway's config (telemetry.metrics.enabled).")
    metrics.update_breakers(runtime.router.health.snapshot())
    return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
