"""Routing benchmark: the time `Router.plan` takes per call, and an offline cost/quality check.

Part 1 (always): a 20-model catalog, one route per strategy over all 20 models, health populated
for every target, and the same routes behind 6 rules (5 that miss, then the one that matches:
the worst case for rule evaluation). Each case is timed call by call with perf_counter_ns after a
warm-up; it prints p50, p99 and mean microseconds per plan. Issue 7 asks that routing adds at
most tens of microseconds per call.

Part 2 (when build/routing-data/gsm8k_responses.csv, or --gsm8k FILE, exists): RouteLLM's
GSM8K answers from Mixtral-8x7B (weak) and GPT-4-1106 (strong) replayed through `Router.plan`,
each prompt costed with tiktoken at the README's list prices. A quality score is per model, so
`cheapest_above_quality` alone picks one model for every prompt; the replay shows what each
`min_quality` buys, what a rule on prompt length adds, and the per-prompt oracle as the bound.
These are measurements to read, never assertions.

The file is `routellm/evals/gsm8k/gsm8k_responses.csv` in GitHub's lm-sys/RouteLLM (Apache-2.0).

Run:
    python bench/routing_bench.py
    python bench/routing_bench.py --calls 50000 --gsm8k /path/to/gsm8k_responses.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from routing import ModelConfig, RequestFeatures, RouteConfig, Router, RoutingConfig

GSM8K = Path(__file__).resolve().parents[1] / "build" / "routing-data" / "gsm8k_responses.csv"


def catalog(n: int = 20) -> dict[str, ModelConfig]:
    rng = random.Random(0)
    models = {}
    for i in range(n):
        models[f"model-{i:02d}"] = ModelConfig(
            provider=f"provider-{i % 4}",
            input_per_mtok=Decimal(str(round(rng.uniform(0.1, 15), 2))),
            output_per_mtok=Decimal(str(round(rng.uniform(0.4, 60), 2))),
            quality=round(rng.uniform(0.5, 0.95), 2),
            context_window=rng.choice([16_000, 128_000, 200_000]),
            max_output_tokens=rng.choice([4096, 8192, 16384]),
        )
    return models


def routes(names: list[str]) -> dict[str, Any]:
    weights = {name: float(i + 1) for i, name in enumerate(names)}
    raw = {
        "fallback": {"candidates": names},
        "weighted": {"strategy": "weighted", "weights": weights},
        "weighted_sticky": {"strategy": "weighted", "weights": weights, "sticky": True},
        "cheapest_above_quality": {"strategy": "cheapest_above_quality", "min_quality": 0.7, "candidates": names},
        "best_quality_under_cost": {"strategy": "best_quality_under_cost", "max_cost_usd": 0.05, "candidates": names},
        "lowest_latency": {"strategy": "lowest_latency", "candidates": names},
        "downgrade": {
            "candidates": names,
            "downgrade": {"when_remaining_usd_below": 5, "candidates": names[:5]},
        },
    }
    return TypeAdapter(dict[str, RouteConfig]).validate_python(raw)


def rules(names: list[str]) -> RoutingConfig:
    """Five rules that miss this benchmark's calls, then one that matches and narrows to 15 models."""
    raw = [
        {"name": "big", "match": {"prompt_tokens": {"gt": 150_000}}, "route": "fallback"},
        {"name": "vip", "match": {"team": ["finance", "legal-*"], "tags": {"tier": "gold"}}, "route": "fallback"},
        {"name": "canary", "match": {"headers": {"x-canary": "on"}}, "candidates": ["model-01"]},
        {"name": "night", "match": {"agent": "crawler", "task": "nightly-*"}, "candidates": ["model-02"]},
        {"name": "tools", "match": {"has_tools": True, "model": "gpt-*"}, "candidates": ["model-03"]},
        {"name": "research", "match": {"team": "research", "model": "*"}, "candidates": names[:15]},
    ]
    return RoutingConfig.model_validate({"rules": raw})


def features(route: str, session: int) -> RequestFeatures:
    return RequestFeatures(
        requested_model=route,
        team="research",
        agent="planner",
        task="t-1",
        session=f"session-{session % 1000}",
        tags=(("env", "prod"), ("tier", "silver")),
        headers={"x-canary": "off"},
        est_prompt_tokens=1800,
        max_tokens=600,
        needs_tools=True,
        budget_remaining_usd=3.0,
    )


