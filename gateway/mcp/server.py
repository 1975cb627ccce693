"""The gateway's MCP server: the official SDK's low-level `Server`, whose handlers federate the
upstream servers for the caller of each request.

Every handler reads its caller from the HTTP request that carried it (`endpoint.Caller`: the key,
the attribution headers, the runtime of the config in force when it arrived), so what a session
may see and do is decided per request, never fixed when the session opened. Lists are the union of
the servers' lists, named `<server>__<name>` (resources `<server>+<uri>`), filtered by the access
rules; a server that fails or times out is left out of a list (and logged), never fails it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from mcp import Client
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp_types import (
    CallToolRequestParams,
    GetPromptRequestParams,
    ListPromptsResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    ListToolsResult,
    PaginatedRequestParams,
    Prompt,
    ReadResourceRequestParams,
    Resource,
    ResourceTemplate,
    Tool,
)

from gateway import __version__
from gateway.errors import GatewayError, ToolNotFound, internal_error
from gateway.mcp import names
from gateway.mcp.calls import call_tool
from gateway.mcp.errors import mcp_error
from gateway.mcp.record import Rpc
from gateway.mcp.upstream import Upstream

if TYPE_CHECKING:
    from gateway.mcp.endpoint import Caller

log = logging.getLogger("agentgw.mcp")

T = TypeVar("T")
Ctx = ServerRequestContext[Any, Any]
INSTRUCTIONS = (
    "agentgw federates several MCP servers: each tool and prompt is named <server>__<name>, each "
    "resource <server>+<uri>. The lists show what this key may use."
)


def build_server() -> Server[Any]:
    server: Server[Any] = Server(
        "agentgw",
        version=__version__,
        instructions=INSTRUCTIONS,
        on_list_tools=_list_tools,
        on_list_resources=_list_resources,
        on_list_resource_templates=_list_resource_templates,
        on_list_prompts=_list_prompts,
    )
    # These pass the servers' answers on as wire dicts (unknown fields kept); the SDK shapes them for
    # the client's protocol revision.
    server.add_request_handler("tools/call", CallToolRequestParams, _call_tool)
    server.add_request_handler("resources/read", ReadResourceRequestParams, _read_resource)
    server.add_request_handler("prompts/get", GetPromptRequestParams, _get_prompt)
    # The gateway traces every tool call itself (gateway.mcp.calls); the SDK's own span would also
    # become the ambient context of upstream requests and take their parent's place.
    server.middleware = []
    return server


def caller_of(ctx: Ctx) -> Caller:
    """The caller of a request, as the endpoint authenticated the HTTP request that carried it."""
    request = ctx.request
    assert request is not None  # HTTP is the gateway's only MCP transport
    caller: Caller = request.scope["state"]["mcp_caller"]
    return caller


async def _answering(work: Awaitable[T]) -> T:
    """A handler's work, with every failure turned into the JSON-RPC error the client gets."""
    try:
        return await work
    except GatewayError as error:
        raise mcp_error(error) from None
    except Exception:
        log.exception("MCP request failed")
        raise mcp_error(internal_error()) from None


# -- tools ----------------------------------------------------------------------------------------


async def _list_tools(ctx: Ctx, params: PaginatedRequestParams | None) -> ListToolsResult:
    caller = caller_of(ctx)

    async def listing(upstream: Upstream) -> list[Tool]:
        return list((await upstream.tools()).values())

    found = await _each_server(caller, listing, "tools/list")
    guard = caller.runtime.guards.for_principal(caller.ctx.principal)
    tools = [
        tool.model_copy(update={"name": name})
        for upstream, items in found
        for tool in items
        if caller.allows(name := names.qualified(upstream.name, tool.name))
        and (guard is None or not guard.blocks_tool(name))  # a tool_access guardrail would refuse the call
    ]
    return ListToolsResult(tools=tools)


async def _call_tool(ctx: Ctx, params: CallToolRequestParams) -> dict[str, Any]:
    caller = caller_of(ctx)
    rpc = Rpc(
        request_id=None if ctx.request_id is None else str(ctx.request_id),
        protocol_version=ctx.protocol_version,
        session_id=ctx.request.headers.get("mcp-session-id") if ctx.request is not None else None,
    )
    trace = _trace(ctx, caller)
    return await call_tool(caller.runtime, caller.ctx, params.name, params.arguments, rpc, trace)


def _trace(ctx: Ctx, caller: Caller) -> dict[str, str]:
    """The caller's trace context: `params._meta` (MCP's own place for it, SEP-414), else the HTTP
    request's `traceparent`."""
    meta = (ctx.params or {}).get("_meta")
    if isinstance(meta, dict) and isinstance(meta.get("traceparent"), str):
        trace = {"traceparent": meta["traceparent"]}
        if isinstance(meta.get("tracestate"), str):
            trace["tracestate"] = meta["tracestate"]
        return trace
    return dict(caller.trace)


# -- resources ------------------------------------------------------------------------------------


