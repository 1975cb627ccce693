"""The MCP gateway end to end: the official MCP client against the gateway's /mcp, the gateway
against stand-in MCP servers built with the official SDK, all on loopback."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.shared.exceptions import MCPError

from gateway.telemetry.tracing import MemorySink
from tests.gateway_harness import ADMIN_KEY, AGENT_KEY, base_config
from tests.mcp_standin import servers as mcp_standin
from tests.mcp_standin.client import gateway_client
from tests.standin import ServerThread, StandIn

UPSTREAM_TOKEN = "upstream-github-SECRET-token-0001"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def upstream() -> Iterator[ServerThread]:
    server = mcp_standin.serve_http("github")
    yield server
    server.stop()


def mcp_config(standin: StandIn, upstream_url: str, **mcp: Any) -> dict[str, Any]:
    config = base_config(standin)
    config["mcp"] = {
        "servers": {
            "github": {
                "transport": "streamable_http",
                "url": upstream_url + "/mcp",
                "headers": {"authorization": f"Bearer {UPSTREAM_TOKEN}"},
                "timeout_seconds": 5,
            }
        },
        "access": [{"allow": ["*"], "deny": ["github__delete_*"]}],
        **mcp,
    }
    return config


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_tools_listed_and_called_through_the_gateway(
    mode: str, standin: StandIn, upstream: ServerThread, gateway_factory: Callable[..., Any]
) -> None:
    gateway = gateway_factory(mcp_config(standin, upstream.url))
    mcp_standin.SEEN.clear()

    async def main() -> None:
        async with gateway_client(gateway.url, mode=mode) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            assert {"github__echo", "github__add", "github__fetch_page"} <= tools
            assert "github__delete_repo" not in tools  # denied: hidden
            result = await client.call_tool("github__add", {"a": 2, "b": 3})
            assert not result.is_error
            assert result.structured_content == {"result": 5}
            with pytest.raises(MCPError) as denied:
                await client.call_tool("github__delete_repo", {"name": "agentgw"})
            assert denied.value.code == -32602
            assert denied.value.data["code"] == "tool_not_found"
            assert "not available to this key" in denied.value.message

    asyncio.run(main())
    calls = [seen for seen in mcp_standin.SEEN if seen["server"] == "github"]
    assert [c["tool"] for c in calls] == ["add"]  # the denied call never reached the server
    headers = calls[0]["headers"]
    assert headers.get("authorization") == f"Bearer {UPSTREAM_TOKEN}"  # the server's own credential
    assert ADMIN_KEY not in str(headers)  # never the gateway key


def traced(config: dict[str, Any]) -> dict[str, Any]:
    config["telemetry"] = {"tracing": {"batch_delay_ms": 10}}
    return config


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def test_tool_calls_are_metered_reported_and_replayed_with_the_model_calls(
    standin: StandIn, upstream: ServerThread, gateway_factory: Callable[..., Any]
) -> None:
    config = mcp_config(standin, upstream.url)
    config["mcp"]["servers"]["github"].update({"cost_per_call_usd": 0.001, "tool_costs": {"add": 0.25}})
    config["teams"]["ops"] = {"budget": {"usd": 10, "period": "day"}}
    gateway = gateway_factory(config)
    attribution = {"x-session-id": "sess-mcp-1", "x-task-id": "ticket-7", "x-agent-id": "planner"}
    model = gateway.client(default_headers=attribution)

    def chat(text: str) -> None:
        model.chat.completions.create(model="mock-chat", messages=[{"role": "user", "content": text}])

    async def main() -> None:
        async with gateway_client(gateway.url, headers=attribution) as client:
            await asyncio.to_thread(chat, "plan")
            assert (await client.call_tool("github__add", {"a": 1, "b": 1})).structured_content == {"result": 2}
            await asyncio.to_thread(chat, "go")
            assert (await client.call_tool("github__echo", {"text": "hi"})).content[0].text == "hi"
            failed = await client.call_tool("github__fail", {})
            assert failed.is_error  # the tool's own error: a result, passed on

    asyncio.run(main())
    with gateway.http() as http:
        report = http.get("/v1/usage", params={"group_by": "server,tool", "operation": "tool_call"}).json()
        rows = {(r["server"], r["tool"]): r for r in report["data"]}
        assert set(rows) == {("github", "add"), ("github", "echo"), ("github", "fail")}
        assert rows[("github", "add")]["cost_usd"] == 0.25 and rows[("github", "echo")]["cost_usd"] == 0.001
        assert rows[("github", "fail")]["errors"] == 1
        assert report["totals"]["requests"] == 3
        by_operation = http.get("/v1/usage", params={"group_by": "operation"}).json()["data"]
        assert {r["operation"]: r["requests"] for r in by_operation} == {"chat": 2, "tool_call": 3}
        replay = http.get("/v1/sessions/sess-mcp-1").json()
        budgets = http.get("/v1/budgets").json()
    calls = replay["calls"]
    assert [c["operation"] for c in calls] == ["chat", "tool_call", "chat", "tool_call", "tool_call"]
    tool = calls[1]
    assert tool["requested_model"] == "github__add" and tool["task"] == "ticket-7" and tool["agent"] == "planner"
    assert tool["tool"]["server"] == "github" and tool["tool"]["name"] == "add"
    assert tool["tool"]["bytes_in"] == len('{"a":1,"b":1}') and tool["tool"]["bytes_out"] > 0
    assert calls[4]["outcome"] == "error" and calls[4]["error_type"] == "tool_error"
    team = next(b for b in budgets["data"] if b["scope"]["kind"] == "team")
    assert team["spent_usd"] >= 0.252 - 1e-9  # the tools' prices count against the team's budget


def test_one_span_per_tool_call_a_child_of_the_callers_trace(
    standin: StandIn, upstream: ServerThread, gateway_factory: Callable[..., Any]
) -> None:
    sink = MemorySink()
    gateway = gateway_factory(traced(mcp_config(standin, upstream.url)), span_sink=sink)
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    meta_trace, meta_parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    mcp_standin.SEEN.clear()

    async def main() -> None:
        headers = {"traceparent": f"00-{trace_id}-{parent_id}-01", "x-session-id": "sess-traced"}
        async with gateway_client(gateway.url, headers=headers) as client:
            await client.call_tool("github__echo", {"text": "traced"})
            # MCP's own place for the caller's context (params._meta) wins over the HTTP header
            await client.call_tool(
                "github__add", {"a": 1, "b": 2}, meta={"traceparent": f"00-{meta_trace}-{meta_parent}-01"}
            )

    asyncio.run(main())
    spans = wait_for(lambda: len(sink.spans) >= 4 and sink.spans)
    [by_meta] = [s for s in spans if s.name == "execute_tool github__add"]
    assert f"{by_meta.trace_id:032x}" == meta_trace and f"{by_meta.parent_span_id:016x}" == meta_parent
    [call] = [s for s in spans if s.name == "execute_tool github__echo"]
    [upstream_span] = [s for s in spans if s.name == "tools/call echo"]
    assert f"{call.trace_id:032x}" == trace_id and f"{call.parent_span_id:016x}" == parent_id
    attrs = call.attributes
    assert attrs["gen_ai.operation.name"] == "execute_tool" and attrs["gen_ai.tool.name"] == "github__echo"
    assert attrs["gen_ai.tool.call.id"].startswith("req_") and attrs["gen_ai.conversation.id"] == "sess-traced"
    assert attrs["mcp.method.name"] == "tools/call" and attrs["agentgw.mcp.server"] == "github"
    assert attrs["agentgw.outcome"] == "ok" and "error.type" not in attrs
    assert upstream_span.parent_span_id == call.span_id and upstream_span.trace_id == call.trace_id
    assert upstream_span.attributes["server.port"] == upstream.port
    # the upstream server's work is a child of the gateway's request to it (SEP-414: params._meta)
    [seen] = [s for s in mcp_standin.SEEN if s["tool"] == "echo"]
    assert seen["meta"]["traceparent"] == f"00-{trace_id}-{upstream_span.span_id:016x}-01"
    with gateway.http() as http:
        metrics = http.get("/metrics").text
    assert 'agentgw_tool_calls_total{server="github",tool="echo",outcome="ok",code="ok"} 1.0' in metrics
    assert 'agentgw_tool_call_duration_seconds_count{server="github",tool="echo",error_type=""} 1' in metrics
    assert 'agentgw_mcp_server_up{server="github"} 1.0' in metrics
    assert UPSTREAM_TOKEN not in metrics


def guarded(config: dict[str, Any], **guardrails: Any) -> dict[str, Any]:
    config["guardrails"] = guardrails
    config["teams"]["ops"] = {"guardrails": list(guardrails)}
    return config


def test_guardrails_on_tool_calls_and_results(
    standin: StandIn, upstream: ServerThread, gateway_factory: Callable[..., Any]
) -> None:
    config = guarded(
        mcp_config(standin, upstream.url),
        injection={"type": "prompt_injection", "action": "block", "scan_tool_results": True},
        pii={"type": "pii", "action": "redact", "entities": ["email"]},
        secrets={"type": "secrets", "action": "block"},
        tools={"type": "tool_access", "action": "block", "deny": ["*__environment"]},
    )
    gateway = gateway_factory(config)
    mcp_standin.SEEN.clear()

    async def main() -> None:
        async with gateway_client(gateway.url, headers={"x-session-id": "sess-guarded"}) as client:
            listed = {tool.name for tool in (await client.list_tools()).tools}
            assert "github__echo" in listed and "github__environment" not in listed  # tool_access: not callable
            with pytest.raises(MCPError) as injected:
                await client.call_tool("github__fetch_page", {"url": "https://shop.example.com/review"})
            assert injected.value.code == -32012 and injected.value.data["code"] == "guardrail_blocked"
            assert "injection" in injected.value.message and "IGNORE" not in injected.value.message
            redacted = await client.call_tool("github__contact", {"person": "Jane"})
            assert redacted.content[0].text == "Jane can be reached at [EMAIL]"
            assert redacted.structured_content == {"result": "Jane can be reached at [EMAIL]"}
            with pytest.raises(MCPError) as secret:
                await client.call_tool("github__echo", {"text": "key sk-proj-" + "a1B2c3D4e5" * 5})
            assert secret.value.data["code"] == "guardrail_blocked" and "secrets" in secret.value.message
            with pytest.raises(MCPError) as tool_access:  # a tool_access rule holds for MCP calls too
                await client.call_tool("github__environment", {})
            assert "tools" in tool_access.value.message
            with pytest.raises(MCPError) as invalid:
                await client.call_tool("github__add", {"a": "two", "b": 3})
            assert invalid.value.code == -32602 and invalid.value.data["param"] == "arguments"

    asyncio.run(main())
    assert [s["tool"] for s in mcp_standin.SEEN] == ["fetch_page", "contact"]  # refused calls never left
    with gateway.http() as http:
        calls = http.get("/v1/sessions/sess-guarded").json()["calls"]
    assert [c["requested_model"] for c in calls] == ["github__fetch_page", "github__contact"]  # admitted ones
    blocked, redacted = calls
    assert blocked["outcome"] == "error" and blocked["error_type"] == "guardrail_blocked"
    verdicts = {v["guardrail"]: v for v in blocked["guardrails"]}
    assert verdicts["injection"]["phase"] == "output" and verdicts["injection"]["action"] == "block"
    assert redacted["outcome"] == "ok" and redacted["guardrails"][0]["entities"] == ["email"]


def test_an_upstream_that_hangs_or_dies_gives_a_protocol_error(
    standin: StandIn, upstream: ServerThread, gateway_factory: Callable[..., Any]
) -> None:
    doomed = mcp_standin.serve_http("doomed")
    config = mcp_config(standin, upstream.url)
    config["mcp"]["servers"]["github"]["timeout_seconds"] = 0.5
    config["mcp"]["servers"]["doomed"] = {"transport": "streamable_http", "url": doomed.url + "/mcp"}
    gateway = gateway_factory(config)

    async def main() -> None:
        async with gateway_client(gateway.url) as client:
            with pytest.raises(MCPError) as hung:
                await client.call_tool("github__slow", {"seconds": 30})
            assert hung.value.code == -32017 and hung.value.data["code"] == "upstream_timeout"
            assert "did not answer tools/call slow within 0.5 s" in hung.value.message
            assert (await client.call_tool("github__echo", {"text": "still here"})).content[0].text == "still here"
            assert (await client.call_tool("doomed__echo", {"text": "alive"})).content[0].text == "alive"
            await asyncio.to_thread(doomed.stop)
            with pytest.raises(MCPError) as dead:
                await client.call_tool("doomed__echo", {"text": "anyone?"})
            assert dead.value.code == -32016 and dead.value.data["code"] == "upstream_error"
            tools = {tool.name for tool in (await client.list_tools()).tools}
            assert "github__echo" in tools and not any(t.startswith("doomed__") for t in tools)

    asyncio.run(main())
    with gateway.http() as http:
        servers = {s["name"]: s for s in http.get("/v1/mcp/servers").json()["data"]}
    assert servers["github"]["timeouts"] == 1 and servers["github"]["state"] == "up"
    assert servers["doomed"]["state"] == "down" and servers["doomed"]["last_error"] in ("failed", "closed", "connect")
    assert servers["github"]["location"] == f"{upstream.url}/mcp" and UPSTREAM_TOKEN not in str(servers)


def test_servers_and_their_health_are_scoped_to_what_a_key_may_use(
    standin: StandIn, upstream: ServerThread, gateway_factory: Callable[..., Any]
) -> None:
    config = mcp_config(standin, upstream.url)
    config["mcp"]["servers"]["other"] = {"transport": "streamable_http", "url": upstream.url + "/mcp"}
    config["mcp"]["access"] = [{"team": "ops", "allow": ["*"]}, {"team": "research", "allow": ["other__echo"]}]
    gateway = gateway_factory(config)
    with gateway.http(AGENT_KEY) as http:
        assert [s["name"] for s in http.get("/v1/mcp/servers").json()["data"]] == ["other"]
    with gateway.http() as http:
        assert [s["name"] for s in http.get("/v1/mcp/servers").json()["data"]] == ["github", "other"]

    async def main() -> None:
        async with gateway_client(gateway.url, key=AGENT_KEY) as client:
            assert [tool.name for tool in (await client.list_tools()).tools] == ["other__echo"]

    asyncio.run(main())


def test_the_endpoint_refuses_what_the_gateway_refuses(
    standin: StandIn, upstream: ServerThread, gateway_factory: Callable[..., Any]
) -> None:
    gateway = gateway_factory(mcp_config(standin, upstream.url))
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    accept = {"accept": "application/json, text/event-stream"}
    with gateway.http(None) as http:
        missing = http.post("/mcp", json=body, headers=accept)
        assert missing.status_code == 401
        assert missing.json()["error"]["data"]["code"] == "invalid_api_key" and missing.json()["id"] is None
        wrong = http.post("/mcp", json=body, headers={**accept, "authorization": "Bearer not-a-gateway-key"})
        assert wrong.status_code == 401
    with gateway.http() as http:
        foreign = http.post("/mcp", json=body, headers={**accept, "origin": "https://evil.example"})
        assert foreign.status_code == 403 and foreign.json()["error"]["data"]["code"] == "permission_denied"
        assert http.get("/mcp").status_code == 405  # no standing stream
    with gateway.http(AGENT_KEY) as http:  # this key is pinned to agent `crawler`
        other = http.post("/mcp", json=body, headers={**accept, "x-agent-id": "somebody-else"})
        assert other.status_code == 403


def test_stdio_and_sse_servers(standin: StandIn, gateway_factory: Callable[..., Any], monkeypatch: Any) -> None:
    monkeypatch.setenv("AGENTGW_TEST_PROVIDER_SECRET", "sk-test-gateway-environment-0001")
    sse = mcp_standin.serve_sse("legacy")
    try:
        config = base_config(standin)
        config["mcp"] = {
            "servers": {
                "files": {
                    "transport": "stdio",
                    "command": sys.executable,
                    "args": ["-m", "tests.mcp_standin.servers", "files"],
                    "cwd": str(ROOT),
                    "env": {"FILES_ROOT": "/srv/shared"},
                },
                "legacy": {"transport": "sse", "url": sse.url + "/sse"},
            },
            "access": [{"allow": ["*"]}],
        }
        gateway = gateway_factory(config)

        async def main() -> None:
            async with gateway_client(gateway.url) as client:
                tools = {tool.name for tool in (await client.list_tools()).tools}
                assert {"files__echo", "legacy__echo"} <= tools
                assert (await client.call_tool("legacy__add", {"a": 40, "b": 2})).structured_content == {"result": 42}
                env = (await client.call_tool("files__environment", {})).structured_content["result"]
                assert "FILES_ROOT" in env and "PATH" in env
                assert "AGENTGW_TEST_PROVIDER_SECRET" not in env  # never the gateway's own environment
                prompt = await client.get_prompt("files__greet", {"person": "Ada"})
                assert prompt.messages[0].content.text == "Say hello to Ada."
                resources = [r.uri for r in (await client.list_resources()).resources]
                assert "files+note://today" in resources and "legacy+note://today" in resources
                read = await client.read_resource("legacy+note://today")
                assert read.contents[0].text == "Buy milk." and read.contents[0].uri == "legacy+note://today"

        asyncio.run(main())
        # The gateway first: the SDK's SSE server, stopped under an open stream, leaves its streams unclosed.
        gateway.stop()
    finally:
        sse.stop()


@pytest.mark.usefixtures("within_a_minute")
def test_rate_limits_and_budgets_hold_tool_calls_too(
    standin: StandIn, upstream: ServerThread, gateway_factory: Callable[..., Any]
) -> None:
    config = mcp_config(standin, upstream.url)
    config["mcp"]["servers"]["github"]["tool_costs"] = {"add": 0.6}
    config["teams"]["ops"] = {"budget": {"usd": 1, "period": "day"}}
    config["keys"][0]["limits"] = {"rpm": 2}  # the admin key
    gateway = gateway_factory(config)

    async def main() -> None:
        async with gateway_client(gateway.url) as client:
            assert (await client.call_tool("github__add", {"a": 1, "b": 2})).structured_content == {"result": 3}
            with pytest.raises(MCPError) as budget:
                await client.call_tool("github__add", {"a": 1, "b": 2})
            assert budget.value.code == -32014 and budget.value.data["code"] == "budget_exceeded"
            assert (await client.call_tool("github__echo", {"text": "free"})).content[0].text == "free"
            with pytest.raises(MCPError) as limited:
                await client.call_tool("github__echo", {"text": "one too many"})
            assert limited.value.code == -32013 and limited.value.data["code"] == "rate_limit_exceeded"
            assert limited.value.data["retry_after"] >= 1

    asyncio.run(main())


def test_each_upstream_gets_its_own_credentials_and_nothing_of_the_callers(
    standin: StandIn, upstream: ServerThread, gateway_factory: Callable[..., Any]
) -> None:
    config = mcp_config(standin, upstream.url)
    config["mcp"]["servers"]["search"] = {
        "transport": "streamable_http",
        "url": upstream.url + "/mcp",
        "headers": {"x-api-key": "upstream-search-SECRET-0002"},
    }
    gateway = gateway_factory(config)
    mcp_standin.SEEN.clear()
    caller = {"x-session-id": "sess-creds", "x-task-id": "t-1", "x-agent-id": "planner", "cookie": "sid=caller"}

    async def main() -> None:
        async with gateway_client(gateway.url, headers=caller) as client:
            await client.call_tool("github__echo", {"text": "one"})
            await client.call_tool("search__echo", {"text": "two"})

    asyncio.run(main())
    github, search = (seen["headers"] for seen in mcp_standin.SEEN)
    assert github["authorization"] == f"Bearer {UPSTREAM_TOKEN}" and "x-api-key" not in github
    assert search["x-api-key"] == "upstream-search-SECRET-0002" and "authorization" not in search
    for headers in (github, search):
        assert ADMIN_KEY not in str(headers)
        assert not {"x-session-id", "x-task-id", "x-agent-id", "cookie"} & set(headers)


def test_a_flagged_result_is_passed_on_and_its_verdict_kept(
    standin: StandIn, upstream: ServerThread, gateway_factory: Callable[..., Any]
) -> None:
    config = guarded(
        mcp_config(standin, upstream.url),
        injection={"type": "prompt_injection", "action": "flag", "scan_tool_results": True},
    )
    gateway = gateway_factory(config)

    async def main() -> None:
        async with gateway_client(gateway.url, headers={"x-session-id": "sess-flagged"}) as client:
            page = await client.call_tool("github__fetch_page", {"url": "https://shop.example.com/review"})
            assert page.content[0].text == mcp_standin.INJECTED_PAGE

    asyncio.run(main())
    with gateway.http() as http:
        [call] = http.get("/v1/sessions/sess-flagged").json()["calls"]
        metrics = http.get("/metrics").text
    [verdict] = call["guardrails"]
    assert call["outcome"] == "ok" and verdict["action"] == "flag" and verdict["phase"] == "output"
    assert verdict["count"] >= 1 and verdict["score"] >= 0.5
    assert 'agentgw_guardrail_triggers_total{guardrail="injection",phase="output",action="flag"} 1.0' in metrics


def test_unknown_tool_names_cost_the_upstream_little(
    standin: StandIn, upstream: ServerThread, gateway_factory: Callable[..., Any]
) -> None:
    gateway = gateway_factory(mcp_config(standin, upstream.url))

    def upstream_requests() -> int:
        with gateway.http() as http:
            [server] = http.get("/v1/mcp/servers").json()["data"]
        return int(server["requests"])

    async def main() -> None:
        async with gateway_client(gateway.url) as client:
            await client.call_tool("github__echo", {"text": "warm"})
            before = await asyncio.to_thread(upstream_requests)
            for i in range(20):
                with pytest.raises(MCPError) as missing:
                    await client.call_tool(f"github__made_up_{i}", {})
                assert missing.value.data["code"] == "tool_not_found"
            # at most one listing per MISS_SECONDS, not one per name a caller makes up
            assert await asyncio.to_thread(upstream_requests) - before <= 2

    asyncio.run(main())
    with gateway.http() as http:
        metrics = http.get("/metrics").text
    assert "made_up" not in metrics  # a name the server does not have never becomes a label
    assert 'agentgw_tool_calls_total{server="github",tool="",outcome="error",code="tool_not_found"} 20.0' in metrics


def test_a_server_that_never_answers_costs_its_timeout_not_a_hang(
    standin: StandIn, upstream: ServerThread, gateway_factory: Callable[..., Any]
) -> None:
    with socket.socket() as hole:  # accepts connections (the kernel's backlog), never reads or answers
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        config = mcp_config(standin, upstream.url)
        config["mcp"]["servers"]["hole"] = {
            "transport": "streamable_http",
            "url": f"http://127.0.0.1:{hole.getsockname()[1]}/mcp",
            "timeout_seconds": 0.5,
            "connect_timeout_seconds": 0.3,
        }
        gateway = gateway_factory(config)

        async def main() -> None:
            async with gateway_client(gateway.url) as client:
                started = time.monotonic()
                tools = {tool.name for tool in (await client.list_tools()).tools}
                assert "github__echo" in tools and not any(name.startswith("hole__") for name in tools)
                for _ in range(2):
                    with pytest.raises(MCPError) as hung:
                        await client.call_tool("hole__echo", {"text": "anyone?"})
                    assert hung.value.data["code"] in ("upstream_timeout", "upstream_error")
                assert time.monotonic() - started < 5
                assert (await client.call_tool("github__echo", {"text": "fine"})).content[0].text == "fine"

        asyncio.run(main())
        with gateway.http() as http:
            servers = {s["name"]: s for s in http.get("/v1/mcp/servers").json()["data"]}
            metrics = http.get("/metrics").text
    assert servers["hole"]["state"] == "down" and servers["hole"]["last_error"] in ("timeout", "connect")
    assert 'agentgw_mcp_server_up{server="hole"} 0.0' in metrics


def test_a_stdio_server_that_dies_mid_call_gives_an_error_and_is_started_again(
    standin: StandIn, gateway_factory: Callable[..., Any]
) -> None:
    config = base_config(standin)
    config["mcp"] = {
        "servers": {
            "files": {
                "transport": "stdio",
                "command": sys.executable,
                "args": ["-m", "tests.mcp_standin.servers", "files"],
                "cwd": str(ROOT),
                "timeout_seconds": 10,
            }
        },
        "access": [{"allow": ["*"]}],
    }
    gateway = gateway_factory(config)

    async def main() -> None:
        async with gateway_client(gateway.url) as client:
            first = (await client.call_tool("files__pid", {})).structured_content["result"]
            slow = asyncio.create_task(client.call_tool("files__slow", {"seconds": 30}))
            await asyncio.sleep(0.5)
            started = time.monotonic()
            os.kill(first, signal.SIGKILL)
            with pytest.raises(MCPError) as died:
                await slow
            assert died.value.code == -32016 and died.value.data["code"] == "upstream_error"
            assert "closed the connection during tools/call slow" in died.value.message
            assert time.monotonic() - started < 5  # at once, not at the server's timeout
            second = (await client.call_tool("files__pid", {})).structured_content["result"]
            assert second != first

    asyncio.run(main())


def test_a_handshake_session_belongs_to_the_key_that_opened_it(
    standin: StandIn, upstream: ServerThread, gateway_factory: Callable[..., Any]
) -> None:
    config = mcp_config(standin, upstream.url)
    config["mcp"]["access"] = [{"allow": ["*"]}]  # both keys may list the tools
    gateway = gateway_factory(config)
    headers = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25"}
    admin, agent = {"authorization": f"Bearer {ADMIN_KEY}"}, {"authorization": f"Bearer {AGENT_KEY}"}
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    with gateway.http(None) as http:
        opened = http.post("/mcp", json=initialize, headers={**headers, **admin})
        assert opened.status_code == 200
        headers["mcp-session-id"] = opened.headers["mcp-session-id"]
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert http.post("/mcp", json=initialized, headers={**headers, **admin}).status_code == 202
        assert http.post("/mcp", json=listing, headers={**headers, **agent}).status_code == 404  # not its session
        assert http.delete("/mcp", headers={**headers, **agent}).status_code == 404  # nor its to end
        owner = http.post("/mcp", json=listing, headers={**headers, **admin})
        assert owner.status_code == 200 and "github__echo" in owner.text


def test_a_tool_call_adds_no_log_line_at_the_default_level(
    standin: StandIn, upstream: ServerThread, gateway_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # `agentgw serve`'s default level
    config = mcp_config(standin, upstream.url)
    config["mcp"]["servers"]["github"]["url"] = upstream.url + "/mcp?token=upstream-url-SECRET-0003"
    gateway = gateway_factory(config)

    async def main() -> None:
        async with gateway_client(gateway.url) as client:
            caplog.clear()
            for _ in range(3):
                assert (await client.call_tool("github__echo", {"text": "hi"})).content[0].text == "hi"

    asyncio.run(main())
    assert [r.getMessage() for r in caplog.records if r.name.startswith("httpx2")] == []  # the SDK's HTTP client
    assert "SECRET" not in caplog.text
