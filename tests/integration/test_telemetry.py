"""Telemetry end to end: one GenAI span per call (and one per upstream attempt), what an OTLP
collector really receives, Prometheus metrics after a known workload, session replay, feedback."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import httpx
import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.telemetry.otlp import SPAN_KIND_CLIENT, STATUS_ERROR, SpanData
from gateway.telemetry.tracing import MemorySink
from tests.gateway_harness import ADMIN_KEY, AGENT_KEY, OPENAI_SECRET, base_config
from tests.standin import ServerThread, StandIn

USER = [{"role": "user", "content": "Tell me about tracing."}]
SESSION = {"x-session-id": "sess-trace-1", "x-task-id": "T-9", "x-tags": "env=test"}


def traced_config(standin: StandIn, capture: bool = True) -> dict[str, Any]:
    config = base_config(standin)
    config["models"]["oa-gpt-x"].update({"input_per_mtok": 1, "output_per_mtok": 2})
    config["routes"] = {"resilient": {"strategy": "fallback", "candidates": ["oa-fail-500", "oa-gpt-x"]}}
    config["telemetry"] = {
        "capture_content": {"enabled": capture, "max_chars": 4096},
        "tracing": {"batch_delay_ms": 10},
    }
    return config


@pytest.fixture
def spans() -> MemorySink:
    return MemorySink()


@pytest.fixture
def gateway(standin: StandIn, gateway_factory: Any, spans: MemorySink) -> Any:
    return gateway_factory(traced_config(standin), span_sink=spans)


def finished(spans: MemorySink, count: int = 1, timeout: float = 5.0) -> list[SpanData]:
    """The exported spans, once at least `count` have arrived (export is batched, off the request)."""
    deadline = time.monotonic() + timeout
    while len(spans.spans) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return spans.spans


def call_span(spans: MemorySink) -> SpanData:
    """The one call span (a stream's ends just after the client has read its last event)."""
    deadline = time.monotonic() + 5
    while True:
        found = [s for s in finished(spans) if "agentgw.attempt" not in s.attributes]
        if found or time.monotonic() > deadline:
            [span] = found
            return span
        time.sleep(0.01)


def attempt_spans(spans: MemorySink, count: int) -> list[SpanData]:
    deadline = time.monotonic() + 5
    while True:
        found = [s for s in spans.spans if "agentgw.attempt" in s.attributes]
        if len(found) >= count or time.monotonic() > deadline:
            return sorted(found, key=lambda s: s.attributes["agentgw.attempt"])
        time.sleep(0.01)


def test_one_span_per_call_with_genai_attributes(gateway: Any, standin: StandIn, spans: MemorySink) -> None:
    raw = gateway.client(AGENT_KEY).chat.completions.with_raw_response.create(
        model="oa-gpt-x", messages=USER, max_tokens=50, temperature=0.3, extra_headers=SESSION
    )
    [seen] = standin.requests
    span = call_span(spans)
    a = span.attributes
    assert span.name == "chat oa-gpt-x" and span.kind == SPAN_KIND_CLIENT
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "oa-gpt-x" and a["gen_ai.response.model"] == "gpt-x"
    assert a["gen_ai.response.id"] == raw.parse().id
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    assert a["gen_ai.usage.input_tokens"] == seen.usage["prompt_tokens"]
    assert a["gen_ai.usage.output_tokens"] == seen.usage["completion_tokens"]
    assert a["gen_ai.request.max_tokens"] == 50 and a["gen_ai.request.temperature"] == 0.3
    assert a["gen_ai.request.stream"] is False
    assert a["gen_ai.conversation.id"] == "sess-trace-1" and a["gen_ai.agent.id"] == "crawler"
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == standin.port
    assert a["agentgw.team"] == "research" and a["agentgw.task"] == "T-9" and list(a["agentgw.tags"]) == ["env=test"]
    assert a["agentgw.key"] == "crawler-key" and a["agentgw.attempts"] == 1
    assert a["agentgw.cost_usd"] == pytest.approx(float(raw.headers["x-agentgw-cost-usd"]))
    assert "error.type" not in a and span.status_code != STATUS_ERROR
    for value in a.values():
        assert OPENAI_SECRET not in str(value) and ADMIN_KEY not in str(value)


def test_attempt_span_is_the_parent_of_the_providers_work(gateway: Any, standin: StandIn, spans: MemorySink) -> None:
    gateway.client().chat.completions.create(model="oa-gpt-x", messages=USER)
    [attempt] = attempt_spans(spans, 1)
    parent = call_span(spans)
    assert attempt.parent_span_id == parent.span_id and attempt.trace_id == parent.trace_id
    traceparent = standin.requests[0].headers["traceparent"]
    _, trace_id, span_id, flags = traceparent.split("-")
    assert int(trace_id, 16) == parent.trace_id and int(span_id, 16) == attempt.span_id and flags == "01"


def test_incoming_traceparent_is_the_parent(gateway: Any, standin: StandIn, spans: MemorySink) -> None:
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    gateway.client().chat.completions.create(
        model="oa-gpt-x",
        messages=USER,
        extra_headers={"traceparent": f"00-{trace_id}-{parent_id}-01", "tracestate": "vendor=abc"},
    )
    span = call_span(spans)
    assert span.trace_id == int(trace_id, 16) and span.parent_span_id == int(parent_id, 16)
    sent = standin.requests[0].headers
    assert sent["traceparent"].split("-")[1] == trace_id and sent["traceparent"].split("-")[2] != parent_id
    assert sent["tracestate"] == "vendor=abc"


def test_streamed_call_span(gateway: Any, spans: MemorySink) -> None:
    list(gateway.client().chat.completions.create(model="an-gpt-x", messages=USER, stream=True))
    span = call_span(spans)
    a = span.attributes
    assert a["gen_ai.request.stream"] is True and a["gen_ai.provider.name"] == "anthropic"
    assert 0 < a["gen_ai.response.time_to_first_chunk"] < 5
    assert a["gen_ai.usage.output_tokens"] > 0 and list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    assert a["agentgw.outcome"] == "ok"


def test_a_client_hanging_up_is_on_the_span_but_not_an_error(gateway: Any, spans: MemorySink, standin: StandIn) -> None:
    body = {"model": "oa-stream-slow", "messages": USER, "stream": True}
    with gateway.http() as http, http.stream("POST", "/v1/chat/completions", json=body) as response:
        lines = response.iter_lines()
        next(lines)
    standin.wait_for(lambda e: e.model == "stream-slow" and e.cancelled)
    span = call_span(spans)
    assert span.attributes["agentgw.outcome"] == "client_disconnected" and span.status_code != STATUS_ERROR


@pytest.mark.parametrize(
    ("model", "stream", "error"),
    [
        ("oa-fail-500", False, "upstream_error"),
        ("oa-slow", False, "upstream_timeout"),
        ("oa-stream-error", True, "upstream_error"),
        ("no-such-model", False, "model_not_found"),
    ],
)
def test_failures_set_status_and_error_type(
    gateway: Any, spans: MemorySink, model: str, stream: bool, error: str
) -> None:
    with pytest.raises(openai.APIError):
        result = gateway.client().chat.completions.create(model=model, messages=USER, stream=stream)
        list(result)  # a stream fails while it is read
    span = call_span(spans)
    assert span.status_code == STATUS_ERROR and span.status_message == error
    assert span.attributes["error.type"] == error
    attempts = attempt_spans(spans, 1) if model != "no-such-model" else []
    for attempt in attempts:  # the attempt that failed says so too, mid-stream included
        assert attempt.status_code == STATUS_ERROR and attempt.attributes["error.type"]
        assert attempt.span_id != span.span_id and attempt.parent_span_id == span.span_id


def test_a_streams_attempt_span_lasts_as_long_as_the_stream(gateway: Any, spans: MemorySink) -> None:
    list(gateway.client().chat.completions.create(model="oa-gpt-x", messages=USER, stream=True))
    span = call_span(spans)
    [attempt] = attempt_spans(spans, 1)
    assert attempt.status_code != STATUS_ERROR and "error.type" not in attempt.attributes
    assert span.start_ns <= attempt.start_ns and attempt.end_ns <= span.end_ns
    assert attempt.end_ns - attempt.start_ns > (span.end_ns - span.start_ns) * 0.3  # not just to the first chunk


def test_fallback_shows_every_attempt(gateway: Any, spans: MemorySink) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(model="resilient", messages=USER)
    assert raw.headers["x-agentgw-model"] == "oa-gpt-x" and raw.headers["x-agentgw-route"] == "resilient"
    attempts = attempt_spans(spans, 2)
    assert [s.name for s in attempts] == ["chat oa-fail-500", "chat oa-gpt-x"]
    assert attempts[0].status_code == STATUS_ERROR and attempts[1].status_code != STATUS_ERROR
    assert attempts[0].attributes["error.type"] == "status_500" and "error.type" not in attempts[1].attributes
    span = call_span(spans)
    assert span.name == "chat resilient" and span.attributes["agentgw.attempts"] == 2
    assert span.attributes["agentgw.route"] == "resilient" and span.attributes["agentgw.model"] == "oa-gpt-x"


def test_content_capture_uses_the_conventions_shape(gateway: Any, spans: MemorySink) -> None:
    gateway.client().chat.completions.create(model="oa-gpt-x", messages=USER)
    a = call_span(spans).attributes
    assert json.loads(a["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Tell me about tracing."}]}
    ]
    [output] = json.loads(a["gen_ai.output.messages"])
    assert output["role"] == "assistant" and output["finish_reason"] == "stop"
    assert output["parts"][0]["content"].startswith("Hello from stand-in")


