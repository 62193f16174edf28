"""Shared parts of the throughput benchmarks (`train_throughput.py`, `eval_throughput.py`).

How a comparison runs: every side (baas, PEFT as a user would run it, PEFT on baas's own batches)
lives in its own spawned child process, which loads the backbone, tokenises, and then waits. The
parent drives them in interleaved rounds (side 1, side 2, side 3, side 1, ...) so that noise from
the machine hits every side alike, and measures the fp32 matmul peak at the start of every round.
A child times only its own steps and reports questions, seconds and estimated FLOPs per round; at
the end it reports its peak RSS (`VmHWM`: the high-water mark of that process alone, which cannot
be reset inside a process, hence one process per side). Idle children wait on a pipe and use no CPU.

FLOP model (per row, S = padded input width + virtual tokens actually computed, P = weights of the
transformer blocks' linear layers, L layers, hidden size d; embeddings, layer norms, softmax and the
pooler's one-token matmul are left out):
    forward          2*P*S + 4*L*S^2*d            (QK^T and AV: 2*S^2*d each per layer)
    training step    4*P*S + 12*L*S^2*d           forward + backward through the frozen model: input
                                                  gradients only (1x the linear FLOPs, no weight
                                                  gradients), but both operands of QK^T and AV are
                                                  activations, so attention's backward is 2x its forward.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import platform
import random
import resource
import shlex
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_DATASETS = ("arc_easy", "commonsense_qa", "medqa", "dream")
# Both sides score joint (question, option) rows: PEFT prompt tuning, as a user runs it, has no dual pass, and the
# comparison is row for row. baas's default `both` adds a dual pass; benchmarks/perf/scoring_speed.py measures it.
SCORING = "joint"
USER_MAX_LENGTH = 256  # what a user passes to the tokenizer; baas's TrainConfig.max_length is the same


class BenchError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


# ---------------------------------------------------------------------------------------------
# Command line, data


def add_common_args(parser: argparse.ArgumentParser, batch_size: int) -> None:
    parser.add_argument("--datasets", default=",".join(DEFAULT_DATASETS),
                        help="comma-separated dataset names under the data folder (default: %(default)s)")
    parser.add_argument("--data-dir", default=None,
                        help="folder holding NAME/{train,validation,test}.jsonl (default: $BAAS_DATA_DIR, else ../shared/data/mcq beside the repo)")
    parser.add_argument("--backbone", default=None, help="hub id or local folder (default: the offline MiniLM)")
    parser.add_argument("--batch-size", type=int, default=batch_size, help="questions per batch (default: %(default)s)")
    parser.add_argument("--questions", type=int, default=None, help="questions per dataset (default: depends on --quick)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default: depends on --quick)")
    parser.add_argument("--steps", type=int, default=None, help="batches per side per round (default: depends on --quick)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed batches per side before round 1")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads in every process (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="small settings that finish in a few minutes on 2 cores")
    parser.add_argument("--output", default=None, help="markdown report to write (default: benchmarks/results/<script>.md; with --quick, benchmarks/results/quick/<script>.md)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")


def fill_defaults(args: argparse.Namespace, quick: dict, full: dict) -> None:
    """Unset sizes take the --quick or the full defaults; every size must be positive."""
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    for name in ("batch_size", "questions", "rounds", "steps", "threads"):
        if getattr(args, name) < 1:
            raise BenchError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.warmup < 0:
        raise BenchError(f"--warmup must be at least 0, got {args.warmup}")


def resolve_data_dir(arg: str | None) -> Path:
    value = arg or os.environ.get("BAAS_DATA_DIR") or REPO.parent / "shared" / "data" / "mcq"
    path = Path(value).expanduser()
    if not path.is_dir():
        raise BenchError(f"data folder {path} not found: give --data-dir DIR or set BAAS_DATA_DIR "
                         "(DIR/<dataset>/train.jsonl, e.g. the shared MCQ data pack)")
    return path


def load_questions(datasets: str, data_dir: Path, split: str, per_dataset: int) -> list:
    """`per_dataset` questions of each dataset's `split` ('train' or 'eval': test, else validation),
    mixed in a fixed random order so that any slice holds short and long inputs alike."""
    from baas.training.data import load_task_data

    examples = []
    for name in [n.strip() for n in datasets.split(",") if n.strip()]:
        if not (data_dir / name / "train.jsonl").is_file():
            raise BenchError(f"dataset '{name}': no {data_dir / name / 'train.jsonl'}")
        data = load_task_data(name, data_dir, max_train=per_dataset, max_eval=per_dataset)
        examples += data.train.examples if split == "train" else data.eval.examples
    if not examples:
        raise BenchError("no questions: --datasets is empty")
    random.Random(0).shuffle(examples)
    return examples


class BaasTokens:
    """Backbone + baas's one-off tokenisation of the questions, as `train_task` does it."""

    def __init__(self, examples: list, backbone_spec: str | None, config):
        from baas.training.backbone import load_backbone
        from baas.training.batching import encode

        self.config = config
        self.backbone = load_backbone(backbone_spec)
        self.virtual = config.prefix_len + config.suffix_len
        max_length = min(config.max_length, self.backbone.max_positions - self.virtual)
        started = time.perf_counter()
        self.encoded = encode(examples, self.backbone.tokenizer, max_length)
        self.info = {"tokenise_s": time.perf_counter() - started, "n_questions": len(examples)}
        self.flop_model = FlopModel.of(self.backbone.model, self.virtual)


