"""Span cost: the OpenTelemetry SDK against agentgw's own span records and OTLP encoder, one run.

    python bench/span_bench.py [--spans 20000]

For one call's span as the gateway makes it (a CLIENT span with a parent, ~35 GenAI and agentgw
attributes, an error status), measures two costs per span:

  on the loop   start the span, set its attributes, end it and hand it to the batch processor:
                what every request pays on the event loop's thread;
  encode        turn a batch of finished spans into an OTLP `ExportTraceServiceRequest`: what the
                exporter thread pays, on the same core in a one-core deployment.

SDK: `TracerProvider` + `BatchSpanProcessor` (its worker thread exporting to nothing), and the OTLP
exporters' own `encode_spans(...).SerializeToString()`. agentgw: `gateway.telemetry.tracing` and
`gateway.telemetry.otlp`. Both encodings are decoded with the official protobuf classes and
compared, so the two sides do the same work. Needs `pip install -e '.[dev]'`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from opentelemetry import trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult  # noqa: E402

from gateway.telemetry.config import TracingConfig  # noqa: E402
from gateway.telemetry.otlp import SpanData, encode_request  # noqa: E402
from gateway.telemetry.tracing import Tracing  # noqa: E402

RESOURCE = {"service.name": "agentgw", "service.version": "bench", "deployment.environment": "bench"}
PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
ATTRIBUTES: dict[str, Any] = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.response.id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "gen_ai.response.finish_reasons": ("stop",),
    "gen_ai.usage.input_tokens": 1250,
    "gen_ai.usage.output_tokens": 310,
    "gen_ai.usage.cache_read.input_tokens": 1024,
    "gen_ai.usage.cache_creation.input_tokens": 0,
    "gen_ai.usage.reasoning.output_tokens": 0,
    "gen_ai.request.max_tokens": 512,
    "gen_ai.request.temperature": 0.2,
    "gen_ai.request.top_p": 1.0,
    "gen_ai.request.stream": True,
    "gen_ai.response.time_to_first_chunk": 0.412,
    "gen_ai.conversation.id": "session-7f3a",
    "gen_ai.agent.id": "triage-bot",
    "server.address": "api.openai.com",
    "server.port": 443,
    "error.type": "upstream_timeout",
    "agentgw.team": "support",
    "agentgw.task": "ticket-88412",
    "agentgw.tags": ("env=prod", "tier=gold"),
    "agentgw.key_name": "support-prod",
    "agentgw.route": "auto",
    "agentgw.strategy": "cheapest_above_quality",
    "agentgw.attempts": 2,
    "agentgw.cost_usd": 0.00037275,
    "agentgw.usage.estimated": False,
    "agentgw.guardrails": ("pii:input:redact:email=1",),
    "agentgw.budget.team.remaining_usd": 412.5,
    "agentgw.budget.task.remaining_usd": 1.62,
    "agentgw.routing.skipped": ("claude-haiku:context_window",),
    "agentgw.request_id": "req_0193f0c2a5b14c8e9d7f6a5b4c3d2e1f",
}


class _Nowhere(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def sdk_on_loop(n: int) -> tuple[list[float], list[ReadableSpan]]:
    """Per-span cost of the SDK path a request would pay, and the finished spans."""
    provider = TracerProvider(resource=Resource.create(RESOURCE))
    finished: list[ReadableSpan] = []

    class Keep(_Nowhere):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            finished.extend(spans)
            return SpanExportResult.SUCCESS

    processor = BatchSpanProcessor(Keep(), max_queue_size=n + 1, max_export_batch_size=512, schedule_delay_millis=50)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("agentgw", "bench")
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    propagator = TraceContextTextMapPropagator()
    times = []
    for _ in range(n):
        began = time.perf_counter()
        context = propagator.extract({"traceparent": PARENT})
        span = tracer.start_span("chat gpt-4o-mini", context=context, kind=trace.SpanKind.CLIENT)
        span.set_attributes(ATTRIBUTES)
        span.set_status(trace.Status(trace.StatusCode.ERROR, "upstream_timeout"))
        span.end()
        times.append(time.perf_counter() - began)
    processor.force_flush()
    provider.shutdown()
    return times, finished


def ours_on_loop(n: int) -> tuple[list[float], list[SpanData]]:
    finished: list[SpanData] = []

    class Keep:
        def export(self, spans: list[SpanData]) -> None:
            finished.extend(spans)

    tracing = Tracing(TracingConfig(enabled=True, batch_delay_ms=50), sink=Keep(), version="bench")
    incoming = {"traceparent": PARENT}
    times = []
    for _ in range(n):
        began = time.perf_counter()
        span = tracing.start_call("chat gpt-4o-mini", incoming)
        assert span is not None
        tracing.end(span, ATTRIBUTES, "upstream_timeout")
        times.append(time.perf_counter() - began)
    tracing.shutdown(timeout=30)
    return times, finished


def per_span_encode(encode: Callable[[], bytes], count: int, rounds: int = 5) -> tuple[float, bytes]:
    best, body = float("inf"), b""
    for _ in range(rounds):
        began = time.perf_counter()
        body = encode()
        best = min(best, (time.perf_counter() - began) / count)
    return best, body


def decoded_attributes(body: bytes) -> list[dict[str, Any]]:
    request = ExportTraceServiceRequest.FromString(body)
    spans = request.resource_spans[0].scope_spans[0].spans
    return [{kv.key: kv.value.WhichOneof("value") for kv in span.attributes} for span in spans]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=512, help="spans per encoded export request")
    args = parser.parse_args()

    sdk_times, sdk_spans = sdk_on_loop(args.spans)
    our_times, our_spans = ours_on_loop(args.spans)
    batch_sdk, batch_ours = sdk_spans[: args.batch], our_spans[: args.batch]
    sdk_encode, sdk_body = per_span_encode(lambda: encode_spans(batch_sdk).SerializeToString(), len(batch_sdk))
    our_encode, our_body = per_span_encode(
        lambda: encode_request(batch_ours, RESOURCE, "agentgw", "bench"), len(batch_ours)
    )
    same = decoded_attributes(sdk_body) == decoded_attributes(our_body)

    def us(seconds: float) -> str:
        return f"{seconds * 1e6:8.1f} us"

    print(f"{args.spans} spans, {len(ATTRIBUTES)} attributes each, encoded in batches of {args.batch}\n")
    print("                       on the loop p50   on the loop p99   encode per span   request bytes/span")
    for name, times, encode, body, count in (
        ("OpenTelemetry SDK", sdk_times, sdk_encode, sdk_body, len(batch_sdk)),
        ("agentgw", our_times, our_encode, our_body, len(batch_ours)),
    ):
        p50 = statistics.median(times)
        p99 = statistics.quantiles(times, n=100)[98]
        print(f"{name:<22} {us(p50):>16}  {us(p99):>16}  {us(encode):>16}  {len(body) / count:18.0f}")
    print(
        f"\nratio SDK/agentgw: on the loop p50 {statistics.median(sdk_times) / statistics.median(our_times):.1f}x, "
        f"encode {sdk_encode / our_encode:.1f}x"
    )
    print(f"same attributes and value types after decoding with the official protobuf classes: {same}")


if __name__ == "__main__":
    main()