def test_content_is_not_captured_unless_configured(standin: StandIn, gateway_factory: Any, spans: MemorySink) -> None:
    gateway = gateway_factory(traced_config(standin, capture=False), span_sink=spans)
    gateway.client().chat.completions.create(model="oa-gpt-x", messages=USER)
    assert not any(k.startswith("gen_ai.input") for k in call_span(spans).attributes)


class OtlpReceiver:
    """A collector stand-in: decodes the OTLP/HTTP protobuf the gateway's exporter really sends."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()

        async def traces(request: Request) -> Response:
            message = ExportTraceServiceRequest()
            message.ParseFromString(await request.body())
            with self._lock:
                self.headers.append(dict(request.headers))
                for resource_spans in message.resource_spans:
                    for scope_spans in resource_spans.scope_spans:
                        self.spans.extend((resource_spans.resource, s) for s in scope_spans.spans)
            return Response(b"", media_type="application/x-protobuf")

        self.server = ServerThread(Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])]))

    def wait_for(self, count: int, timeout: float = 10) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.spans) >= count:
                    return list(self.spans)
            time.sleep(0.05)
        raise AssertionError(f"received {len(self.spans)} spans, wanted {count}")


def test_otlp_http_export_reaches_a_collector(standin: StandIn, gateway_factory: Any) -> None:
    receiver = OtlpReceiver()
    with receiver.server:
        config = base_config(standin)
        config["telemetry"] = {
            "tracing": {
                "enabled": True,
                "exporter": "otlp_http",
                "endpoint": receiver.server.url + "/v1/traces",
                "headers": {"x-collector-token": "tok-123"},
                "batch_delay_ms": 50,
                "service_name": "agentgw-test",
                "resource_attributes": {"deployment.environment": "test"},
            }
        }
        gateway = gateway_factory(config)
        gateway.client().chat.completions.create(model="oa-gpt-x", messages=USER, extra_headers=SESSION)
        received = receiver.wait_for(2)
    resources = {kv.key: kv.value.string_value for kv in received[0][0].attributes}
    assert resources["service.name"] == "agentgw-test" and resources["deployment.environment"] == "test"
    assert receiver.headers[0]["x-collector-token"] == "tok-123"
    call = next(span for _, span in received if span.name == "chat oa-gpt-x" and not span.parent_span_id)
    attributes = {kv.key: kv.value for kv in call.attributes}
    assert attributes["gen_ai.provider.name"].string_value == "openai"
    assert attributes["gen_ai.conversation.id"].string_value == "sess-trace-1"
    assert attributes["gen_ai.usage.input_tokens"].int_value == standin.requests[0].usage["prompt_tokens"]


def test_collector_down_does_not_touch_requests(standin: StandIn, gateway_factory: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = base_config(standin)
    config["telemetry"] = {
        "tracing": {
            "enabled": True,
            "endpoint": f"http://127.0.0.1:{port}/v1/traces",
            "batch_delay_ms": 10,
            "timeout_s": 1,
        }
    }
    gateway = gateway_factory(config)
    client = gateway.client()
    started = time.monotonic()
    for _ in range(20):
        client.chat.completions.create(model="oa-gpt-x", messages=USER)
    assert time.monotonic() - started < 10  # generous: an exporter on the request path would block each call
    deadline = time.monotonic() + 10
    while not (dropped := total(metric_samples(gateway), "agentgw_spans_dropped_total", reason="export_failed")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert dropped <= 40  # the lost spans are counted: at most a call span and an attempt span per call


def metric_samples(gateway: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(gateway.url + "/metrics").text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and all((k, v2) in ls for k, v2 in labels.items()))


def test_metrics_after_a_known_workload(gateway: Any, standin: StandIn) -> None:
    client = gateway.client(AGENT_KEY)
    for _ in range(3):
        client.chat.completions.create(model="oa-gpt-x", messages=USER)
    list(client.chat.completions.create(model="an-gpt-x", messages=USER, stream=True))
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="oa-fail-500", messages=USER)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=USER)
    gateway.client().chat.completions.create(model="resilient", messages=USER)
    with pytest.raises(openai.AuthenticationError):  # refused before it became a call: still counted
        gateway.client("agentgw-not-a-key").chat.completions.create(model="oa-gpt-x", messages=USER)
    with gateway.http() as http:
        assert http.post("/v1/chat/completions", content=b"{not json").status_code == 400
        assert http.post("/v1/embeddings", json={"model": "oa-embed"}).status_code == 400
    s = metric_samples(gateway)
    assert total(s, "agentgw_requests_total", status="200", code="ok") == 5
    assert total(s, "agentgw_requests_total", operation="chat", status="401", code="invalid_api_key") == 1
    assert total(s, "agentgw_requests_total", operation="chat", status="400", code="invalid_request") == 1
    assert total(s, "agentgw_requests_total", operation="embeddings", status="400", code="invalid_request") == 1
    assert total(s, "agentgw_requests_total", status="502", code="upstream_error") == 1
    assert total(s, "agentgw_requests_total", status="404", code="model_not_found") == 1
    assert total(s, "gen_ai_client_operation_duration_seconds_count", gen_ai_request_model="oa-gpt-x") == 3
    assert total(s, "gen_ai_client_operation_duration_seconds_count", error_type="upstream_error") == 1
    assert total(s, "gen_ai_client_operation_time_to_first_chunk_seconds_count") == 1
    prompt_tokens = sum(
        e.usage["prompt_tokens"]
        for e in standin.requests
        if e.model == "gpt-x" and e.path == "/v1/chat/completions" and e.usage
    )
    assert (
        total(s, "gen_ai_client_token_usage_sum", gen_ai_token_type="input", gen_ai_provider_name="openai")
        == prompt_tokens
    )
    buckets = {dict(ls)["le"] for (n, ls), _ in s.items() if n == "gen_ai_client_operation_duration_seconds_bucket"}
    assert {"0.01", "81.92", "+Inf"} <= buckets
    assert total(s, "agentgw_upstream_errors_total", model="oa-fail-500") == 2
    assert total(s, "agentgw_fallbacks_total", model="oa-fail-500") == 1
    assert total(s, "agentgw_cost_usd_total", team="research", agent="crawler", model="oa-gpt-x") > 0
    assert total(s, "agentgw_ledger_queue_depth") >= 0 and total(s, "agentgw_in_flight_requests") == 0
    assert ("agentgw_ledger_events_dropped_total", ()) in s and total(s, "agentgw_ledger_events_dropped_total") == 0
    assert total(s, "agentgw_store_failures_total") == 0 and total(s, "agentgw_settlements_pending") == 0
    assert not any("T-9" in str(k) or "sess" in str(k) for k in s)


def test_session_replay(gateway: Any, standin: StandIn) -> None:
    client = gateway.client(AGENT_KEY)
    client.chat.completions.create(model="oa-gpt-x", messages=USER, extra_headers=SESSION)
    list(client.chat.completions.create(model="an-gpt-x", messages=USER, stream=True, extra_headers=SESSION))
    client.chat.completions.create(model="oa-gpt-x", messages=USER, extra_headers={"x-session-id": "other"})
    with gateway.http(AGENT_KEY) as http:
        replay = http.get("/v1/sessions/sess-trace-1").json()
    assert replay["object"] == "session" and replay["totals"]["calls"] == 2
    first, second = replay["calls"]
    assert (first["model"], second["model"]) == ("oa-gpt-x", "an-gpt-x") and first["time"] <= second["time"]
    assert first["input_messages"][0]["parts"][0]["content"] == "Tell me about tracing."
    assert second["stream"] is True and second["ttft_ms"] is not None and len(first["trace_id"]) == 32
    with gateway.http(ADMIN_KEY) as http:
        assert http.get("/v1/sessions/sess-trace-1").json()["totals"]["calls"] == 2
        assert http.get("/v1/sessions/never-seen").status_code == 404


def test_replay_and_feedback_hold_calls_of_every_api(gateway: Any) -> None:
    """A session mixing the three APIs (each passed through and translated) replays in order, each call
    with its operation and the captured messages in the conventions' shape; feedback exports it."""
    headers = {"x-session-id": "sess-apis", "authorization": f"Bearer {AGENT_KEY}"}
    text = "Tell me about tracing."
    with gateway.http(None) as http:
        for path, body in [
            ("/v1/chat/completions", {"model": "an-gpt-x", "messages": USER}),
            ("/v1/responses", {"model": "oa-gpt-x", "input": text, "instructions": "Be brief."}),
            ("/v1/responses", {"model": "an-gpt-x", "input": text, "stream": True}),
            ("/v1/messages", {"model": "oa-gpt-x", "max_tokens": 50, "messages": USER}),
            ("/v1/messages", {"model": "an-gpt-x", "max_tokens": 50, "messages": USER, "stream": True}),
        ]:
            assert http.post(path, json=body, headers=headers).status_code == 200
    with gateway.http(AGENT_KEY) as http:
        replay = http.get("/v1/sessions/sess-apis").json()
        calls = replay["calls"]
        assert [c["operation"] for c in calls] == ["chat", "responses", "responses", "messages", "messages"]
        for call in calls:
            user = [m for m in call["input_messages"] if m["role"] == "user"]
            assert user[0]["parts"][0]["content"] == text
            assert "Hello from stand-in" in call["output_messages"][0]["parts"][0]["content"]
        assert calls[1]["input_messages"][0] == {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]}
        flagged = http.post("/v1/feedback", json={"session_id": "sess-apis", "label": "review"})
        assert flagged.status_code == 201
        cases = [
            json.loads(line) for line in http.get("/v1/feedback/export", params={"label": "review"}).text.splitlines()
        ]
    assert len(cases) == 5 and all(case["input"] and case["output"] for case in cases)


