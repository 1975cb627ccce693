"""The answers the protocol writes itself are whole HTTP responses carrying the error object of the
API the request's path names: Anthropic's under /v1/messages, OpenAI's elsewhere."""

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


def test_under_v1_messages_the_body_is_anthropics_error() -> None:
    for path in ("/v1/messages", "/v1/messages/count_tokens"):
        _, headers, body = parse(error_response(HeadersTooLarge("too big"), path=path))
        assert json.loads(body) == {"type": "error", "error": {"type": "invalid_request_error", "message": "too big"}}
        assert headers["x-agentgw-error-code"] == "headers_too_large"  # the code Anthropic's shape has no field for
    _, _, body = parse(error_response(HeadersTooLarge("too big"), path="/v1/messagesX"))
    assert json.loads(body)["error"]["code"] == "headers_too_large"
