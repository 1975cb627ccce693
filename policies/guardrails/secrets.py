"""Secrets detector: provider API keys, cloud and VCS tokens, JWTs, private keys, assigned credentials.

One rule per kind, each led by the literal its tokens start with, so `re` finds candidates with a
fast literal scan and a rule whose literal is absent costs one substring test. The `generic` kind
catches values assigned to names like password, secret, token or api_key (`KEY = "value"`,
`"token": "value"`, `password: value`), bearer tokens and passwords in URLs; only the value is
redacted, and only when it looks like a credential: long enough, letters mixed with digits or
symbols, not an identifier (`os.environ`, `settings.SECRET_KEY`, `OPENAI_API_KEY`), not a placeholder.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable

from policies.guardrails.matching import (
    CompositeDetector,
    Detector,
    DualPattern,
    Match,
    PatternDetector,
    WindowScan,
    ascii_lower,
    literal_gate,
)
from policies.guardrails.verdicts import Finding

SECRET_KINDS = (
    "openai",
    "anthropic",
    "google",
    "aws",
    "github",
    "gitlab",
    "slack",
    "stripe",
    "jwt",
    "private_key",
    "generic",
)
PLACEHOLDER = "[SECRET]"

_KEY = r"[A-Za-z0-9_\-]"
# (kind, pattern, literals the match starts with, committable). The lookbehind after each literal
# rejects a token that starts inside a longer word; it sits there so the literal stays a prefix.
_RULES: tuple[tuple[str, str, tuple[str, ...], bool], ...] = (
    ("anthropic", r"sk-ant-(?<![A-Za-z0-9_\-].{7})" + _KEY + "{32,200}", ("sk-ant-",), True),
    (
        "openai",
        r"sk-(?<![A-Za-z0-9_\-].{3})(?P<kind>proj-|svcacct-|admin-|None-)?(?!ant-)(?P<body>" + _KEY + "{20,250})",
        ("sk-",),
        True,
    ),
    ("google", r"AIza(?<![A-Za-z0-9_\-].{4})" + _KEY + "{35}", ("AIza",), True),
    (
        "aws",
        r"A(?:KIA|SIA|BIA|CCA)(?<![A-Za-z0-9].{4})[A-Z0-9]{16}(?![A-Za-z0-9])",
        ("AKIA", "ASIA", "ABIA", "ACCA"),
        False,
    ),
    ("github", r"gh[pousr]_(?<![A-Za-z0-9_].{4})[A-Za-z0-9]{36,251}", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), True),
    ("github", r"github_pat_(?<![A-Za-z0-9_].{11})[A-Za-z0-9_]{22,255}", ("github_pat_",), True),
    ("gitlab", r"glpat-(?<![A-Za-z0-9_\-].{6})" + _KEY + "{20,64}", ("glpat-",), True),
    ("slack", r"xox[abposre]-(?<![A-Za-z0-9_\-].{5})[A-Za-z0-9\-]{10,250}", ("xox",), True),
    ("slack", r"xapp-(?<![A-Za-z0-9_\-].{5})[0-9]-[A-Za-z0-9\-]{10,250}", ("xapp-",), True),
    (
        "slack",
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/\-]{20,200}",
        ("https://hooks.slack",),
        True,
    ),
    (
        "stripe",
        r"[sr]k_(?:live|test)_(?<![A-Za-z0-9_].{8})[A-Za-z0-9]{16,247}",
        ("sk_live_", "rk_live_", "sk_test_", "rk_test_"),
        True,
    ),
    (
        "jwt",
        r"eyJ(?<![A-Za-z0-9_\-.=].{3})" + _KEY + r"{8,4096}\.eyJ" + _KEY + r"{0,8192}(?:\." + _KEY + "{0,4096})?",
        ("eyJ",),
        True,
    ),
    (
        "private_key",
        r"-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----(?:[^\-]|-(?!----)){0,16384}"
        r"(?:-----END[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----)?",
        ("-----BEGIN",),
        True,
    ),
)

# Over ascii_lower(text): names are matched case-insensitively, values are read from the original.
_NAMES = (
    r"(?:pass(?:word|wd|phrase)?|pwd|secret|token|api[_\-]?key|access[_\-]?key|auth[_\-]?key|private[_\-]?key"
    r"|credentials?)"
)
_ASSIGN = r"[a-z0-9_.\-]{0,24}(?: [a-z]{2,12})?[\"']?[ \t]{0,4}(?::=|=>|=|:)[ \t]{0,4}(?:[bru]?[\"'`])?"
_VALUE = r"(?P<value>[^ \t\r\n\"'`,;(){}\[\]<>\\]{8,128})"
# (kind, pattern, literals, whether the value must look like a credential)
_GENERIC_RULES: tuple[tuple[str, str, tuple[str, ...], bool], ...] = (
    (
        "aws",
        r"(?:aws[a-z0-9_.\-]{0,30}?secret|secret_?access_?key)" + _ASSIGN + r"(?P<value>[a-z0-9/+]{40})(?![a-z0-9/+=])",
        ("secret",),
        False,
    ),
    (  # said rather than assigned: "the secret key is wJalr...", "aws secret wJalr..." (mixed case checked)
        "aws",
        r"(?:aws[a-z0-9_.\- ]{0,30}?secret|secret)(?:[ _\-]?(?:access[ _\-]?)?key)?[ \t]{1,4}(?:is[ \t]{1,4})?"
        r"(?P<value>[a-z0-9/+]{40})(?![a-z0-9/+=])",
        ("secret",),
        False,
    ),
    (
        "generic",
        _NAMES + _ASSIGN + _VALUE,
        ("pass", "pwd", "secret", "token", "apikey", "api_key", "api-key", "access", "auth", "private", "credential"),
        True,
    ),
    ("generic", r"bearer[ \t]+(?P<value>[a-z0-9._~+/\-]{20,1024}=*)", ("bearer",), True),
    (
        "generic",
        r"[a-z][a-z0-9+.\-]{1,15}://[^ \t\r\n:/@\"'<>]{1,64}:(?P<value>[^ \t\r\n:/@\"'<>]{3,128})@",
        ("://",),
        False,
    ),
)

# A URL password rule can only be under way when the window holds "://" or ends in ":" or ":/".
_SCHEME_GATE = re.compile(r"://|:/?\Z")
_IDENTIFIER = re.compile(
    r"[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)+(?:\(\))?|[A-Z][A-Z0-9_]*|[a-z][a-z0-9_]*"
)
_NAME_IS = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}=")  # `input_tokens=1234`: a field, not a value
_PLACEHOLDER_HINTS = (
    "xxx", "***", "...", "your", "example", "changeme", "change_me", "placeholder", "redacted", "dummy",
    "sample", "${", "{{", "getenv", "environ", "process.env", "secret_key_here", "<", ">",
)  # fmt: skip
_SYMBOLS = frozenset("!@#$%^&*+/=~?|:")


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values()) if n else 0.0


def looks_like_credential(value: str) -> bool:
    """True for values that read like a credential rather than code, a placeholder or a word."""
    if len(value) < 8 or value.isdigit() or _IDENTIFIER.fullmatch(value) or _NAME_IS.match(value):
        return False
    lowered = value.lower()
    if any(hint in lowered for hint in _PLACEHOLDER_HINTS):
        return False
    has_letter = any(c.isalpha() for c in value)
    has_other = any(c.isdigit() or c in _SYMBOLS for c in value)
    return has_letter and has_other and entropy(value) >= 2.5


def _base64_secret(value: str) -> bool:
    """An AWS secret access key is 40 characters of base64 of random bytes: both cases and a digit or
    symbol (a hex digest or a word run is not one)."""
    return (
        any(c.islower() for c in value)
        and any(c.isupper() for c in value)
        and any(c.isdigit() or c in "/+" for c in value)
        and entropy(value) >= 3.5
    )


def _openai_body_ok(body: str, typed: bool) -> bool:
    """Real OpenAI keys are long random base62 (with - and _ after a proj-/svcacct- prefix); slugs are not."""
    if ("-" in body or "_" in body) and not typed and len(body) < 40:
        return False
    return any(c.isdigit() for c in body) and any(c.isalpha() for c in body) and entropy(body) >= 3.0


def _typed(kind: str) -> Callable[[Match, str], Finding | None]:
    def convert(m: Match, _text: str) -> Finding | None:
        if kind == "openai" and not _openai_body_ok(m.group("body"), m.group("kind") is not None):
            return None
        return Finding(m.start(), m.end(), kind, PLACEHOLDER)

    return convert


def _value(kind: str, strict: bool) -> Callable[[Match, str], Finding | None]:
    def convert(m: Match, text: str) -> Finding | None:
        start, end = m.span("value")
        value = text[start:end]
        if strict and not looks_like_credential(value):
            return None
        if kind == "aws" and not _base64_secret(value):
            return None
        return Finding(start, end, kind, PLACEHOLDER)

    return convert


def _alternation(literals: Iterable[str]) -> re.Pattern[str] | None:
    unique = sorted(set(literals), key=len, reverse=True)
    return re.compile("|".join(map(re.escape, unique))) if unique else None


def _literals(words: tuple[str, ...]) -> Callable[[str], bool]:
    return lambda text: any(word in text for word in words)


def _always(_m: Match) -> bool:
    return True


class SecretsDetector(CompositeDetector):
    """The `secrets` guardrail's detector for the configured kinds (all when None)."""

    def __init__(self, kinds: Iterable[str] | None = None) -> None:
        wanted = frozenset(kinds) if kinds is not None else frozenset(SECRET_KINDS)
        parts: list[Detector] = []
        typed = [rule for rule in _RULES if rule[0] in wanted]
        # One gate for every prefix-led rule: most stream windows hold none of their literals.
        self._gate = (
            literal_gate([lit for rule in typed for lit in rule[2]], boundary=r"[A-Za-z0-9_\-]") if typed else None
        )
        self._typed_count = len(typed)
        # One pass decides whether any rule can match at all: most texts hold none of the literals.
        typed_literals = [lit for rule in typed for lit in rule[2]]
        generic_literals = [lit for rule in _GENERIC_RULES if rule[0] in wanted for lit in rule[2]]
        self._any_typed = _alternation(typed_literals)
        self._any_generic = _alternation(generic_literals)
        for kind, source, literals, committable in typed:
            parts.append(
                PatternDetector(
                    DualPattern(source),
                    _typed(kind),
                    prefilter=_literals(literals),
                    committable=_always if committable else None,
                )
            )
        for kind, source, literals, strict in _GENERIC_RULES:
            if kind in wanted:
                gate = literal_gate(literals) if literals != ("://",) else _SCHEME_GATE
                parts.append(
                    PatternDetector(
                        DualPattern(source),
                        _value(kind, strict),
                        lowered=True,
                        prefilter=_literals(literals),
                        gate=gate,
                    )
                )
        super().__init__(parts)

    def find(self, text: str, pos: int = 0) -> list[Finding]:
        typed = self._any_typed is not None and self._any_typed.search(text, pos)
        generic = self._any_generic is not None and self._any_generic.search(ascii_lower(text), pos)
        if not typed and not generic:
            return []
        return _dedupe(super().find(text, pos))

    def scan_window(self, text: str, pos: int) -> WindowScan:
        parts = self.parts
        if self._gate is not None and not self._gate.search(text, pos):
            self.parts = parts[self._typed_count :]
        try:
            scan = super().scan_window(text, pos)
        finally:
            self.parts = parts
        scan.findings = _dedupe(scan.findings)
        return scan


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """A key assigned to a name is found by its own rule and by `generic`: keep the specific one."""
    specific = [f for f in findings if f.entity != "generic"]
    if len(specific) == len(findings) or not specific:
        return findings
    kept = list(specific)
    for f in findings:
        if f.entity == "generic" and not any(f.start < s.end and s.start < f.end for s in specific):
            kept.append(f)
    kept.sort(key=lambda f: f.start)
    return kept
