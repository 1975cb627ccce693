"""Secret detection: each kind's positives, and code that only looks like a secret."""

from __future__ import annotations

import pytest

from policies.guardrails.secrets import SecretsDetector
from tests.policies.guardrails.support import GITHUB_TOKEN, OPENAI_KEY

DETECT = SecretsDetector()
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi\nZ1BjP5CE8Wm4LQ2TLQ==\n"
    "-----END RSA PRIVATE KEY-----"
)
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


def found(text: str) -> list[tuple[str, str]]:
    return [(f.entity, text[f.start : f.end]) for f in DETECT.find(text)]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        (f"OPENAI_API_KEY={OPENAI_KEY}", "openai", OPENAI_KEY),
        (
            "legacy sk-T9vQ2mLx8RkW4nZp7YbC3dFg6HjK1sE5aU0oIi2qWe3rTy4u end",
            "openai",
            "sk-T9vQ2mLx8RkW4nZp7YbC3dFg6HjK1sE5aU0oIi2qWe3rTy4u",
        ),
        (
            "use sk-ant-api03-Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LzXcVbNm-Qa1Ws2Ed3Rf4Tg5Yh6Uj7Ik8Ol9P0AAAA here",
            "anthropic",
            "sk-ant-api03-Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LzXcVbNm-Qa1Ws2Ed3Rf4Tg5Yh6Uj7Ik8Ol9P0AAAA",
        ),
        ("maps key AIzaSyD4x9QwErTyUiOpAsDfGhJkLzXcVbNm123 ok", "google", "AIzaSyD4x9QwErTyUiOpAsDfGhJkLzXcVbNm123"),
        ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "aws", "AKIAIOSFODNN7EXAMPLE"),
        ("temp ASIAZ3MHALKJ4PQRSTUV,", "aws", "ASIAZ3MHALKJ4PQRSTUV"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        (f"token {GITHUB_TOKEN}", "github", GITHUB_TOKEN),
        (
            "pat github_pat_11ABCDEFG0aBcDeFgHiJkL_mNoPqRsTuVwXyZ0123456789abcdefghijklmnopqrstuvwx",
            "github",
            "github_pat_11ABCDEFG0aBcDeFgHiJkL_mNoPqRsTuVwXyZ0123456789abcdefghijklmnopqrstuvwx",
        ),
        ("GITLAB=glpat-Xy9z8W7v6U5t4S3r2Q1p", "gitlab", "glpat-Xy9z8W7v6U5t4S3r2Q1p"),
        (
            "slack xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
            "slack",
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        ),
        (
            "hook https://hooks.slack.com/services/T0000AAAA/B0000BBBB/XXXXXXXXXXXXXXXXXXXXXXXX",
            "slack",
            "https://hooks.slack.com/services/T0000AAAA/B0000BBBB/XXXXXXXXXXXXXXXXXXXXXXXX",
        ),
        ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc.", "stripe", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
        ("restricted rk_live_51H8aBcDeFgHiJkLmNoPqRsTu", "stripe", "rk_live_51H8aBcDeFgHiJkLmNoPqRsTu"),
        (f"Authorization: {JWT}", "jwt", JWT),
        (f"key:\n{PEM}\nend", "private_key", PEM),
        ('password = "Tr0ub4dor&3xyz"', "generic", "Tr0ub4dor&3xyz"),
        ('{"client_secret": "q8Zr2LmX9vB4nK7tW1pY"}', "generic", "q8Zr2LmX9vB4nK7tW1pY"),
        ("DB_PASSWORD: s3cr3t-Pa55w0rd!", "generic", "s3cr3t-Pa55w0rd!"),
        (
            "curl -H 'Authorization: Bearer a8F3kL9mQ2xZ7vB1nW4pR6tY0uE5iO' x",
            "generic",
            "a8F3kL9mQ2xZ7vB1nW4pR6tY0uE5iO",
        ),
        ("postgres://app:Xk82jLq9Wz@db.internal:5432/prod", "generic", "Xk82jLq9Wz"),
        (  # an AWS secret said rather than assigned (AWS's documented example key)
            "the aws secret key is wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, rotate it",
            "aws",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        ("secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ("Secret Key: Hq8vN2pR5tW7yZ1bD4fG6jK9mP3sU5xA7cE0gI2k", "generic", "Hq8vN2pR5tW7yZ1bD4fG6jK9mP3sU5xA7cE0gI2k"),
    ],
)
def test_positives(text: str, kind: str, value: str) -> None:
    assert (kind, value) in found(text)


@pytest.mark.parametrize(
    "text",
    [
        'api_key = os.environ["OPENAI_API_KEY"]',
        "api_key = os.getenv('API_KEY')",
        "token = request.headers.get('Authorization')",
        "secret_key = settings.SECRET_KEY",
        "OPENAI_API_KEY = OPENAI_API_KEY",
        "password = get_password()",
        'password: "<your-password-here>"',
        "api_key: YOUR_API_KEY_HERE",
        "max_tokens = 1024",
        "num_tokens: 123456789",
        "tokenizer = AutoTokenizer.from_pretrained(name)",
        "pip install scikit-learn  # sk-learn",
        "see sk-this-is-not-a-key-just-a-slug for details",
        "commit 3f786850e387550fdab836ed7e6dc881de23001b",
        "id 123e4567-e89b-12d3-a456-426614174000",
        "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
        "the password must have 8 characters",
        "secret: true",
        "pk_live_51H8aBcDeFgHiJkLmNoPqRsTu is a publishable key",
        "secret 3f786850e387550fdab836ed7e6dc881de23001b",  # a digest after the word: not an AWS secret
        "token usage: input_tokens=1234 output_tokens=56",
        "the secret is that we ship on friday and everyone knows it",
    ],
)
def test_code_that_looks_like_secrets(text: str) -> None:
    assert found(text) == []


def test_kinds_narrow_the_detector() -> None:
    only_github = SecretsDetector(["github"])
    assert [f.entity for f in only_github.find(f"{OPENAI_KEY} {GITHUB_TOKEN}")] == ["github"]


def test_a_key_assigned_to_a_name_counts_once() -> None:
    assert [f.entity for f in DETECT.find(f"api_key={OPENAI_KEY}")] == ["openai"]
