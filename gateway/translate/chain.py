"""How one attempt's call travels: in the client's API when the target's provider speaks it, else
translated through Chat Completions (the pivot), and from chat to the provider's own API when that
is not chat either (Anthropic's Messages).

A `Translation` is made per attempt (it may hold state between the request and its answer) by
`translation_for(client_api, provider)`; the wire API it names is what the provider is asked to speak.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from gateway.apis import API
from gateway.apis.base import Api
from gateway.errors import UpstreamBadResponse
from gateway.metering.usage import Usage
from gateway.providers.base import Provider
from gateway.translate import messages_to_chat, responses_to_chat
from gateway.translate.base import StreamTranslation, TranslationError
from gateway.translate.chat_to_messages import JSON_TOOL_KEY, StreamTranslator, from_anthropic_response
from gateway.translate.chat_to_messages import to_anthropic_request as chat_to_messages_request

# What a provider's answer that a translation cannot read raises inside the translation.
_UNREADABLE = (ValueError, KeyError, TypeError)


class Translation:
    """The identity: the call passes through in its own API, naming the upstream model."""

    def __init__(self, client: Api, wire: Api) -> None:
        self.client = client
        self.wire = wire

    @property
    def passthrough(self) -> bool:
        return self.client is self.wire

    def request(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        """The wire request for `model` (the provider's name for it)."""
        return {**body, "model": model}

    def response(self, data: dict[str, Any], usage: Usage) -> dict[str, Any]:
        """A whole wire answer in the client's shape; `usage` is the call's (the provider's count, or the
        gateway's own where it gave none), for client APIs whose answers must carry one."""
        return data

    def stream(self) -> StreamTranslation | None:
        """The stream translation, or None when events pass through as they are."""
        return None


class ChatOverMessages(Translation):
    """A chat call carried over Anthropic's Messages API (`gateway.translate.chat_to_messages`)."""

    def __init__(self, max_tokens_default: int) -> None:
        super().__init__(API["chat"], API["messages"])
        self._max_tokens = max_tokens_default
        self._json_tool: str | None = None
        self._include_usage = False

    def request(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        payload = chat_to_messages_request(body, model, self._max_tokens)
        self._json_tool = payload.pop(JSON_TOOL_KEY, None)
        options = body.get("stream_options")
        self._include_usage = isinstance(options, dict) and options.get("include_usage") is True
        if body.get("stream") is True:
            payload["stream"] = True
        else:
            payload.pop("stream", None)
        return payload

    def response(self, data: dict[str, Any], usage: Usage) -> dict[str, Any]:
        with _Readable("message"):
            translated, _ = from_anthropic_response(data, created=int(time.time()), json_tool=self._json_tool)
        return translated

    def stream(self) -> StreamTranslation:
        translator = StreamTranslator(
            created=int(time.time()), include_usage=self._include_usage, json_tool=self._json_tool
        )
        return _Checked(_MessagesToChunks(translator))


class MessagesOverChat(Translation):
    """A Messages call carried over Chat Completions (`gateway.translate.messages_to_chat`)."""

    def __init__(self) -> None:
        super().__init__(API["messages"], API["chat"])
        self._model = ""

    def request(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        self._model = str(body.get("model") or model)
        return messages_to_chat.to_chat_request(body, model=model)

    def response(self, data: dict[str, Any], usage: Usage) -> dict[str, Any]:
        with _Readable("chat completion"):
            return messages_to_chat.from_chat_response(data, model=self._model, usage=usage)

    def stream(self) -> StreamTranslation:
        return _Checked(messages_to_chat.StreamTranslator(model=self._model))


class _MessagesToChunks:
    """`StreamTranslator` (Anthropic events -> chat chunks) behind the `StreamTranslation` contract."""

    def __init__(self, translator: StreamTranslator) -> None:
        self._translator = translator

    def feed(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self._translator.feed(str(event.get("type") or ""), dict(event))

    def finish(self, usage: Usage | None) -> list[dict[str, Any]]:
        return []


class ResponsesOverChat(Translation):
    """A Responses call carried over Chat Completions (`gateway.translate.responses_to_chat`)."""

    def __init__(self) -> None:
        super().__init__(API["responses"], API["chat"])
        self._request: dict[str, Any] = {}
        self._created = int(time.time())

    def request(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        self._request = body
        return responses_to_chat.to_chat_request(body, model=model)

    def response(self, data: dict[str, Any], usage: Usage) -> dict[str, Any]:
        model = str(self._request.get("model") or "")
        with _Readable("chat completion"):
            return responses_to_chat.from_chat_response(
                data, request=self._request, model=model, created_at=self._created, usage=usage
            )

    def stream(self) -> StreamTranslation:
        model = str(self._request.get("model") or "")
        translator = responses_to_chat.StreamTranslator(
            self._request, model=model, response_id=responses_to_chat.new_response_id(), created_at=self._created
        )
        return _Checked(translator)


class _Checked:
    """A stream translation whose failures to read the provider's events are the provider's fault."""

    def __init__(self, translation: StreamTranslation) -> None:
        self._translation = translation

    def feed(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        with _Readable("stream event"):
            return self._translation.feed(event)

    def finish(self, usage: Usage | None) -> list[dict[str, Any]]:
        with _Readable("stream"):
            return self._translation.finish(usage)


class _Readable:
    """`with _Readable(what):` a failure to read the provider's `what` is the provider's fault. A class, not
    a `contextlib.contextmanager`: it wraps every translated answer and stream event, and costs a third."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if isinstance(exc, _UNREADABLE):
            raise UpstreamBadResponse(f"the provider's {self.what} could not be translated ({exc})") from None


class Composed(Translation):
    """A call in another API carried over chat, and chat carried over the provider's own API."""

    def __init__(self, outer: Translation, inner: Translation) -> None:
        super().__init__(outer.client, inner.wire)
        self._outer = outer
        self._inner = inner

    def request(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        return self._inner.request(self._outer.request(body, model), model)

    def response(self, data: dict[str, Any], usage: Usage) -> dict[str, Any]:
        return self._outer.response(self._inner.response(data, usage), usage)

    def stream(self) -> StreamTranslation | None:
        inner, outer = self._inner.stream(), self._outer.stream()
        if inner is None or outer is None:
            return inner or outer
        return _Chained(inner, outer)


class _Chained:
    def __init__(self, inner: StreamTranslation, outer: StreamTranslation) -> None:
        self._inner = inner
        self._outer = outer

    def feed(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [out for middle in self._inner.feed(event) for out in self._outer.feed(middle)]

    def finish(self, usage: Usage | None) -> list[dict[str, Any]]:
        out = [event for middle in self._inner.finish(usage) for event in self._outer.feed(middle)]
        return out + self._outer.finish(usage)


# A call passed through in its own API: stateless, one per API.
_PASSTHROUGH = {name: Translation(api, api) for name, api in API.items()}

# A call in another API carried over chat: its translation, made per attempt.
OVER_CHAT: dict[str, Callable[[], Translation]] = {"messages": MessagesOverChat, "responses": ResponsesOverChat}


def translation_for(client: Api, provider: Provider) -> Translation:
    """How a call in `client`'s API reaches `provider`; TranslationError when it cannot."""
    apis = provider.apis
    if client.name in apis:
        return _PASSTHROUGH[client.name]
    to_wire: Translation | None = None
    if "chat" not in apis:
        if "messages" not in apis:
            raise TranslationError(f"The provider '{provider.name}' cannot serve {client.name} calls.", param="model")
        to_wire = ChatOverMessages(provider.max_tokens_default or 4096)
    if client.name == "chat":
        assert to_wire is not None
        return to_wire
    over_chat = OVER_CHAT.get(client.name)
    if over_chat is None:
        raise TranslationError(f"The provider '{provider.name}' cannot serve {client.name} calls.", param="model")
    outer = over_chat()
    return outer if to_wire is None else Composed(outer, to_wire)
