"""The one HTTP client the gateway uses to reach providers, behind a small interface."""

from gateway.upstream.base import Timeouts, UpstreamClient, UpstreamResponse
from gateway.upstream.factory import create_client

__all__ = ["Timeouts", "UpstreamClient", "UpstreamResponse", "create_client"]
