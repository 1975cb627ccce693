"""Tracing: spans for calls and attempts, W3C trace context in and out, batched OTLP export.

Spans are plain records (`otlp.SpanData`): starting one is two random ids and a clock read, ending
one appends it to a queue. A background thread, at a lower CPU priority than the event loop,
encodes batches (`otlp`) and sends them: OTLP over HTTP/protobuf or gRPC, or JSON lines on the
console. A collector that is down or slow costs dropped spans and a log line, never a request.

Sampling is parent-based: a caller's sampled flag wins, otherwise `sample_ratio` decides. An
unsampled call still gets ids, so the provider still receives a `traceparent`.
"""

from __future__ import annotations

import logging
import random
import re
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Mapping
from typing import Any, Protocol

import orjson

from gateway.background import lower_thread_priority
from gateway.telemetry.config import TracingConfig
from gateway.telemetry.otlp import STATUS_ERROR, SpanData, encode_request, encode_span

log = logging.getLogger("agentgw.tracing")

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
MAX_QUEUE = 8192
MAX_BATCH = 512


YIELD_EVERY = 8  # spans encoded between two releases of the GIL (about 0.15 ms of work)


class SpanSink(Protocol):
    """Where finished, sampled spans go, a batch at a time, on the exporter thread."""

    def export(self, spans: list[SpanData]) -> None: ...


class Tracing:
    """Starts and ends spans; a disabled Tracing starts none and costs nothing."""

    def __init__(self, config: TracingConfig, *, sink: SpanSink | None = None, version: str = "") -> None:
        self.enabled = config.enabled or sink is not None
        self._ratio = config.sample_ratio
        self._rng = random.Random()
        self._exporter: BatchExporter | None = None
        if self.enabled:
            resource = {
                "service.name": config.service_name,
                "service.version": version,
                "telemetry.sdk.name": "agentgw",
                "telemetry.sdk.language": "python",
                **config.resource_attributes,
            }
            self._exporter = BatchExporter(sink or _sink(config, resource, version), config.batch_delay_ms / 1000)

    def start_call(self, name: str, incoming: Mapping[str, str]) -> SpanData | None:
        """The call's span, a child of the caller's `traceparent` when it sent a valid one."""
        if not self.enabled:
            return None
        rng = self._rng
        parent = _parse_traceparent(incoming.get("traceparent"))
        if parent is not None:
            trace_id, parent_id, flags = parent
        else:
            trace_id, parent_id = rng.getrandbits(128) or 1, None
            flags = 0x01 if rng.random() < self._ratio else 0x00
        return SpanData(trace_id, rng.getrandbits(64) or 1, parent_id, name, time.time_ns(), flags=flags)

    def start_attempt(self, parent: SpanData, name: str, attributes: Mapping[str, Any]) -> SpanData:
        return SpanData(
            parent.trace_id,
            self._rng.getrandbits(64) or 1,
            parent.span_id,
            name,
            time.time_ns(),
            attributes=dict(attributes),
            flags=parent.flags,
        )

    @staticmethod
    def traceparent(span: SpanData) -> dict[str, str]:
        """The W3C header that makes the provider's work a child of `span`."""
        return {"traceparent": f"00-{span.trace_id:032x}-{span.span_id:016x}-{span.flags:02x}"}

    def end(self, span: SpanData, attributes: Mapping[str, Any], error_type: str | None) -> None:
        span.end_ns = time.time_ns()
        span.attributes.update(attributes)
        if error_type is not None:
            span.status_code, span.status_message = STATUS_ERROR, error_type
        if span.flags & 0x01 and self._exporter is not None:
            self._exporter.submit(span)

    def dropped(self) -> dict[str, int]:
        """Spans not exported, by reason: `queue_full` (the collector is too slow or down for long) and
        `export_failed` (the collector refused them or could not be reached)."""
        exporter = self._exporter
        if exporter is None:
            return {}
        return {"queue_full": exporter.dropped, "export_failed": exporter.failed}

    def shutdown(self, timeout: float = 5.0) -> None:
        """Export what is queued (bounded by `timeout`) and stop."""
        if self._exporter is not None:
            self._exporter.shutdown(timeout)


def _parse_traceparent(value: str | None) -> tuple[int, int, int] | None:
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None:
        return None
    trace_id, parent_id = int(match.group(1), 16), int(match.group(2), 16)
    if not trace_id or not parent_id:
        return None
    return trace_id, parent_id, int(match.group(3), 16) & 0x01


