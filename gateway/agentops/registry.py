"""Workflow versions as first seen: recorded in the ledger once, announced once.

The request path only asks whether this process has seen (team, agent, version) lately (a bounded
set); a version it has not is queued, and a background task inserts it into the ledger's
`agent_versions` (`ON CONFLICT DO NOTHING`). The one insert that lands announces it: a log line, the
`agentgw_agent_versions_new_total` counter and an `agent_version.new` webhook. Replicas and restarts
sharing a ledger therefore announce a version once; without a ledger, each process announces what it
sees first.

An agent whose prompt carries variable parts the gateway does not recognise makes a new version on
most calls: past `versions.max_new_per_hour` new versions in an hour, an agent's versions are still
recorded but no longer announced, and one warning says what to configure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from gateway.agentops.alerts import Alerts
from gateway.agentops.config import VersionsConfig
from gateway.agentops.fingerprint import Parts
from gateway.errors import ServiceUnavailable

if TYPE_CHECKING:
    from gateway.metering.ledger import Ledger
    from gateway.telemetry import Metrics

log = logging.getLogger("agentgw.agentops")

KNOWN = 20_000  # (team, agent, version) this process remembers having seen
MAX_PENDING = 1000
INSERT = (
    "INSERT INTO agent_versions (team, agent, version, first_seen, source, model, guardrails, tools, "
    "prompt_digest, prompt_chars, prompt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (team, agent, version) DO NOTHING"
)


@dataclass(frozen=True, slots=True)
class NewVersion:
    ts: float
    team: str
    agent: str
    version: str
    source: str  # header | fingerprint
    parts: Parts

    def payload(self) -> dict[str, object]:
        return {
            "type": "agent_version.new",
            "team": self.team,
            "agent": self.agent,
            "version": self.version,
            "source": self.source,
            "first_seen": self.ts,
            "model": self.parts.model,
            "tools": self.parts.tool_names,
            "guardrails": list(self.parts.guardrails),
            "prompt_digest": self.parts.prompt_digest,
            "prompt_chars": len(self.parts.system),
        }


class VersionRegistry:
    def __init__(
        self,
        config: VersionsConfig,
        ledger: Ledger | None,
        alerts: Alerts,
        metrics: Metrics | None,
        *,
        keep_prompts: bool = False,
    ) -> None:
        self.config = config
        self._ledger = ledger
        self._alerts = alerts
        self._metrics = metrics
        self._keep_prompts = keep_prompts or config.keep_prompts
        self._known: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._pending: deque[NewVersion] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._hourly: dict[tuple[str, str], tuple[int, int]] = {}  # (team, agent): (hour, announced)
        self.dropped = 0
        self.announced = 0

    def knows(self, team: str, agent: str, version: str) -> bool:
        key = (team, agent, version)
        if key in self._known:
            self._known.move_to_end(key)
            return True
        return False

    def note(self, team: str, agent: str, version: str, source: str, parts: Parts) -> None:
        """A call of this version: queue it for the ledger unless this process saw it lately."""
        if self.knows(team, agent, version):
            return
        self._known[(team, agent, version)] = None
        if len(self._known) > KNOWN:
            self._known.popitem(last=False)
        if len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            return
        self._pending.append(NewVersion(time.time(), team, agent, version, source, parts))
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="agentops-versions")

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except ServiceUnavailable:
                await asyncio.sleep(5)  # the ledger is down: the versions wait in memory, bounded
                self._wake.set()
            except Exception:
                log.exception("agentops: recording new versions failed")

    async def flush(self) -> None:
        """Record (and announce) every version waiting."""
        while self._pending:
            new = self._pending[0]
            if await self._record(new):
                self._announce(new)
            self._pending.popleft()

    async def _record(self, new: NewVersion) -> bool:
        """Whether this insert was the first (the version is new to the ledger)."""
        if self._ledger is None:
            return True
        parts = new.parts
        prompt = parts.system if self._keep_prompts else None
        tools = orjson.dumps([{"name": name, "definition": orjson.loads(d)} for name, d in parts.tools]).decode()
        changed = await self._ledger.execute(
            INSERT,
            [new.team, new.agent, new.version, new.ts, new.source, parts.model,
             orjson.dumps(list(parts.guardrails)).decode(), tools, parts.prompt_digest, len(parts.system), prompt],
        )  # fmt: skip
        return changed > 0

    def _announce(self, new: NewVersion) -> None:
        hour = int(new.ts // 3600)
        last_hour, count = self._hourly.get((new.team, new.agent), (hour, 0))
        count = count + 1 if last_hour == hour else 1
        if len(self._hourly) > KNOWN:
            self._hourly.clear()
        self._hourly[(new.team, new.agent)] = (hour, count)
        if count > self.config.max_new_per_hour:
            if count == self.config.max_new_per_hour + 1:
                log.warning(
                    "agent %r (team %r) made more than %d new workflow versions this hour: its system prompt has "
                    "parts that vary per call which the gateway does not recognise. Add them to "
                    "agentops.versions.variables, or send X-Agent-Version. Its versions are recorded, not announced.",
                    new.agent, new.team, self.config.max_new_per_hour,
                )  # fmt: skip
            return
        self.announced += 1
        parts = new.parts
        log.info(
            "new workflow version %s of agent %r (team %r, %s): model %s, tools [%s], guardrails [%s], prompt %s",
            new.version, new.agent, new.team, new.source, parts.model, ", ".join(parts.tool_names),
            ", ".join(parts.guardrails), parts.prompt_digest,
        )  # fmt: skip
        if self._metrics is not None:
            agent = self._metrics.bounded("agent", new.agent)
            self._metrics.agent_versions_new.labels(new.team, agent).inc()
        self._alerts.post(new.payload())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(ServiceUnavailable):
            await self.flush()
