"""PII detection: each entity's positives, and the look-alikes that must not match."""

from __future__ import annotations

import pytest

from policies.guardrails.pii import PiiDetector
from policies.guardrails.redact import merge, render

DETECT = PiiDetector()


def found(text: str) -> list[tuple[str, str]]:
    return [(f.entity, text[f.start : f.end]) for f in DETECT.find(text)]


@pytest.mark.parametrize(
    ("text", "entity", "value"),
    [
        ("write to jane.doe+news@mail.example.co.uk today", "email", "jane.doe+news@mail.example.co.uk"),
        ("call +1 (415) 555-0132 now", "phone", "+1 (415) 555-0132"),
        ("ring (415) 555-0132 please", "phone", "(415) 555-0132"),
        ("tel +44 20 7946 0958", "phone", "+44 20 7946 0958"),
        ("Büro: 030 12345678", "phone", "030 12345678"),
        ("portable 06 12 34 56 78", "phone", "06 12 34 56 78"),
        ("card 4111 1111 1111 1111 exp 12/29", "credit_card", "4111 1111 1111 1111"),
        ("amex 3782-822463-10005", "credit_card", "3782-822463-10005"),
        ("pay with 5555555555554444", "credit_card", "5555555555554444"),
        ("IBAN DE89 3704 0044 0532 0130 00 please", "iban", "DE89 3704 0044 0532 0130 00"),
        ("iban GB82WEST12345698765432.", "iban", "GB82WEST12345698765432"),
        ("SSN 536-22-1234 on file", "us_ssn", "536-22-1234"),
        ("host 192.168.10.254 is down", "ipv4", "192.168.10.254"),
        ("server 2001:db8:85a3::8a2e:370:7334 responded", "ipv6", "2001:db8:85a3::8a2e:370:7334"),
        ("loopback ::1 only", "ipv6", "::1"),
    ],
)
def test_positives(text: str, entity: str, value: str) -> None:
    assert (entity, value) in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "order 4111 1111 1111 1112 shipped",  # fails Luhn
        "invoice 1234567890123456",  # fails Luhn
        "tracking number 9400111899223344556677",
        "id 123e4567-e89b-12d3-a456-426614174000",  # UUID
        "commit 3f786850e387550fdab836ed7e6dc881de23001b",  # git SHA
        "released 2024-01-15 at 10:30:00",
        "version 1.2.3 and 10.0.19041.1",
        "ip-like 999.1.2.3 and 256.256.256.256",
        "ssn-like 000-12-3456 and 666-12-3456 and 078-05-1120",
        "total 3.14159265 and 1,234,567",
        "call 555-0100 (no area code)",
        "random 1234567890",
        "user@localhost is not an address",
        "IBAN DE00 3704 0044 0532 0130 00 wrong check digits",
        "time 12:34:56 and mac 00:1a:2b:3c:4d:5e",
        "C++ std::vector<int> and a::b",
        "price $1,299.99 qty 12",
        "2024-03-15 12:34:56 INFO server started",  # timestamps: a date then an hour is not a phone
        "[2023-11-02 09:15:00] ERROR timeout",
        "created_at: 2025-01-07 18:00:00",
        "Deploy at 2024-03-15 12:34 UTC",
        "Logs from 2024/03/15 12:34:56",
        "between 2024-03-15 and 2024-03-16 10:00",
        "Termin am 15.03.2024 14:30 Uhr",
        "The build finished in 1234.5678 seconds on 2024-03-15 12:34:56.",
    ],
)
def test_hard_negatives(text: str) -> None:
    assert found(text) == []


def test_entities_are_configurable() -> None:
    only_email = PiiDetector(["email"])
    text = "a@b.io or +1 415 555 0132"
    assert [f.entity for f in only_email.find(text)] == ["email"]


def test_redaction_keeps_surrounding_text() -> None:
    text = "Hi, I'm Ann (ann@example.org), card 4111-1111-1111-1111; call +1 415 555 0132."
    out = render(text, 0, len(text), merge(DETECT.find(text)))
    assert out == "Hi, I'm Ann ([EMAIL]), card [CREDIT_CARD]; call [PHONE]."
