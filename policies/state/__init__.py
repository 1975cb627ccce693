"""The state that rate limits and budgets share: in memory (one process) or in Redis (many replicas).

`open_store(StateConfig)` gives a `StateStore`; every failure underneath surfaces as `StoreUnavailable`,
`StoreFailurePolicy` turns `on_store_error` into the gateway's decision, and `RetryQueue` retries the
settlements the store could not take until it does.
"""

from policies.state.base import Account, Counter, Hit, Lease, Reserved, Shortfall, StateStore, weighted
from policies.state.errors import StoreUnavailable
from policies.state.factory import open_store
from policies.state.failure import StoreFailurePolicy
from policies.state.memory import MemoryStore
from policies.state.retries import RetryQueue
from policies.state.scope import Scope, ScopeKind
from policies.state.urls import StoreLocation, parse_state_url

__all__ = [
    "Account",
    "Counter",
    "Hit",
    "Lease",
    "MemoryStore",
    "Reserved",
    "RetryQueue",
    "Scope",
    "ScopeKind",
    "Shortfall",
    "StateStore",
    "StoreFailurePolicy",
    "StoreLocation",
    "StoreUnavailable",
    "open_store",
    "parse_state_url",
    "weighted",
]
