"""Counting a call's prompt exactly for one target, when admission's cheap bound does not fit (near a
budget's cap, or a full token limit): the body as the target's provider receives it (translated when it
does not speak the call's API), counted in that API's shape (`Api.prompt_tokens`) with the provider's
tokenizer (`gateway.metering.tokenizers`). Long prompts are counted on a worker thread (tiktoken lets
go of the GIL), so the event loop keeps serving."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from gateway.apis.base import Api
from gateway.apis.sizes import text_bytes
from gateway.metering.tokenizers import tokenizer_for
from gateway.metering.tokens import TokenCounter
from gateway.providers import Provider
from gateway.translate import TranslationError
from gateway.translate.chain import translation_for
from routing import Target

THREAD_ABOVE_CHARS = 50_000  # about 2.5 ms of tiktoken on one core: longer prompts are counted off the loop


class PromptCount:
    """The exact prompt tokens of one call for each target it may reach (memoised per provider, wire
    API and tokenizer: a route's targets often share them)."""

    def __init__(
        self, api: Api, body: Mapping[str, Any], providers: Mapping[str, Provider], counter: TokenCounter
    ) -> None:
        self._api = api
        self._body = body
        self._size: int | None = None  # bytes in the body's texts, once a count needs to know
        self._providers = providers
        self._counter = counter
        self._seen: dict[tuple[str, str, str], int | None] = {}

    async def __call__(self, target: Target) -> int | None:
        provider = self._providers.get(target.provider)
        if provider is None:
            return None
        tokenizer = tokenizer_for(provider.kind, target.upstream_model, target.spec.tokenizer, self._counter)
        if tokenizer is None:
            return None
        try:
            translation = translation_for(self._api, provider)
        except TranslationError:
            return None
        key = (provider.name, translation.wire.name, tokenizer.name)
        if key in self._seen:
            return self._seen[key]
        wire = translation.wire

        def count() -> int | None:
            try:
                body = translation.request(dict(self._body), target.upstream_model)
            except TranslationError:
                return None
            return wire.prompt_tokens(body, tokenizer)

        if self._size is None:
            self._size = text_bytes(self._body)
        counted = await asyncio.to_thread(count) if self._size > THREAD_ABOVE_CHARS else count()
        self._seen[key] = counted
        return counted
