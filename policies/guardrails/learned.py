"""The learned prompt-injection detector: a linear model over hashed n-grams, scored window by window.

Features are hashed character n-grams of the lowercased UTF-8 bytes (digits folded to `0`, runs of
whitespace to one space), hashed words and hashed word pairs. Every hash comes from one prefix sum,
so extraction is a handful of numpy operations over the bytes, with no loop per character: with
`C[i] = sum(b[k] * P^-(k+1) for k < i)` (mod 2^64), the polynomial hash of the bytes `[s, e)` is
`P^e * (C[e] - C[s])`, for n-grams, words and word pairs alike.

A text is read through windows of each model's `window` bytes (half-overlapping); a window's logit is
`bias + sum(w[feature]) / sqrt(max(number of features, MIN_FEATURES))` and the text's score is the highest window's
probability, so one instruction planted in a long tool result is not diluted by the data around it.

Two models share the features: `direct` (what a user sends) and `indirect` (instructions addressed to
the agent inside tool results, retrieved pages and files). Their weights ship in
`data/injection_model.npz` (float16, a few hundred KB each), loaded from the package and never
downloaded; `bench/train_injection.py` rebuilds them from the public corpora in docs/injection-data.md.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

Setting = Literal["direct", "indirect"]
Ints = npt.NDArray[np.int64]

_P = np.uint64(0x100000001B3)  # odd, so it has an inverse mod 2^64
_P_INV = np.uint64(pow(0x100000001B3, -1, 1 << 64))
_MIX = np.uint64(0x9E3779B97F4A7C15)
_WORD_SEED, _PAIR_SEED = 0xA5A5A5A5A5A5A5A5, 0x5A5A5A5A5A5A5A5A
MIN_FEATURES = 16  # a window's sum is divided by sqrt(max(features, this)): one word alone ("ok") decides little
_SEGMENT = 1 << 16  # bytes hashed at once; longer texts are read in overlapping segments
_FOLD = bytes(48 if 48 <= b <= 57 else b for b in range(256))  # digits to 0
_WORD_BYTE = np.array([chr(b).isalnum() or b in (39, 95) or b >= 128 for b in range(256)], dtype=bool)


def word_bounds(data: npt.NDArray[np.uint8]) -> tuple[Ints, Ints]:
    """(starts, ends) of the words of normalised bytes: runs of letters, digits, `'`, `_` and non-ASCII."""
    edge = np.flatnonzero(np.diff(np.concatenate(([False], _WORD_BYTE[data], [False])).view(np.int8)))
    return edge[0::2], edge[1::2]


def _powers(n: int, base: np.uint64) -> npt.NDArray[np.uint64]:
    out = np.empty(n, dtype=np.uint64)
    out[0] = 1
    with np.errstate(over="ignore"):
        out[1:] = base
        np.cumprod(out, out=out)
    return out


_POW = _powers(_SEGMENT + 1, _P)
_POW_INV = _powers(_SEGMENT + 2, _P_INV)[1:]  # P^-(k+1)


@dataclass(frozen=True, slots=True)
class Featurizer:
    """Hashed n-gram features of a text: `bits` of hash, character n-grams of the sizes in `char_ns`,
    and (with `words`) words and word pairs."""

    bits: int = 18
    char_ns: tuple[int, ...] = ()
    words: bool = True

    def normalise(self, text: str) -> bytes:
        data = text.lower().encode("utf-8", "replace").translate(_FOLD)
        return b" ".join(data.split())[: _SEGMENT * 16]

    def hashes(self, data: bytes) -> list[tuple[Ints, Ints | int]]:
        """The hashed feature ids of the normalised bytes `data` (at most `_SEGMENT` long), in groups:
        (ids, starts) where `starts` is the start offset of each feature, or an int `k` when the group's
        features start at `0, 1, 2, ...` (a character n-gram at every offset: no index array needed)."""
        n = len(data)
        b = np.frombuffer(data, dtype=np.uint8)
        shift = np.uint64(64 - self.bits)
        out: list[tuple[Ints, Ints | int]] = []
        with np.errstate(over="ignore"):
            c = np.zeros(n + 1, dtype=np.uint64)
            np.cumsum(b * _POW_INV[:n], out=c[1:])
            for size in self.char_ns:
                if n >= size:
                    h = _POW[size : n + 1] * (c[size:] - c[: n + 1 - size])
                    h ^= np.uint64(size * 0x1F1F1F1F)
                    h *= _MIX
                    h >>= shift
                    out.append((h.view(np.int64), 0))
            if self.words and n:
                w_start, w_end = word_bounds(b)
                for seed, starts, ends in ((_WORD_SEED, w_start, w_end), (_PAIR_SEED, w_start[:-1], w_end[1:])):
                    h = _POW[ends] * (c[ends] - c[starts])
                    h ^= np.uint64(seed)
                    h *= _MIX
                    h >>= shift
                    out.append((h.view(np.int64), starts))
        return out

    def features(self, data: bytes) -> tuple[Ints, Ints]:
        """(hashed feature ids, start offsets) of the normalised bytes `data`, all groups in one array."""
        groups = self.hashes(data)
        if not groups:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        ids = np.concatenate([g for g, _ in groups])
        starts = np.concatenate([np.arange(len(g), dtype=np.int64) if isinstance(s, int) else s for g, s in groups])
        return ids, starts

    @staticmethod
    def segments(data: bytes, window: int) -> list[tuple[int, bytes]]:
        """(offset, bytes) pieces of at most `_SEGMENT` bytes, overlapping by a window."""
        if len(data) <= _SEGMENT:
            return [(0, data)]
        step = _SEGMENT - window
        return [(at, data[at : at + _SEGMENT]) for at in range(0, len(data) - window, step)]

    @staticmethod
    def windows(n: int, window: int) -> tuple[Ints, Ints]:
        """(starts, ends) of the windows over `n` bytes: the whole text when it fits in one window, else
        pairs of consecutive half-window blocks (the last one may be short)."""
        if n <= window:
            return np.zeros(1, dtype=np.int64), np.full(1, n, dtype=np.int64)
        bounds = np.arange(0, n, window // 2, dtype=np.int64)
        return bounds[:-1], np.minimum(bounds[:-1] + window, n)


@dataclass(frozen=True, slots=True)
class LinearModel:
    """Weights by feature id, a bias, and the window (in bytes) the model reads a text through."""

    weights: npt.NDArray[np.float32]
    bias: float
    window: int = 512


class LearnedScorer:
    """Scores a text in [0, 1] with one of the shipped models (`direct` or `indirect`)."""

    def __init__(self, featurizer: Featurizer, model: LinearModel) -> None:
        self.featurizer = featurizer
        self.model = model

    def score(self, text: str) -> float:
        data = self.featurizer.normalise(text)
        best = -np.inf
        for _offset, piece in self.featurizer.segments(data, self.model.window):
            best = max(best, float(self.window_logits(piece).max(initial=-np.inf)))
        if best == -np.inf:
            return 0.0
        return float(1.0 / (1.0 + np.exp(-best)))

    def window_logits(self, data: bytes) -> npt.NDArray[np.float64]:
        """The logit of each window of `data` (normalised bytes of at most one segment): sums over
        half-window blocks, two blocks to a window."""
        n = len(data)
        weights = self.model.weights
        window = self.model.window
        stride = window // 2 if n > window else max(n, 1)
        bounds = np.arange(0, max(n, 1), stride, dtype=np.int64)
        blocks = len(bounds)
        sums = np.zeros(blocks)
        counts = np.zeros(blocks)
        for ids, starts in self.featurizer.hashes(data):
            contributions = weights[ids]
            if isinstance(starts, int):  # features at 0, 1, 2, ...: every block up to the last is non-empty
                k = int(np.searchsorted(bounds, len(ids)))
                cut = bounds[:k]
                sums[:k] += np.add.reduceat(contributions, cut)
                counts[:k] += np.diff(np.append(cut, len(ids)))
            else:
                at = np.searchsorted(starts, bounds)
                running = np.concatenate(([0.0], np.cumsum(contributions, dtype=np.float64)))
                ends = np.append(at[1:], len(ids))
                sums += running[ends] - running[at]
                counts += ends - at
        if blocks > 1:
            sums = sums[:-1] + sums[1:]
            counts = counts[:-1] + counts[1:]
        return self.model.bias + sums / np.sqrt(np.maximum(counts, MIN_FEATURES))


MODEL_FILE = "injection_model.npz"


def save(path: Path, featurizer: Featurizer, models: dict[str, LinearModel], meta: dict[str, object]) -> None:
    """Write the models (float16 weights) and the featurizer settings to one `.npz` file."""
    config = {"bits": featurizer.bits, "char_ns": list(featurizer.char_ns), "words": featurizer.words,
              "biases": {k: m.bias for k, m in models.items()}, "windows": {k: m.window for k, m in models.items()},
              **meta}  # fmt: skip
    arrays = {f"weights_{k}": m.weights.astype(np.float16) for k, m in models.items()}
    np.savez_compressed(path, config=np.array(json.dumps(config, sort_keys=True)), **arrays)  # type: ignore[arg-type]


def load_file(path: Path | str) -> tuple[Featurizer, dict[str, LinearModel], dict[str, object]]:
    with np.load(path, allow_pickle=False) as data:
        config = json.loads(str(data["config"]))
        featurizer = Featurizer(config["bits"], tuple(config["char_ns"]), config["words"])
        models = {
            name: LinearModel(data[f"weights_{name}"].astype(np.float32), float(bias), int(config["windows"][name]))
            for name, bias in config["biases"].items()
        }
    return featurizer, models, config


@functools.lru_cache(maxsize=1)
def shipped() -> tuple[Featurizer, dict[str, LinearModel], dict[str, object]]:
    """The models that ship inside the package (read once per process)."""
    with resources.as_file(resources.files("policies.guardrails") / "data" / MODEL_FILE) as path:
        return load_file(path)


def scorer(setting: Setting) -> LearnedScorer:
    featurizer, models, _config = shipped()
    return LearnedScorer(featurizer, models[setting])
