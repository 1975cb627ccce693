"""The APIs the gateway speaks, one module each, by name (the ledger's `operation`).

chat          OpenAI Chat Completions           POST /v1/chat/completions
embeddings    OpenAI embeddings                 POST /v1/embeddings
responses     OpenAI Responses                  POST /v1/responses
messages      Anthropic Messages                POST /v1/messages
"""

from gateway.apis.base import Api, Event, Shape, StreamReader, StreamState
from gateway.apis.chat import ChatApi
from gateway.apis.embeddings import EmbeddingsApi
from gateway.apis.messages import MessagesApi
from gateway.apis.responses import ResponsesApi

API: dict[str, Api] = {api.name: api for api in (ChatApi(), EmbeddingsApi(), ResponsesApi(), MessagesApi())}

__all__ = ["API", "Api", "Event", "Shape", "StreamReader", "StreamState"]
