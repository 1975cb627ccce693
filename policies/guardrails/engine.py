"""`GuardrailSet`: the guardrails that apply to one call, and the scans the gateway runs.

Order: guardrails run in the order named (team's, then key's), local ones first and webhooks last,
so a block by a local guardrail spares the webhook round trip and webhooks see the local redactions.
The first blocking guardrail ends the scan: its verdict names it and the rest do not run. Redactions
from every redacting guardrail are merged (overlaps united) and applied once per text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from policies.guardrails.config import GuardrailConfig
from policies.guardrails.guards import (
    Guard,
    GuardrailConfigError,
    InjectionGuard,
    TextGuard,
    ToolGuard,
    WebhookGuard,
    build_guard,
)
from policies.guardrails.judging import apply_findings, run_webhooks
from policies.guardrails.messages import Path, Slot, embedding_slots, with_edits
from policies.guardrails.shapes import Api, Shape, mcp, shape
from policies.guardrails.streaming import StreamGuard
from policies.guardrails.verdicts import Finding, Phase, ScanResult, Verdict
from policies.guardrails.webhook import PostJson

DEFAULT_MAX_HOLD = 128
MIN_MAX_HOLD = 64  # the longest prefix a built-in rule needs before it can tell a match (an IBAN, a typed key)


class GuardrailSet:
    """The guardrails of one principal (a team's set plus its key's), ready to scan calls.

    Build it once per principal and config (it holds compiled detectors) and share it between calls:
    it keeps no per-call state. Verdicts come back on each `ScanResult` and on each `StreamGuard`.
    """

    def __init__(self, guards: Sequence[Guard], *, max_hold: int = DEFAULT_MAX_HOLD) -> None:
        if max_hold < MIN_MAX_HOLD:
            raise GuardrailConfigError(f"max_hold must be at least {MIN_MAX_HOLD} characters")
        self.guards = tuple(guards)
        self.max_hold = max_hold
        self._by_phase: dict[Phase, tuple[Guard, ...]] = {
            phase: tuple(g for g in guards if phase in g.phases and not isinstance(g, WebhookGuard))
            + tuple(g for g in guards if phase in g.phases and isinstance(g, WebhookGuard))
            for phase in ("input", "output")
        }
        output = self._by_phase["output"]
        self.has_input_guards = bool(self._by_phase["input"])
        self.has_output_guards = any(not isinstance(g, InjectionGuard) for g in output)
        # A tool's result (MCP): the output phase's guards, and prompt injection where it reads tool output.
        local = tuple(g for g in output if not isinstance(g, WebhookGuard))
        readers = tuple(g for g in guards if isinstance(g, InjectionGuard) and "tool" in g.roles)
        self._tool_result_guards = local + readers + tuple(g for g in output if isinstance(g, WebhookGuard))
        self.has_tool_call_guards = any(not isinstance(g, InjectionGuard) for g in self._by_phase["input"])
        self.has_tool_result_guards = bool(self._tool_result_guards)
        self._blocking_tool_guards = tuple(
            g for g in self._by_phase["input"] if isinstance(g, ToolGuard) and g.action == "block"
        )

    def blocks_tool(self, name: str) -> bool:
        """Whether a `tool_access` guardrail that blocks refuses every call to the tool `name` (the MCP
        gateway leaves such tools out of `tools/list`: a list shows what may be called)."""
        return any(guard.policy.disallowed([name]) for guard in self._blocking_tool_guards)

    @classmethod
    def from_config(
        cls,
        configs: Mapping[str, GuardrailConfig],
        names: Sequence[str],
        *,
        post_json: PostJson | None = None,
        max_hold: int = DEFAULT_MAX_HOLD,
    ) -> GuardrailSet:
        """The named guardrails (duplicates once, first place kept). Raises `GuardrailConfigError` for an
        unknown name, a webhook without `post_json`, or a classifier that is not installed."""
        guards: list[Guard] = []
        for name in dict.fromkeys(names):
            if name not in configs:
                raise GuardrailConfigError(f"unknown guardrail {name!r}")
            guards.append(build_guard(name, configs[name], post_json))
        return cls(guards, max_hold=max_hold)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.guards)

    async def scan_request(self, body: Any, api: Api = "chat") -> ScanResult:
        """Input phase of a request in the client's API shape (`chat`, `responses` or `messages`):
        every text it sends (see `shapes/`), and the tools it declares or forces."""
        api_shape = shape(api)
        if not self.has_input_guards or not isinstance(body, dict):
            return ScanResult(body)
        return await self._scan(body, "input", api_shape.request_slots(body), api_shape.request_tool_names(body))

    async def scan_embeddings(self, body: Any) -> ScanResult:
        """Input phase of an embeddings request (`input` strings; injection scoring does not apply)."""
        if not self.has_input_guards or not isinstance(body, dict):
            return ScanResult(body)
        return await self._scan(body, "input", embedding_slots(body), [], injection=False)

    async def scan_response(self, data: Any, api: Api = "chat") -> ScanResult:
        """Output phase of a non-streaming response in the client's API shape: its texts, tool-call
        arguments and the tools it calls.

        Logprobs of a redacted text are dropped (they would spell out what was redacted)."""
        api_shape = shape(api)
        if not self.has_output_guards or not isinstance(data, dict):
            return ScanResult(data)
        slots = api_shape.response_slots(data)
        return await self._scan(data, "output", slots, api_shape.response_tool_names(data), api_shape=api_shape)

    async def scan_tool_call(self, tool: str, arguments: Mapping[str, Any]) -> ScanResult:
        """Input phase of a tool call the gateway forwards (MCP `tools/call`): its name against the
        `tool_access` guardrails, the texts of its arguments against the others. The body scanned and
        returned is `{"arguments": ...}`. Prompt injection does not read arguments (the model wrote them)."""
        body = {"arguments": dict(arguments)}
        if not self.has_tool_call_guards:
            return ScanResult(body)
        return await self._scan(body, "input", mcp.call_slots(arguments), [tool], injection=False)

    async def scan_tool_result(self, result: Mapping[str, Any]) -> ScanResult:
        """What a tool (or an MCP server's resource or prompt) gave back, in MCP's wire shape: its texts
        against the output phase's guardrails, and against prompt injection where `scan_tool_results`
        is on (tool output is where indirect injection arrives). Verdicts carry phase `output`."""
        if not self.has_tool_result_guards or not isinstance(result, dict):
            return ScanResult(result)
        return await self._scan(result, "output", mcp.result_slots(result), [], guards=self._tool_result_guards)

    def stream_guard(self, api: Api = "chat") -> StreamGuard:
        """A fresh guard for one streamed response (output phase) whose events are in the client's API
        shape. Not needed when `has_output_guards` is false: then events can go out untouched."""
        guards = self._by_phase["output"]
        return StreamGuard(
            [g for g in guards if isinstance(g, TextGuard)],
            [g for g in guards if isinstance(g, ToolGuard)],
            [g for g in guards if isinstance(g, WebhookGuard)],
            max_hold=self.max_hold,
            api=api,
        )

    async def _scan(
        self,
        body: dict[str, Any],
        phase: Phase,
        slots: list[Slot],
        tool_names: list[str],
        *,
        injection: bool = True,
        api_shape: Shape | None = None,
        guards: tuple[Guard, ...] | None = None,
    ) -> ScanResult:
        """`api_shape`, for a response: its `redaction_extras` are applied with the redactions. `guards`:
        these instead of the phase's own."""
        verdicts: list[Verdict] = []
        to_redact: dict[int, list[Finding]] = {}
        webhooks: list[WebhookGuard] = []
        for guard in self._by_phase[phase] if guards is None else guards:
            verdict: Verdict | None = None
            if isinstance(guard, WebhookGuard):
                webhooks.append(guard)
                continue
            if isinstance(guard, ToolGuard):
                bad = guard.policy.disallowed(tool_names)
                verdict = Verdict(guard.name, phase, guard.action, ("tool",), len(bad)) if bad else None
            elif isinstance(guard, TextGuard):
                verdict = _text_verdict(guard, phase, slots, to_redact)
            elif injection:
                verdict = _injection_verdict(guard, phase, slots)
            if verdict is not None:
                verdicts.append(verdict)
                if verdict.action == "block":
                    return ScanResult(body, tuple(verdicts), guard.name)
        texts = [slot.text for slot in slots]
        for i, findings in to_redact.items():
            texts[i] = apply_findings(slots[i], texts[i], findings)
        if webhooks and slots:
            blocked_by = await run_webhooks(webhooks, phase, slots, texts, verdicts)
            if blocked_by is not None:
                return ScanResult(body, tuple(verdicts), blocked_by)
        edits: dict[Path, Any] = {slot.path: text for slot, text in zip(slots, texts, strict=True) if text != slot.text}
        if not edits:
            return ScanResult(body, tuple(verdicts))
        if api_shape is not None:
            edits.update(api_shape.redaction_extras(body, list(edits)))
        return ScanResult(with_edits(body, edits), tuple(verdicts), modified=True)


def _text_verdict(
    guard: TextGuard, phase: Phase, slots: list[Slot], to_redact: dict[int, list[Finding]]
) -> Verdict | None:
    count = 0
    entities: set[str] = set()
    for i, slot in enumerate(slots):
        findings = guard.detector.find(slot.text)
        if not findings:
            continue
        count += len(findings)
        entities.update(f.entity for f in findings)
        if guard.action == "redact":
            to_redact.setdefault(i, []).extend(findings)
        elif guard.action == "block":
            break
    return Verdict(guard.name, phase, guard.action, tuple(sorted(entities)), count) if count else None


def _injection_verdict(guard: Guard, phase: Phase, slots: list[Slot]) -> Verdict | None:
    """A verdict when a text reaches the threshold; with `action: flag`, also one with count 0 and the
    highest score when none does, so the ledger holds the score of every scanned call."""
    assert isinstance(guard, InjectionGuard)
    over = 0
    best = 0.0
    scanned = False
    categories: set[str] = set()
    signals: set[str] = set()
    for slot in slots:
        if slot.role in guard.roles and not slot.json and slot.text:
            scanned = True
            scored = guard.score(slot.text, slot.role)
            best = max(best, scored.score)
            if scored.score >= guard.threshold:
                over += 1
                categories.update(scored.categories)
                signals.update(scored.signals)
    if not over and not (scanned and guard.action == "flag"):
        return None
    return Verdict(
        guard.name, phase, guard.action, tuple(sorted(categories)), over, score=best, signals=tuple(sorted(signals))
    )
