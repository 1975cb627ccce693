"""Secrets are masked however they are disguised: invisible characters, look-alike letters."""

from __future__ import annotations

import pytest

from gateway.secret_mask import REDACTED, SecretMask, fold

KEY = "sk-proj-4f9a0c1d2e3b"


@pytest.fixture
def mask() -> SecretMask:
    return SecretMask([KEY, "hunter22"])


@pytest.mark.parametrize(
    "disguised",
    [
        KEY,
        "sk-proj-4f9a\u200b0c1d2e3b",  # zero-width space
        "sk-proj-4f9a\u200d0c1d2e3b",  # zero-width joiner
        "s\u00adk-proj-4f9a0c1d2e3b",  # soft hyphen
        "sk-proj-\u202e4f9a0c1d2e3b",  # a bidi override
        "\ufeffsk-proj-4f9a0c1d2e3b",  # byte-order mark
        "sk-proj-4f9a0c1\u0301d2e3b",  # a combining mark
        "sk-proj-4f9a0c1d2e3b\ufe0f",  # a variation selector
        "\uff53\uff4b-proj-4f9a0c1d2e3b",  # fullwidth letters (NFKC folds them)
        "sk-proj-\U0001d7d2f9a0c1d2e3b",  # a mathematical bold 4 (NFKC folds it)
        "sk-proj-4f9a\x000c1d2e3b",  # a control character
        "sk-\u200b" + "\u200c".join("proj-4f9a0c1d2e3b"),  # one between every character
    ],
)
def test_disguised_keys_are_masked_in_place(mask: SecretMask, disguised: str) -> None:
    text = f"Incorrect API key provided: {disguised}. See the docs."
    masked = mask.mask(text)
    assert fold(masked) == "Incorrect API key provided: [REDACTED]. See the docs."  # invisible leftovers aside


def test_text_without_secrets_is_returned_as_is(mask: SecretMask) -> None:
    for text in ("plain ascii", "line one\nline two", "naïve café 中文 \u200b", ""):
        assert mask.mask(text) is text


def test_every_occurrence_and_every_secret_is_masked(mask: SecretMask) -> None:
    text = f"{KEY} and hunter\u200b22, then {KEY} again"
    assert mask.mask(text) == f"{REDACTED} and {REDACTED}, then {REDACTED} again"


def test_a_secret_inside_another_is_masked_whole() -> None:
    mask = SecretMask(["abcd", "xxabcdxx"])
    assert mask.mask("key=xx\u200babcdxx;") == f"key={REDACTED};"


def test_fold_keeps_what_is_visible() -> None:
    assert fold("Ünïcödé stays, only\u200b invisible\u00ad marks go") == "Ünïcödé stays, only invisible marks go"
