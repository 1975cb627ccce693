"""An MCP-capable agent framework as the gateway's client: an OpenAI Agents SDK agent whose model
calls and MCP tool calls both go through the gateway, joined by the session they share."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import openai
from agents import Agent, OpenAIResponsesModel, RunConfig, Runner
from agents.mcp import MCPServerStreamableHttp

from tests.gateway_harness import AGENT_KEY, base_config
from tests.mcp_standin import servers as mcp_standin
from tests.standin import StandIn


def test_an_agents_sdk_agent_uses_the_gateways_tools(standin: StandIn, gateway_factory: Callable[..., Any]) -> None:
    upstream = mcp_standin.serve_http("github")
    try:
        config = base_config(standin)
        config["mcp"] = {
            "servers": {"github": {"transport": "streamable_http", "url": upstream.url + "/mcp"}},
            "access": [{"team": "research", "allow": ["github__echo"]}],  # the one tool this agent may use
        }
        gateway = gateway_factory(config)
        attribution = {"X-Session-Id": "agent-session-1", "X-Task-Id": "ticket-42"}

        async def run() -> str:
            headers = {"Authorization": f"Bearer {AGENT_KEY}", **attribution}
            tools = MCPServerStreamableHttp(
                params={"url": gateway.url + "/mcp", "headers": headers},
                name="agentgw",
                cache_tools_list=False,
            )
            async with (
                openai.AsyncOpenAI(
                    base_url=gateway.base_url, api_key=AGENT_KEY, max_retries=0, default_headers=attribution
                ) as sdk,
                tools,
            ):
                model = OpenAIResponsesModel(model="oa-gpt-x", openai_client=sdk)
                agent = Agent(name="helper", instructions="Use your tools.", model=model, mcp_servers=[tools])
                result = await Runner.run(agent, "say hi", run_config=RunConfig(tracing_disabled=True))
                return str(result.final_output)

        final = asyncio.run(run())
        assert final.endswith("say hi")  # the stand-in model answers once the tool has run
        tool_calls = [seen for seen in mcp_standin.SEEN if seen["server"] == "github"]
        assert tool_calls and tool_calls[-1]["tool"] == "echo"
        with gateway.http() as http:
            replay = http.get("/v1/sessions/agent-session-1").json()["calls"]
        assert [c["operation"] for c in replay] == ["responses", "tool_call", "responses"]
        assert {c["task"] for c in replay} == {"ticket-42"} and {c["agent"] for c in replay} == {"crawler"}
        assert replay[1]["requested_model"] == "github__echo" and replay[1]["outcome"] == "ok"
    finally:
        upstream.stop()
