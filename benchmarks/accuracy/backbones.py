"""Two frozen backbones side by side: MiniLM-L6 (the default) and MPNet-base (`make mpnet`), each under
head-only, baas's default deep pair (every layer, gated) and PEFT prompt tuning (eval-forgetting's `prompt_tuning`
learner: 10 virtual tokens at the input, from sampled vocabulary), on the same subsets, batches and schedule. One
run per child process, so each run's peak RSS is its own.

PEFT prefix tuning (virtual keys and values at every layer, the nearer match to the deep pair) cannot run on
MPNet: PEFT passes the prefix as a key/value cache, and MPNet's forward in transformers 5 takes none (baas
refuses it up front, `training/continual/methods/peft.py: check_prefix_tuning`). Prompt tuning runs on both.

    python benchmarks/accuracy/backbones.py probe --data-dir DIR   # MPNet's learning rates: arc_easy validation decides
    python benchmarks/accuracy/backbones.py table --data-dir DIR   # every (dataset, backbone, method) at the chosen rates
    python benchmarks/accuracy/backbones.py all --data-dir DIR     # both, the deep pair's probe and rows first
    python benchmarks/accuracy/backbones.py report                 # benchmarks/results/backbones.md from the log

MiniLM keeps the rates chosen for it before (benchmarks/results/recipe_chosen.json); prompt tuning, not chosen before,
is probed on MiniLM too, over eval-forgetting's prompt grid. Budget: 600 training questions,
2 epochs, at most 200 validation and 200 evaluation questions, seed 0. Resumable: a run already in
benchmarks/results/backbones_runs.jsonl is not run again, so rerunning a stopped command picks up where it was.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results"
LOG = RESULTS / "backbones_runs.jsonl"
ZERO_SHOT = RESULTS / "zero_shot.json"
LOCKS = Path(tempfile.gettempdir()) / "baas-backbones-locks"
BACKBONES = ("minilm", "mpnet")
METHODS = ("head_only", "deep_gated", "peft_prompt")  # deep_gated: baas's default deep pair, gate and all
DATASETS = ("arc_easy", "commonsense_qa", "cosmos_qa", "arc_challenge", "mmlu")
# MPNet's probe grids. A deep-pair or prompt-tuning run on MPNet costs about 20 minutes here, so those two search
# 1e-2 (MiniLM's rate for the deep pair and for prefix tuning) and the next one down (a larger model usually
# wants a smaller rate), 1e-2 first.
GRIDS = {"head_only": ("head_lr", (1e-2, 3e-2, 1e-1)), "deep_gated": ("lr", (1e-2, 3e-3)),
         "peft_prompt": ("lr", (1e-2, 3e-3))}
MINILM_GRIDS = {"peft_prompt": (3e-3, 1e-2, 3e-2)}  # methods recipe_chosen.json has no rate for: PROMPT_GRID
PEFT = {"peft_prompt": "prompt_tuning"}  # the eval-forgetting baseline that each PEFT method here runs
FINDINGS = "<!-- findings: written by hand from the rows above; `report` keeps everything below this line -->"
BUDGET = dict(max_train=600, max_eval=200, epochs=2, seed=0)


def recipe(method: str, rate: float | None = None) -> dict:
    """The method's settings from recipe_chosen.json (MiniLM's choices), the deep pair over every layer of
    whichever backbone, and `rate` in place of the rate that GRIDS searches."""
    chosen = json.loads((RESULTS / "recipe_chosen.json").read_text())
    settings = dict(chosen["peft_prefix" if method in PEFT else method], epochs=BUDGET["epochs"], seed=BUDGET["seed"])
    settings.pop("peft", None)
    if method == "deep_gated":
        settings["depth"] = None  # every layer of the backbone at hand
    if rate is not None:
        settings[GRIDS[method][0]] = rate
    return settings


def key(row: dict) -> tuple:
    return row["dataset"], row["backbone"], row["method"], row["rate"]


def done() -> dict[tuple, dict]:
    rows = [json.loads(line) for line in LOG.read_text().splitlines()] if LOG.is_file() else []
    return {key(r): r for r in rows}


def timing_reporter():
    """A trainer reporter that adds up the time spent in training stages (labels with 'epoch') and their steps."""
    from baas.training.progress import Reporter

    class Timing(Reporter):
        def __init__(self):
            self.train_seconds, self.steps, self._label, self._started, self._total = 0.0, 0, "", 0.0, 0

        def start(self, label: str, total: int, completed: int = 0) -> None:
            self._label, self._started, self._total = label, time.perf_counter(), total - completed

        def stop(self) -> None:
            if "epoch" in self._label:
                self.train_seconds += time.perf_counter() - self._started
                self.steps += self._total

    return Timing()


def one(job: dict) -> dict:
    """Train and evaluate one (dataset, backbone, method, rate) in this process; returns the logged row."""
    import torch

    from baas.store import Store
    from baas.training.backbone import load_backbone
    from baas.training.config import TrainConfig
    from baas.training.data import load_task_data
    from baas.training.metrics import chance

    backbone = load_backbone(job["backbone"])
    data = load_task_data(job["dataset"], job["data_dir"], max_train=BUDGET["max_train"], max_eval=BUDGET["max_eval"])
    config = TrainConfig(**recipe(job["method"], job["rate"]))
    timing, started = timing_reporter(), time.perf_counter()
    if job["method"] in PEFT:
        from baas.training.continual import BASELINES, Budget, Context, Settings, fit, learner_metrics

        with tempfile.TemporaryDirectory() as tmp:
            budget = Budget(BUDGET["max_train"], BUDGET["max_eval"], config.epochs, config.seed)  # the subsets loaded above
            ctx = Context(Settings(tasks=[data.name], budget=budget, config=config), backbone, Store(tmp), job["data_dir"], timing)
            learner = BASELINES[PEFT[job["method"]]](ctx, [data.name], "backbones").new_learner()  # seeded
            train, val, test = (ctx.encoded(data.name, split) for split in ("train", "validation", "eval"))
            validation = fit(ctx, learner, train, val, f"{data.name} {job['method']}", lr=config.lr)
            metrics = learner_metrics(ctx, learner, test, "test")
            trained = sum(t.numel() for t in learner.trainable().values())
            n_train = len(train)
    else:
        from baas.training.trainer import train_pair

        with tempfile.TemporaryDirectory() as tmp:
            result = train_pair(data.name, data, backbone, Store(tmp), config, timing)
        metrics = {"accuracy": result["accuracy"], "macro_f1": result["macro_f1"], "n": result["n_eval"]}
        validation = max(h["validation_accuracy"] for h in result["history"])
        trained, n_train = result["trainable_parameters"], result["n_train"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(dataset=job["dataset"], backbone=job["backbone"], method=job["method"], rate=job["rate"],
                rate_name=GRIDS[job["method"]][0], stage=job["stage"], config=asdict(config),
                validation_accuracy=validation, eval_split=data.eval_split, eval_accuracy=metrics["accuracy"],
                eval_macro_f1=metrics["macro_f1"], n_eval=metrics["n"], n_train=n_train,
                chance=chance([len(e.options) for e in data.eval.examples]),
                trained_parameters=trained, train_seconds=round(timing.train_seconds, 1), steps=timing.steps,
                seconds_per_step=round(timing.train_seconds / max(timing.steps, 1), 3),
                train_questions_per_second=round(n_train * config.epochs / max(timing.train_seconds, 1e-9), 2),
                seconds=round(time.perf_counter() - started, 1), peak_rss_mb=round(peak), threads=torch.get_num_threads(),
                time=time.strftime("%Y-%m-%d %H:%M"))


def run_jobs(jobs: list[dict]) -> None:
    """Each job not yet in the log, in its own child process; the child appends its row. A job is locked
    while it runs (an flock, gone with the process), so several workers can share a list."""
    LOCKS.mkdir(exist_ok=True)
    for job in jobs:
        name = "-".join(map(str, key(job)))
        with (LOCKS / name).open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # another worker runs it
            if key(job) in done():
                continue
            print(f"{job['stage']}: {job['dataset']} {job['backbone']} {job['method']} {GRIDS[job['method']][0]}={job['rate']}", flush=True)
            subprocess.run([sys.executable, __file__, "one", json.dumps(job)], check=True)


def chosen_rate(backbone: str, method: str) -> float:
    """MiniLM: its recipe's rate, where it has one. Otherwise the probe's best arc_easy validation accuracy
    (ties: the earlier rate)."""
    name, grid = GRIDS[method]
    if backbone == "minilm":
        if method not in MINILM_GRIDS:
            return recipe(method)[name]
        grid = MINILM_GRIDS[method]
    rows = [done().get(("arc_easy", backbone, method, rate)) for rate in grid]
    if any(r is None for r in rows):
        raise SystemExit(f"run `backbones.py probe` first: {backbone}'s {method} has no probe of every rate yet")
    return max(rows, key=lambda r: r["validation_accuracy"])["rate"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["probe", "table", "all", "report", "one"])
    ap.add_argument("job", nargs="?", help=argparse.SUPPRESS)
    ap.add_argument("--data-dir")
    ap.add_argument("--methods", default=",".join(METHODS),
                    help="comma-separated subset of METHODS, so two processes can share the work (default: all)")
    args = ap.parse_args()
    if args.mode == "one":
        row = one(json.loads(args.job))
        with LOG.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"  val {row['validation_accuracy']:.3f}  {row['eval_split']} {row['eval_accuracy']:.3f}  "
              f"{row['seconds_per_step']:.2f} s/step  {row['peak_rss_mb']} MB", flush=True)
        return
    if args.mode == "report":
        report()
        return
    if not args.data_dir:
        ap.error("--data-dir is required")
    grids = lambda m: [("minilm", r) for r in MINILM_GRIDS.get(m, ())] + [("mpnet", r) for r in GRIDS[m][1]]
    probe = lambda m: [dict(stage="probe", dataset="arc_easy", backbone=b, method=m, rate=r, data_dir=args.data_dir)
                       for b, r in grids(m)]
    # cosmos_qa's long passages make it the slowest set by far: its rows run last
    order = sorted(DATASETS, key=lambda d: d == "cosmos_qa")
    table = lambda m: [dict(stage="table", dataset=d, backbone=b, method=m, rate=chosen_rate(b, m), data_dir=args.data_dir)
                       for d in order for b in BACKBONES]
    methods = [m for m in ("deep_gated", "head_only", "peft_prompt") if m in args.methods.split(",")]
    if args.mode == "probe":
        run_jobs([job for m in methods for job in probe(m)])
    elif args.mode == "table":
        run_jobs([job for m in methods for job in table(m)])
    else:  # all: the deep pair's probe and rows first (they decide whether MPNet earns a continual run)
        for m in methods:
            run_jobs(probe(m))
            try:
                jobs = table(m)
            except SystemExit as waiting:  # another worker is still probing this method's rates
                print(f"{m}: {waiting}; its rows are left to that worker", flush=True)
                continue
            run_jobs(jobs)


def report() -> None:
    have = done()
    lines = ["# MiniLM-L6 and MPNet-base, side by side", "",
             f"`python benchmarks/accuracy/backbones.py probe --data-dir DIR`, then `table`, then `report`. Budget: "
             f"{BUDGET['max_train']} training questions, {BUDGET['epochs']} epochs, at most {BUDGET['max_eval']} validation and "
             f"evaluation questions, seed {BUDGET['seed']} (one seed). Each run in its own process on a 2-core CPU machine, "
             "often beside other jobs; the log's `threads` field gives each run's torch threads (1 since the deep pair became "
             "gated), so times are rough. deep_gated is baas's default deep pair (the attention gate from -4); "
             "deep_pair, in the probe only, is the same pair without the gate (`--no-gate`).", ""]
    probes = sorted((r for r in have.values() if r["stage"] == "probe"), key=lambda r: (r["backbone"], r["method"], r["rate"]))
    if probes:
        lines += ["## Learning rates (arc_easy validation decides)", "",
                  "| backbone | method | rate | validation acc | test acc (not used) |", "|---|---|---|---|---|"]
        lines += [f"| {r['backbone']} | {r['method']} | {r['rate_name']}={r['rate']:g} | {r['validation_accuracy']:.3f} | "
                  f"{r['eval_accuracy']:.3f} |" for r in probes]
        lines.append("")
    lines += ["## The table", "",
              "| dataset | method | MiniLM acc | MPNet acc | MiniLM s/step | MPNet s/step | MiniLM q/s | MPNet q/s | "
              "MiniLM peak RSS (MB) | MPNet peak RSS (MB) | trained / task (MiniLM, MPNet) |", "|---" * 11 + "|"]
    zero = {(r["dataset"], r["backbone"]): r for r in json.loads(ZERO_SHOT.read_text())} if ZERO_SHOT.is_file() else {}
    for d in DATASETS:
        if (d, "minilm") in zero:  # benchmarks/accuracy/zero_shot.py: the option nearest the question, nothing trained
            accs = [format(zero[d, b]["eval_accuracy"], ".3f") if (d, b) in zero else "–" for b in BACKBONES]
            lines.append(f"| {d} | zero-shot cosine | " + " | ".join(accs + ["–"] * 6 + ["0, 0"]) + " |")
        for m in METHODS:
            rows = []
            for b in BACKBONES:
                try:
                    rows.append(have.get((d, b, m, chosen_rate(b, m))))
                except SystemExit:
                    rows.append(None)
            if not any(rows):
                continue

            def cell(r, field, spec):
                return "–" if r is None else format(r[field], spec)

            lines.append(f"| {d} | {m} | " + " | ".join(cell(r, "eval_accuracy", ".3f") for r in rows) + " | "
                         + " | ".join(cell(r, "seconds_per_step", ".2f") for r in rows) + " | "
                         + " | ".join(cell(r, "train_questions_per_second", ".1f") for r in rows) + " | "
                         + " | ".join(cell(r, "peak_rss_mb", "d") for r in rows) + " | "
                         + ", ".join(cell(r, "trained_parameters", ",") for r in rows) + " |")
    out = RESULTS / "backbones.md"
    kept = out.read_text().partition(FINDINGS)[2] if out.is_file() else ""  # the hand-written part stays
    out.write_text("\n".join(lines) + "\n\n" + FINDINGS + kept.rstrip("\n") + "\n")


if __name__ == "__main__":
    main()
