"""The rate limiter's refusal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from policies.state.scope import Scope

if TYPE_CHECKING:
    from policies.limits.headers import RateLimitHeaders

LimitKind = Literal["requests", "tokens", "concurrent"]


class RateLimited(Exception):
    """A limit has no room for the call: answer 429 `rate_limit_exceeded` with `retry-after`.

    `limit` says which kind tripped, `scope` whose, `value` its configured size. `never_fits` means the
    call alone is larger than the limit (its token estimate exceeds tpm): retrying cannot help.
    `headers` are the x-ratelimit-* numbers for the tripped limit.
    """

    def __init__(
        self,
        scope: Scope,
        limit: LimitKind,
        value: int,
        retry_after: float,
        *,
        window_seconds: int = 60,
        never_fits: bool = False,
        headers: RateLimitHeaders | None = None,
    ) -> None:
        per = "minute" if window_seconds == 60 else f"{window_seconds}s"
        what = {
            "requests": f"{value} requests per {per}",
            "tokens": f"{value} tokens per {per}",
            "concurrent": f"{value} concurrent requests",
        }[limit]
        message = f"rate limit of {what} reached for {scope}"
        if never_fits:
            message = f"request too large: its token estimate exceeds the limit of {what} for {scope}"
        super().__init__(message)
        self.scope = scope
        self.limit = limit
        self.value = value
        self.retry_after = retry_after
        self.never_fits = never_fits
        self.headers = headers
