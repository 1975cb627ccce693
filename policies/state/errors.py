"""The one error the state store raises: whatever went wrong underneath (refused connection, timeout,
a Redis error reply), callers see `StoreUnavailable` and never a raw client error."""

from __future__ import annotations


class StoreUnavailable(Exception):
    """The shared state store (Redis) could not be reached or did not answer in time.

    The gateway decides with `StoreFailurePolicy`: fail_open serves the call unmetered, fail_closed
    answers 503.
    """

    def __init__(self, message: str, *, store: str = "redis", maybe_applied: bool = False) -> None:
        super().__init__(message)
        self.store = store
        self.maybe_applied = maybe_applied
        """The command may have reached the store and run there (a timeout: its reply was lost), as
        opposed to never having been sent (failing fast, nothing listening)."""
