"""The official openai SDK and the OpenAI Agents SDK against `POST /v1/responses`: passed through to
a stand-in that speaks the Responses API, and translated to chat-only servers, to Anthropic's
Messages API and to the built-in mock."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from typing import Any

import openai
import pytest
from agents import Agent, RunConfig, Runner, function_tool, set_default_openai_api, set_default_openai_client

from gateway.telemetry.tracing import MemorySink
from tests.gateway_harness import ADMIN_KEY, OPENAI_SECRET, base_config
from tests.standin import StandIn

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}
BUDGET_KEY = "agentgw-test-budget-key-0002"
GUARDED_KEY = "agentgw-test-guarded-key-0002"
SECRET = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z" * 2
PRICED = {"input_per_mtok": 1, "output_per_mtok": 2}
# pass-through, chat-only OpenAI-compatible server, Anthropic (via chat), the mock (via chat)
TARGETS = ["oa-gpt-x", "cc-gpt-x", "an-gpt-x", "mock-chat"]


def responses_config(standin: StandIn) -> dict[str, Any]:
    config = base_config(standin)
    openai_side = config["providers"]["standin-openai"]
    config["providers"]["standin-chat-only"] = {**openai_side, "apis": ["chat", "embeddings"]}
    for scenario in ("gpt-x", "echo-request", "stream-error", "no-usage"):
        config["models"][f"cc-{scenario}"] = {"provider": "standin-chat-only", "upstream": scenario}
    for name in ("oa-gpt-x", "cc-gpt-x", "an-gpt-x"):
        config["models"][name].update(PRICED)
    config["routes"] = {"mixed": {"strategy": "fallback", "candidates": ["an-gpt-x", "oa-gpt-x"]}}
    config["teams"]["capped"] = {"budget": {"usd": 0.000001, "period": "day"}}
    config["keys"].append({"name": "budgeted", "key": BUDGET_KEY, "team": "capped"})
    config["guardrails"] = {
        "secrets": {"type": "secrets", "action": "block"},
        "pii-out": {"type": "pii", "action": "redact", "phases": ["output"], "entities": ["email"]},
        "tools": {"type": "tool_access", "action": "block", "deny": ["delete_*"]},
    }
    config["teams"]["guarded"] = {"guardrails": ["secrets", "pii-out", "tools"]}
    config["keys"].append({"name": "guarded", "key": GUARDED_KEY, "team": "guarded"})
    return config


@pytest.fixture(scope="module")
def spans() -> MemorySink:
    return MemorySink()


@pytest.fixture(scope="module")
def gateway(standin_server: StandIn, module_gateway_factory: Any, spans: MemorySink) -> Any:
    return module_gateway_factory(responses_config(standin_server), span_sink=spans)


def ledger_row(gateway: Any, request_id: str) -> sqlite3.Row:
    with gateway.http() as http:
        assert http.get("/v1/usage").status_code == 200  # flushes the ledger
    with sqlite3.connect(gateway.ledger_path) as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM usage_events WHERE request_id = ?", (request_id,)).fetchone()
    assert row is not None
    return row


@pytest.mark.parametrize("model", TARGETS)
def test_create_answers_in_the_responses_shape(gateway: Any, standin: StandIn, model: str) -> None:
    raw = gateway.client().responses.with_raw_response.create(
        model=model, input="What is the capital of France?", instructions="Be brief.", max_output_tokens=64
    )
    response = raw.parse()
    assert response.object == "response" and response.status == "completed" and response.model == model
    assert "What is the capital of France?" in response.output_text
    assert response.usage is not None and response.usage.output_tokens > 0
    row = ledger_row(gateway, raw.headers["x-request-id"])
    assert row["operation"] == "responses" and row["output_tokens"] == response.usage.output_tokens
    if model == "mock-chat":
        return
    [seen] = standin.requests
    wire = {"oa": "/v1/responses", "cc": "/v1/chat/completions", "an": "/v1/messages"}[model[:2]]
    assert seen.path == wire
    if model.startswith("oa"):  # passed through as sent
        assert seen.body == {
            "model": "gpt-x",
            "input": "What is the capital of France?",
            "instructions": "Be brief.",
            "max_output_tokens": 64,
        }
        assert seen.headers["authorization"] == f"Bearer {OPENAI_SECRET}"
    reported = seen.usage or {}
    output = reported.get("output_tokens", reported.get("completion_tokens"))
    assert response.usage.output_tokens == output


@pytest.mark.parametrize("model", TARGETS)
def test_stream_helper_builds_the_final_response(gateway: Any, model: str) -> None:
    with gateway.client().responses.stream(model=model, input="Say hello") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text and "Say hello" in final.output_text
    assert final.status == "completed" and final.usage is not None and final.usage.output_tokens > 0


@pytest.mark.parametrize("model", TARGETS)
def test_function_tools_across_turns(gateway: Any, model: str) -> None:
    sdk = gateway.client()
    first = sdk.responses.create(model=model, input="Weather in Paris?", tools=[WEATHER], tool_choice="required")
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and "city" in json.loads(call.arguments)
    second = sdk.responses.create(
        model=model,
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ],
        tools=[WEATHER],
    )
    assert second.output_text and not [item for item in second.output if item.type == "function_call"]


@pytest.mark.parametrize("model", ["oa-gpt-x", "cc-gpt-x", "an-gpt-x"])
def test_streamed_function_call_arguments(gateway: Any, model: str) -> None:
    with gateway.client().responses.stream(
        model=model, input="Weather?", tools=[WEATHER], tool_choice={"type": "function", "name": "get_weather"}
    ) as stream:
        final = stream.get_final_response()
    [call] = [item for item in final.output if item.type == "function_call"]
    assert json.loads(call.arguments)["city"]


def test_json_schema_output_is_translated(gateway: Any, standin: StandIn) -> None:
    schema = {"type": "object", "properties": {"capital": {"type": "string"}}, "required": ["capital"]}
    gateway.client().responses.create(
        model="cc-gpt-x",
        input="Capital of France?",
        text={"format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}},
    )
    [seen] = standin.requests
    assert seen.body["response_format"]["type"] == "json_schema"
    assert seen.body["response_format"]["json_schema"]["schema"] == schema


def test_stateful_parameters_pass_through_or_are_refused(gateway: Any, standin: StandIn) -> None:
    sdk = gateway.client()
    sdk.responses.create(model="oa-gpt-x", input="and then?", previous_response_id="resp_earlier")
    [seen] = standin.requests
    assert seen.body["previous_response_id"] == "resp_earlier"  # OpenAI keeps the conversation
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.responses.create(model="an-gpt-x", input="and then?", previous_response_id="resp_earlier")
    assert refused.value.param == "previous_response_id"
    assert len(standin.requests) == 1


def test_a_route_serves_native_only_calls_from_its_native_targets(gateway: Any, standin: StandIn) -> None:
    """A route mixing providers: a call with a hosted tool skips the target that cannot run it."""
    raw = gateway.client().responses.with_raw_response.create(
        model="mixed", input="news today?", tools=[{"type": "web_search"}]
    )
    assert raw.headers["x-agentgw-model"] == "oa-gpt-x"
    [seen] = standin.requests
    assert seen.path == "/v1/responses" and seen.body["tools"] == [{"type": "web_search"}]
    with pytest.raises(openai.BadRequestError) as refused:
        gateway.client().responses.create(model="an-gpt-x", input="news?", tools=[{"type": "web_search"}])
    assert refused.value.param == "tools.0"


def test_reasoning_and_cached_tokens_are_metered(gateway: Any, standin: StandIn) -> None:
    raw = gateway.client().responses.with_raw_response.create(
        model="oa-cache-x", input="Think about it", reasoning={"effort": "low"}
    )
    response = raw.parse()
    row = ledger_row(gateway, raw.headers["x-request-id"])
    assert response.usage is not None
    assert row["cached_tokens"] == response.usage.input_tokens_details.cached_tokens > 0
    assert row["reasoning_tokens"] == response.usage.output_tokens_details.reasoning_tokens > 0


def test_an_input_guardrail_blocks(gateway: Any, standin: StandIn) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        gateway.client(GUARDED_KEY).responses.create(model="oa-gpt-x", input=f"use {SECRET} to deploy")
    assert refused.value.code == "guardrail_blocked" and SECRET not in str(refused.value.body)
    assert standin.requests == []


@pytest.mark.parametrize("model", ["oa-echo-request", "cc-echo-request"])
def test_streamed_output_is_redacted_in_deltas_and_done_events(gateway: Any, model: str) -> None:
    prompt = "write to ada.lovelace@example.com today"
    with gateway.client(GUARDED_KEY).responses.stream(model=model, input=prompt) as stream:
        events = list(stream)
        final = stream.get_final_response()
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = [e.text for e in events if e.type == "response.output_text.done"]
    assert "ada.lovelace@example.com" not in text and "[EMAIL]" in text
    assert done == [text] and final.output_text == text
    numbers = [e.sequence_number for e in events]
    assert numbers == sorted(set(numbers))


def test_tool_access_applies_to_function_tools(gateway: Any, standin: StandIn) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        gateway.client(GUARDED_KEY).responses.create(
            model="oa-gpt-x", input="clean up", tools=[{**WEATHER, "name": "delete_user"}]
        )
    assert refused.value.code == "guardrail_blocked" and refused.value.param == "tools"
    assert standin.requests == []


def test_a_budget_refusal_is_not_retried(gateway: Any, standin: StandIn) -> None:
    with pytest.raises(openai.RateLimitError) as refused:
        gateway.client(BUDGET_KEY, max_retries=2).responses.create(model="oa-gpt-x", input="hi")
    assert refused.value.code == "budget_exceeded"
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert standin.requests == []


@pytest.mark.parametrize("model", ["oa-stream-error", "cc-stream-error", "an-stream-error"])
def test_a_broken_stream_fails_the_sdk(gateway: Any, model: str) -> None:
    with pytest.raises(openai.APIError), gateway.client().responses.stream(model=model, input="Hi") as stream:
        for _ in stream:
            pass
        stream.get_final_response()


@function_tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"18C in {city}"


def run_agent(gateway: Any, model: str, text: str, *, streamed: bool) -> Any:
    """An Agents SDK agent on the gateway, set up the way its docs say (one default client, the
    Responses API); its final output."""

    async def run() -> Any:
        async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key=ADMIN_KEY, max_retries=0) as sdk:
            set_default_openai_client(sdk, use_for_tracing=False)
            set_default_openai_api("responses")
            helper = Agent(name="helper", instructions="Help.", model=model, tools=[get_weather])
            config = RunConfig(tracing_disabled=True)  # its model provider picks up the default client
            if not streamed:
                return (await Runner.run(helper, text, run_config=config)).final_output
            result = Runner.run_streamed(helper, text, run_config=config)
            async for _ in result.stream_events():
                pass
            return result.final_output

    return asyncio.run(run())


@pytest.mark.parametrize("model", TARGETS)
@pytest.mark.parametrize("streamed", [False, True])
def test_the_agents_sdk_runs_a_tool_loop(gateway: Any, standin: StandIn, model: str, streamed: bool) -> None:
    final = run_agent(gateway, model, "weather in Paris?", streamed=streamed)
    if model == "mock-chat":
        assert "18C in" in final  # the mock answers with what the tool returned
        return
    assert final.endswith("weather in Paris?")  # the stand-in answers the user's question after the tool ran
    first, second = standin.requests
    assert first.path == second.path and len(standin.requests) == 2  # the tool call, then the answer to it


def test_span_names_the_api(gateway: Any, spans: MemorySink) -> None:
    raw = gateway.client().responses.with_raw_response.create(model="an-gpt-x", input="hi", max_output_tokens=23)
    deadline = time.monotonic() + 5
    found: list[Any] = []
    while time.monotonic() < deadline and not found:
        found = [
            s
            for s in spans.spans
            if s.attributes.get("gen_ai.request.max_tokens") == 23 and "agentgw.attempt" not in s.attributes
        ]
        time.sleep(0.01)
    [span] = found
    assert span.attributes["agentgw.api"] == "responses" and span.attributes["agentgw.translated"] is True
    assert span.attributes["gen_ai.usage.output_tokens"] == raw.parse().usage.output_tokens


@pytest.mark.parametrize("stream", [False, True])
def test_usage_the_provider_did_not_report_is_counted_and_marked(gateway: Any, stream: bool) -> None:
    """A chat-only server that reports no usage: the gateway counts the Responses call itself (the
    client still gets a usage object) and the ledger marks the count estimated."""
    sdk = gateway.client()
    if stream:
        with sdk.responses.with_streaming_response.create(model="cc-no-usage", input="Count me", stream=True) as raw:
            request_id = raw.headers["x-request-id"]
            events = [line for line in raw.iter_lines() if line.startswith("data: ")]
        final = json.loads(events[-1].removeprefix("data: "))["response"]
    else:
        raw_answer = sdk.responses.with_raw_response.create(model="cc-no-usage", input="Count me")
        request_id, final = raw_answer.headers["x-request-id"], json.loads(raw_answer.text)
    row = ledger_row(gateway, request_id)
    assert row["estimated"] == 1 and row["input_tokens"] > 0 and row["output_tokens"] > 0
    assert final["usage"]["output_tokens"] == row["output_tokens"]
