"""Every error a client can receive, and the one place that shapes it like OpenAI's.

    GatewayError                    status  code
     ├── InvalidRequest               400   invalid_request
     ├── GuardrailBlocked             400   guardrail_blocked
     ├── AuthenticationFailed         401   invalid_api_key
     ├── PermissionDenied             403   permission_denied
     ├── ModelNotFound                404   model_not_found
     ├── ToolNotFound                 404   tool_not_found       (MCP: no such tool, or not for this key)
     ├── NotFound                     404   not_found            (a session, a request id)
     ├── UnknownEndpoint              404   unknown_endpoint
     ├── MethodNotAllowed             405   method_not_allowed
     ├── RequestTimeout               408   request_timeout      (written by the HTTP protocol, then closed)
     ├── RequestTooLarge              413   request_too_large
     ├── HeadersTooLarge              431   headers_too_large    (written by the HTTP protocol, then closed)
     ├── RateLimited                  429   rate_limit_exceeded   (retry-after)
     ├── BudgetExceeded               429   budget_exceeded       (x-should-retry: false)
     ├── ServiceUnavailable           503   service_unavailable
     ├── ClientGone                   499   client_disconnected  (recorded only: nobody is listening)
     ├── UpstreamFailed               502   upstream_error        (lists the attempts)
     └── UpstreamTimedOut             504   upstream_timeout

The message of an error is shown to the client as is: never put a secret, a stack trace or
matched guardrail text in it.

What went wrong talking to a provider is raised by the upstream client and the provider adapters
as an ``UpstreamProblem``; the forwarder records each as an ``Attempt`` and, when no target is left,
turns them into ``UpstreamFailed`` or ``UpstreamTimedOut`` (or, for a request the provider found
invalid, ``InvalidRequest``):

    UpstreamProblem                 kind
     ├── UpstreamConnectError         connect       could not reach the provider
     ├── UpstreamTimeout              timeout       no answer within the configured time
     ├── UpstreamStatusError          status_<n>    the provider answered with an error status
     ├── UpstreamBadResponse          bad_response  the answer was not what the wire format says
     └── UpstreamStreamError          stream_error  the stream broke or carried an error event
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson


class GatewayError(Exception):
    """Base of every client-visible error; subclasses fix the status, type and code."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.attempts: tuple[Attempt, ...] = ()  # the upstream attempts made before this error, if any

    def headers(self) -> dict[str, str]:
        """Extra response headers this error carries (retry-after and the like)."""
        return {}

    def response_headers(self) -> dict[str, str]:
        """Every header an answer with this error carries: its own and its code, which some APIs'
        error shapes (Anthropic's, MCP's JSON-RPC) have no field for."""
        return {**self.headers(), "x-agentgw-error-code": self.code}

    def body(self) -> dict[str, Any]:
        """OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def json(self) -> bytes:
        return orjson.dumps(self.body())


class InvalidRequest(GatewayError):
    status, type, code = 400, "invalid_request_error", "invalid_request"


class GuardrailBlocked(GatewayError):
    status, type, code = 400, "invalid_request_error", "guardrail_blocked"


class AuthenticationFailed(GatewayError):
    status, type, code = 401, "authentication_error", "invalid_api_key"


class PermissionDenied(GatewayError):
    status, type, code = 403, "permission_error", "permission_denied"


class ModelNotFound(GatewayError):
    status, type, code = 404, "invalid_request_error", "model_not_found"


class ToolNotFound(GatewayError):
    """An MCP tool, prompt or resource that does not exist or that the caller may not see (the same
    answer for both, so a key learns nothing of what it may not use)."""

    status, type, code = 404, "invalid_request_error", "tool_not_found"


class NotFound(GatewayError):
    status, type, code = 404, "invalid_request_error", "not_found"


class UnknownEndpoint(GatewayError):
    status, type, code = 404, "invalid_request_error", "unknown_endpoint"


class MethodNotAllowed(GatewayError):
    status, type, code = 405, "invalid_request_error", "method_not_allowed"

    def __init__(self, message: str, *, allow: str = "") -> None:
        super().__init__(message)
        self.allow = allow  # the methods the endpoint does take, for the `allow` header HTTP asks for

    def headers(self) -> dict[str, str]:
        return {"allow": self.allow} if self.allow else {}


class RequestTimeout(GatewayError):
    status, type, code = 408, "invalid_request_error", "request_timeout"


class RequestTooLarge(GatewayError):
    status, type, code = 413, "invalid_request_error", "request_too_large"


class HeadersTooLarge(GatewayError):
    status, type, code = 431, "invalid_request_error", "headers_too_large"


class RateLimited(GatewayError):
    status, type, code = 429, "rate_limit_error", "rate_limit_exceeded"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        headers: dict[str, str] | None = None,
        limit: str = "",
        model: str | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.extra_headers = headers or {}
        self.limit = limit  # requests | tokens | concurrent (a metrics label)
        self.model = model  # set when the limit is a per-model one: that model is full, others may not be

    def headers(self) -> dict[str, str]:
        return {**self.extra_headers, **retry_after_header(self.retry_after)}


class BudgetExceeded(GatewayError):
    status, type, code = 429, "insufficient_quota", "budget_exceeded"

    def __init__(self, message: str, *, retry_after: float | None = None, scope: str = "") -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.scope = scope  # team | agent | key | task (a metrics label)

    def headers(self) -> dict[str, str]:
        return {"x-should-retry": "false", **retry_after_header(self.retry_after)}


class ClientGone(GatewayError):
    """The client closed the connection mid-call; the status is what the ledger and metrics record."""

    status, type, code = 499, "client_error", "client_disconnected"


class ServiceUnavailable(GatewayError):
    status, type, code = 503, "server_error", "service_unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None, param: str | None = None) -> None:
        super().__init__(message, param=param)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return retry_after_header(self.retry_after)


def retry_after_header(seconds: float | None) -> dict[str, str]:
    """`retry-after` in whole seconds, rounded up and never 0; nothing when there is no estimate."""
    if seconds is None:
        return {}
    return {"retry-after": str(max(1, math.ceil(seconds)))}


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try against one upstream target, as reported to the client and the ledger."""

    provider: str
    model: str
    error: str  # short machine-readable kind: "status_503", "timeout", "connect", "bad_response"
    status: int | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "model": self.model, "error": self.error, "status": self.status}


