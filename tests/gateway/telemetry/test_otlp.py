"""The hand-written OTLP encoder against the official protobuf classes, over HTTP and gRPC."""

from __future__ import annotations

import threading
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from gateway.telemetry.config import TracingConfig
from gateway.telemetry.otlp import STATUS_ERROR, SpanData, encode_request
from gateway.telemetry.tracing import OtlpGrpcSink, Tracing

ATTRS: dict[str, Any] = {
    "gen_ai.operation.name": "chat", "flag": True, "off": False, "count": 42, "negative": -7, "big": 2**62,
    "ratio": 0.25, "names": ["a", "b"], "numbers": [1, 2, 3], "unicode": "héllo ✓", "empty": "",
}  # fmt: skip


def span(**changes: Any) -> SpanData:
    base = SpanData(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
        span_id=0x00F067AA0BA902B7,
        parent_span_id=0x1234,
        name="chat gpt-x",
        start_ns=1_700_000_000_123_456_789,
        end_ns=1_700_000_001_000_000_000,
        attributes=dict(ATTRS),
    )
    for name, value in changes.items():
        setattr(base, name, value)
    return base


def decode(body: bytes) -> ExportTraceServiceRequest:
    message = ExportTraceServiceRequest()
    message.ParseFromString(body)
    return message


def values(span_message: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span_message.attributes:
        kind = kv.value.WhichOneof("value")
        if kind == "array_value":
            out[kv.key] = [getattr(v, v.WhichOneof("value")) for v in kv.value.array_value.values]
        else:
            out[kv.key] = getattr(kv.value, kind)
    return out


def test_request_round_trips_through_the_official_classes() -> None:
    body = encode_request(
        [span(), span(parent_span_id=None, status_code=STATUS_ERROR, status_message="boom")],
        {"service.name": "agentgw", "service.version": "0.1.0"},
        "agentgw",
        "0.1.0",
    )
    message = decode(body)
    [resource_spans] = message.resource_spans
    assert {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes} == {
        "service.name": "agentgw",
        "service.version": "0.1.0",
    }
    [scope_spans] = resource_spans.scope_spans
    assert (scope_spans.scope.name, scope_spans.scope.version) == ("agentgw", "0.1.0")
    first, second = scope_spans.spans
    assert first.trace_id.hex() == "4bf92f3577b34da6a3ce929d0e0e4736" and first.span_id.hex() == "00f067aa0ba902b7"
    assert first.parent_span_id.hex() == "0000000000001234" and second.parent_span_id == b""
    assert first.name == "chat gpt-x" and first.kind == Span.SPAN_KIND_CLIENT
    assert first.start_time_unix_nano == 1_700_000_000_123_456_789 and first.flags == 1
    assert values(first) == ATTRS
    assert first.status.code == Status.STATUS_CODE_UNSET
    assert second.status.code == Status.STATUS_CODE_ERROR and second.status.message == "boom"


class Collector:
    """A gRPC TraceService that records the raw requests it receives."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.metadata: list[dict[str, str]] = []
        self.received = threading.Event()

        def export(request: bytes, context: grpc.ServicerContext) -> bytes:
            self.requests.append(decode(request))
            self.metadata.append(dict(context.invocation_metadata()))
            self.received.set()
            return b""

        handler = grpc.method_handlers_generic_handler(
            "opentelemetry.proto.collector.trace.v1.TraceService",
            {"Export": grpc.unary_unary_rpc_method_handler(export)},
        )
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self.server.add_generic_rpc_handlers((handler,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")


def test_grpc_export_reaches_a_collector() -> None:
    collector = Collector()
    collector.server.start()
    try:
        sink = OtlpGrpcSink(
            f"127.0.0.1:{collector.port}", {"X-Token": "t1"}, 5.0, {"service.name": "agentgw"}, "0.1", insecure=True
        )
        sink.export([span()])
        assert collector.received.wait(5)
    finally:
        collector.server.stop(0)
    [request] = collector.requests
    assert request.resource_spans[0].scope_spans[0].spans[0].name == "chat gpt-x"
    assert collector.metadata[0]["x-token"] == "t1"


def test_sampling_and_propagation() -> None:
    never = Tracing(TracingConfig(enabled=True, sample_ratio=0.0, exporter="console"))
    unsampled = never.start_call("chat m", {})
    assert unsampled is not None and unsampled.flags == 0
    assert never.traceparent(unsampled)["traceparent"].endswith("-00")
    sampled_parent = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    child = never.start_call("chat m", sampled_parent)
    assert child is not None and child.flags == 1 and child.parent_span_id == 0x00F067AA0BA902B7
    for bad in ("01-zz", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "garbage"):
        fresh = never.start_call("chat m", {"traceparent": bad})
        assert fresh is not None and fresh.parent_span_id is None
    never.shutdown()