class BatchExporter:
    """A queue of finished spans and the thread that exports them in batches."""

    def __init__(self, sink: SpanSink, delay: float) -> None:
        self._sink = sink
        self._delay = delay
        self._queue: deque[SpanData] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self.dropped = 0  # spans refused because the queue was full
        self.failed = 0  # spans in batches whose export failed
        self._last_error_log = 0.0
        self._thread = threading.Thread(target=self._run, name="span-exporter", daemon=True)
        self._thread.start()

    def submit(self, span: SpanData) -> None:
        if len(self._queue) >= MAX_QUEUE:
            self.dropped += 1
            return
        self._queue.append(span)
        if len(self._queue) >= MAX_BATCH:
            self._wake.set()

    def _run(self) -> None:
        lower_thread_priority()
        while not self._stopping:
            self._wake.wait(self._delay)
            self._wake.clear()
            self._drain()
        self._drain()

    def _drain(self) -> None:
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
            try:
                self._sink.export(batch)
            except Exception as exc:  # a collector that is down must never reach a request
                self.failed += len(batch)
                now = time.monotonic()
                if now - self._last_error_log > 60:
                    self._last_error_log = now
                    log.warning("span export failed, %d spans dropped: %s", len(batch), exc)

    def shutdown(self, timeout: float) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)


class OtlpHttpSink:
    """OTLP over HTTP with protobuf bodies (the collector's /v1/traces)."""

    def __init__(
        self, endpoint: str, headers: Mapping[str, str], timeout: float, resource: Mapping[str, Any], version: str
    ) -> None:
        self._endpoint = endpoint
        self._headers = {"Content-Type": "application/x-protobuf", **headers}
        self._timeout = timeout
        self._resource = dict(resource)
        self._version = version

    def export(self, spans: list[SpanData]) -> None:
        body = encode_request(_encoded(spans), self._resource, "agentgw", self._version)
        request = urllib.request.Request(self._endpoint, data=body, headers=self._headers, method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310 - configured URL
            response.read()


class OtlpGrpcSink:
    """OTLP over gRPC: the same encoded request, sent with the TraceService/Export method."""

    def __init__(
        self,
        endpoint: str,
        headers: Mapping[str, str],
        timeout: float,
        resource: Mapping[str, Any],
        version: str,
        insecure: bool,
    ) -> None:
        import grpc

        target = endpoint.split("://", 1)[-1]
        channel = (
            grpc.insecure_channel(target) if insecure else grpc.secure_channel(target, grpc.ssl_channel_credentials())
        )
        self._export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        self._metadata = tuple((k.lower(), v) for k, v in headers.items())
        self._timeout = timeout
        self._resource = dict(resource)
        self._version = version

    def export(self, spans: list[SpanData]) -> None:
        body = encode_request(_encoded(spans), self._resource, "agentgw", self._version)
        self._export(body, timeout=self._timeout, metadata=self._metadata)


class ConsoleSink:
    """One JSON line per span on standard output, for local debugging."""

    def export(self, spans: list[SpanData]) -> None:
        for span in spans:
            record = {
                "trace_id": f"{span.trace_id:032x}",
                "span_id": f"{span.span_id:016x}",
                "parent_span_id": f"{span.parent_span_id:016x}" if span.parent_span_id else None,
                "name": span.name,
                "start_ns": span.start_ns,
                "end_ns": span.end_ns,
                "status": "error" if span.status_code == STATUS_ERROR else "unset",
                "attributes": span.attributes,
            }
            sys.stdout.write(orjson.dumps(record, default=str).decode() + "\n")
        sys.stdout.flush()


class MemorySink:
    """Keeps every exported span in memory; for tests and embedding applications."""

    def __init__(self) -> None:
        self._spans: list[SpanData] = []
        self._lock = threading.Lock()

    def export(self, spans: list[SpanData]) -> None:
        with self._lock:
            self._spans.extend(spans)

    @property
    def spans(self) -> list[SpanData]:
        with self._lock:
            return list(self._spans)


def _encoded(spans: list[SpanData]) -> list[bytes]:
    """The spans encoded a few at a time, letting the event loop's thread take the GIL in between:
    a batch encoded in one go would hold it for milliseconds and show in the p99 of requests."""
    out = []
    for i, span in enumerate(spans, 1):
        out.append(encode_span(span))
        if i % YIELD_EVERY == 0:
            time.sleep(0)
    return out


def _sink(config: TracingConfig, resource: Mapping[str, Any], version: str) -> SpanSink:
    headers = {k: v.get_secret_value() for k, v in config.headers.items()}
    if config.exporter == "console":
        return ConsoleSink()
    if config.exporter == "otlp_grpc":
        endpoint = config.endpoint or "127.0.0.1:4317"
        return OtlpGrpcSink(
            endpoint, headers, config.timeout_s, resource, version, insecure=not endpoint.startswith("https://")
        )
    return OtlpHttpSink(
        config.endpoint or "http://127.0.0.1:4318/v1/traces", headers, config.timeout_s, resource, version
    )
