"""Secrets never reach a log line: every record, from our loggers or a library's, is scrubbed of the
config's secrets (provider keys, the state store's password, webhook credentials) as it is made.

The scrubber wraps the log record factory, so it holds for every handler and logger without setup
per handler. Records that hold no secret (nearly all) cost one substring test per secret. A secret
disguised by invisible or look-alike characters is found too (see `gateway.secret_mask`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from gateway.secret_mask import REDACTED, SecretMask

__all__ = ["REDACTED", "SecretScrubber", "scrubber"]

MIN_SECRET_LENGTH = 4  # shorter values would redact ordinary words


class SecretScrubber:
    """Replaces known secrets in log messages and their tracebacks. `add` grows the set (each config
    loaded, reloads included: a rotated-out key stays secret); `install` puts the scrubber in front
    of the current record factory, once."""

    def __init__(self) -> None:
        self._secrets: frozenset[str] = frozenset()
        self._mask = SecretMask()
        self._installed = False

    def add(self, secrets: Iterable[str]) -> None:
        self._secrets |= {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}
        self._mask = SecretMask(self._secrets, min_length=MIN_SECRET_LENGTH)

    def install(self) -> None:
        if self._installed:
            return
        self._installed = True
        make = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = make(*args, **kwargs)
            if self._mask:
                self.scrub(record)
            return record

        logging.setLogRecordFactory(factory)

    def scrub(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's to report
            return
        clean = self.clean(message)
        if clean is not message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.clean(text)

    def clean(self, text: str) -> str:
        """`text` with every secret replaced (the same object when it holds none)."""
        return self._mask.mask(text)


scrubber = SecretScrubber()
