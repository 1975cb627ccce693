"""Rules, compiled once: the first whose match holds for a call chooses its route or narrows its
candidates. Globs become regular expressions at build time; plain strings compare for equality."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from routing.config import RuleConfig, RuleMatch
from routing.features import RequestFeatures

Test = Callable[[RequestFeatures], bool]
_GLOB = re.compile(r"[*?\[]")


def _matcher(patterns: str | Sequence[str]) -> Callable[[str | None], bool]:
    """A test of one value against a glob or a list of globs (any may match); None never matches."""
    items = [patterns] if isinstance(patterns, str) else list(patterns)
    exact = frozenset(p for p in items if not _GLOB.search(p))
    globs = [re.compile(fnmatch.translate(p)) for p in items if _GLOB.search(p)]

    def test(value: str | None) -> bool:
        if value is None:
            return False
        return value in exact or any(g.match(value) for g in globs)

    return test


def _tests(match: RuleMatch) -> list[Test]:
    tests: list[Test] = []
    if match.model is not None:
        model = _matcher(match.model)
        tests.append(lambda f: model(f.requested_model))
    if match.team is not None:
        team = _matcher(match.team)
        tests.append(lambda f: team(f.team))
    if match.agent is not None:
        agent = _matcher(match.agent)
        tests.append(lambda f: agent(f.agent))
    if match.task is not None:
        task = _matcher(match.task)
        tests.append(lambda f: task(f.task))
    tests += [_tag_test(key, _matcher(pattern)) for key, pattern in match.tags.items()]
    tests += [_header_test(name.lower(), _matcher(pattern)) for name, pattern in match.headers.items()]
    if match.prompt_tokens is not None:
        gt, lt = match.prompt_tokens.gt, match.prompt_tokens.lt
        if gt is not None:
            tests.append(lambda f: f.est_prompt_tokens > gt)
        if lt is not None:
            tests.append(lambda f: f.est_prompt_tokens < lt)
    if match.has_tools is not None:
        has_tools = match.has_tools
        tests.append(lambda f: f.needs_tools is has_tools)
    return tests


def _tag_test(key: str, value: Callable[[str | None], bool]) -> Test:
    return lambda f: any(k == key and value(v) for k, v in f.tags)


def _header_test(name: str, value: Callable[[str | None], bool]) -> Test:
    return lambda f: value(f.headers.get(name))


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled rule: `route` or `candidates` (never both) when every test holds."""

    name: str
    route: str | None
    candidates: frozenset[str] | None
    tests: tuple[Test, ...]


class Rules:
    """The ordered rules of a config."""

    def __init__(self, configs: Sequence[RuleConfig]) -> None:
        self._rules = tuple(
            Rule(
                name=config.name or f"rules.{i}",
                route=config.route,
                candidates=None if config.candidates is None else frozenset(config.candidates),
                tests=tuple(_tests(config.match)),
            )
            for i, config in enumerate(configs)
        )
        self.headers = frozenset(name.lower() for config in configs for name in config.match.headers)

    def first_match(self, features: RequestFeatures) -> Rule | None:
        """The first rule, in config order, whose every condition holds; None when none does."""
        for rule in self._rules:
            for test in rule.tests:  # Rule.matches, without a generator per rule
                if not test(features):
                    break
            else:
                return rule
        return None

    def __len__(self) -> int:
        return len(self._rules)