# ---------------------------------------------------------------------------------------------
# The PEFT side: eval-forgetting's prompt-tuning learner, and user-style batches


def peft_learner(backbone, config):
    """PEFT prompt tuning with Lp + Ls virtual tokens as `baas eval-forgetting` builds it: the `prompt_tuning`
    baseline's `peft.PeftLearner` (`get_peft_model(AutoModel, PromptTuningConfig(FEATURE_EXTRACTION))`,
    virtual tokens from sampled vocabulary, the input's tokens mean-pooled, baas's scoring head), seeded with
    `config.seed`. PEFT has no multiple-choice task type; the learner scores (question, option) rows into
    `[B, K_max]` logits as baas does, and trains through `loop.train_step` like every learner.

    A `PeftLearner` wraps a private copy of the backbone (eval-forgetting trains several learners on one
    backbone). A throughput side has one learner, so here it wraps the loaded model itself, as a user's
    `get_peft_model(model, config)` does: the side holds one copy of the weights, like the baas side, and
    its peak RSS compares like with like."""
    from baas.training.continual import BASELINES, Context, Settings
    from baas.training.progress import Reporter

    ctx = Context(Settings(tasks=[], config=config), backbone, None, None, Reporter())
    model = backbone.model
    model.__deepcopy__ = lambda memo: model  # PeftLearner's copy.deepcopy(model) gives the model itself
    try:
        return BASELINES["prompt_tuning"](ctx, [], "throughput").new_learner()
    finally:
        del model.__deepcopy__


class UserBatches:
    """What a user writes: every (context + question, option) pair through the tokenizer's pair call,
    `truncation="only_first"`. `batch(idx)`: `DataCollatorWithPadding` on the batch's rows (pads to the
    longest), as a library `Batch`; `encoded`: the same token ids per question, for `loop.train_step`
    (which pads each batch to its longest row too)."""

    def __init__(self, tokenizer, examples: list, max_length: int = USER_MAX_LENGTH):
        from transformers import DataCollatorWithPadding

        from baas.training.batching import Encoded

        started = time.perf_counter()
        firsts = [f"{e.context} {e.question}".strip() for e in examples for _ in e.options]
        seconds = [o for e in examples for o in e.options]
        enc = tokenizer(firsts, seconds, truncation="only_first", max_length=max_length)
        rows = [{"input_ids": i, "attention_mask": m} for i, m in zip(enc["input_ids"], enc["attention_mask"])]
        self.tokenise_s = time.perf_counter() - started
        self.features, cursor = [], 0
        for e in examples:
            self.features.append(rows[cursor: cursor + len(e.options)])
            cursor += len(e.options)
        self.labels = [e.label for e in examples]
        self.encoded = [Encoded([row["input_ids"] for row in rows], label) for rows, label in zip(self.features, self.labels)]
        self.collator = DataCollatorWithPadding(tokenizer, padding="longest", return_tensors="pt")

    def __len__(self) -> int:
        return len(self.features)

    def batch(self, idx: list[int]):
        from baas.training.batching import Batch

        padded = self.collator([row for i in idx for row in self.features[i]])
        return Batch(padded["input_ids"], padded["attention_mask"], option_mask([len(self.features[i]) for i in idx]),
                     torch.tensor([self.labels[i] for i in idx]))


def option_mask(counts: list[int]) -> torch.Tensor:
    counts_t = torch.tensor(counts)
    return torch.arange(int(counts_t.max())) < counts_t.unsqueeze(1)


