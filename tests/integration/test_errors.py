"""Bad input and failing providers: every case answers in OpenAI's error shape with the right code."""

from __future__ import annotations

import json
import logging
import socket
from typing import Any

import openai
import pytest

from tests.gateway_harness import (
    ADMIN_KEY,
    AGENT_KEY,
    ANTHROPIC_SECRET,
    LIMITED_KEY,
    OPENAI_SECRET,
    base_config,
)
from tests.standin import StandIn

USER = [{"role": "user", "content": "hello"}]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def gateway(standin_server: StandIn, module_gateway_factory: Any) -> Any:
    config = base_config(standin_server)
    config["server"]["max_body_bytes"] = 64 * 1024
    config["providers"]["nowhere"] = {
        "type": "openai",
        "base_url": f"http://127.0.0.1:{closed_port()}/v1",
        "api_key": OPENAI_SECRET,
    }
    config["models"]["unreachable"] = {"provider": "nowhere", "upstream": "gpt-x"}
    return module_gateway_factory(config)


def post(
    gateway: Any,
    body: Any = None,
    *,
    content: bytes | None = None,
    key: str | None = ADMIN_KEY,
    path: str = "/v1/chat/completions",
    headers: dict[str, str] | None = None,
) -> Any:
    with gateway.http(key) as http:
        if content is not None:
            return http.post(path, content=content, headers=headers)
        return http.post(path, json=body, headers=headers)


def assert_error(response: Any, status: int, code: str, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["code"] == code and response.headers["x-agentgw-error-code"] == code
    if param is not None:
        assert error["param"] == param
    assert "Traceback" not in error["message"]
    return dict(error)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty"),
        (b"{oops", "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (b"\xff\xfe", "not valid JSON"),
        (b'"just a string"', "must be a JSON object"),
    ],
)
def test_bodies_that_are_not_json_objects(gateway: Any, content: bytes, fragment: str) -> None:
    error = assert_error(post(gateway, content=content), 400, "invalid_request")
    assert fragment in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "oa-gpt-x", "messages": "hello"}, "messages"),
        ({"model": "oa-gpt-x", "messages": []}, "messages"),
        ({"model": "oa-gpt-x", "messages": USER, "max_tokens": -5}, "max_tokens"),
        (
            {"model": "oa-gpt-x", "messages": [{"role": "user", "content": {"text": "hi"}}]},
            "messages[0].content",
        ),
        ({"messages": USER}, "model"),
        ({"model": "oa-gpt-x", "messages": USER, "stream": "please"}, "stream"),
    ],
)
def test_schema_errors(gateway: Any, standin: StandIn, body: dict[str, Any], param: str) -> None:
    assert_error(post(gateway, body), 400, "invalid_request", param)
    assert standin.requests == []


def nested(depth: int) -> str:
    """JSON for an unknown field's value: arrays `depth` levels deep around one string."""
    return "[" * depth + '"deep"' + "]" * depth


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_tokens", str(2**62)),
        ("max_tokens", str(2**63 - 1)),
        ("max_tokens", str(2**64)),  # beyond 64 bits JSON parsers read a float
        ("max_completion_tokens", str(2**31)),
        ("n", str(2**40)),
        ("seed", str(2**63)),
        ("vendor_extension", nested(64)),  # 65 levels with the body
        ("vendor_extension", nested(254)),
        ("vendor_extension", nested(990)),
    ],
)
def test_odd_but_well_formed_bodies_are_400s_naming_the_field(
    gateway: Any, standin: StandIn, field: str, value: str
) -> None:
    """Huge integers and deep nesting used to reach the router, the provider's re-serialisation or
    a recursive walk and come back as 500s; the body's own check refuses them first."""
    for model in ("oa-gpt-x", "an-gpt-x", "mock-chat"):
        content = f'{{"model": "{model}", "messages": {json.dumps(USER)}, "{field}": {value}}}'.encode()
        error = assert_error(post(gateway, content=content), 400, "invalid_request", field)
        assert field in error["message"]
    assert standin.requests == []


def test_tool_call_arguments_nested_too_deep_are_a_400_when_translated(gateway: Any, standin: StandIn) -> None:
    """Arguments are JSON inside a string, out of the body check's sight; translated for Anthropic
    they become an object, which could not be serialised for the provider (a 500)."""
    arguments = '{"a": ' + nested(300) + "}"
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    messages = [*USER, {"role": "assistant", "content": None, "tool_calls": [call]}]
    messages.append({"role": "tool", "tool_call_id": "c1", "content": "done"})
    error = assert_error(
        post(gateway, {"model": "an-gpt-x", "messages": messages}),
        400,
        "invalid_request",
        "messages[1].tool_calls[0].function.arguments",
    )
    assert "more than 64 levels" in error["message"]
    assert standin.requests == []


