"""The window and filters of the console's read endpoints, parsed and scoped like `/v1/usage`."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request

from gateway.endpoints.intake import identify, runtime_of
from gateway.endpoints.sessions import require_ledger
from gateway.endpoints.usage import scoped
from gateway.errors import InvalidRequest
from gateway.metering import report
from gateway.metering.ledger import Ledger

BASE = ("from", "to", *report.DIMENSIONS)


async def scoped_query(
    request: Request, extra: Iterable[str] = (), *, window: bool = True
) -> tuple[report.UsageQuery, dict[str, str], Ledger]:
    """The caller's query (`from`, `to` unless the endpoint has fixed windows, the report's filters,
    narrowed to the key's scope; a 403 for more), the values of the endpoint's own `extra`
    parameters, and the ledger, flushed."""
    runtime = runtime_of(request)
    ctx = identify(request, runtime)
    params = request.query_params
    allowed = (*(BASE if window else report.DIMENSIONS), *extra)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise InvalidRequest(f"Unknown parameter '{unknown[0]}'; use one of: {', '.join(allowed)}.", param=unknown[0])
    query = scoped(report.parse_query({k: v for k, v in params.items() if k in BASE}), ctx.principal)
    ledger = require_ledger(runtime.services.ledger)
    await ledger.flush()
    return query, {k: params[k] for k in extra if k in params}, ledger


def choice(values: dict[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = values.get(name, default)
    if value not in allowed:
        raise InvalidRequest(f"'{name}' is one of: {', '.join(allowed)}.", param=name)
    return value


def bounded_int(values: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = values.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidRequest(f"'{name}' is a whole number from {low} to {high}.", param=name)
    return int(raw)