def test_feedback_round_trip(gateway: Any) -> None:
    client = gateway.client(AGENT_KEY)
    bad = client.chat.completions.with_raw_response.create(model="oa-gpt-x", messages=USER, extra_headers=SESSION)
    client.chat.completions.create(model="oa-gpt-x", messages=[{"role": "user", "content": "fine"}])
    request_id = bad.headers["x-request-id"]
    with gateway.http(AGENT_KEY) as http:
        created = http.post(
            "/v1/feedback",
            json={"request_id": request_id, "score": 0, "label": "wrong_answer", "comment": "hallucinated"},
        )
        assert created.status_code == 201 and created.json()["id"] > 0
        assert http.post("/v1/feedback", json={"task_id": "T-9", "label": "slow"}).status_code == 201
        assert http.post("/v1/feedback", json={"request_id": "req_nope", "score": 1}).status_code == 404
        assert http.post("/v1/feedback", json={"request_id": request_id}).status_code == 400
        assert (
            http.post("/v1/feedback", json={"request_id": request_id, "session_id": "x", "score": 1}).status_code == 400
        )
        export = http.get("/v1/feedback/export")
    assert export.headers["content-type"].startswith("application/x-ndjson")
    [case] = [json.loads(line) for line in export.text.splitlines()]
    assert case["request_id"] == request_id and case["model"] == "oa-gpt-x"
    assert case["labels"] == ["slow", "wrong_answer"]
    assert case["input"][0]["parts"][0]["content"] == "Tell me about tracing."
    assert case["output"][0]["parts"][0]["content"].startswith("Hello from stand-in")
    with gateway.http(ADMIN_KEY) as http:
        assert len(http.get("/v1/feedback/export", params={"label": "slow"}).text.splitlines()) == 1


