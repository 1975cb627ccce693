"""The APIs the gateway speaks, one module each, by name (the ledger's `operation`).

chat          OpenAI Chat Completions           POST /v1/chat/completions
embeddings    OpenAI embeddings                 POST /v1/embeddings
responses     OpenAI Responses                  POST /v1/responses
messages      Anthropic Messages                POST /v1/messages
"""

import orjson

from gateway.apis.base import Api, Event, Shape, StreamReader, StreamState
from gateway.apis.chat import ChatApi
from gateway.apis.embeddings import EmbeddingsApi
from gateway.apis.messages import MessagesApi
from gateway.apis.responses import ResponsesApi
from gateway.errors import GatewayError

API: dict[str, Api] = {api.name: api for api in (ChatApi(), EmbeddingsApi(), ResponsesApi(), MessagesApi())}


def error_json(error: GatewayError, path: str) -> bytes:
    """An error answered outside a route (by the middleware, or by the server before the app), in the
    shape the caller's SDK reads: Anthropic's under `/v1/messages` (a GET there, a path that does not
    exist below it, a head too large), OpenAI's everywhere else."""
    if path == "/v1/messages" or path.startswith("/v1/messages/"):
        return orjson.dumps(API["messages"].error_body(error))
    return error.json()


__all__ = ["API", "Api", "Event", "Shape", "StreamReader", "StreamState", "error_json"]
