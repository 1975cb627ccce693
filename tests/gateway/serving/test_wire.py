"""The answers the protocol writes itself are whole HTTP responses carrying OpenAI's error object."""

from __future__ import annotations

import json

from gateway.errors import HeadersTooLarge, ServiceUnavailable
from gateway.serving.wire import error_response


def parse(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return status, headers, body


def test_an_error_becomes_a_closing_json_response() -> None:
    status, headers, body = parse(error_response(HeadersTooLarge("too big"), [(b"date", b"Fri, 04 Dec 2026")]))
    assert status == "HTTP/1.1 431 Request Header Fields Too Large"
    assert headers["date"] == "Fri, 04 Dec 2026"
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    assert headers["x-request-id"].startswith("req_")
    assert int(headers["content-length"]) == len(body)
    assert json.loads(body) == {
        "error": {"message": "too big", "type": "invalid_request_error", "param": None, "code": "headers_too_large"}
    }


def test_the_errors_own_headers_go_along() -> None:
    _, headers, body = parse(error_response(ServiceUnavailable("full", retry_after=1)))
    assert headers["retry-after"] == "1"
    assert json.loads(body)["error"]["code"] == "service_unavailable"
