"""OpenTelemetry tracing, set up once at start-up: the provider, sampler, exporter and propagator.

The provider is owned by the app (not installed as the global one), so tests and embedding
applications keep their own. Spans go out through a BatchSpanProcessor: exporting happens on its
thread, and a collector that is down only costs dropped spans.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.telemetry.config import TracingConfig
from gateway.telemetry.semconv import AttributeValue

log = logging.getLogger("agentgw.tracing")

_PROPAGATOR = TraceContextTextMapPropagator()


class Tracing:
    """Starts call and attempt spans; a disabled Tracing starts none (and costs nothing)."""

    def __init__(self, config: TracingConfig, *, exporter: SpanExporter | None = None, version: str = "") -> None:
        self.enabled = config.enabled or exporter is not None
        self._provider: TracerProvider | None = None
        self._tracer: trace.Tracer | None = None
        if not self.enabled:
            return
        resource = Resource.create(
            {"service.name": config.service_name, "service.version": version, **config.resource_attributes}
        )
        self._provider = TracerProvider(resource=resource, sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)))
        if exporter is not None:  # tests hand in an in-memory exporter and read spans at once
            self._provider.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            processor = BatchSpanProcessor(_exporter(config), schedule_delay_millis=config.batch_delay_ms)
            self._provider.add_span_processor(processor)
        self._tracer = self._provider.get_tracer("agentgw", version)

    def start_call(
        self, name: str, attributes: Mapping[str, AttributeValue], incoming: Mapping[str, str]
    ) -> Span | None:
        """The call's span, a child of the caller's `traceparent` when it sent one."""
        if self._tracer is None:
            return None
        parent = _PROPAGATOR.extract(carrier=dict(incoming)) if "traceparent" in incoming else None
        return self._tracer.start_span(name, context=parent, kind=SpanKind.CLIENT, attributes=attributes)

    def start_attempt(self, parent: Span, name: str, attributes: Mapping[str, AttributeValue]) -> Span | None:
        if self._tracer is None:
            return None
        return self._tracer.start_span(
            name, context=trace.set_span_in_context(parent), kind=SpanKind.CLIENT, attributes=attributes
        )

    @staticmethod
    def traceparent(span: Span) -> dict[str, str]:
        """The W3C headers that make the provider's work a child of `span`."""
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
        return carrier

    @staticmethod
    def end(span: Span, attributes: Mapping[str, AttributeValue], error_type: str | None) -> None:
        span.set_attributes(attributes)
        if error_type is not None:
            span.set_status(Status(StatusCode.ERROR, error_type))
        span.end()

    def shutdown(self) -> None:
        """Flush what is queued (bounded by the exporter's timeout) and stop."""
        if self._provider is not None:
            self._provider.shutdown()


def _exporter(config: TracingConfig) -> SpanExporter:
    headers = {k: v.get_secret_value() for k, v in config.headers.items()}
    if config.exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if config.exporter == "otlp_grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter(
            endpoint=config.endpoint or "127.0.0.1:4317",
            headers=headers or None,
            timeout=config.timeout_s,
            insecure=_insecure(config.endpoint),
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter(
        endpoint=config.endpoint or "http://127.0.0.1:4318/v1/traces", headers=headers or None, timeout=config.timeout_s
    )


def _insecure(endpoint: str | None) -> bool:
    return endpoint is None or not endpoint.startswith("https://")
