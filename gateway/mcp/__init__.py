"""The MCP gateway: the gateway's own MCP endpoint (`/mcp`, streamable HTTP, on the official SDK's
server) federating the upstream MCP servers of `mcp.servers` (streamable HTTP, SSE, stdio).

    client ──► /mcp  endpoint.py   the gateway key (never forwarded), attribution headers, Origin
                     server.py     the SDK's low-level Server: tools/list, tools/call, prompts, resources
                     calls.py      one tool call: access rules, guardrails, schema (arguments.py), limits
                                   and budgets, the upstream call, the result's guardrails
                     record.py     what a tool call leaves: one ledger event, metrics, its span
                     upstream.py   one connection per upstream server (the SDK's client, transports.py),
                                   timeouts, health
                     registry.py   the upstream servers of the config in force; a reload adds and retires them
                     config.py     the `mcp:` section
                     names.py      `<server>__<tool>` and `<server>+<uri>`
                     errors.py     every refusal as a JSON-RPC error, in one place

Who may see and use what is `policies.mcp_access`; what the guardrails read in tool calls and
results is `policies.guardrails.shapes.mcp`.
"""
