"""Route strategies: each orders the candidates that can serve a call (the first is tried first,
the rest are the fallback order) and may skip some with a reason (over a cost cap, under a
quality floor). They see candidates already filtered for capability, size, permission and
breaker state, in config order."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from typing import Protocol

from routing.catalog import Target
from routing.features import RequestFeatures
from routing.health import HealthTracker, TargetHealth

TOOLS, JSON_SCHEMA, VISION, STREAMING = 1, 2, 4, 8
UNBOUNDED = 1 << 62

Skipped = list[tuple[str, str]]  # (model, reason)


class Candidate:
    """A model as strategies see it: its target and the numbers they compare, as floats."""

    __slots__ = (
        "apis",
        "context_window",
        "health",
        "index",
        "input_usd",
        "kind",
        "lacks",
        "max_output",
        "max_output_or_unbounded",
        "name",
        "output_usd",
        "quality",
        "target",
        "window_or_unbounded",
    )

    def __init__(self, target: Target, index: int, health: TargetHealth, apis: frozenset[str] = frozenset()) -> None:
        spec = target.spec
        self.target = target
        self.apis = apis  # the APIs the target's provider speaks natively
        self.health = health  # the tracker's record for the target, looked up once
        self.name = target.model
        self.index = index  # position in the route, for stable ties
        self.kind = spec.kind
        self.quality = spec.quality
        self.input_usd = float(spec.input_per_mtok or 0) / 1e6  # per token; an unpriced model costs 0
        self.output_usd = float(spec.output_per_mtok or 0) / 1e6
        self.context_window = spec.context_window
        self.max_output = spec.max_output_tokens
        self.window_or_unbounded = spec.context_window or UNBOUNDED
        self.max_output_or_unbounded = spec.max_output_tokens or UNBOUNDED
        caps = spec.capabilities
        self.lacks = (
            (0 if caps.tools else TOOLS)
            | (0 if caps.json_schema else JSON_SCHEMA)
            | (0 if caps.vision else VISION)
            | (0 if caps.streaming else STREAMING)
        )

    def estimated_cost(self, prompt_tokens: int, output_tokens: int) -> float:
        """USD for this call's estimated tokens at the model's list prices (an estimate, in float)."""
        if self.max_output is not None and output_tokens > self.max_output:
            output_tokens = self.max_output
        return prompt_tokens * self.input_usd + output_tokens * self.output_usd


class Strategy(Protocol):
    name: str

    def order(self, eligible: Sequence[Candidate], features: RequestFeatures) -> tuple[list[Candidate], Skipped]:
        """The candidates in the order to try them, and those this strategy leaves out."""
        ...


def expected_output(features: RequestFeatures, default: int) -> int:
    return features.max_tokens if features.max_tokens is not None else default


class Fallback:
    """The order the config gives."""

    name = "fallback"

    def order(self, eligible: Sequence[Candidate], features: RequestFeatures) -> tuple[list[Candidate], Skipped]:
        return list(eligible), []


class Weighted:
    """Weighted draw without replacement (Efraimidis-Spirakis keys `ln(u) / weight`): the first
    target is candidate i with probability w_i / sum(w) among those eligible. Sticky sessions take
    `u` from a hash of (session, model) instead of the random source, so a session keeps its model
    while that model is eligible and only its sessions move when it is not."""

    name = "weighted"

    def __init__(self, weights: Mapping[str, float], sticky: bool, rng: random.Random) -> None:
        self._weights = dict(weights)
        self._salts = {name: _hash64(name) for name in weights}
        self._sticky = sticky
        self._rng = rng

    def order(self, eligible: Sequence[Candidate], features: RequestFeatures) -> tuple[list[Candidate], Skipped]:
        session = _hash64(features.session) if self._sticky and features.session is not None else None
        keyed: list[tuple[float, int, Candidate]] = []
        for c in eligible:
            weight = self._weights.get(c.name, 0.0)
            if session is not None:
                u = (_mix64(session ^ self._salts[c.name]) + 1) / 2.0**64  # in (0, 1], stable everywhere
            else:
                u = 1.0 - self._rng.random()
            key = math.log(u) / weight if weight > 0 else -math.inf
            keyed.append((-key, c.index, c))
        keyed.sort(key=_first_two)
        return [c for _, _, c in keyed], []


def _first_two(item: tuple[float, int, Candidate]) -> tuple[float, int]:
    return item[0], item[1]


_MASK64 = (1 << 64) - 1


def _hash64(text: str) -> int:
    """A 64-bit hash that is the same in every process and run (unlike `hash`)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _mix64(z: int) -> int:
    """SplitMix64's finalizer: a cheap bijective scramble of 64 bits."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


class CheapestAboveQuality:
    """Cheapest estimated cost first among candidates with quality >= min_quality (ties: better
    quality, then config order); those below the floor are skipped, or follow in cost order."""

    name = "cheapest_above_quality"

    def __init__(self, min_quality: float, below_quality_fallback: bool, output_tokens: int) -> None:
        self._min = min_quality
        self._below_fallback = below_quality_fallback
        self._output_tokens = output_tokens

    def order(self, eligible: Sequence[Candidate], features: RequestFeatures) -> tuple[list[Candidate], Skipped]:
        prompt, output = features.est_prompt_tokens, expected_output(features, self._output_tokens)
        above: list[tuple[float, float, int, Candidate]] = []
        below: list[tuple[float, float, int, Candidate]] = []
        for c in eligible:
            (above if c.quality >= self._min else below).append(
                (c.estimated_cost(prompt, output), -c.quality, c.index, c)
            )
        above.sort(key=_ranking)
        ordered = [item[3] for item in above]
        if self._below_fallback:
            below.sort(key=_ranking)
            return ordered + [item[3] for item in below], []
        return ordered, [(c.name, f"below_min_quality: quality {c.quality:g} < {self._min:g}") for *_, c in below]


def _ranking(item: tuple[float, float, int, Candidate]) -> tuple[float, float, int]:
    return item[0], item[1], item[2]


class BestQualityUnderCost:
    """Best quality first among candidates whose estimated cost is <= max_cost_usd (ties: cheaper,
    then config order); the others are skipped."""

    name = "best_quality_under_cost"

    def __init__(self, max_cost_usd: float, output_tokens: int) -> None:
        self._max = max_cost_usd
        self._output_tokens = output_tokens

    def order(self, eligible: Sequence[Candidate], features: RequestFeatures) -> tuple[list[Candidate], Skipped]:
        prompt, output = features.est_prompt_tokens, expected_output(features, self._output_tokens)
        under: list[tuple[float, float, int, Candidate]] = []
        skipped: Skipped = []
        for c in eligible:
            cost = c.estimated_cost(prompt, output)
            if cost <= self._max:
                under.append((-c.quality, cost, c.index, c))
            else:
                skipped.append((c.name, f"over_max_cost: estimated ${cost:.6f} > ${self._max:g}"))
        under.sort(key=_ranking)
        return [item[3] for item in under], skipped


class LowestLatency:
    """Lowest EWMA latency first (time to first token for streams). Unmeasured candidates go first
    (so they get measured), candidates whose last attempt failed go last. Exploration: a candidate
    not observed or probed for `probe_after_s` goes first (one call per interval), else with
    probability `epsilon` a random other candidate goes first."""

    name = "lowest_latency"

    def __init__(self, health: HealthTracker, rng: random.Random, epsilon: float, probe_after_s: float | None) -> None:
        self._health = health
        self._rng = rng
        self._epsilon = epsilon
        self._probe_after = probe_after_s

    def order(self, eligible: Sequence[Candidate], features: RequestFeatures) -> tuple[list[Candidate], Skipped]:
        health = self._health
        keyed: list[tuple[bool, bool, float, int, Candidate]] = []
        stale: list[tuple[float, int, Candidate]] = []
        now = health.clock()
        for c in eligible:
            record = c.health
            latency = record.latency_for(features.stream)
            keyed.append((record.consecutive_failures > 0, latency is not None, latency or 0.0, c.index, c))
            seen = _latest(record.last_observed_at, record.last_probe_at)
            if self._probe_after is not None and seen is not None and now - seen >= self._probe_after:
                stale.append((seen, c.index, c))
        keyed.sort(key=_latency_rank)
        ordered = [item[4] for item in keyed]
        if len(ordered) < 2:
            return ordered, []
        explore = next((c for _, _, c in sorted(stale, key=_stalest) if c is not ordered[0]), None)
        if explore is not None:
            health.note_probe(explore.target)
        elif self._epsilon > 0 and self._rng.random() < self._epsilon:
            explore = ordered[self._rng.randrange(1, len(ordered))]
        if explore is not None:
            ordered.remove(explore)
            ordered.insert(0, explore)
        return ordered, []


def _latency_rank(item: tuple[bool, bool, float, int, Candidate]) -> tuple[bool, bool, float, int]:
    return item[0], item[1], item[2], item[3]


def _stalest(item: tuple[float, int, Candidate]) -> tuple[float, int]:
    return item[0], item[1]


def _latest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None or a >= b else b
