"""Config secrets are scrubbed from every log record, its arguments and its traceback."""

from __future__ import annotations

import logging

import pytest

from gateway.log_scrub import REDACTED, SecretScrubber

SECRET = "sk-live-0123456789abcdef"


@pytest.fixture
def scrubber() -> SecretScrubber:
    scrubber = SecretScrubber()
    scrubber.add([SECRET, "pw", "redis-password-1"])
    return scrubber


def record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("agentgw.test", logging.WARNING, __file__, 1, msg, args or None, exc_info)


def test_secrets_in_message_and_args_are_replaced(scrubber: SecretScrubber) -> None:
    entry = record("upstream said %s (auth %r)", f"bad key {SECRET}", "redis-password-1")
    scrubber.scrub(entry)
    assert entry.getMessage() == f"upstream said bad key {REDACTED} (auth '{REDACTED}')"


def test_secrets_split_by_invisible_characters_are_replaced(scrubber: SecretScrubber) -> None:
    disguised = SECRET[:6] + "\u200b" + SECRET[6:12] + "\u2060" + SECRET[12:]
    entry = record("provider said: %s", f"bad key {disguised}")
    scrubber.scrub(entry)
    assert entry.getMessage() == f"provider said: bad key {REDACTED}"


def test_tracebacks_are_scrubbed(scrubber: SecretScrubber) -> None:
    try:
        raise RuntimeError(f"connect failed with {SECRET}")
    except RuntimeError as exc:
        entry = record("failed", exc=exc)
    scrubber.scrub(entry)
    formatted = logging.Formatter().format(entry)
    assert SECRET not in formatted and REDACTED in formatted and "RuntimeError" in formatted


def test_clean_records_are_untouched_and_short_values_never_secrets(scrubber: SecretScrubber) -> None:
    entry = record("a pw of %d words", 3)
    scrubber.scrub(entry)
    assert (entry.msg, entry.args) == ("a pw of %d words", (3,))  # "pw" is too short to be a secret


def test_installed_scrubber_covers_every_logger(scrubber: SecretScrubber, caplog: pytest.LogCaptureFixture) -> None:
    original = logging.getLogRecordFactory()
    try:
        scrubber.install()
        scrubber.install()  # once only
        with caplog.at_level(logging.INFO):
            logging.getLogger("some.library").info("token=%s", SECRET)
        assert caplog.records[-1].getMessage() == f"token={REDACTED}"
        assert SECRET not in caplog.text
    finally:
        logging.setLogRecordFactory(original)
