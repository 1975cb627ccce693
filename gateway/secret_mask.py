"""Masking known secrets (provider keys, passwords, tokens from the config) in text bound for a
client or a log, including copies disguised by invisible or look-alike characters.

Exact matching is not enough: a provider error that echoes a key with a zero-width space inside it
(or a soft hyphen, a bidi mark, a combining mark, fullwidth letters) no longer contains the key as a
string, yet shows it to any reader. Text is therefore compared in a folded form: characters of the
Unicode categories that render as nothing (format `Cf`, combining marks `Mn`/`Me`, controls `Cc`)
are dropped and the rest NFKC-normalised, one character at a time; a secret found there is masked
in the original text over its whole extent, disguises included. Text that holds no secret comes back
unchanged (the same object), and ASCII text, nearly all of it, is folded at C speed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

REDACTED = "[REDACTED]"
_IGNORED_CATEGORIES = frozenset({"Cf", "Mn", "Me", "Cc"})
_ASCII_CONTROLS = dict.fromkeys([*range(0x20), 0x7F])  # str.translate table: delete them
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def fold(text: str) -> str:
    """`text` as secrets are compared: invisible characters dropped, the rest NFKC-normalised."""
    if not text.isascii():
        text = _NON_ASCII.sub(lambda match: _fold_char(match.group()), text)
    return text.translate(_ASCII_CONTROLS)


def _fold_char(char: str) -> str:
    if unicodedata.category(char) in _IGNORED_CATEGORIES:
        return ""
    folded = unicodedata.normalize("NFKC", char)
    if folded.isascii():
        return folded
    return "".join(c for c in folded if unicodedata.category(c) not in _IGNORED_CATEGORIES)


class SecretMask:
    """Masks a fixed set of secrets (each at least `min_length` characters once folded)."""

    def __init__(self, secrets: Iterable[str] = (), *, min_length: int = 1) -> None:
        folded = {fold(s) for s in secrets}
        # longest first, so a secret that contains another is masked whole
        self._secrets = tuple(sorted((s for s in folded if len(s) >= min_length), key=len, reverse=True))

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def mask(self, text: str) -> str:
        """`text` with every secret in it replaced by `[REDACTED]`; the same object when it holds none."""
        if not self._secrets:
            return text
        if text.isascii() and text.isprintable():  # nothing to fold: a plain search
            found = [s for s in self._secrets if s in text]
            for secret in found:
                text = text.replace(secret, REDACTED)
            return text
        folded = fold(text)
        if not any(secret in folded for secret in self._secrets):
            return text
        return self._mask_folded(text)

    def _mask_folded(self, text: str) -> str:
        """Mask secrets found in the folded text over their extent in the original."""
        chars: list[str] = []
        origin: list[int] = []  # for each folded character, the index of the original it came from
        for index, char in enumerate(text):
            for folded in char if char.isascii() and char.isprintable() else fold(char):
                chars.append(folded)
                origin.append(index)
        folded_text = "".join(chars)
        taken = bytearray(len(folded_text))
        spans: list[tuple[int, int]] = []
        for secret in self._secrets:
            start = folded_text.find(secret)
            while start >= 0:
                end = start + len(secret)
                if not any(taken[start:end]):
                    taken[start:end] = b"\x01" * len(secret)
                    spans.append((origin[start], origin[end - 1] + 1))
                start = folded_text.find(secret, start + 1)
        out: list[str] = []
        position = 0
        for start, end in sorted(spans):
            out += [text[position:start], REDACTED]
            position = end
        out.append(text[position:])
        return "".join(out)
