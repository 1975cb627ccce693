"""Agentops events posted to `agentops.alerts.url`: a workflow version seen for the first time, an
anomaly. Each is a JSON object with a `type` (`agent_version.new`, `anomaly`), posted off the request
path; a webhook that is down or slow is logged, never retried, never felt by a call."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from gateway.agentops.config import AlertsConfig
from gateway.upstream import Timeouts, UpstreamClient

log = logging.getLogger("agentgw.agentops")


class Alerts:
    def __init__(self, config: AlertsConfig, client: UpstreamClient) -> None:
        self.config = config
        self._client = client
        self._pending: set[asyncio.Task[None]] = set()
        self.delivered = self.failed = 0

    def post(self, payload: dict[str, Any]) -> None:
        """Deliver `payload` in the background (nothing when no URL is configured)."""
        if self.config.url is None:
            return
        task = asyncio.ensure_future(self._deliver(self.config.url, payload))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, url: str, payload: dict[str, Any]) -> None:
        seconds = self.config.timeout_seconds
        try:
            response = await self._client.send(
                "POST",
                url,
                headers={"content-type": "application/json", **self.config.headers},
                body=orjson.dumps(payload),
                timeouts=Timeouts(connect=seconds, read=seconds, total=seconds),
            )
            await response.read(4096)
            if response.status >= 300:
                raise RuntimeError(f"it answered {response.status}")
            self.delivered += 1
        except Exception as exc:
            self.failed += 1
            log.warning("agentops alert webhook failed (%s): %s", payload.get("type"), str(exc) or type(exc).__name__)

    async def drain(self) -> None:
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