class PeftUserSide:
    """The PEFT side as a user sets it up: the same frozen backbone, the tokenizer's pair call on every
    (question, option), and the prompt-tuning learner with Lp + Ls virtual tokens (`peft_learner`)."""

    def __init__(self, examples: list, backbone_spec: str | None, config):
        from baas.training.backbone import load_backbone

        self.config = config
        self.backbone = load_backbone(backbone_spec)
        virtual = config.prefix_len + config.suffix_len
        self.data = UserBatches(self.backbone.tokenizer, examples)
        self.info = {"tokenise_s": self.data.tokenise_s, "n_questions": len(examples)}
        self.flop_model = FlopModel.of(self.backbone.model, virtual)
        self.learner = peft_learner(self.backbone, config)


def check_logits(learner, batch) -> dict:
    """Logits shape and loss of a learner on one batch (the start-of-run agreement check between sides)."""
    with torch.no_grad():
        logits = learner.logits(batch)
    return {"shape": list(logits.shape), "loss": F.cross_entropy(logits, batch.labels).item()}


def random_batches(n: int, batch_size: int, seed: int):
    """A user's DataLoader(shuffle=True): a fresh random order every epoch, batches cut in order."""
    epoch = 0
    while True:
        order = list(range(n))
        random.Random(seed * 1000 + epoch).shuffle(order)
        for start in range(0, n, batch_size):
            yield order[start: start + batch_size]
        epoch += 1


class Chunks:
    """Consecutive slices of the question list, wrapping around: every side takes the same ones in turn."""

    def __init__(self, n: int):
        self.n, self.cursor = n, 0

    def take(self, size: int) -> list[int]:
        idx = [(self.cursor + k) % self.n for k in range(size)]
        self.cursor = (self.cursor + size) % self.n
        return idx


# ---------------------------------------------------------------------------------------------
# FLOPs, matmul peak, memory


@dataclass
class FlopModel:
    """FLOP estimates per row (see the module docstring for the formulas)."""

    linear_params: int
    layers: int
    hidden: int
    virtual_tokens: int  # positions every row gets on top of its padded input width

    @classmethod
    def of(cls, model: nn.Module, virtual_tokens: int) -> FlopModel:
        params = sum(m.weight.numel() for name, m in model.named_modules()
                     if isinstance(m, nn.Linear) and "pooler" not in name)
        config = model.config
        layers = getattr(config, "num_hidden_layers", None) or config.n_layer
        return cls(params, int(layers), int(config.hidden_size), virtual_tokens)

    def forward(self, rows: int, width: int) -> float:
        s = width + self.virtual_tokens
        return rows * (2 * self.linear_params * s + 4 * self.layers * s * s * self.hidden)

    def train(self, rows: int, width: int) -> float:
        s = width + self.virtual_tokens
        return rows * (4 * self.linear_params * s + 12 * self.layers * s * s * self.hidden)


def matmul_peak_gflops(threads: int, n: int = 2048, repeats: int = 5) -> float:
    """Best of a few fp32 `torch.mm` runs of n x n matrices, with the benchmark's thread count."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * n ** 3 / best / 1e9


def rss_mb(peak: bool) -> float:
    """This process's current RSS or its peak (VmHWM, Linux), in MB; ru_maxrss where /proc is absent."""
    key = "VmHWM:" if peak else "VmRSS:"
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2 ** 20 if sys.platform == "darwin" else maxrss / 1024


def measured(seconds: float, questions: int, shapes: list[tuple[int, int]], flops: Callable[[int, int], float]) -> dict:
    """What a side reports for one round: shapes are (rows, padded width) of every batch it computed."""
    rows = sum(r for r, _ in shapes)
    return {"seconds": seconds, "questions": questions, "flops": sum(flops(r, w) for r, w in shapes),
            "positions_per_row": sum(r * w for r, w in shapes) / max(1, rows)}


# ---------------------------------------------------------------------------------------------
# Running the sides: one child process each, interleaved rounds


@dataclass
class SideSpec:
    key: str  # short name in JSON and progress lines
    label: str  # row name in the table
    gets: str  # what this side gets, for the table
    factory: Callable  # importable; called in the child with `kwargs`, returns the side object
    kwargs: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)  # extra environment of the child (e.g. LD_PRELOAD of an allocator)