def time_plans(router: Router, route: str, calls: int) -> list[float]:
    inputs = [features(route, i) for i in range(calls)]
    plan = router.plan
    for f in inputs[: min(2000, calls)]:
        plan(f)
    samples = []
    clock = time.perf_counter_ns
    for f in inputs:
        start = clock()
        plan(f)
        samples.append((clock() - start) / 1000)
    return samples


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench(calls: int) -> None:
    models = catalog()
    names = list(models)
    plain = Router(models, routes(names), RoutingConfig(), rng=random.Random(1))
    ruled = Router(models, routes(names), rules(names), rng=random.Random(1))
    for router in (plain, ruled):
        for i, target in enumerate(router.catalog.targets()):
            router.health.record_success(target, 0.2 + i / 100, ttft_s=0.05 + i / 200)
    print(f"Router.plan, 20-model catalog, every route over all 20 models, {calls} calls each (microseconds)")
    print(f"python {sys.version.split()[0]} on {sys.platform}")
    print(f"{'case':<40} {'p50':>8} {'p99':>8} {'mean':>8}")
    for label, router in (("", plain), (" + 6 rules", ruled)):
        for route in (
            "fallback",
            "weighted",
            "weighted_sticky",
            "cheapest_above_quality",
            "best_quality_under_cost",
            "lowest_latency",
            "downgrade",
        ):
            samples = time_plans(router, route, calls)
            row = f"{route}{label}"
            print(
                f"{row:<40} {percentile(samples, 0.5):>8.1f} {percentile(samples, 0.99):>8.1f}"
                f" {statistics.fmean(samples):>8.1f}"
            )
        samples = time_plans(router, "model-07", calls)
        print(
            f"{'single model' + label:<40} {percentile(samples, 0.5):>8.1f} {percentile(samples, 0.99):>8.1f}"
            f" {statistics.fmean(samples):>8.1f}"
        )


def gsm8k(path: Path) -> None:
    shared = Path(__file__).resolve().parents[2] / "shared" / "tiktoken"
    if "TIKTOKEN_CACHE_DIR" not in os.environ and shared.is_dir():
        os.environ["TIKTOKEN_CACHE_DIR"] = str(shared)
    import tiktoken

    weak, strong = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
    # List prices from the data's README (USD per million tokens); quality = the README's accuracies.
    models = {
        "mixtral": ModelConfig(
            provider="a", input_per_mtok=Decimal("0.6"), output_per_mtok=Decimal("0.6"), quality=0.638
        ),
        "gpt-4": ModelConfig(provider="b", input_per_mtok=Decimal(10), output_per_mtok=Decimal(30), quality=0.857),
    }
    column = {"mixtral": weak, "gpt-4": strong}
    enc = tiktoken.get_encoding("cl100k_base")
    rows = []
    for row in csv.DictReader(path.open(encoding="utf-8")):
        prompt = len(enc.encode(row["prompt"]))
        per_model = {}
        for name, spec in models.items():
            output = len(enc.encode(row[f"{column[name]}_response"] or ""))
            usd = (prompt * float(spec.input_per_mtok or 0) + output * float(spec.output_per_mtok or 0)) / 1e6
            per_model[name] = (row[column[name]] == "True", usd)
        rows.append((prompt, per_model))
    n = len(rows)
    lengths = sorted(p for p, _ in rows)

    def replay(min_quality: float, long_prompt: int | None) -> tuple[float, float]:
        route = {"strategy": "cheapest_above_quality", "min_quality": min_quality, "candidates": ["mixtral", "gpt-4"]}
        rules = []
        if long_prompt is not None:
            rules = [{"match": {"prompt_tokens": {"gt": long_prompt}}, "route": "strong"}]
        router = Router(
            models,
            TypeAdapter(dict[str, RouteConfig]).validate_python({"auto": route, "strong": {"candidates": ["gpt-4"]}}),
            RoutingConfig.model_validate({"rules": rules, "default_output_tokens": 200}),
            rng=random.Random(0),
        )
        right, usd = 0, 0.0
        for prompt, per_model in rows:
            plan = router.plan(RequestFeatures(requested_model="auto", est_prompt_tokens=prompt))
            assert plan is not None
            ok, cost = per_model[plan.targets[0].model]
            right, usd = right + ok, usd + cost
        return right / n, usd

    print(f"\nGSM8K offline replay through Router.plan ({n} prompts; tokens by tiktoken cl100k_base)")
    print(f"{'policy':<64} {'accuracy':>9} {'cost USD':>9}")
    for min_quality in (0.6, 0.8):
        accuracy, usd = replay(min_quality, None)
        print(f"{f'cheapest_above_quality min_quality={min_quality}':<64} {accuracy:>9.3f} {usd:>9.3f}")
    for q in (0.5, 0.75, 0.9):
        threshold = lengths[int(q * n)]
        accuracy, usd = replay(0.6, threshold)
        label = f"min_quality=0.6 + rule prompt_tokens > {threshold} (p{int(q * 100)}) -> gpt-4"
        print(f"{label:<64} {accuracy:>9.3f} {usd:>9.3f}")
    right, usd = 0, 0.0
    for _, per_model in rows:
        answers = sorted((cost, ok) for ok, cost in per_model.values() if ok)
        cost, ok = answers[0] if answers else (per_model["mixtral"][1], False)
        right, usd = right + ok, usd + cost
    print(f"{'oracle (the cheaper model that is right, else mixtral)':<64} {right / n:>9.3f} {usd:>9.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--gsm8k", type=Path, default=GSM8K)
    args = parser.parse_args()
    bench(args.calls)
    if args.gsm8k.is_file():
        gsm8k(args.gsm8k)


if __name__ == "__main__":
    main()