def test_deepest_bodies_are_400s_too(gateway: Any) -> None:
    content = b'{"model": "oa-gpt-x", "messages": [], "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    error = assert_error(post(gateway, content=content), 400, "invalid_request")
    assert "more than 64 levels" in error["message"]


def test_nesting_up_to_the_limit_is_served(gateway: Any, standin: StandIn) -> None:
    content = f'{{"model": "oa-gpt-x", "messages": {json.dumps(USER)}, "x": {nested(63)}, "max_tokens": {2**31 - 1}}}'
    assert post(gateway, content=content.encode()).status_code == 200
    assert json.dumps(standin.requests[-1].body["x"], separators=(",", ":")) == nested(63)


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"from": "nan"}, "from"),
        ({"to": "inf"}, "to"),
        ({"from": "-1e20"}, "from"),
        ({"to": "0001-01-01"}, "to"),
        ({"from": "99999999999w"}, "from"),
        ({"from": "1e400"}, "from"),
    ],
)
def test_usage_times_out_of_range_are_400s(gateway: Any, query: dict[str, str], param: str) -> None:
    for path in ("/v1/usage", "/v1/feedback/export"):
        with gateway.http() as http:
            assert_error(http.get(path, params=query), 400, "invalid_request", param)


def test_huge_body_is_413_before_it_is_read(gateway: Any) -> None:
    big = {"model": "oa-gpt-x", "messages": [{"role": "user", "content": "x" * 100_000}]}
    assert_error(post(gateway, big), 413, "request_too_large")


def test_huge_chunked_body_is_413(gateway: Any) -> None:
    def chunks() -> Any:
        yield b'{"model": "oa-gpt-x", "messages": [{"role": "user", "content": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}]}'

    with gateway.http() as http:
        response = http.post("/v1/chat/completions", content=chunks())
    assert_error(response, 413, "request_too_large")


def test_unknown_and_forbidden_models(gateway: Any) -> None:
    assert_error(post(gateway, {"model": "no-such-model", "messages": USER}), 404, "model_not_found", "model")
    assert_error(
        post(gateway, {"model": "an-gpt-x", "messages": USER}, key=LIMITED_KEY),
        403,
        "permission_denied",
        "model",
    )
    # A model of the other kind is a capability mismatch: 400 naming `model`, as the error table says.
    error = assert_error(post(gateway, {"model": "mock-embed", "messages": USER}), 400, "invalid_request", "model")
    assert "serves embeddings, not chat" in error["message"]
    error = assert_error(
        post(gateway, {"model": "mock-chat", "input": "x"}, path="/v1/embeddings"), 400, "invalid_request", "model"
    )
    assert "serves chat, not embeddings" in error["message"]


@pytest.mark.parametrize("key", [None, "agentgw-not-a-real-key", ""])
def test_missing_or_unknown_key_is_401(gateway: Any, key: str | None) -> None:
    error = assert_error(post(gateway, {"model": "oa-gpt-x", "messages": USER}, key=key), 401, "invalid_api_key")
    assert error["type"] == "authentication_error"


def test_sdk_sees_authentication_error(gateway: Any) -> None:
    with pytest.raises(openai.AuthenticationError):
        gateway.client("agentgw-wrong-key-000").chat.completions.create(model="oa-gpt-x", messages=USER)


def test_pinned_agent_conflict_is_403(gateway: Any) -> None:
    response = post(gateway, {"model": "oa-gpt-x", "messages": USER}, key=AGENT_KEY, headers={"x-agent-id": "other"})
    assert_error(response, 403, "permission_denied", "x-agent-id")


def test_malformed_attribution_header_is_400(gateway: Any) -> None:
    # Any printable text is an id (spaces too); a tab is a control character.
    response = post(gateway, {"model": "oa-gpt-x", "messages": USER}, headers={"x-task-id": "bad\ttask id"})
    assert_error(response, 400, "invalid_request", "x-task-id")


