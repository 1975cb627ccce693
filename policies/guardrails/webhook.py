"""Webhook guardrail: an external service judges the texts; the gateway makes the HTTP call.

This package does no I/O. The gateway passes a `PostJson` (an async callable, typically over its one
shared HTTP client) to `GuardrailSet.from_config`; a webhook guardrail without one is a config error.

Contract (JSON in, verdict out):

    request:  {"guardrail": "<name>", "phase": "input" | "output",
               "texts": ["...", ...], "roles": ["user", "tool", "assistant", ...]}
    response: {"action": "allow" | "block" | "redact",
               "reason": "...",                                   (optional, recorded nowhere)
               "redactions": [{"text": "<exact substring>",      (for "redact")
                               "entity": "email",                 (optional, placeholder [EMAIL])
                               "index": 0}]}                      (optional, else every text)

`texts` are the phase's texts after this gateway's own redactions (the service never sees what a
local guardrail already removed). Redactions name substrings rather than offsets, so no character
encoding has to be agreed on. A timeout (`timeout_ms`), an exception from `post_json`, or an answer
that does not follow the contract is an error, handled by `on_error`: `allow` passes (fail open,
recorded as a flag verdict with entity `webhook_error`), `block` blocks (fail closed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from policies.guardrails.verdicts import Finding, Phase


class PostJson(Protocol):
    """POST `payload` as JSON to `url` with `headers`, give up after `timeout` seconds, return the JSON answer."""

    def __call__(
        self, url: str, payload: dict[str, Any], headers: dict[str, str], timeout: float
    ) -> Awaitable[Any]: ...


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    """The service's decision, or an error (`error=True`) when it could not be had."""

    action: Literal["allow", "block", "redact"]
    findings: tuple[tuple[Finding, ...], ...] = ()
    entities: tuple[str, ...] = ()
    error: bool = False


class WebhookClient:
    """Calls one webhook guardrail's service and reads its answer."""

    def __init__(self, url: str, timeout_ms: int, headers: dict[str, str], post_json: PostJson) -> None:
        self.url = url
        self.timeout = timeout_ms / 1000
        self.headers = dict(headers)
        self.post_json = post_json

    async def judge(self, guardrail: str, phase: Phase, texts: Sequence[str], roles: Sequence[str]) -> WebhookAnswer:
        payload = {"guardrail": guardrail, "phase": phase, "texts": list(texts), "roles": list(roles)}
        try:
            answer = await asyncio.wait_for(
                self.post_json(self.url, payload, dict(self.headers), self.timeout), timeout=self.timeout
            )
            return _read(answer, texts)
        except Exception:  # the service being slow, down or wrong is what on_error is for
            return WebhookAnswer("block", error=True)


def _read(answer: Any, texts: Sequence[str]) -> WebhookAnswer:
    if not isinstance(answer, dict) or answer.get("action") not in ("allow", "block", "redact"):
        raise ValueError("webhook answer does not follow the contract")
    action = answer["action"]
    if action != "redact":
        return WebhookAnswer(action)
    redactions = answer.get("redactions")
    if not isinstance(redactions, list):
        raise ValueError("a redact answer needs a redactions list")
    per_text: list[list[Finding]] = [[] for _ in texts]
    entities: set[str] = set()
    for item in redactions:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) or not item["text"]:
            raise ValueError("each redaction needs a non-empty text")
        entity = str(item.get("entity") or "redacted").lower()
        placeholder = f"[{entity.upper()}]"
        index = item.get("index")
        targets = [index] if isinstance(index, int) and 0 <= index < len(texts) else range(len(texts))
        for i in targets:
            start = texts[i].find(item["text"])
            while start >= 0:
                per_text[i].append(Finding(start, start + len(item["text"]), entity, placeholder))
                start = texts[i].find(item["text"], start + len(item["text"]))
        entities.add(entity)
    return WebhookAnswer("redact", tuple(tuple(f) for f in per_text), tuple(sorted(entities)))
