"""The call pipeline without a server: a canonical call in, an answer or a relayed stream out, one
record read by the sinks. The providers are the built-in mock (in-process), the sinks real: the
SQLite ledger in a temporary folder, the metrics registry, spans into memory."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.apis import API
from gateway.auth import KeyStore
from gateway.config import Config
from gateway.context import attribute, new_request_id
from gateway.errors import BudgetExceeded, GuardrailBlocked, ModelNotFound
from gateway.pipeline import CallRequest, Reply, StreamReply, run_call
from gateway.runtime import Runtime, build_runtime, open_services
from gateway.telemetry.tracing import MemorySink

KEY = "pipeline-test-key-0001"
CAPPED = "pipeline-capped-key-0001"
GUARDED = "pipeline-guarded-key-001"


def config(ledger: Path) -> Config:
    return Config.model_validate(
        {
            "ledger": {"path": str(ledger), "flush_interval_ms": 10},
            "telemetry": {"tracing": {"enabled": True, "exporter": "console"}},
            "providers": {"mock": {"type": "mock"}, "slow": {"type": "mock", "chunk_delay_ms": 50}},
            "models": {
                "mock-chat": {"provider": "mock", "input_per_mtok": 1, "output_per_mtok": 2},
                "slow-chat": {"provider": "slow"},
            },
            "guardrails": {"secrets": {"type": "secrets", "action": "block"}},
            "teams": {
                "t": {},
                "capped": {"budget": {"usd": 0.000001, "period": "day"}},
                "guarded": {"guardrails": ["secrets"]},
            },
            "keys": [
                {"name": "k", "key": KEY, "team": "t"},
                {"name": "capped", "key": CAPPED, "team": "capped"},
                {"name": "guarded", "key": GUARDED, "team": "guarded"},
            ],
        }
    )


@pytest.fixture
def spans() -> MemorySink:
    return MemorySink()


Scenario = Callable[[Runtime], Awaitable[None]]


@pytest.fixture
def on_runtime(tmp_path: Path, spans: MemorySink) -> Callable[[Scenario], None]:
    """Runs a scenario on a runtime built from the config, its services opened and closed around it
    (the tests are plain functions: each scenario runs in its own event loop)."""

    def run(scenario: Scenario) -> None:
        async def main() -> None:
            cfg = config(tmp_path / "ledger.db")
            async with open_services(cfg, spans) as services:
                await scenario(build_runtime(cfg, services))

        asyncio.run(main())

    return run


def call(runtime: Runtime, api: str, body: dict[str, Any], key: str = KEY) -> CallRequest:
    principal = KeyStore(runtime.config.keys).authenticate(f"Bearer {key}")
    ctx = attribute(principal, {"x-task-id": "T-1"}, new_request_id())
    return CallRequest(API[api], ctx, body, str(body["model"]))


async def relay(reply: StreamReply) -> list[bytes]:
    frames: list[bytes] = []

    async def send(frame: bytes) -> None:
        frames.append(frame)

    await reply.relay.run(send)
    return frames


def streamed_text(api: str, frames: list[bytes]) -> str:
    """The text the client saw, read back from the frames as the client's API says."""
    lines = [line for frame in frames for line in frame.decode().splitlines() if line.startswith("data: {")]
    events = [json.loads(line.removeprefix("data: ")) for line in lines]
    return "".join(API[api].event_text(event) for event in events if isinstance(event, dict))


async def ledger_rows(runtime: Runtime) -> list[sqlite3.Row]:
    ledger = runtime.services.ledger
    assert ledger is not None
    await ledger.flush()
    with sqlite3.connect(ledger.backend.path) as db:  # type: ignore[attr-defined]  # the SQLite backend
        db.row_factory = sqlite3.Row
        return list(db.execute("SELECT * FROM usage_events ORDER BY ts"))


USER = [{"role": "user", "content": "hello"}]
OnRuntime = Callable[[Scenario], None]