def test_teams_never_see_each_others_calls_or_feedback(standin: StandIn, gateway_factory: Any) -> None:
    """Session ids and x-request-ids are the callers' own: two teams using the same ones stay apart."""
    config = traced_config(standin)
    config["keys"].append(
        {"name": "research-lead", "key": "agentgw-research-lead-key", "team": "research", "role": "team_admin"}
    )
    config["keys"].append({"name": "ops-bot", "key": "agentgw-ops-bot-key-000", "team": "ops"})
    gateway = gateway_factory(config)
    same = {"x-session-id": "shared-session", "x-request-id": "shared-request"}
    gateway.client(AGENT_KEY).chat.completions.create(model="oa-gpt-x", messages=USER, extra_headers=same)
    secret = [{"role": "user", "content": "ops team internal matter"}]
    gateway.client("agentgw-ops-bot-key-000").chat.completions.create(
        model="oa-gpt-x", messages=secret, extra_headers=same
    )
    with gateway.http("agentgw-ops-bot-key-000") as http:
        assert (
            http.post("/v1/feedback", json={"session_id": "shared-session", "comment": "ops only"}).status_code == 201
        )
    with gateway.http("agentgw-research-lead-key") as http:
        replay = http.get("/v1/sessions/shared-session").json()
        export = http.get("/v1/feedback/export").text
    assert [c["team"] for c in replay["calls"]] == ["research"]
    assert "internal matter" not in json.dumps(replay)
    assert "ops only" not in export and export == ""


