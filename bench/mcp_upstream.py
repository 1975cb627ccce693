"""A small MCP server for bench/mcp_bench.py: the official SDK's `MCPServer` with one tool, `echo`,
on streamable HTTP at `/mcp` (uvicorn, one process). Both protocol eras, as any SDK server.

Run:
    python bench/mcp_upstream.py --port 9100
"""

from __future__ import annotations

import argparse

import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route


def build() -> Starlette:
    server = MCPServer("bench-upstream")

    @server.tool()
    def echo(text: str) -> str:
        """Say the text back."""
        return text

    mcp_app = server.streamable_http_app()

    async def healthz(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    # the MCP app keeps its own lifespan (the session manager): it is the outer app's
    return Starlette(routes=[Route("/healthz", healthz), Mount("/", mcp_app)], lifespan=mcp_app.router.lifespan_context)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(build(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