@pytest.mark.parametrize(
    ("model", "status", "code", "kind"),
    [
        ("oa-fail-500", 502, "upstream_error", "status_500"),
        ("an-fail-503", 502, "upstream_error", "status_503"),
        ("oa-fail-429", 502, "upstream_error", "status_429"),
        ("oa-fail-401", 502, "upstream_error", "status_401"),
        ("oa-not-json", 502, "upstream_error", "bad_response"),
        ("an-not-json", 502, "upstream_error", "bad_response"),
        ("unreachable", 502, "upstream_error", "connect"),
        ("oa-slow", 504, "upstream_timeout", "timeout"),
        ("an-slow", 504, "upstream_timeout", "timeout"),
    ],
)
def test_upstream_failures(gateway: Any, model: str, status: int, code: str, kind: str) -> None:
    error = assert_error(post(gateway, {"model": model, "messages": USER}), status, code)
    [attempt] = error["attempts"]
    assert attempt["model"] == model and attempt["error"] == kind
    assert OPENAI_SECRET not in error["message"] and ANTHROPIC_SECRET not in error["message"]


@pytest.mark.parametrize("model", ["oa-leak-key", "an-leak-key"])
def test_a_provider_key_disguised_in_an_error_is_still_masked(gateway: Any, model: str) -> None:
    """The stand-in echoes the key it was sent with a zero-width space inside: exact matching would
    let it through to the client."""
    error = assert_error(post(gateway, {"model": model, "messages": USER}), 400, "invalid_request")
    assert "Incorrect API key provided: [REDACTED]" in error["message"]
    visible = error["message"].replace("\u200b", "")
    assert OPENAI_SECRET not in visible and ANTHROPIC_SECRET not in visible


def test_upstream_429_passes_its_retry_after(gateway: Any) -> None:
    response = post(gateway, {"model": "oa-fail-429", "messages": USER})
    assert response.headers["retry-after"] == "1"


def test_provider_rejecting_the_request_is_the_clients_400(gateway: Any) -> None:
    for model in ("oa-fail-400", "an-fail-400"):
        error = assert_error(post(gateway, {"model": model, "messages": USER}), 400, "invalid_request")
        assert "bad param from stand-in" in error["message"]


def test_sdk_exceptions_for_upstream_failures(gateway: Any) -> None:
    client = gateway.client()
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="oa-fail-500", messages=USER)
    assert info.value.status_code == 502
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="oa-slow", messages=USER)
    assert info.value.status_code == 504


def test_stream_that_fails_before_its_first_chunk_gets_a_status(gateway: Any) -> None:
    response = post(gateway, {"model": "oa-fail-503", "messages": USER, "stream": True})
    assert_error(response, 502, "upstream_error")


@pytest.mark.parametrize("model", ["oa-stream-error", "an-stream-error", "oa-stream-cut", "an-stream-cut"])
def test_failure_after_the_stream_started_ends_it_with_one_error_event(gateway: Any, model: str) -> None:
    with (
        gateway.http() as http,
        http.stream(
            "POST", "/v1/chat/completions", json={"model": model, "messages": USER, "stream": True}
        ) as response,
    ):
        assert response.status_code == 200
        events = [line for line in response.iter_lines() if line]
    assert len(events) >= 2
    assert events[-1].startswith('data: {"error":')
    assert "[DONE]" not in events[-1]
    assert sum('"error"' in e for e in events) == 1


def test_sdk_raises_on_mid_stream_error(gateway: Any) -> None:
    stream = gateway.client().chat.completions.create(model="oa-stream-error", messages=USER, stream=True)
    with pytest.raises(openai.APIError):
        list(stream)


def test_client_disconnect_cancels_the_upstream_request(gateway: Any, standin: StandIn) -> None:
    for model in ("oa-stream-slow", "an-stream-slow"):
        with (
            gateway.http() as http,
            http.stream(
                "POST", "/v1/chat/completions", json={"model": model, "messages": USER, "stream": True}
            ) as response,
        ):
            lines = response.iter_lines()
            next(lines)
            next(lines)
        seen = standin.wait_for(lambda e, m=model: e.model == m.split("-", 1)[1] and e.cancelled, timeout=5)
        assert not seen.finished


def test_unknown_endpoint_and_wrong_method(gateway: Any) -> None:
    with gateway.http() as http:
        assert_error(http.get("/v1/nothing-here"), 404, "unknown_endpoint")
        assert_error(http.get("/v1/chat/completions"), 405, "method_not_allowed")


def test_secrets_never_reach_the_logs(gateway: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for model in ("oa-fail-500", "an-fail-401", "unreachable", "oa-gpt-x", "an-gpt-x"):
        post(gateway, {"model": model, "messages": USER})
    post(gateway, {"model": "oa-gpt-x", "messages": USER}, key="agentgw-wrong-key-000")
    text = caplog.text
    assert "upstream attempt failed" in text
    for secret in (OPENAI_SECRET, ANTHROPIC_SECRET, ADMIN_KEY, "agentgw-wrong-key-000"):
        assert secret not in text
