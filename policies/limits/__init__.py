"""Rate limits: requests and tokens per minute (sliding window counters) and concurrent calls
(leases in the state store), per team, agent, key and model.

    rules = limit_rules(team=..., team_policies=..., key=..., key_policies=..., agent=..., model=...)
    admission = await limiter.admit(rules, estimated_tokens)   # RateLimited | StoreUnavailable
    ...
    await admission.settle(actual_tokens)                      # or admission.release()
"""

from policies.limits.engine import Admission, RateLimiter
from policies.limits.errors import LimitKind, RateLimited
from policies.limits.headers import RateLimitHeaders, format_duration
from policies.limits.rules import LimitRule, limit_rules

__all__ = [
    "Admission",
    "LimitKind",
    "LimitRule",
    "RateLimitHeaders",
    "RateLimited",
    "RateLimiter",
    "format_duration",
    "limit_rules",
]
