"""The baseline: a bare pass-through proxy on the gateway's own server stack.

A starlette app on uvicorn (uvloop + httptools, one process, no access log), the same stack
`agentgw serve` runs. `POST /v1/chat/completions`, `/v1/responses` and `/v1/messages` read the
body and forward it, with the client's Content-Type, to the same path upstream through one shared
aiohttp.ClientSession created in the lifespan (same connector settings as the gateway's aiohttp
client), and return the upstream's status, body and content type: a whole body read at once, an
event stream (`text/event-stream`) relayed chunk by chunk as it arrives. Nothing else: no auth,
no parsing, no metering. `GET /healthz` answers locally.

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
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

PATHS = ("/v1/chat/completions", "/v1/responses", "/v1/messages")


def create_app(upstream: str) -> Starlette:
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

    def forward(path: str) -> Route:
        target = upstream.rstrip("/") + path

        async def endpoint(request: Request) -> Response:
            body = await request.body()
            session: aiohttp.ClientSession = request.app.state.session
            headers = {"Content-Type": request.headers.get("content-type", "application/json")}
            upstream_response = await session.post(target, data=body, headers=headers)
            media_type = upstream_response.headers.get("Content-Type", "application/json")
            if media_type.startswith("text/event-stream"):
                return StreamingResponse(
                    relay(upstream_response), status_code=upstream_response.status, media_type=media_type
                )
            try:
                payload = await upstream_response.read()
            finally:
                upstream_response.release()
            return Response(payload, status_code=upstream_response.status, media_type=media_type)

        return Route(path, endpoint, methods=["POST"])

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    routes = [*(forward(path) for path in PATHS), Route("/healthz", healthz, methods=["GET"])]
    return Starlette(routes=routes, lifespan=lifespan)


async def relay(upstream_response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """An event stream's bytes as they arrive; the connection goes back to the pool at its end."""
    try:
        async for chunk in upstream_response.content.iter_any():
            yield chunk
    finally:
        upstream_response.release()


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