def _serve(conn, factory: Callable, kwargs: dict, threads: int) -> None:
    """Child process: build the side, answer 'run N' with that round's measurement, 'stop' with peak RSS.

    A side object has `info` (dict: tokenisation time and the like), `check()` (logits shape and loss
    on the first batch of questions, in input order) and `run(n)` (n timed batches -> `measured(...)`)."""
    try:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        warnings.simplefilter("ignore", FutureWarning)  # deprecation notices from library internals
        side = factory(**kwargs)
        conn.send({"info": side.info, "check": side.check(), "rss_ready_mb": rss_mb(peak=False)})
        while True:
            command, arg = conn.recv()
            if command == "run":
                conn.send(side.run(arg))
            else:
                conn.send({"peak_rss_mb": rss_mb(peak=True)})
                return
    except BaseException as exc:  # reported to the parent, which exits with one line
        conn.send({"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})


class _Child:
    def __init__(self, spec: SideSpec, threads: int):
        ctx = mp.get_context("spawn")
        self.spec = spec
        self.conn, child_conn = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child_conn, spec.factory, spec.kwargs, threads), daemon=True)
        saved = dict(os.environ)
        os.environ.update(spec.env)  # a spawned child is a fresh interpreter started with this environment
        try:
            self.process.start()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        child_conn.close()

    def ask(self, message=None) -> dict:
        if message is not None:
            self.conn.send(message)
        try:
            reply = self.conn.recv()
        except EOFError:
            self.process.join(5)
            raise BenchError(f"side '{self.spec.key}' died (exit code {self.process.exitcode}; out of memory?)") from None
        if "error" in reply:
            print(reply["traceback"], file=sys.stderr)
            raise BenchError(f"side '{self.spec.key}' failed: {reply['error']}")
        return reply


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def compare(specs: list[SideSpec], rounds: int, steps: int, warmup: int, threads: int) -> dict:
    """Run the sides interleaved; returns per-side summaries and the matmul peak."""
    children: list[_Child] = []
    try:
        ready = {}
        for spec in specs:  # one at a time, so tokenisation times are not measured under contention
            log(f"starting {spec.key} ...")
            children.append(_Child(spec, threads))
            ready[spec.key] = children[-1].ask()
        check_sides(ready)
        if warmup:
            log(f"warm-up: {warmup} untimed batch(es) per side")
            for child in children:
                child.ask(("run", warmup))
        per_round = {spec.key: [] for spec in specs}
        peaks = []
        for r in range(rounds):
            peaks.append(matmul_peak_gflops(threads))
            for child in children:
                per_round[child.spec.key].append(child.ask(("run", steps)))
            log(f"round {r + 1}/{rounds}: " + ", ".join(
                f"{k} {v[-1]['questions'] / v[-1]['seconds']:.2f} q/s" for k, v in per_round.items())
                + f"; matmul {peaks[-1]:.0f} GFLOP/s")
        sides = {}
        for child in children:
            key = child.spec.key
            stop = child.ask(("stop", None))
            child.process.join(10)
            sides[key] = summarise(per_round[key], ready[key], stop["peak_rss_mb"])
        return {"sides": sides, "matmul_peak_gflops": max(peaks), "matmul_per_round": peaks}
    finally:
        for child in children:
            if child.process.is_alive():
                child.process.terminate()
                child.process.join(5)


def check_sides(ready: dict) -> None:
    """Every side computed logits of the same shape on the same first questions, and a finite loss."""
    shapes = {key: tuple(r["check"]["shape"]) for key, r in ready.items()}
    if len(set(shapes.values())) != 1:
        raise BenchError(f"the sides disagree on the logits' shape for the same questions: {shapes}")
    bad = {key: r["check"]["loss"] for key, r in ready.items() if not math.isfinite(r["check"]["loss"])}
    if bad:
        raise BenchError(f"non-finite loss on the check batch: {bad}")
    log("check: logits " + "x".join(map(str, next(iter(shapes.values())))) + " on every side; losses "
        + ", ".join(f"{k} {r['check']['loss']:.4f}" for k, r in ready.items()))


def summarise(rounds: list[dict], ready: dict, peak_rss: float) -> dict:
    rates = [r["questions"] / r["seconds"] for r in rounds]
    gflops = [r["flops"] / r["seconds"] / 1e9 for r in rounds]
    return {
        "questions_per_s": statistics.median(rates), "min": min(rates), "max": max(rates), "rates": rates,
        "gflops": statistics.median(gflops),
        "positions_per_row": sum(r["positions_per_row"] for r in rounds) / len(rounds),
        "questions": sum(r["questions"] for r in rounds), "seconds": sum(r["seconds"] for r in rounds),
        "rss_ready_mb": ready["rss_ready_mb"], "peak_rss_mb": peak_rss, **ready["info"],
        "check_loss": ready["check"]["loss"],
    }


# ---------------------------------------------------------------------------------------------
# Reporting


