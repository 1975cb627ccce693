"""Chat completion -> Responses `response` object: a pure translation, no I/O.

`from_chat_response` turns a whole chat completion into the object `POST /v1/responses` returns;
the builders below it (`response_object`, `message_item`, `function_call_item`, `responses_usage`)
are shared with the stream translation, so a streamed call ends with the same object.

Output item ids are derived from the response id (`msg_<id>_<index>`, `fc_<id>_<index>`), so the
same call gives the same ids streamed or not. The echo of the request says what the translated
call did: `store` is false (nothing is stored), `truncation` is "disabled", `reasoning.summary` is
null (chat gives no summaries).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from gateway.metering.usage import Usage

_INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}

Item = dict[str, Any]


def new_response_id() -> str:
    return f"resp_{uuid.uuid4().hex}"


def item_id(prefix: str, response_id: str, output_index: int) -> str:
    """The id of output item `output_index`: `msg_...` for messages, `fc_...` for function calls."""
    return f"{prefix}_{response_id.removeprefix('resp_')}_{output_index}"


def incomplete_reason(finish_reason: Any) -> str | None:
    """Why a response with this chat finish_reason is incomplete; None when it completed."""
    return _INCOMPLETE_REASONS.get(finish_reason) if isinstance(finish_reason, str) else None


def responses_usage(usage: Usage) -> dict[str, Any]:
    """Responses' `usage` object: input_tokens include the cached ones, as OpenAI counts them."""
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def text_part(text: str, annotations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": annotations or [], "logprobs": []}


def refusal_part(refusal: str) -> dict[str, Any]:
    return {"type": "refusal", "refusal": refusal}


def message_item(item_id: str, content: list[dict[str, Any]], status: str) -> Item:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> Item:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def response_object(
    request: Mapping[str, Any],
    *,
    response_id: str,
    created_at: int,
    model: str,
    status: str,
    output: list[Item],
    usage: Usage | None = None,
    incomplete: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `response` object, echoing the request the way OpenAI's Responses API does."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "model": model,
        "output": output,
        "usage": None if usage is None else responses_usage(usage),
        **_request_echo(request),
    }


def _request_echo(request: Mapping[str, Any]) -> dict[str, Any]:
    reasoning = request.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    parallel = request.get("parallel_tool_calls")
    tools = request.get("tools")
    text = request.get("text")
    text_echo: dict[str, Any] = {"format": {"type": "text"}}
    if isinstance(text, dict):
        text_echo |= {key: value for key, value in text.items() if value is not None}
    return {
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "metadata": request.get("metadata") or {},
        "parallel_tool_calls": parallel if isinstance(parallel, bool) else True,
        "previous_response_id": None,
        "reasoning": {"effort": effort, "summary": None},
        "store": False,
        "temperature": request.get("temperature"),
        "text": text_echo,
        "tool_choice": request.get("tool_choice") or "auto",
        "tools": tools if isinstance(tools, list) else [],
        "top_p": request.get("top_p"),
        "truncation": "disabled",
        "user": request.get("user"),
    }


def from_chat_response(
    data: dict[str, Any],
    *,
    request: Mapping[str, Any],
    model: str,
    response_id: str | None = None,
    created_at: int,
    usage: Usage | None = None,
) -> dict[str, Any]:
    """Translate a whole chat completion into a Responses `response` object.

    The message's text and refusal become one `message` item, each tool call a `function_call`
    item after it. `finish_reason` "length" or "content_filter" makes the response `incomplete`
    (its last item too). `usage` overrides the completion's own (for the gateway's estimate when
    the provider sent none). Raises ValueError for a malformed completion.
    """
    response_id = response_id or new_response_id()
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("chat completion has no choices")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise ValueError("chat completion choice has no message")
    incomplete = incomplete_reason(choices[0].get("finish_reason"))
    output = _output(message, response_id)
    if incomplete and output:
        output[-1]["status"] = "incomplete"
    return response_object(
        request,
        response_id=response_id,
        created_at=created_at,
        model=model,
        status="incomplete" if incomplete else "completed",
        output=output,
        usage=usage or Usage.from_openai(data.get("usage")),
        incomplete=incomplete,
    )


def _output(message: dict[str, Any], response_id: str) -> list[Item]:
    content: list[dict[str, Any]] = []
    text, refusal = message.get("content"), message.get("refusal")
    if isinstance(text, str) and text:
        content.append(text_part(text, url_citations(message.get("annotations"))))
    if isinstance(refusal, str) and refusal:
        content.append(refusal_part(refusal))
    calls = message.get("tool_calls")
    if calls is None:
        calls = []
    if not isinstance(calls, list):
        raise ValueError("chat message tool_calls is not a list")
    output: list[Item] = []
    if content or not calls:  # a reply with neither text nor calls is still an (empty) message
        output.append(message_item(item_id("msg", response_id, 0), content or [text_part("")], "completed"))
    for call in calls:
        output.append(_function_call(call, item_id("fc", response_id, len(output))))
    return output


def _function_call(call: Any, fc_id: str) -> Item:
    if not isinstance(call, dict) or call.get("type", "function") != "function":
        raise ValueError("chat tool call is not a function call")
    function = call.get("function")
    if not isinstance(function, dict) or not isinstance(call.get("id"), str):
        raise ValueError("chat tool call lacks its id or function")
    name, arguments = function.get("name"), function.get("arguments") or ""
    if not isinstance(name, str) or not isinstance(arguments, str):
        raise ValueError("chat tool call lacks its name or arguments")
    return function_call_item(fc_id, call["id"], name, arguments, "completed")


def url_citations(annotations: Any) -> list[dict[str, Any]]:
    """Chat's `url_citation` annotations in Responses' flat shape; anything else is left out."""
    cited = []
    for annotation in annotations if isinstance(annotations, list) else []:
        if not isinstance(annotation, dict) or annotation.get("type") != "url_citation":
            continue
        citation = annotation.get("url_citation")
        if isinstance(citation, dict):
            cited.append({"type": "url_citation", **citation})
    return cited
