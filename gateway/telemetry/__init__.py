"""Telemetry: one OpenTelemetry span per call with the GenAI semantic conventions, Prometheus
metrics, and the content capture that feeds spans, session replay and feedback export.

`semconv` maps a call's facts to attributes and is pure (no SDK); `tracing` and `metrics` set up
their SDKs once, at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.telemetry.config import ContentCaptureConfig, TelemetryConfig
from gateway.telemetry.metrics import Metrics
from gateway.telemetry.tracing import Tracing

__all__ = ["Metrics", "Telemetry", "TelemetryConfig", "Tracing"]


@dataclass(frozen=True, slots=True)
class Telemetry:
    """The process's tracing, metrics and content-capture settings, built once at start-up."""

    tracing: Tracing
    metrics: Metrics | None  # None when turned off in config
    capture: ContentCaptureConfig
