"""Every refusal and failure an MCP client can meet, as JSON-RPC errors: rendered here and nowhere else.

Inside the protocol (a request the SDK dispatched to a handler) an error is an `MCPError`, which the
SDK writes as the JSON-RPC error of that request. Before it (the HTTP request itself refused: no key,
a bad attribution header, a foreign Origin) it is a JSON-RPC error with a null id and the HTTP status
of the gateway's error. Either way `error.data` carries the gateway's own `code` (the same codes as
the HTTP APIs: `rate_limit_exceeded`, `guardrail_blocked`, ...), its HTTP `status`, and `retry_after`
when there is one; the message never holds a stack trace, a credential, or text a guardrail matched.

    gateway code                         JSON-RPC code
    invalid_request, tool_not_found      -32602  invalid params (the spec's code for an unknown tool)
    invalid_api_key                      -32010
    permission_denied                    -32011
    guardrail_blocked                    -32012
    rate_limit_exceeded                  -32013
    budget_exceeded                      -32014
    service_unavailable                  -32015
    upstream_error                       -32016  (an upstream server's own JSON-RPC error keeps its code)
    upstream_timeout                     -32017
    request_too_large                    -32600  invalid request
    internal_error                       -32603
"""

from __future__ import annotations

from typing import Any

import orjson
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST
from starlette.types import Send

from gateway.errors import GatewayError
from gateway.mcp.upstream import UpstreamRejected
from gateway.responses import JSONBytes

RPC_CODES = {
    "invalid_request": INVALID_PARAMS,
    "tool_not_found": INVALID_PARAMS,
    "request_too_large": INVALID_REQUEST,
    "invalid_api_key": -32010,
    "permission_denied": -32011,
    "guardrail_blocked": -32012,
    "rate_limit_exceeded": -32013,
    "budget_exceeded": -32014,
    "service_unavailable": -32015,
    "upstream_error": -32016,
    "upstream_timeout": -32017,
}


def rpc_code(error: GatewayError) -> int:
    if isinstance(error, UpstreamRejected):
        return error.rpc_code
    return RPC_CODES.get(error.code, INTERNAL_ERROR)


def error_data(error: GatewayError) -> dict[str, Any]:
    data: dict[str, Any] = {"code": error.code, "status": error.status, "type": error.type}
    if error.param is not None:
        data["param"] = error.param
    retry_after = error.headers().get("retry-after")
    if retry_after is not None:
        data["retry_after"] = int(retry_after)
    return data


def mcp_error(error: GatewayError) -> MCPError:
    """The error of one MCP request, as the SDK sends it back to the client."""
    return MCPError(rpc_code(error), error.message, error_data(error))


async def send_http_error(error: GatewayError, send: Send) -> None:
    """An HTTP request to /mcp refused before any JSON-RPC was read: a JSON-RPC error (id null) with
    the gateway error's status and headers (`retry-after`, `allow`)."""
    body = orjson.dumps(
        {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": rpc_code(error), "message": error.message, "data": error_data(error)},
        }
    )
    await JSONBytes(body, error.response_headers(), error.status).send_to(send)