def test_a_chat_call_answers_and_leaves_one_event(on_runtime: OnRuntime) -> None:
    async def scenario(runtime: Runtime) -> None:
        reply = await run_call(runtime, call(runtime, "chat", {"model": "mock-chat", "messages": USER}))
        assert isinstance(reply, Reply)
        data = json.loads(reply.body)
        assert data["model"] == "mock-chat" and "You said: hello" in data["choices"][0]["message"]["content"]
        assert reply.headers["x-agentgw-model"] == "mock-chat" and "x-agentgw-cost-usd" in reply.headers
        [row] = await ledger_rows(runtime)
        assert (row["operation"], row["task"], row["outcome"]) == ("chat", "T-1", "ok")
        usage = data["usage"]
        assert row["input_tokens"] == usage["prompt_tokens"]
        assert row["cost_nanos"] == usage["prompt_tokens"] * 1000 + usage["completion_tokens"] * 2000

    on_runtime(scenario)


def test_a_messages_call_is_translated_for_the_mock(on_runtime: OnRuntime) -> None:
    async def scenario(runtime: Runtime) -> None:
        body = {"model": "mock-chat", "max_tokens": 50, "messages": USER}
        reply = await run_call(runtime, call(runtime, "messages", body))
        assert isinstance(reply, Reply)
        message = json.loads(reply.body)
        assert message["type"] == "message" and message["content"][0]["type"] == "text"
        [row] = await ledger_rows(runtime)
        assert row["operation"] == "messages" and row["output_tokens"] == message["usage"]["output_tokens"]

    on_runtime(scenario)


STREAMS = [
    ("chat", {"model": "mock-chat", "messages": USER, "stream": True}, b"data: [DONE]\n\n"),
    ("responses", {"model": "mock-chat", "input": "hello", "stream": True}, b"event: response.completed"),
    ("messages", {"model": "mock-chat", "max_tokens": 50, "messages": USER, "stream": True}, b"event: message_stop"),
]


@pytest.mark.parametrize(("api", "body", "last"), STREAMS)
def test_streams_are_relayed_in_the_clients_api(
    on_runtime: OnRuntime, api: str, body: dict[str, Any], last: bytes
) -> None:
    async def scenario(runtime: Runtime) -> None:
        reply = await run_call(runtime, call(runtime, api, body))
        assert isinstance(reply, StreamReply)
        frames = await relay(reply)
        assert frames[-1].startswith(last)
        assert "You said: hello" in streamed_text(api, frames)
        [row] = await ledger_rows(runtime)
        assert row["operation"] == api and row["stream"] == 1 and row["outcome"] == "ok" and row["output_tokens"] > 0

    on_runtime(scenario)


def test_a_refused_call_is_finished_once_and_leaves_no_event(on_runtime: OnRuntime, spans: MemorySink) -> None:
    async def scenario(runtime: Runtime) -> None:
        with pytest.raises(ModelNotFound):
            await run_call(runtime, call(runtime, "chat", {"model": "nope", "messages": USER}))
        with pytest.raises(BudgetExceeded):
            await run_call(runtime, call(runtime, "chat", {"model": "mock-chat", "messages": USER}, key=CAPPED))
        leaking = "key sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z" * 2
        with pytest.raises(GuardrailBlocked):
            await run_call(runtime, call(runtime, "responses", {"model": "mock-chat", "input": leaking}, key=GUARDED))
        assert await ledger_rows(runtime) == []
        metrics = runtime.services.telemetry.metrics
        assert metrics is not None and metrics.in_flight.labels().read() == 0  # each call finished exactly once

    on_runtime(scenario)
    codes = sorted(str(s.attributes.get("error.type")) for s in spans.spans)
    assert codes == ["budget_exceeded", "guardrail_blocked", "model_not_found"]


def test_a_client_that_goes_away_mid_stream(on_runtime: OnRuntime) -> None:
    async def scenario(runtime: Runtime) -> None:
        body = {"model": "slow-chat", "messages": USER, "stream": True}
        reply = await run_call(runtime, call(runtime, "chat", body))
        assert isinstance(reply, StreamReply)
        frames: list[bytes] = []

        async def send(frame: bytes) -> None:
            frames.append(frame)

        task = asyncio.ensure_future(reply.relay.run(send))
        while len(frames) < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        [row] = await ledger_rows(runtime)
        assert row["outcome"] == "client_disconnected" and row["estimated"] == 1

    on_runtime(scenario)
