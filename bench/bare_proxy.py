"""The baseline: a bare pass-through proxy on the gateway's own server stack.

A starlette app on uvicorn (uvloop + httptools, one process, no access log), the same stack
`agentgw serve` runs. `POST /v1/chat/completions` reads the body and forwards it, with the
client's Content-Type, to the upstream through one shared aiohttp.ClientSession created in the
lifespan (same connector settings as the gateway's aiohttp client), and returns the upstream's
status, body and content type. Nothing else: no auth, no parsing, no metering. `GET /healthz`
answers locally.

Run: python bench/bare_proxy.py --port 9200 --upstream http://127.0.0.1:9100
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def create_app(upstream: str) -> Starlette:
    target = upstream.rstrip("/") + "/v1/chat/completions"

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=1000, ttl_dns_cache=300, keepalive_timeout=30)
        app.state.session = aiohttp.ClientSession(
            connector=connector, skip_auto_headers=("User-Agent",), trust_env=False
        )
        try:
            yield
        finally:
            await app.state.session.close()

    async def chat_completions(request: Request) -> Response:
        body = await request.body()
        session: aiohttp.ClientSession = request.app.state.session
        headers = {"Content-Type": request.headers.get("content-type", "application/json")}
        async with session.post(target, data=body, headers=headers) as upstream_response:
            payload = await upstream_response.read()
            return Response(
                payload,
                status_code=upstream_response.status,
                media_type=upstream_response.headers.get("Content-Type", "application/json"),
            )

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    parser.add_argument("--upstream", required=True, help="base URL, e.g. http://127.0.0.1:9100")
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.upstream),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