def test_agent_keys_read_only_their_own_feedback(standin: StandIn, gateway_factory: Any) -> None:
    """Feedback on a session reaches every call in it: a teammate's comment on a session two agent
    keys share must not show in the other key's export. Team admins read all of their team's."""
    config = traced_config(standin)
    config["keys"] += [
        {"name": "research-lead", "key": "agentgw-research-lead-key", "team": "research", "role": "team_admin"},
        {"name": "writer-key", "key": "agentgw-writer-key-0000", "team": "research", "agent": "writer"},
    ]
    gateway = gateway_factory(config)
    shared = {"x-session-id": "pair-session"}
    for key in (AGENT_KEY, "agentgw-writer-key-0000"):
        gateway.client(key).chat.completions.create(model="oa-gpt-x", messages=USER, extra_headers=shared)
    for key, comment in ((AGENT_KEY, "crawler notes"), ("agentgw-writer-key-0000", "writer notes")):
        with gateway.http(key) as http:
            posted = http.post("/v1/feedback", json={"session_id": "pair-session", "comment": comment})
        assert posted.status_code == 201

    def comments(key: str) -> dict[str, list[str]]:
        with gateway.http(key) as http:
            cases = [json.loads(line) for line in http.get("/v1/feedback/export").text.splitlines()]
        return {case["agent"]: sorted(f["comment"] for f in case["feedback"]) for case in cases}

    assert comments(AGENT_KEY) == {"crawler": ["crawler notes"]}
    assert comments("agentgw-writer-key-0000") == {"writer": ["writer notes"]}
    both = ["crawler notes", "writer notes"]
    assert comments("agentgw-research-lead-key") == {"crawler": both, "writer": both}