class UpstreamFailed(GatewayError):
    status, type, code = 502, "server_error", "upstream_error"

    def __init__(self, message: str, *, attempts: Sequence[Attempt] = (), retry_after: float | None = None):
        super().__init__(message)
        self.attempts = tuple(attempts)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return retry_after_header(self.retry_after)

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["error"]["attempts"] = [a.as_dict() for a in self.attempts]
        return body


class UpstreamTimedOut(UpstreamFailed):
    status, type, code = 504, "server_error", "upstream_timeout"


def internal_error() -> GatewayError:
    """What a client sees for a bug: a generic message, the details stay in our log."""
    return GatewayError("The gateway hit an internal error; the request id identifies it in the logs.")


class UpstreamProblem(Exception):
    """A failed exchange with a provider. `detail` is scrubbed of secrets before it is shown."""

    kind: ClassVar[str] = "upstream"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def error_kind(self) -> str:
        return self.kind


class UpstreamConnectError(UpstreamProblem):
    kind = "connect"


class UpstreamTimeout(UpstreamProblem):
    kind = "timeout"


class UpstreamBadResponse(UpstreamProblem):
    kind = "bad_response"


class UpstreamStreamError(UpstreamProblem):
    kind = "stream_error"


class UpstreamStatusError(UpstreamProblem):
    """The provider answered with a non-2xx status; `message` is the provider's own error text."""

    kind = "status"

    def __init__(self, status: int, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.retry_after = retry_after

    def error_kind(self) -> str:
        return f"status_{self.status}"

    @property
    def client_fault(self) -> bool:
        """The provider judged the request itself invalid: retrying elsewhere will not help."""
        return self.status in (400, 413, 422)
