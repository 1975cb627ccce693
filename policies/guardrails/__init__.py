"""Guardrails: input and output checks on calls in the client's API shape, streams included. Plain Python, no I/O.

The model
---------
A *guardrail* is a named config (`GuardrailConfig`, a union tagged on `type`): `pii`, `secrets`,
`prompt_injection`, `regex`, `denylist`, `tool_access` or `webhook`, with an `action` (`block`,
`redact` or `flag`) and the `phases` it runs in (`input`, `output`). A principal's guardrails (its
team's names plus its key's) make one `GuardrailSet`, built once and shared by all its calls.

Each scan returns verdicts: (guardrail, phase, action, entity types, count), never the matched text,
which appears in no verdict, exception or log line of this package. `block` stops the call (the
gateway answers 400 `guardrail_blocked` naming the guardrail), `redact` replaces each match with a
typed placeholder (`[EMAIL]`, `[PHONE]`, `[CREDIT_CARD]`, `[IBAN]`, `[US_SSN]`, `[IP_ADDRESS]`,
`[SECRET]`, a regex pattern's name such as `[TICKET]`, `[REDACTED]` for the denylist), `flag` lets
the call pass and records the verdict.

What is scanned: every text of a chat request (string content, text parts, refusals, assistant
tool-call arguments redacted inside the JSON without breaking it, tool and function results, system
and developer prompts) and the embeddings `input`. Prompt injection scores user content and, with
`scan_tool_results`, tool results (patterns, then the learned models of `learned.py`: the `indirect`
one reads tool results); it has no output phase. Tool access checks the tools a request
declares (`tools`, `functions`, `tool_choice`) and the tool calls a response makes.

The same policies apply to the OpenAI Responses API (`api="responses"`) and the Anthropic Messages
API (`api="messages"`), read natively in their own shapes (never translated): where their texts,
tool results and tool names are is described in `shapes/responses.py` and `shapes/messages.py`.

Gateway API
-----------
    guardrails = parse_guardrails(config["guardrails"])          # validate the config section
    gset = GuardrailSet.from_config(guardrails, team_names + key_names, post_json=client.post_json)

    api = "chat" | "responses" | "messages"      # the client's API; bodies and events in its shape
    result = await gset.scan_request(body, api)  # request, input phase
    result = await gset.scan_embeddings(body)    # embeddings request, input phase
    if result.blocked_by: -> 400 guardrail_blocked naming result.blocked_by
    forward result.body                          # `is body` when nothing was redacted
    record result.verdicts                       # span, ledger event, metrics

    result = await gset.scan_response(data, api) # non-streaming response, output phase

    if gset.has_output_guards:                   # else send stream events untouched
        guard = gset.stream_guard(api)           # one per streamed response
        for each upstream event (a dict):  step = guard.feed(event)
            if step.blocked_by: send one error event in the client's shape naming it, close; stop
                                # (Responses: its sequence_number is guard.next_sequence_number)
            send step.chunks    # the events to send, already rebuilt (and renumbered for Responses)
        step = await guard.finish()              # at upstream end: flush what is held
        record guard.verdicts

`post_json(url, payload, headers, timeout) -> dict` is the gateway's async HTTP call for webhook
guardrails (`webhook.PostJson`; contract in `webhook.py`). The stream window is described in
`holdback.py`, each API's events in `shapes/*_stream.py`; `max_hold` (default 128 characters) bounds
how much text a stream holds back.

Detectors: `pii.py`, `secrets.py`, `injection.py` and `learned.py` (and the optional `classifier.py`), `patterns.py`
(regex, denylist), `tools.py`; shared machinery: `matching.py` (patterns for whole texts and stream
windows), `redact.py` (placeholders, JSON-safe), `messages.py` (walking chat bodies), `shapes/`
(each API's walkers and stream codec), `holdback.py` (the stream windows).
"""

from policies.guardrails.config import (
    DenylistConfig,
    GuardrailConfig,
    PiiConfig,
    PromptInjectionConfig,
    RegexConfig,
    SecretsConfig,
    ToolAccessConfig,
    WebhookConfig,
    parse_guardrails,
)
from policies.guardrails.engine import GuardrailSet
from policies.guardrails.guards import GuardrailConfigError
from policies.guardrails.injection import InjectionScore, InjectionScorer
from policies.guardrails.pii import PiiDetector
from policies.guardrails.secrets import SecretsDetector
from policies.guardrails.shapes import Api
from policies.guardrails.streaming import StreamGuard
from policies.guardrails.verdicts import Action, Finding, Phase, ScanResult, StreamStep, Verdict
from policies.guardrails.webhook import PostJson

__all__ = [
    "Action",
    "Api",
    "DenylistConfig",
    "Finding",
    "GuardrailConfig",
    "GuardrailConfigError",
    "GuardrailSet",
    "InjectionScore",
    "InjectionScorer",
    "Phase",
    "PiiConfig",
    "PiiDetector",
    "PostJson",
    "PromptInjectionConfig",
    "RegexConfig",
    "ScanResult",
    "SecretsConfig",
    "SecretsDetector",
    "StreamGuard",
    "StreamStep",
    "ToolAccessConfig",
    "Verdict",
    "WebhookConfig",
    "parse_guardrails",
]
