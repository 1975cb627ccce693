"""Online evaluation: a fraction of each agent's answered calls scored by a judge model, off the request path.

When a call finishes, `offer` draws against the agent's sample rate (`agentops.online_eval`): a call
that is drawn is queued (bounded: a full queue drops the sample and counts it), nothing else happens
on the request path. Workers take samples from the queue and send the judge's request through the
gateway's own call pipeline as the configured key: routed, limited, budgeted (the key's budget is the
judge's own), metered and traced like any call, attributed to the task `online-eval`. The judgement
goes to the ledger (`eval_scores`, kind `online`), to `agentgw_online_eval_score`, and so to
`GET /v1/agents` and the anomaly watcher's judge-score series.

Not sampled: failed calls, embeddings, the judge's own calls, and eval runs (tasks `eval-*`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from gateway.agentops import judge
from gateway.agentops.config import OnlineEvalConfig
from gateway.apis import API
from gateway.context import CallContext, new_request_id
from gateway.errors import BudgetExceeded, GatewayError, RateLimited, ServiceUnavailable
from gateway.pipeline import CallRecord, CallRequest, Reply, run_call
from gateway.pipeline.sinks import as_chat

if TYPE_CHECKING:
    from gateway.metering.ledger import Ledger
    from gateway.runtime import Runtime
    from gateway.telemetry import Metrics

log = logging.getLogger("agentgw.agentops")

TASK = "online-eval"
EVAL_TASK_PREFIX = "eval-"  # `agentgw eval run` attributes its calls to eval-<run id>
INSERT = (
    "INSERT INTO eval_scores (ts, kind, request_id, key_name, team, agent, agent_version, judge_model, "
    "judge_request_id, score, passed, detail) VALUES (?, 'online', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(slots=True)
class Sample:
    runtime: Runtime
    record: CallRecord
    output: Any


class OnlineEvaluator:
    def __init__(self, config: OnlineEvalConfig, ledger: Ledger | None, metrics: Metrics | None) -> None:
        self.config = config
        self._ledger = ledger
        self._metrics = metrics
        self._queue: asyncio.Queue[Sample] = asyncio.Queue(config.max_queue)
        self._workers: list[asyncio.Task[None]] = []
        self.outcomes: dict[str, int] = {"scored": 0, "dropped": 0, "budget": 0, "failed": 0}
        self._random = random.random

    # -- the request path -------------------------------------------------------------------------

    def offer(self, runtime: Runtime, record: CallRecord, output: Any) -> None:
        """A finished call: queue it for the judge when its agent's draw says so. O(1)."""
        if record.outcome != "ok" or record.api.name == "embeddings":
            return
        ctx = record.ctx
        if ctx.key_name == self.config.key or ctx.task == TASK or (ctx.task or "").startswith(EVAL_TASK_PREFIX):
            return
        rate = self.config.rate(ctx.agent)
        if rate <= 0 or self._random() >= rate:
            return
        try:
            self._queue.put_nowait(Sample(runtime, record, output))
        except asyncio.QueueFull:
            self._count("dropped")

    # -- off the request path ---------------------------------------------------------------------

    def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._work(), name=f"online-eval-{i}") for i in range(self.config.concurrency)
        ]

    async def _work(self) -> None:
        while True:
            sample = await self._queue.get()
            try:
                await self.evaluate(sample)
            except Exception:
                self._count("failed")
                log.exception("online evaluation of %s failed", sample.record.ctx.request_id)
            finally:
                self._queue.task_done()

    async def idle(self) -> None:
        """Wait until every queued sample has been judged (tests, shutdown)."""
        await self._queue.join()

    async def evaluate(self, sample: Sample) -> judge.Judgement | None:
        """Send one sample to the judge through the gateway and record the judgement."""
        runtime, record, config = sample.runtime, sample.record, self.config
        assert config.key is not None and config.judge_model is not None
        named = runtime.keys.named(config.key)
        if named is None:  # the key left the config on a reload
            self._count("failed")
            log.error("online evaluation: the judge's key %r is not in the config", config.key)
            return None
        principal = named[1]
        conversation = judge.transcript(as_chat(record).get("messages") or (), config.max_chars)
        output = sample.output
        answer = output if isinstance(output, str) else record.api.output_text(output or {})
        body = judge.request(
            config.judge_model, config.rubric, conversation, answer,
            structured=config.structured_output, max_chars=config.max_chars,
        )  # fmt: skip
        ctx = CallContext(new_request_id(), principal, principal.act_as(None), task=TASK)
        try:
            reply = await run_call(runtime, CallRequest(API["chat"], ctx, body, config.judge_model))
        except BudgetExceeded:
            self._count("budget")
            return None
        except (RateLimited, ServiceUnavailable, GatewayError) as exc:
            self._count("failed")
            log.warning("online evaluation: the judge's call failed: %s", exc.code)
            return None
        assert isinstance(reply, Reply)
        try:
            judged = judge.parse(judge.answer_text(orjson.loads(reply.body)))
        except (judge.Unreadable, orjson.JSONDecodeError) as exc:
            self._count("failed")
            log.warning("online evaluation: %s", exc)
            return None
        await self._record(record, ctx.request_id, judged)
        self._count("scored")
        if self._metrics is not None:
            agent = self._metrics.bounded("agent", record.ctx.agent)
            self._metrics.online_eval_scores.labels(record.ctx.team, agent).observe(judged.score)
        return judged

    async def _record(self, record: CallRecord, judge_request_id: str, judged: judge.Judgement) -> None:
        if self._ledger is None:
            return
        ctx = record.ctx
        with contextlib.suppress(ServiceUnavailable):  # logged by the ledger; the score is lost
            await self._ledger.insert(
                INSERT,
                [time.time(), ctx.request_id, ctx.key_name, ctx.team, ctx.agent, record.agent_version,
                 self.config.judge_model, judge_request_id, judged.score, int(judged.passed),
                 orjson.dumps({"reason": judged.reason}).decode()],
            )  # fmt: skip

    def _count(self, outcome: str) -> None:
        self.outcomes[outcome] += 1
        if self._metrics is not None:
            self._metrics.online_eval_samples.labels(outcome).inc()

    async def close(self) -> None:
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers = []
        dropped = self._queue.qsize()
        if dropped:
            log.info("online evaluation: %d samples not judged at shutdown", dropped)