def command_line(script: str) -> str:
    """This run's command; paths given as arguments are shown relative to the repository root."""
    args = []
    for a in sys.argv[1:]:
        name, eq, value = a.partition("=")
        target = value if eq else a
        if os.path.isabs(target):
            target = os.path.relpath(target, REPO)
            a = f"{name}={target}" if eq else target
        args.append(a)
    return shlex.join(["python", f"benchmarks/perf/{script}", *args])


def peft_summary(result: dict, args: argparse.Namespace, questions: int) -> dict:
    """The figures both throughput benchmarks report for the sides baas, peft_user and peft_same of `result`."""
    sides, peak = result["sides"], result["matmul_peak_gflops"]
    baas, user, same = sides["baas"], sides["peft_user"], sides["peft_same"]
    return {
        "speedup_vs_peft": baas["questions_per_s"] / user["questions_per_s"],
        "speedup_vs_peft_same_batches": baas["questions_per_s"] / same["questions_per_s"],
        "fraction_of_matmul_peak": baas["gflops"] / peak,
        "baas_questions_per_s": baas["questions_per_s"],
        "peft_questions_per_s": user["questions_per_s"],
        "peft_same_batches_questions_per_s": same["questions_per_s"],
        "baas_peak_rss_mb": baas["peak_rss_mb"],
        "peft_peak_rss_mb": user["peak_rss_mb"],
        "peft_same_batches_peak_rss_mb": same["peak_rss_mb"],
        "baas_gflops": baas["gflops"],
        "matmul_peak_gflops": peak,
        "threads": args.threads,
        "questions": questions, "batch_size": args.batch_size, "rounds": args.rounds,
    }


def results_table(specs: list[SideSpec], result: dict, baseline: str, gflops: bool) -> list[str]:
    sides, peak = result["sides"], result["matmul_peak_gflops"]
    base = sides[baseline]
    head = "| side | what it gets | questions/s median [min–max] | × baas (per-round range) | peak RSS MB (after set-up) |"
    rule = "|---|---|---|---|---|"
    if gflops:
        head += " GFLOP/s (of matmul peak) | positions/row |"
        rule += "---|---|"
    lines = [head, rule]
    for spec in specs:
        s = sides[spec.key]
        paired = [a / b for a, b in zip(s["rates"], base["rates"])]
        ratio = "1" if spec.key == baseline else f"{s['questions_per_s'] / base['questions_per_s']:.2f} [{min(paired):.2f}–{max(paired):.2f}]"
        row = (f"| {spec.label} | {spec.gets} | {s['questions_per_s']:.2f} [{s['min']:.2f}–{s['max']:.2f}] | {ratio} "
               f"| {s['peak_rss_mb']:.0f} ({s['rss_ready_mb']:.0f}) |")
        if gflops:
            row += f" {s['gflops']:.1f} ({s['gflops'] / peak:.0%}) | {s['positions_per_row']:.1f} |"
        lines.append(row)
    return lines


def environment_lines(args: argparse.Namespace, script: str, result: dict) -> list[str]:
    physical = None
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except ImportError:
        pass
    peaks = result["matmul_per_round"]
    lines = [
        f"- command: `{command_line(script)}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}; machine: {os.cpu_count()} logical cores"
        + (f" ({physical} physical)" if physical else "") + f", {platform.machine()}, {platform.system()}; "
        f"torch {torch.__version__}, {args.threads} torch thread(s) in every process",
        (f"- fp32 matmul peak (best 2048x2048 `torch.mm`, measured at the start of every round): "
         f"{result['matmul_peak_gflops']:.0f} GFLOP/s (per round {min(peaks):.0f}–{max(peaks):.0f}: a wide range "
         "means a busy machine)"),
    ]
    if hasattr(os, "getloadavg"):
        lines.append(f"- load average at the end (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return lines


def report_path(args: argparse.Namespace, name: str) -> Path:
    """--output, else benchmarks/results/<name>.md for a full run; a --quick run never overwrites that
    committed result: it goes to benchmarks/results/quick/ (ignored by git)."""
    if args.output:
        return Path(args.output)
    return RESULTS / "quick" / f"{name}.md" if args.quick else RESULTS / f"{name}.md"


def write_report(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    log(f"wrote {os.path.relpath(path, REPO) if path.is_absolute() else path}")


def main_guard(main: Callable[[], None]) -> None:
    """Run `main`; a BenchError or a baas error becomes one line on stderr and exit status 2."""
    from baas.prompts_bank.errors import BaasError

    try:
        main()
    except (BenchError, BaasError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
