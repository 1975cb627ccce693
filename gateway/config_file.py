"""Reading `config.yaml`: strict YAML, `${ENV_VAR}` interpolation, errors that name their path."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from gateway.config import Config
from gateway.error_paths import data_path

M = TypeVar("M", bound=BaseModel)

# ${NAME} or ${NAME:-default}; $${...} stays literal.
_VAR = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """The config cannot be used; `problems` holds one 'path: what is wrong' line each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: invalid config:\n" + "\n".join(f"  - {p}" for p in problems))


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice instead of keeping the last."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read, interpolate and validate a config file; raise ConfigError listing every problem."""
    return parse_config(_read(path), str(path), os.environ if environ is None else environ)


def parse_config(text: str, source: str, environ: Mapping[str, str]) -> Config:
    raw = _sections(text, source)
    problems: list[str] = []
    data = _interpolate(raw, (), environ, problems)
    if problems:
        raise ConfigError(source, problems)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _describe(exc, data)) from None


def read_sections(path: str | Path) -> dict[str, Any]:
    """A config file's sections as written: strict YAML, not yet interpolated or validated."""
    return _sections(_read(path), str(path))


def load_section(path: str | Path, name: str, model: type[M], environ: Mapping[str, str] | None = None) -> M:
    """One top-level section, interpolated and validated on its own (absent: the model's
    defaults). A tool that needs only this section does not fail on another's unset variable."""
    source = str(path)
    problems: list[str] = []
    data = _interpolate(
        read_sections(path).get(name, {}), (name,), os.environ if environ is None else environ, problems
    )
    if problems:
        raise ConfigError(source, problems)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _describe(exc, data, within=(name,))) from None


def resolve(value: str, where: str, environ: Mapping[str, str] | None = None) -> str:
    """One value's `${ENV_VAR}` and `${ENV_VAR:-default}` resolved as the gateway resolves them;
    ConfigError when a variable without a default is unset. `where` is its path, for the message."""
    problems: list[str] = []
    resolved = _interpolate(value, tuple(where.split(".")), os.environ if environ is None else environ, problems)
    if problems:
        raise ConfigError(where, problems)
    return str(resolved)


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror or exc}"]) from None


def _sections(text: str, source: str) -> dict[str, Any]:
    try:
        raw = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"not valid YAML: {exc}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError(source, ["the top level must be a mapping of sections"])
    # A section whose entries are all commented out is null in YAML: treat it as absent.
    return {k: v for k, v in raw.items() if v is not None}


def _interpolate(value: Any, path: tuple[str, ...], environ: Mapping[str, str], problems: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, (*path, str(k)), environ, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*path, str(i)), environ, problems) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        escaped, name, default = match.groups()
        if escaped:
            return match.group(0)[1:]
        if name in environ and environ[name] != "":
            return environ[name]
        if default is not None:
            return default
        problems.append(f"{_dotted(path)}: environment variable {name} is not set")
        return ""

    return _VAR.sub(substitute, value)


def _describe(exc: ValidationError, data: Any, within: tuple[str, ...] = ()) -> list[str]:
    """One 'path: what is wrong' line per error; `within` is where `data` sits in the file."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        found = tuple(map(str, data_path(error["loc"], data, missing=error["type"] == "missing")))
        path = (*within, *found)
        kind = error["type"]
        if kind == "extra_forbidden":
            hint = _suggest(str(path[-1]), top_level=len(path) == 1) if path else ""
            problems.append(f"{_dotted(path)}: unknown key{hint}")
        elif kind == "missing":
            problems.append(f"{_dotted(path)}: required")
        elif kind in ("union_tag_not_found", "union_tag_invalid"):
            ctx = error.get("ctx") or {}
            field = _discriminator(data, found, str(ctx.get("discriminator", "'type'")).strip("'"))
            expected = str(ctx.get("expected_tags", "")).replace("'", "")
            problems.append(f"{_dotted(path)}.{field}: must be one of {expected}".rstrip())
        elif not path:
            problems += error["msg"].removeprefix("Value error, ").splitlines()
        else:
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{_dotted(path)}: {message}")
    return problems


def _discriminator(data: Any, path: tuple[str, ...], declared: str) -> str:
    """The tag field's name as the user wrote it (a callable discriminator has no field name)."""
    node = data
    for part in path:
        node = node.get(part) if isinstance(node, dict) else node[int(part)] if isinstance(node, list) else None
    if isinstance(node, dict) and "(" in declared:
        return next((k for k in ("type", "strategy") if k in node), declared)
    return declared


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(path)


def _suggest(word: str, *, top_level: bool = False) -> str:
    """A hint for an unknown key: where it belongs if it is valid elsewhere, else a near spelling.
    At the top level a near spelling of a section comes first (`team:` means `teams:`)."""
    if top_level:
        close = difflib.get_close_matches(word, sorted(Config.model_fields), n=1, cutoff=0.75)
        if close:
            return f" (did you mean '{close[0]}'?)"
    homes = _known_fields()
    if word in homes:
        return f" (it belongs under {' or '.join(sorted(homes[word]))})"
    close = difflib.get_close_matches(word, sorted(homes), n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _known_fields() -> dict[str, set[str]]:
    """Every field name any config model has, with the top-level sections it appears under."""
    homes: dict[str, set[str]] = {}
    for section, field in Config.model_fields.items():
        pending, seen = _models_in(field.annotation), set()
        while pending:
            model = pending.pop()
            if model in seen:
                continue
            seen.add(model)
            for name, sub in model.model_fields.items():
                homes.setdefault(name, set()).add(section)
                pending.extend(_models_in(sub.annotation))
    return homes


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()) + getattr(annotation, "__metadata__", ()):
        found.extend(_models_in(arg))
    return found
