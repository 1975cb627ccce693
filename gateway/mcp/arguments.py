"""A tool call's arguments checked against the input schema its server published, before the call
is admitted or sent: a call the server would refuse costs nothing and is told why in one place."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jsonschema
import orjson
from jsonschema.exceptions import SchemaError, best_match
from jsonschema.protocols import Validator

from gateway.errors import InvalidRequest

MAX_DETAIL = 300


def check_arguments(schema: Mapping[str, Any] | None, arguments: Mapping[str, Any]) -> None:
    """A 400 `invalid_request` naming the first mismatch; nothing when they fit, or when the server's
    schema is itself not a valid JSON Schema (the server judges its own calls then)."""
    if not schema:
        return
    validator = _validator(orjson.dumps(dict(schema), option=orjson.OPT_SORT_KEYS))
    if validator is None:
        return
    error = best_match(validator.iter_errors(dict(arguments)))
    if error is None:
        return
    where = "/".join(str(part) for part in error.absolute_path) or "(the arguments)"
    raise InvalidRequest(
        f"The arguments do not match the tool's input schema at {where}: {error.message[:MAX_DETAIL]}",
        param="arguments",
    )


@functools.lru_cache(maxsize=512)
def _validator(schema: bytes) -> Validator | None:
    loaded = orjson.loads(schema)
    cls = jsonschema.validators.validator_for(loaded)
    try:
        cls.check_schema(loaded)
    except SchemaError:
        return None
    validator: Validator = cls(loaded)
    return validator
