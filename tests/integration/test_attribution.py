"""Attribution values are the callers' own text (crewAI sends role names such as `Weather reporter`):
any printable text is accepted, and every sink keeps it exact and harmless: the ledger and the usage
report, its CSV (no formula injection), Prometheus labels, spans (OTLP and the console's JSON lines)."""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.telemetry.otlp import SpanData, encode_request
from gateway.telemetry.tracing import ConsoleSink, MemorySink
from tests.gateway.telemetry.test_otlp import decode, values
from tests.gateway_harness import ADMIN_KEY, base_config
from tests.standin import StandIn

USER = [{"role": "user", "content": "What is the weather like?"}]
# Printable, so accepted; hostile to every sink that does not escape: a spreadsheet formula, quotes and
# backslashes (Prometheus' label syntax), a JSON-looking tail.
FORMULA = "=cmd|' /C calc'!A0"
QUOTED = 'Weather "reporter" \\ back\\slash", x="1'
CJK_EMOJI = "天气预报员 🌦️ 👩\u200d💻"


@pytest.fixture
def spans() -> MemorySink:
    return MemorySink()


@pytest.fixture
def gateway(standin: StandIn, gateway_factory: Any, spans: MemorySink) -> Any:
    config = base_config(standin)
    config["models"]["oa-gpt-x"].update({"input_per_mtok": 1, "output_per_mtok": 2})
    config["telemetry"] = {"tracing": {"batch_delay_ms": 10}}
    return gateway_factory(config, span_sink=spans)


def call_spans(sink: MemorySink, count: int) -> list[SpanData]:
    """The call spans (not the attempts'), once `count` have been exported."""
    deadline = time.monotonic() + 5
    while True:
        found = [s for s in sink.spans if "agentgw.attempt" not in s.attributes]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


def call(gateway: Any, agent: str, task: str, session: str) -> httpx.Response:
    """A chat call with the three headers sent as UTF-8 bytes (the openai SDK sends only ASCII)."""
    headers = {"x-agent-id": agent.encode(), "x-task-id": task.encode(), "x-session-id": session.encode()}
    with gateway.http() as http:
        return http.post("/v1/chat/completions", json={"model": "oa-gpt-x", "messages": USER}, headers=headers)


def test_printable_values_reach_every_sink_exact_and_escaped(gateway: Any, spans: MemorySink) -> None:
    ids = (FORMULA, QUOTED, CJK_EMOJI)
    assert gateway.client().chat.completions.create(  # the openai SDK, ASCII values
        model="oa-gpt-x", messages=USER, extra_headers={"x-agent-id": FORMULA, "x-task-id": QUOTED}
    )
    for agent, task, session in (ids, ids[1:] + ids[:1], ids[2:] + ids[:2]):
        assert call(gateway, agent, task, session).status_code == 200

    with gateway.http() as http:  # the ledger, through the usage report
        rows = http.get("/v1/usage", params={"group_by": "agent,task,session"}).json()["data"]
        table = http.get("/v1/usage", params={"group_by": "agent,task,session", "format": "csv"}).text
        replay = http.get("/v1/sessions/" + quote(CJK_EMOJI, safe=""))
    assert {(r["agent"], r["task"], r["session"]) for r in rows} == {
        (FORMULA, QUOTED, None), (FORMULA, QUOTED, CJK_EMOJI), (QUOTED, CJK_EMOJI, FORMULA),
        (CJK_EMOJI, FORMULA, QUOTED),
    }  # fmt: skip
    cells = {cell for row in csv.reader(io.StringIO(table)) for cell in row[:3]}
    assert "'" + FORMULA in cells and FORMULA not in cells  # shown as text, never run as a formula
    assert {QUOTED, CJK_EMOJI} <= cells
    assert replay.status_code == 200 and replay.json()["calls"][0]["agent"] == FORMULA

    metrics = httpx.get(gateway.url + "/metrics").text
    agents = {
        sample.labels["agent"]
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "agentgw_cost_usd_total"
    }
    assert agents == set(ids)  # escaped in the exposition, exact once parsed

    finished = call_spans(spans, 4)
    seen = {(s.attributes.get("gen_ai.agent.id"), s.attributes.get("agentgw.task")) for s in finished}
    assert (CJK_EMOJI, FORMULA) in seen
    [exported] = decode(encode_request(finished, {"service.name": "agentgw"}, "agentgw", "")).resource_spans
    otlp = [values(s) for s in exported.scope_spans[0].spans]
    assert {s["gen_ai.agent.id"] for s in otlp} == set(ids) and len(otlp) == 4


def test_the_console_exporter_writes_one_json_line_per_span(
    gateway: Any, spans: MemorySink, capsys: pytest.CaptureFixture[str]
) -> None:
    assert call(gateway, QUOTED, FORMULA, CJK_EMOJI).status_code == 200
    ConsoleSink().export(call_spans(spans, 1))
    [line] = capsys.readouterr().out.splitlines()
    attributes = json.loads(line)["attributes"]
    assert (attributes["gen_ai.agent.id"], attributes["agentgw.task"]) == (QUOTED, FORMULA)
    assert attributes["gen_ai.conversation.id"] == CJK_EMOJI


@pytest.mark.parametrize("value", [b"tab\there", b"bidi \xe2\x80\xae override", b"x" * 129])
@pytest.mark.parametrize("header", ["x-agent-id", "x-task-id", "x-session-id"])
def test_control_characters_and_long_values_are_400(gateway: Any, header: str, value: bytes) -> None:
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as http:
        response = http.post(
            "/v1/chat/completions", json={"model": "oa-gpt-x", "messages": USER}, headers={header: value}
        )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == header
