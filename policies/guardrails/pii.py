"""PII detector: email, phone, credit card, IBAN, US SSN, IPv4 and IPv6 addresses.

Three compiled scans, each skipped when the text cannot hold a match:

* digit runs (one candidate pattern for phones, cards, SSNs and IPv4 addresses), classified and
  checked on the candidate only: IPv4 octets, SSN area/group/serial rules (`python-stdnum`), card
  numbers by length, issuer prefix and Luhn (`python-stdnum`), phones by `phonenumbers` metadata for
  international numbers and the configured national regions;
* emails, only when the text holds an `@`;
* IBANs (country code, check digits, mod-97 and the country's BBAN format via `python-stdnum`) and
  IPv6 addresses (validated by `ipaddress`), only when the text holds what they must contain.

Random digit runs, order numbers, dates, versions, UUIDs and hashes do not pass the validators.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn
from stdnum.us import ssn as stdnum_ssn

from policies.guardrails.matching import CompositeDetector, Detector, DualPattern, Match, PatternDetector
from policies.guardrails.verdicts import Finding

PII_ENTITIES = ("email", "phone", "credit_card", "iban", "us_ssn", "ipv4", "ipv6")
PLACEHOLDERS = {
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "credit_card": "[CREDIT_CARD]",
    "iban": "[IBAN]",
    "us_ssn": "[US_SSN]",
    "ipv4": "[IP_ADDRESS]",
    "ipv6": "[IP_ADDRESS]",
}
DEFAULT_PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "AU")

# A run of digits and phone separators that starts and ends with a digit (or "+"/"(" first). The
# lookbehind sits after the first character so `re` can skip to candidate characters quickly.
_DIGITS = DualPattern(r"[+(0-9](?<![A-Za-z0-9_.+\-@/].)[0-9 ().\-/]{5,24}[0-9](?![A-Za-z0-9_@])")
_EMAIL = DualPattern(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@(?:[A-Za-z0-9\-]{1,63}\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
)
_IBAN = DualPattern(r"[A-Z](?<![A-Za-z0-9].)[A-Z][0-9]{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
_IPV6 = DualPattern(
    r"[0-9A-Fa-f:](?<![0-9A-Za-z:.].)[0-9A-Fa-f]{0,3}:[0-9A-Fa-f:.]{1,41}(?:%[0-9A-Za-z]{1,16})?(?![0-9A-Za-z:])"
)

# Stream-window gates: what a window must hold for the pattern to match or to be starting a match.
_DIGITS_GATE = re.compile(r"[0-9]|[+(]\Z")
_IBAN_GATE = re.compile(r"[A-Z]{2}[0-9]{2}|(?<![A-Za-z0-9])[A-Z](?:[A-Z][0-9]?)?\Z")
_IPV6_GATE = re.compile(r":|(?<![0-9A-Za-z:.])[0-9A-Fa-f]{1,4}\Z")
_IPV4_SHAPE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_SSN_SHAPE = re.compile(r"[0-9]{3}-[0-9]{2}-[0-9]{4}")
_CARD_SHAPE = re.compile(r"[0-9]{4,6}(?:[ \-][0-9]{2,6}){1,5}|[0-9]{13,19}")
_DATE_SHAPE = re.compile(r"[0-9]{1,4}[./\-][0-9]{1,2}[./\-][0-9]{1,4}")
_DECIMAL_SHAPE = re.compile(r"[0-9]+\.[0-9]+")
# A date with a four-digit year, first in the candidate: "2024-03-15 12" is a timestamp, not a phone.
_DATED = re.compile(
    r"(?:19|20)[0-9]{2}[./\-](?:0?[1-9]|1[0-2])[./\-](?:0?[1-9]|[12][0-9]|3[01])(?![0-9])"
    r"|(?:0?[1-9]|[12][0-9]|3[01])[./\-](?:0?[1-9]|1[0-2])[./\-](?:19|20)[0-9]{2}(?![0-9])"
)
_NON_DIGIT = re.compile(r"[^0-9]")


def _card_issuer_ok(digits: str) -> bool:
    """Major industry identifiers of payment cards: Amex/Diners/JCB 3, Visa 4, Mastercard 2/5, Discover/UnionPay 6."""
    first = digits[0]
    if first in "3456":
        return True
    return first == "2" and 2221 <= int(digits[:4]) <= 2720


def _classify_digits(candidate: str, entities: frozenset[str], regions: tuple[tuple[str, bool], ...]) -> str | None:
    digits = _NON_DIGIT.sub("", candidate)
    if _IPV4_SHAPE.fullmatch(candidate):
        valid = all(int(octet) <= 255 for octet in candidate.split("."))
        return "ipv4" if valid and "ipv4" in entities else None
    if _SSN_SHAPE.fullmatch(candidate):
        return "us_ssn" if "us_ssn" in entities and stdnum_ssn.is_valid(candidate) else None
    if (
        "credit_card" in entities
        and 13 <= len(digits) <= 19
        and _CARD_SHAPE.fullmatch(candidate)
        and _card_issuer_ok(digits)
        and luhn.is_valid(digits)
    ):
        return "credit_card"
    if "phone" in entities and _is_phone(candidate, digits, regions):
        return "phone"
    return None


def _is_phone(candidate: str, digits: str, regions: tuple[tuple[str, bool], ...]) -> bool:
    if not 7 <= len(digits) <= 15 or _DATE_SHAPE.fullmatch(candidate) or _DECIMAL_SHAPE.fullmatch(candidate):
        return False
    if _DATED.match(candidate):
        return False  # starts with a date: "2024-03-15 12" of a timestamp, "2024/03/15 0800"
    if candidate.isdigit():
        return False  # a bare digit run is far more often an id, an order or invoice number than a phone
    try:
        if candidate.startswith("+"):
            return phonenumbers.is_valid_number(phonenumbers.parse(candidate, None))
        # National formats: a leading 0 is the trunk prefix almost everywhere but in NANP countries.
        for region, nanp in regions:
            if digits.startswith("0") == nanp:
                continue
            if phonenumbers.is_valid_number(phonenumbers.parse(candidate, region)):
                return True
    except phonenumbers.NumberParseException:
        return False
    return False


def _valid_iban(candidate: str) -> int | None:
    """Length of the longest valid IBAN at the start of `candidate` (it may have run into a word)."""
    groups = candidate.split(" ")
    for cut in range(len(groups), 0, -1):
        text = " ".join(groups[:cut])
        if len(text.replace(" ", "")) >= 15 and stdnum_iban.is_valid(text):
            return len(text)
    return None


def _valid_ipv6(candidate: str) -> bool:
    if candidate.count(":") < 2 or not any(c.isdigit() for c in candidate):
        return False
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    return True


class PiiDetector(CompositeDetector):
    """The `pii` guardrail's detector for the configured entity types."""

    def __init__(self, entities: Iterable[str] = PII_ENTITIES, regions: Iterable[str] = DEFAULT_PHONE_REGIONS) -> None:
        self.entities = frozenset(entities)
        self.regions = tuple((region, phonenumbers.country_code_for_region(region) == 1) for region in regions)
        parts: list[Detector] = []
        if self.entities & {"phone", "credit_card", "us_ssn", "ipv4"}:
            parts.append(PatternDetector(_DIGITS, self._digits, gate=_DIGITS_GATE))
        if "email" in self.entities:
            parts.append(
                PatternDetector(
                    _EMAIL,
                    lambda m, _text: Finding(m.start(), m.end(), "email", PLACEHOLDERS["email"]),
                    prefilter=lambda text: "@" in text,
                )
            )
        if "iban" in self.entities:
            parts.append(PatternDetector(_IBAN, self._iban, gate=_IBAN_GATE))
        if "ipv6" in self.entities:
            parts.append(
                PatternDetector(_IPV6, self._ipv6, prefilter=lambda text: text.count(":") >= 2, gate=_IPV6_GATE)
            )
        super().__init__(parts)

    def _digits(self, m: Match, _text: str) -> Finding | None:
        entity = _classify_digits(m.group(), self.entities, self.regions)
        return Finding(m.start(), m.end(), entity, PLACEHOLDERS[entity]) if entity else None

    @staticmethod
    def _iban(m: Match, _text: str) -> Finding | None:
        length = _valid_iban(m.group())
        return Finding(m.start(), m.start() + length, "iban", PLACEHOLDERS["iban"]) if length else None

    @staticmethod
    def _ipv6(m: Match, _text: str) -> Finding | None:
        candidate = m.group().rstrip(".")
        if not _valid_ipv6(candidate):
            return None
        return Finding(m.start(), m.start() + len(candidate), "ipv6", PLACEHOLDERS["ipv6"])
