"""What the router and the reservations read from a body: sizes that hold however it is shaped."""

from __future__ import annotations

from typing import Any

from gateway.apis.embeddings import EmbeddingsApi
from gateway.apis.sizes import CHARS_PER_TOKEN, TOKENS_PER_MESSAGE, request_texts, reserve_prompt_tokens


def nested(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = {"a": [leaf]}
    return leaf


def test_reservation_counts_every_string_however_deep() -> None:
    """The walk used to recurse (a RecursionError, so a 500, at about 990 levels with a budget) and
    pass each string up a chain of generators as long as the nesting. It keeps its own stack now."""
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "extra": nested(2_000, "x" * 100)}
    # keys are not counted, values are: "user", "hi" and the innermost string
    assert reserve_prompt_tokens(body, 1) == (4 + 2 + 100) // 2 + TOKENS_PER_MESSAGE * 2
    assert list(request_texts(body)) == ["user", "hi", "x" * 100]


def test_texts_come_in_document_order_without_model_names() -> None:
    body = {"model": "m", "system": "s", "messages": [{"content": ["a", {"b": "c", "model": "x"}]}], "n": [1, 2]}
    assert list(request_texts(body)) == ["s", "a", "c"]


def test_reservation_counts_bytes_not_characters() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "中" * 10}], "stop": ["é", "ab"]}
    assert reserve_prompt_tokens(body, 1) == (4 + 30 + 2 + 2) // 2 + TOKENS_PER_MESSAGE * 2


def test_embeddings_token_arrays_are_reserved_and_routed_by_their_length() -> None:
    """A token array holds no strings: it used to reserve (and route as) an empty prompt."""
    flat = {"model": "e", "input": list(range(5_000))}
    batch = {"model": "e", "input": [list(range(1_000))] * 3}
    assert reserve_prompt_tokens(flat, 0) == 5_000 + TOKENS_PER_MESSAGE
    assert reserve_prompt_tokens(batch, 0) == 3_000 + TOKENS_PER_MESSAGE
    api = EmbeddingsApi()
    assert api.shape(flat).prompt_chars == 5_000 * CHARS_PER_TOKEN
    assert api.shape(batch).prompt_chars == 3_000 * CHARS_PER_TOKEN
    assert api.shape({"input": ["abcd", "ef"]}).prompt_chars == 6