async def _list_resources(ctx: Ctx, params: PaginatedRequestParams | None) -> ListResourcesResult:
    caller = caller_of(ctx)

    async def listing(upstream: Upstream) -> list[Resource]:
        async def ask(client: Client) -> list[Resource]:
            if client.server_capabilities.resources is None:
                return []
            return (await client.list_resources()).resources

        return await upstream.request(ask, "resources/list")

    found = await _each_server(caller, listing, "resources/list")
    resources = [
        item.model_copy(update={"uri": names.resource_uri(upstream.name, item.uri)})
        for upstream, items in found
        for item in items
        if caller.allows(names.qualified(upstream.name, item.uri))
    ]
    return ListResourcesResult(resources=resources)


async def _list_resource_templates(ctx: Ctx, params: PaginatedRequestParams | None) -> ListResourceTemplatesResult:
    caller = caller_of(ctx)

    async def listing(upstream: Upstream) -> list[ResourceTemplate]:
        async def ask(client: Client) -> list[ResourceTemplate]:
            if client.server_capabilities.resources is None:
                return []
            return (await client.list_resource_templates()).resource_templates

        return await upstream.request(ask, "resources/templates/list")

    found = await _each_server(caller, listing, "resources/templates/list")
    templates = [
        item.model_copy(update={"uri_template": names.resource_uri(upstream.name, item.uri_template)})
        for upstream, items in found
        for item in items
        if caller.allows(names.qualified(upstream.name, item.uri_template))
    ]
    return ListResourceTemplatesResult(resource_templates=templates)


async def _read_resource(ctx: Ctx, params: ReadResourceRequestParams) -> dict[str, Any]:
    caller = caller_of(ctx)

    async def read() -> dict[str, Any]:
        split = names.split_uri(params.uri)
        upstream = caller.runtime.mcp.upstreams.get(split[0]) if split is not None else None
        if split is None or upstream is None or not caller.allows(names.qualified(*split)):
            raise ToolNotFound(f"Resource '{params.uri}' is not available to this key.", param="uri")
        uri = split[1]

        async def ask(client: Client) -> dict[str, Any]:
            result = await client.read_resource(uri)
            return result.model_dump(by_alias=True, mode="json", exclude_none=True)

        data = await upstream.request(ask, "resources/read")
        for item in data.get("contents") or ():
            if isinstance(item, dict) and isinstance(item.get("uri"), str):
                item["uri"] = names.resource_uri(upstream.name, item["uri"])
        return await caller.guard_result(data)

    return await _answering(read())


# -- prompts --------------------------------------------------------------------------------------


async def _list_prompts(ctx: Ctx, params: PaginatedRequestParams | None) -> ListPromptsResult:
    caller = caller_of(ctx)

    async def listing(upstream: Upstream) -> list[Prompt]:
        async def ask(client: Client) -> list[Prompt]:
            if client.server_capabilities.prompts is None:
                return []
            return (await client.list_prompts()).prompts

        return await upstream.request(ask, "prompts/list")

    found = await _each_server(caller, listing, "prompts/list")
    prompts = [
        item.model_copy(update={"name": name})
        for upstream, items in found
        for item in items
        if caller.allows(name := names.qualified(upstream.name, item.name))
    ]
    return ListPromptsResult(prompts=prompts)


async def _get_prompt(ctx: Ctx, params: GetPromptRequestParams) -> dict[str, Any]:
    caller = caller_of(ctx)

    async def get() -> dict[str, Any]:
        split = names.split(params.name)
        upstream = caller.runtime.mcp.upstreams.get(split[0]) if split is not None else None
        if split is None or upstream is None or not caller.allows(params.name):
            raise ToolNotFound(f"Prompt '{params.name}' is not available to this key.", param="name")
        prompt = split[1]

        async def ask(client: Client) -> dict[str, Any]:
            result = await client.get_prompt(prompt, params.arguments)
            return result.model_dump(by_alias=True, mode="json", exclude_none=True)

        return await caller.guard_result(await upstream.request(ask, f"prompts/get {prompt}"))

    return await _answering(get())


# -- each server ----------------------------------------------------------------------------------


async def _each_server(
    caller: Caller, listing: Callable[[Upstream], Awaitable[list[T]]], what: str
) -> list[tuple[Upstream, list[T]]]:
    """One listing per server this caller may reach, side by side; the servers that fail are left
    out (their failure is in their health, the log and the metrics)."""
    upstreams = caller.runtime.mcp.reachable(caller.ctx.team, caller.ctx.key_name, caller.ctx.agent)
    results = await asyncio.gather(*(listing(upstream) for upstream in upstreams), return_exceptions=True)
    found: list[tuple[Upstream, list[T]]] = []
    for upstream, result in zip(upstreams, results, strict=True):
        if isinstance(result, GatewayError):
            log.warning("MCP server %s left out of %s: %s", upstream.name, what, result.message)
        elif isinstance(result, BaseException):
            log.error("MCP server %s left out of %s", upstream.name, what, exc_info=result)
        else:
            found.append((upstream, result))
    return found
