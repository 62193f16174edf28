"""`baas eval-forgetting`: the continual protocol, every method on the same tasks in turn, and what each
keeps (the API's `eval_forgetting`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from baas.cli.options import (DEFAULTS, BackboneOpt, ConfigOpt, DataDirOpt, DeviceOpt, JsonOpt, MaxEvalSomeOpt, MaxTrainSomeOpt, PrecisionOpt,
                              ScoringOpt, SeedOpt)
from baas.cli.render import Table, emit, main_process, note, one_line_errors, say, show, three
from baas.training.fusion import DEFAULT_STRATEGIES
from baas.training.metrics import few_on_average, final_counts


@one_line_errors
def eval_forgetting(
    ctx: typer.Context,
    out_dir: Annotated[Path, typer.Option("--out", help="Report folder: cells.jsonl (results as they come), report.json, report.md, report.csv (every cell with its n and 95% interval), plots. Rerunning the same command there resumes.")] = Path("baas-forgetting"),
    tasks: Annotated[Optional[str], typer.Option("--tasks", help="Comma-separated datasets, in the order they are learned. Default: the ten shared datasets (arc_easy, arc_challenge, openbookqa, commonsense_qa, qasc, mmlu, medqa, medmcqa, dream, cosmos_qa).")] = None,
    methods: Annotated[str, typer.Option("--methods", help="Comma-separated: baas (the bank and its router; reports each --strategies and the oracle), naive (one pair trained on each task in turn: the lower bound), ewc (the same with an EWC penalty), multitask (one pair trained on all tasks at once: the upper bound), the PEFT baselines prompt_tuning, prefix_tuning, p_tuning, lora, adalora, dora, olora, and full_ft (sequential full fine-tuning), the reference rows zero_shot (the frozen encoder's cosine of question and option, nothing trained: no forgetting by construction) and st_ft (the sentence encoder fine-tuned with the sentence-transformers trainer and a ranking loss, wrong options as hard negatives, on each task in turn), or all.")] = "all",
    strategies: Annotated[str, typer.Option("--strategies", help="Router strategies reported for baas; the first is the method `baas`, the others `baas:NAME`. Default: cluster (the default strategy, chosen on validation), hard and topk2. A run resumes with the first it was made with; --report-only may name another first (the rows are relabelled).")] = DEFAULT_STRATEGIES,
    orders: Annotated[int, typer.Option("--orders", min=1, help="Task orders: the first as given, the others seeded shuffles; metrics are the mean and spread over orders.")] = 1,
    data_dir: DataDirOpt = None,
    backbone: BackboneOpt = None,
    store: Annotated[Optional[Path], typer.Option("--store", help="Store of the protocol's bank entries, states and caches. Default: OUT/store, the run's own, so your bank is never touched. A store named here is shared: entries in it with the same data and settings are reused, new ones are added as new versions, and nothing the run did not make is removed or changed.")] = None,
    max_train: MaxTrainSomeOpt = 600,
    max_eval: MaxEvalSomeOpt = 200,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs per task (best epoch on the task's validation split kept).")] = DEFAULTS.epochs,
    seed: SeedOpt = DEFAULTS.seed,
    scoring: ScoringOpt = DEFAULTS.scoring,
    ewc_lambda: Annotated[Optional[float], typer.Option("--ewc-lambda", min=0.0, help="Strength of the EWC penalty. Default: chosen on validation over the first two tasks from 1e2, 1e3, 1e4 and 1e5 (the mean validation accuracy of tasks 1 and 2 after task 2).")] = None,
    space: Annotated[str, typer.Option("--space", help="Where baas mixes entries: output (each entry's answers, cached per entry and split) or prompt (one fused pass per question and row).")] = "output",
    report_only: Annotated[bool, typer.Option("--report-only", metavar="", help="Train and evaluate nothing: write the report of the cells already in --out (a run still going, or stopped).")] = False,
    device: DeviceOpt = DEFAULTS.device,
    precision: PrecisionOpt = DEFAULTS.precision,
    as_json: JsonOpt = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", metavar="", help="Start without asking. Without it, on a terminal the plan (methods x tasks x budget, a rough time) is shown and confirmed first; not on a terminal (a script, a pipe) the run starts at once.")] = False,
    config: ConfigOpt = None,
):
    """Learn the tasks one after another with each method and measure what it keeps: the accuracy matrix
    R[k][i] (task i after training tasks 1..k), average and incremental accuracy, BWT, FWT and forgetting,
    in accuracy and macro F1, with parameters, time and memory.

    baas grows its bank by one entry per task and refits its router from the entries' query summaries; it
    answers with no task id. The protocol's bank lives in OUT/store unless --store names another; bank
    entries trained there with the same data and settings are reused, and an entry the run did not make is
    never removed or changed. Results go to --out as they come; a stopped run resumes with the same command.

    The run's effective settings (command line over --config file over defaults, with the precision it
    resolved to) are saved as OUT/run.toml, a file --config reads back.

    Examples: `baas eval-forgetting --data-dir DIR --tasks arc_easy,qasc,openbookqa --methods baas,naive,ewc --out runs/three`;
    `baas eval-forgetting --out runs/three --report-only` (the report of what is done so far);
    `baas eval-forgetting --config run.toml --epochs 1` (the file's settings, one changed).
    """
    from baas.cli.config import effective, save
    from baas.cli.progress import reporter
    from baas.training.api import eval_forgetting as run
    from baas.training.api.protocol import plan_forgetting
    from baas.training.api.resolve import backbone_of

    o = effective(ctx, config)
    bb = o["backbone"]
    if not o["report_only"]:
        ask = not o["yes"] and _on_terminal()
        if main_process():
            bb = backbone_of(bb, o["device"], o["precision"])  # loaded once: the probe's is the run's
            _show_plan(plan_forgetting(o["tasks"], o["methods"], max_train=o["max_train"], max_eval=o["max_eval"],
                                       epochs=o["epochs"], ewc_lambda=o["ewc_lambda"], backbone=bb))
            if ask and not typer.confirm("Start?", default=True, err=True):
                raise typer.Exit(1)
            # the precision the run used, not `auto`: auto differs between machines, and a results folder
            # resumes only on the precision it started with
            save(ctx, dict(o, precision=bb.precision), Path(o["out_dir"]) / "run.toml",
                 leave_out=("report_only", "yes", "as_json"))
    result = run(o["tasks"], o["methods"], o["strategies"], out=o["out_dir"], orders=o["orders"], data_dir=o["data_dir"],
                 backbone=bb, store=o["store"], max_train=o["max_train"], max_eval=o["max_eval"], epochs=o["epochs"],
                 seed=o["seed"], scoring=o["scoring"], ewc_lambda=o["ewc_lambda"], space=o["space"],
                 report_only=o["report_only"], reporter=reporter(), device=o["device"], precision=o["precision"],
                 command="baas " + " ".join(a for a in sys.argv[1:] if a != "--report-only"))
    as_json = o["as_json"]
    emit(result, as_json, lambda: _show(result))
    if not main_process():
        return
    for name, failure in result.failed.items():
        note(f"{name} failed at task {failure['task']}: {failure['error']} (rerun the same command to retry it)", "error")
    if result.failed:
        raise typer.Exit(1)


def _on_terminal() -> bool:
    """Someone to ask: stdin and stdout both a terminal (not a script, a pipe or a batch job)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def _show_plan(plan: dict) -> None:
    """The plan on stderr (stdout stays the result's: one JSON line under --json)."""
    b, n, t = plan["budget"], len(plan["methods"]), len(plan["tasks"])
    note(f"{n} method{'s' * (n != 1)} x {t} task{'s' * (t != 1)}, up to {b['max_train']} training questions x "
         f"{b['epochs']} epochs and {b['max_eval']} evaluation questions per task: about {plan['train_steps']:,} "
         f"training steps and {plan['eval_questions']:,} evaluated questions", "plan")
    note(f"methods: {', '.join(plan['methods'])}; tasks in order: {', '.join(plan['tasks'])}", "plan")
    if "estimated_seconds" in plan:
        hours = plan["estimated_seconds"] / 3600
        note(f"roughly {hours:.1f} h here ({plan['seconds_per_step']:.3f} s a training step, "
             f"{1000 * plan['seconds_per_eval_question']:.1f} ms an evaluated question, timed on a few synthetic batches; "
             "a rough guide only: data loading, caches and the slower methods are not in it)", "plan")


def _show(result) -> None:
    report = result.report
    ci = lambda i: "" if not i else f" [{i[0]:.2f}, {i[1]:.2f}]"  # noqa: E731

    def metric(m: dict, key: str) -> str:
        return three(m[key]) + ("" if m[key] is None else ci((m.get("intervals") or {}).get(key)))

    def versus(v: dict | None) -> str:
        if not v:
            return "–"
        if not v["interval"]:
            return f"{100 * v['difference']:+.1f} (no interval)"
        return f"{100 * v['difference']:+.1f} [{100 * v['interval'][0]:+.1f}, {100 * v['interval'][1]:+.1f}] {v['verdict']}"

    confidence = f"{100 * report['uncertainty']['confidence']:.0f}%" if report.get("uncertainty") else "95%"
    counts = final_counts(report["methods"])
    each = "" if not counts else f" of {min(counts)}" + (f"–{max(counts)}" if max(counts) > min(counts) else "") + " questions"
    table = Table(f"eval-forgetting: {len(report['tasks'])} tasks{each} in turn, no task ids for baas ({confidence} intervals, "
                  "bootstrap over questions)",
                  ["method", "avg acc", "avg incr", "BWT", "FWT", "forgetting", "baas − method (points)",
                   "avg acc, learnable", "trainable/task", "seconds"])
    for name, m in report["methods"].items():
        p = m["parameters"] or {}
        table.add_row(name, metric(m, "average_accuracy"), three(m["average_incremental_accuracy"]), metric(m, "bwt"),
                      three(m["fwt"]), metric(m, "forgetting"), "" if name == "baas" else versus(m.get("versus_baas")),
                      metric(m, "learnable_average_accuracy") if "learnable_average_accuracy" in m else "–",
                      f"{p.get('trainable', '–'):,}" if p else "–", f"{m['seconds']:.0f}")
    show(table)
    view = report.get("learnable") or {}
    if view.get("tasks") is not None:
        say(f"learnable tasks (some method {100 * view['margin']:.0f} points above chance on validation): "
            f"{', '.join(view['tasks']) or 'none'}; left out: "
            f"{', '.join(t for t in report['tasks'] if t not in view['tasks'] and t not in view['unknown']) or 'none'}"
            + (f"; not measured yet: {', '.join(view['unknown'])}" if view["unknown"] else ""))
    f = report.get("findings") or {}
    thin = few_on_average(counts)  # the goals and comparisons rest on the final row's cells
    thin = f" ({thin})" if thin else ""
    for goal, g in f.get("goals", {}).items():
        say(f"goal {goal}: {three(g['value'])}{ci(g.get('interval'))} -> {'met' if g['met'] else 'missed'}{thin}")
    for name in f.get("baselines_above_baas", []):
        say(f"{name} beats baas on average accuracy (paired {confidence} interval of baas − {name} below zero){thin}")
    said = {"ahead": "baas is ahead of", "level": "baas is level with", "behind": "baas is behind",
            "no_interval": "no interval (cells without per-question results) for"}
    for key, names in (f.get("baas_versus") or {}).items():
        if names:
            say(f"{said[key]}: {', '.join(names)}{thin}")
    say(f"report: {result.folder / 'report.md'} (also report.json, report.csv, accuracy_matrix.png, forgetting_curves.png)")
