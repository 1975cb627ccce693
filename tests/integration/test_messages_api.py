"""The official anthropic SDK against `POST /v1/messages`: passed through to an Anthropic-wire
stand-in, and translated to the OpenAI-wire stand-in and to the built-in mock."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import httpx2
import pytest

from gateway.telemetry.tracing import MemorySink
from tests.gateway_harness import ADMIN_KEY, ANTHROPIC_SECRET, OPENAI_SECRET, base_config
from tests.standin import StandIn

USER = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}
BUDGET_KEY = "agentgw-test-budget-key-0001"
GUARDED_KEY = "agentgw-test-guarded-key-0001"
SECRET = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z" * 2
PRICED = {"input_per_mtok": 1, "output_per_mtok": 2}


def messages_config(standin: StandIn) -> dict[str, Any]:
    config = base_config(standin)
    for name in ("an-gpt-x", "oa-gpt-x", "an-cache-x"):
        config["models"][name].update(PRICED)
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
    return module_gateway_factory(messages_config(standin_server), span_sink=spans)


_OPEN: list[anthropic.Anthropic] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def client(gateway: Any, *, bearer: bool = False, key: str = ADMIN_KEY, **options: Any) -> anthropic.Anthropic:
    """The anthropic SDK as its users configure it: `x-api-key` (api_key), or Claude Code's
    `ANTHROPIC_AUTH_TOKEN` (auth_token, sent as `Authorization: Bearer`). Closed after the test."""
    options.setdefault("max_retries", 0)
    if bearer:
        sdk = anthropic.Anthropic(base_url=gateway.url, auth_token=key, api_key=None, **options)
    else:
        sdk = anthropic.Anthropic(base_url=gateway.url, api_key=key, **options)
    _OPEN.append(sdk)
    return sdk


def ledger_row(gateway: Any, request_id: str) -> sqlite3.Row:
    with gateway.http() as http:
        assert http.get("/v1/usage").status_code == 200  # flushes the ledger
    with sqlite3.connect(gateway.ledger_path) as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM usage_events WHERE request_id = ?", (request_id,)).fetchone()
    assert row is not None
    return row


def test_passthrough_answer_usage_and_ledger(gateway: Any, standin: StandIn) -> None:
    raw = client(gateway).messages.with_raw_response.create(model="an-gpt-x", max_tokens=100, messages=USER)
    message = raw.parse()
    assert message.content[0].text == "Hello from stand-in gpt-x: What is the capital of France?"
    assert message.model == "an-gpt-x" and message.stop_reason == "end_turn"
    [seen] = standin.find("/v1/messages")
    assert seen.body == {"model": "gpt-x", "max_tokens": 100, "messages": USER}  # passed through as sent
    assert seen.headers["x-api-key"] == ANTHROPIC_SECRET and ADMIN_KEY not in str(seen.headers)
    assert message.usage.input_tokens == seen.usage["input_tokens"]
    assert message.usage.output_tokens == seen.usage["output_tokens"]
    row = ledger_row(gateway, raw.headers["x-request-id"])
    assert row["operation"] == "messages" and row["provider"] == "standin-anthropic"
    assert (row["input_tokens"], row["output_tokens"]) == (seen.usage["input_tokens"], seen.usage["output_tokens"])
    assert row["cost_nanos"] == seen.usage["input_tokens"] * 1000 + seen.usage["output_tokens"] * 2000


def test_passthrough_honours_the_clients_anthropic_headers(gateway: Any, standin: StandIn) -> None:
    sdk = client(gateway)
    sdk.messages.create(
        model="an-gpt-x",
        max_tokens=50,
        messages=USER,
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
    )
    [seen] = standin.find("/v1/messages")
    assert seen.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert seen.headers["anthropic-version"] == sdk.default_headers["anthropic-version"]  # the SDK's own


def test_cache_tokens_are_metered_from_the_passthrough_usage(gateway: Any, standin: StandIn) -> None:
    raw = client(gateway).messages.with_raw_response.create(model="an-cache-x", max_tokens=50, messages=USER)
    [seen] = standin.find("/v1/messages")
    row = ledger_row(gateway, raw.headers["x-request-id"])
    parts = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    expected_input = sum(seen.usage[k] for k in parts)
    assert row["input_tokens"] == expected_input and row["cached_tokens"] == seen.usage["cache_read_input_tokens"]


@pytest.mark.parametrize("model", ["an-gpt-x", "oa-gpt-x", "mock-chat"])
def test_streams_with_bearer_auth(gateway: Any, standin: StandIn, model: str) -> None:
    with client(gateway, bearer=True).messages.stream(model=model, max_tokens=100, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert "What is the capital of France?" in text
    assert final.content[0].text == text and final.stop_reason == "end_turn" and final.model == model
    assert final.usage.output_tokens > 0
    if model != "mock-chat":
        [seen] = standin.find()
        assert final.usage.output_tokens == (seen.usage.get("output_tokens") or seen.usage["completion_tokens"])


@pytest.mark.parametrize("model", ["an-gpt-x", "oa-gpt-x", "mock-chat"])
def test_a_tool_loop_across_turns(gateway: Any, model: str) -> None:
    sdk = client(gateway)
    first = sdk.messages.create(
        model=model, max_tokens=200, messages=USER, tools=[WEATHER], tool_choice={"type": "any"}
    )
    assert first.stop_reason == "tool_use"
    [call] = [block for block in first.content if block.type == "tool_use"]
    assert call.name == "get_weather" and "city" in call.input
    follow_up = [
        *USER,
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]},
    ]
    answer = sdk.messages.create(model=model, max_tokens=200, messages=follow_up, tools=[WEATHER])
    assert answer.stop_reason == "end_turn" and answer.content[0].type == "text"


@pytest.mark.parametrize("model", ["an-gpt-x", "oa-gpt-x"])
def test_streamed_tool_use(gateway: Any, model: str) -> None:
    with client(gateway).messages.stream(
        model=model, max_tokens=200, messages=USER, tools=[WEATHER], tool_choice={"type": "tool", "name": "get_weather"}
    ) as stream:
        final = stream.get_final_message()
    [call] = [block for block in final.content if block.type == "tool_use"]
    assert call.name == "get_weather" and call.input["city"]
    assert final.stop_reason == "tool_use"


def test_translated_call_reaches_the_chat_provider_as_chat(gateway: Any, standin: StandIn) -> None:
    raw = client(gateway).messages.with_raw_response.create(
        model="oa-gpt-x", max_tokens=64, system="Be brief.", messages=USER, stop_sequences=["END"]
    )
    message = raw.parse()
    [seen] = standin.find("/v1/chat/completions")
    assert seen.body["messages"] == [{"role": "system", "content": "Be brief."}, *USER]
    assert seen.body["max_tokens"] == 64 and seen.body["stop"] == ["END"]
    assert seen.headers["authorization"] == f"Bearer {OPENAI_SECRET}"
    assert message.usage.input_tokens == seen.usage["prompt_tokens"]
    row = ledger_row(gateway, raw.headers["x-request-id"])
    assert row["operation"] == "messages" and row["provider"] == "standin-openai"
    assert row["input_tokens"] == seen.usage["prompt_tokens"]


def test_count_tokens_asks_anthropic_or_estimates(gateway: Any, standin: StandIn) -> None:
    sdk = client(gateway)
    counted = sdk.messages.count_tokens(model="an-gpt-x", messages=USER)
    [seen] = standin.find("/v1/messages/count_tokens")
    assert seen.body["model"] == "gpt-x" and counted.input_tokens > 0
    estimated = sdk.messages.with_raw_response.count_tokens(model="oa-gpt-x", messages=USER)
    assert estimated.parse().input_tokens > 0 and estimated.headers["x-agentgw-estimated"] == "true"


def test_errors_are_anthropics_shape(gateway: Any) -> None:
    with pytest.raises(anthropic.AuthenticationError) as bad_key:
        client(gateway, key="not-a-gateway-key-at-all").messages.create(model="an-gpt-x", max_tokens=5, messages=USER)
    assert bad_key.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "Incorrect gateway key provided."},
    }
    with pytest.raises(anthropic.NotFoundError) as unknown:
        client(gateway).messages.create(model="no-such-model", max_tokens=5, messages=USER)
    assert unknown.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as invalid:
        client(gateway).messages.create(model="an-gpt-x", max_tokens=0, messages=USER)
    assert invalid.value.body["type"] == "error" and "max_tokens" in invalid.value.body["error"]["message"]


def test_a_budget_refusal_tells_the_sdk_not_to_retry(gateway: Any, standin: StandIn) -> None:
    sent: list[Any] = []
    http = httpx2.Client(event_hooks={"request": [sent.append]})  # the transport the SDK itself uses
    sdk = client(gateway, key=BUDGET_KEY, http_client=http, max_retries=2)  # the SDK's default retries
    with pytest.raises(anthropic.RateLimitError) as refused:
        sdk.messages.create(model="an-gpt-x", max_tokens=100, messages=USER)
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert refused.value.body["error"]["type"] == "rate_limit_error"
    assert len(sent) == 1  # the SDK honoured x-should-retry: no retry of a 429
    assert standin.find("/v1/messages") == []


def test_upstream_stream_error_reaches_the_client_as_an_error_event(gateway: Any) -> None:
    with (
        pytest.raises(anthropic.APIStatusError),
        client(gateway).messages.stream(model="an-stream-error", max_tokens=50, messages=USER) as stream,
    ):
        stream.get_final_message()


def test_span_names_the_api(gateway: Any, spans: MemorySink) -> None:
    raw = client(gateway).messages.with_raw_response.create(model="oa-gpt-x", max_tokens=17, messages=USER)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [s for s in spans.spans if s.attributes.get("gen_ai.request.max_tokens") == 17]
        if found and "agentgw.attempt" not in found[-1].attributes:
            found = [s for s in found if "agentgw.attempt" not in s.attributes]
            break
        time.sleep(0.01)
    [span] = found
    assert span.name == "chat oa-gpt-x" and span.attributes["gen_ai.operation.name"] == "chat"
    assert span.attributes["agentgw.api"] == "messages" and span.attributes["agentgw.translated"] is True
    assert span.attributes["gen_ai.usage.input_tokens"] == raw.parse().usage.input_tokens


def test_unknown_paths_under_messages_are_404(gateway: Any) -> None:
    response = httpx.post(gateway.url + "/v1/messages/batches", headers={"x-api-key": ADMIN_KEY}, json={})
    assert response.status_code in (404, 405)
    assert response.json()["type"] == "error" and response.json()["error"]["type"] == "not_found_error"
    assert response.headers["x-agentgw-error-code"] in ("unknown_endpoint", "method_not_allowed")


def test_a_wrong_method_is_refused_in_anthropics_shape(gateway: Any) -> None:
    with pytest.raises(anthropic.APIStatusError) as refused:  # what the SDK makes of it
        client(gateway).get("/v1/messages", cast_to=httpx.Response)
    assert refused.value.status_code == 405 and refused.value.body["error"]["type"] == "invalid_request_error"
    assert refused.value.response.headers["x-agentgw-error-code"] == "method_not_allowed"


def test_an_input_guardrail_blocks_before_any_provider(gateway: Any, standin: StandIn) -> None:
    leaking = [{"role": "user", "content": f"deploy with {SECRET} please"}]
    with pytest.raises(anthropic.BadRequestError) as refused:
        client(gateway, key=GUARDED_KEY).messages.create(model="an-gpt-x", max_tokens=20, messages=leaking)
    assert refused.value.body["error"]["type"] == "invalid_request_error"
    assert "'secrets'" in refused.value.body["error"]["message"] and SECRET not in str(refused.value.body)
    assert refused.value.response.headers["x-agentgw-error-code"] == "guardrail_blocked"  # the shape has no code
    assert standin.requests == []


@pytest.mark.parametrize("model", ["an-echo-request", "oa-echo-request"])
def test_streamed_output_is_redacted(gateway: Any, model: str) -> None:
    mail = [{"role": "user", "content": "write to ada.lovelace@example.com today"}]
    sdk = client(gateway, key=GUARDED_KEY)
    with sdk.messages.stream(model=model, max_tokens=400, messages=mail) as stream:
        text = "".join(stream.text_stream)
    assert "ada.lovelace@example.com" not in text and "[EMAIL]" in text
    whole = sdk.messages.create(model=model, max_tokens=400, messages=mail)
    assert "ada.lovelace@example.com" not in whole.content[0].text and "[EMAIL]" in whole.content[0].text


@pytest.mark.parametrize("model", ["an-gpt-x", "oa-gpt-x"])
def test_tool_access_applies_to_tool_use(gateway: Any, standin: StandIn, model: str) -> None:
    delete_user = {**WEATHER, "name": "delete_user"}
    with pytest.raises(anthropic.BadRequestError) as refused:
        client(gateway, key=GUARDED_KEY).messages.create(model=model, max_tokens=50, messages=USER, tools=[delete_user])
    assert "'tools'" in refused.value.body["error"]["message"]
    assert standin.requests == []


def test_usage_the_provider_did_not_report_is_counted_for_the_client_too(gateway: Any) -> None:
    """Translated to a server that reports no usage: the message still carries usage, the gateway's
    count, and the ledger marks it estimated."""
    raw = client(gateway).messages.with_raw_response.create(model="oa-no-usage", max_tokens=50, messages=USER)
    message = raw.parse()
    row = ledger_row(gateway, raw.headers["x-request-id"])
    assert row["estimated"] == 1 and message.usage.output_tokens == row["output_tokens"] > 0
    assert message.usage.input_tokens == row["input_tokens"] > 0