METRICS_TOKEN = "metrics-scrape-token-0123456789"


def test_metrics_token_guards_the_scrape(standin: StandIn, gateway_factory: Any) -> None:
    """/metrics shows every team's spend and caps: with telemetry.metrics.token set, only a scraper
    with that bearer token reads it (a gateway key, even an admin's, is not it)."""
    config = traced_config(standin)
    config["telemetry"]["metrics"] = {"token": METRICS_TOKEN}
    gateway = gateway_factory(config)
    gateway.client(AGENT_KEY).chat.completions.create(model="oa-gpt-x", messages=USER)
    for headers in ({}, {"authorization": f"Bearer {ADMIN_KEY}"}, {"authorization": "Bearer " + METRICS_TOKEN[:-1]}):
        refused = httpx.get(gateway.url + "/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_api_key"
        assert "research" not in refused.text
    scraped = httpx.get(gateway.url + "/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
    assert scraped.status_code == 200
    assert 'agentgw_cost_usd_total{team="research",agent="crawler",model="oa-gpt-x"}' in scraped.text
    assert httpx.get(gateway.url + "/healthz").status_code == 200  # liveness stays open


def test_call_span_says_what_budget_remains(standin: StandIn, gateway_factory: Any, spans: MemorySink) -> None:
    config = traced_config(standin)
    config["teams"]["research"] = {"budget": {"usd": 1, "period": "day"}}
    config["keys"][1]["budget"] = {"usd": 0.5, "period": "total"}
    gateway = gateway_factory(config, span_sink=spans)
    raw = gateway.client(AGENT_KEY).chat.completions.with_raw_response.create(model="oa-gpt-x", messages=USER)
    cost = float(raw.headers["x-agentgw-cost-usd"])
    a = call_span(spans).attributes
    assert cost > 0
    assert a["agentgw.budget.team.remaining_usd"] == pytest.approx(1 - cost)
    assert a["agentgw.budget.key.remaining_usd"] == pytest.approx(0.5 - cost)
    assert "agentgw.budget.task.remaining_usd" not in a


def test_breaker_state_is_labelled_with_the_gateways_model_name(standin: StandIn, gateway_factory: Any) -> None:
    config = base_config(standin)
    config["routing"] = {"breaker": {"failure_threshold": 1, "cooldown_s": 60}}
    gateway = gateway_factory(config)
    with pytest.raises(openai.InternalServerError):
        gateway.client().chat.completions.create(model="oa-fail-500", messages=USER)
    s = metric_samples(gateway)
    assert s[("agentgw_breaker_state", (("model", "oa-fail-500"), ("provider", "standin-openai")))] == 2  # open
    assert s[("agentgw_breaker_state", (("model", "oa-gpt-x"), ("provider", "standin-openai")))] == 0
    assert not any(n == "agentgw_breaker_state" and ("model", "fail-500") in ls for n, ls in s)  # no upstream names
