"""The eval-forgetting report folder, rendered from the report object (summary.py): `report.json` (the object
`--json` prints), `report.md` (tables a paper can take), `report.csv` (every measured cell) and the two figures
plots.py draws: each method's accuracy matrix as a heatmap, and each task's accuracy over the sequence
(forgetting curves)."""

from __future__ import annotations

import json
from pathlib import Path

from baas.store import atomic_write
from baas.training.continual.plots import plots
from baas.training.metrics import few_on_average, final_counts

METRICS = [("average_accuracy", "avg acc"), ("average_incremental_accuracy", "avg incr acc"), ("bwt", "BWT"),
           ("fwt", "FWT"), ("forgetting", "forgetting")]


def _strategies(report: dict) -> str:
    """', baas routes with `hard` (baas:NAME: the others)' when baas ran."""
    strategies = report.get("strategies") or []
    if "baas" not in report.get("methods", {}) or not strategies:
        return ""
    others = f" (baas:NAME: {', '.join(strategies[1:])})" if len(strategies) > 1 else ""
    return f"; the row baas routes with `{strategies[0]}`{others}"


def _f(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _points(value) -> str:
    return "–" if value is None else f"{100 * value:+.1f}"


def _interval(interval, digits: int = 3) -> str:
    return "" if not interval else f" [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def _versus(v, verdict: bool = True) -> str:
    """`baas - method` in points, its paired interval and (unless `verdict` is False) the verdict for baas."""
    if not v:
        return "–"
    if not v["interval"]:
        return f"{_points(v['difference'])}" + (" (no interval)" if verdict else "")
    low, high = v["interval"]
    return f"{_points(v['difference'])} [{100 * low:+.1f}, {100 * high:+.1f}]" + (f" {v['verdict']}" if verdict else "")


def _count(n) -> str:
    return "–" if n is None else f"{n:,}"


def markdown(report: dict, command: str | None = None) -> str:
    methods, tasks, order = report["methods"], report["tasks"], report["orders"][0]
    b = report["budget"]
    lines = [f"# Continual learning: {len(tasks)} tasks in turn, {report['backbone']}", ""]
    if command:
        lines += ["```", command, "```", ""]
    lines += [f"Budget: {b['max_train']} training questions per task, {b['epochs']} epochs, up to {b['max_eval']} "
              f"evaluation questions per task (test split, else validation), seed {b['seed']}; "
              f"{len(report['orders'])} order(s). Every method scored `{report.get('scoring', 'joint')}` (see --scoring). Router: rule `{report['rule']}`, query `{report['query']}`, "
              f"{report['space']}-space fusion{_strategies(report)}. Order: {', '.join(order)}.", "",
              "Metrics (R[k][i]: accuracy on task i after training tasks 1..k; T tasks): average accuracy "
              "= mean_i R[T][i]; average incremental accuracy = mean_k mean_{i<=k} R[k][i]; BWT = mean_{i<T} "
              "(R[T][i] - R[i][i]); FWT = mean_{i>1} (R[i-1][i] - chance_i); forgetting = mean_{i<T} "
              "max_{i<=k<T} (R[k][i] - R[T][i]). '–': not defined for the method (multitask has no sequence; "
              "the oracle has no entry for a task before it is trained).", ""]
    chosen = [f"{name} lr {m['lr']:g}" for name, m in methods.items() if m.get("lr") is not None and ":" not in name]
    ewc = methods.get("ewc") or {}
    if ewc.get("ewc_lambda") is not None:
        scores = ", ".join(f"{float(k):g}: {v:.3f}" for k, v in (ewc.get("ewc_lambda_scores") or {}).items())
        chosen.append(f"ewc lambda {ewc['ewc_lambda']:g}" + (f" (mean validation accuracy of tasks 1-2: {scores})" if scores else ""))
    elif report.get("ewc_lambda") is not None and "ewc" in methods:
        chosen.append(f"ewc lambda {report['ewc_lambda']:g} (fixed)")
    if chosen:
        lines += ["Chosen on validation (the first task's, and for EWC's lambda the first two tasks'): " + "; ".join(chosen) + ".", ""]
    u = report.get("uncertainty")
    if u:
        lines += [f"Intervals are {100 * u['confidence']:.0f}%. A cell's is Wilson's score interval for its questions. "
                  f"Metrics have a percentile bootstrap over the evaluation questions ({u['resamples']} resamples, seed "
                  f"{u['seed']}), resampled within each task; every row, order and method uses the same resamples, so "
                  "'baas − method' (in points) is a paired interval. baas is *ahead* of a method when that interval lies "
                  "above zero, *behind* when it lies below, and *level* when it holds zero. Cells recorded without "
                  "per-question results have no bootstrap interval.", ""]
    unfinished = [f"{name} ({m['steps_done']} of {len(tasks)} tasks)" for name, m in methods.items()
                  if m["steps_done"] < len(tasks) and not name.startswith("baas:") and name != "oracle"]
    if unfinished:
        lines += [f"**Not finished yet:** {', '.join(unfinished)}. Figures that need a missing cell are '–'; rerun "
                  "the command to resume. So far, the mean accuracy over the tasks learned, after the last fully "
                  "measured row: " + "; ".join(f"{name} {_f(m['latest']['average_accuracy'])} after {m['latest']['tasks']} tasks"
                                             for name, m in methods.items() if m.get("latest")) + ".", ""]
    for name, failure in report.get("failed", {}).items():
        lines += [f"**Failed:** {name} at task {failure['task']}: `{failure['error']}`. Rerunning the command retries it.", ""]
    spread = len(report["orders"]) > 1
    lines += ["| method | " + " | ".join(label for _, label in METRICS) + " | baas − method (points) | avg macro F1 | "
              "trainable / task | stored / task | stored total | wall time (s) | CPU time (s) | peak RSS (MB) |",
              "|---" * (len(METRICS) + 9) + "|"]
    for name, m in methods.items():
        cells = []
        for key, _ in METRICS:
            cell = _f(m[key])
            if spread and m["spread"] and m["spread"][key] is not None:
                cell += f" ± {m['spread'][key]:.3f}"
            if m[key] is not None:
                cell += _interval((m.get("intervals") or {}).get(key))
            cells.append(cell)
        cells.append("" if name == "baas" else _versus(m.get("versus_baas")))
        p = m["parameters"] or {}
        cost = m["seconds"] if name not in ("oracle",) and ":" not in name else None
        reused = f" ({m['reused_steps']} steps reused)" if m["reused_steps"] and cost is not None else ""
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_f(m['macro_f1']['average_accuracy'])} | "
                     f"{_count(p.get('trainable'))} | {_count(p.get('stored_per_task'))} | {_count(p.get('stored_total'))} | "
                     f"{'–' if cost is None else f'{cost:.0f}'}{reused} | "
                     f"{_f(m.get('cpu_seconds'), 0) if cost is not None else '–'} | "
                     f"{_f(m['peak_rss_mb'], 0) if cost is not None else '–'} |")
    lines += ["", "baas, its other strategies and the oracle share one bank, so their cost is the baas row's. "
              "Peak RSS is the process's peak when the method's last step ended (methods run one after another "
              "in one process). CPU time counts every thread of the process: another job on the machine stretches "
              "the wall time, much less the CPU time ('–': steps recorded before it was kept).", "", "## Final accuracy per task", "",
              "Each cell: accuracy [Wilson interval]; n: the task's evaluation questions.", "",
              "| task | n | chance | " + " | ".join(methods) + " |", "|---" * (len(methods) + 3) + "|"]
    for i, t in enumerate(order):
        n = next((m["n_matrix"][-1][i] for m in methods.values() if (m.get("n_matrix") or [[None] * len(order)])[-1][i]), None)
        lines.append(f"| {t} | {_count(n)} | {report['chance'][t]:.3f} | " + " | ".join(
            _f(m["final_accuracy"][t]) + _interval((m.get("final_accuracy_interval") or {}).get(t), 2)
            if m["final_accuracy"][t] is not None else "–" for m in methods.values()) + " |")
    f = report.get("findings") or {}
    if f:
        # the goals and comparisons rest on the final row's cells: on few questions, every finding says so first
        thin = few_on_average(final_counts(methods))
        lines += ["", "## Findings", ""] + [f"- **Every finding below rests {thin}.**"] * bool(thin) + [
            f"- Best router strategy by average accuracy: **{f['best_strategy']}** "
            f"({_f(methods[f['best_strategy']]['average_accuracy'])})."]
        for goal, g in f["goals"].items():
            ref = f", reference {_f(g['reference'])}, target {_f(g['target'])}" if "reference" in g else ""
            ref = _interval(g.get("interval")) + ref
            gap = "" if g["met"] else (f" — missed by {100 * (g['target'] - g['value']):.1f} points" if "target" in g
                                       else f" — missed by {100 * (abs(g['value']) - 0.01):.1f} points")
            lines.append(f"- Goal `{goal}`: {_f(g['value'])}{ref}: **{'met' if g['met'] else 'missed'}**{gap}.")
        for name in f["baselines_above_baas"]:
            lines.append(f"- **{name} beats baas** on average accuracy: {_f(methods[name]['average_accuracy'])} "
                         f"against {_f(methods['baas']['average_accuracy'])}; baas − {name}: "
                         f"{_versus(methods[name].get('versus_baas'))}.")
        said = {"ahead": "baas is ahead of", "level": "baas is level with", "behind": "baas is behind",
                "no_interval": "no interval (cells without per-question results) for"}
        for key, names in (f.get("baas_versus") or {}).items():
            if names:
                lines.append(f"- Paired bootstrap on average accuracy: {said[key]} " + ", ".join(
                    f"{n} ({_versus(methods[n].get('versus_baas'), verdict=False)})" for n in names) + ".")
    lines += learnable_section(report)
    lines += ["", "## Accuracy matrices (rows: after task k; columns: task i)", ""]
    for name, m in methods.items():
        lines += [f"**{name}**", "", "| after \\ on | " + " | ".join(order) + " |", "|---" * (len(order) + 1) + "|"]
        lines += [f"| {order[k]} | " + " | ".join(_f(v) for v in row) + " |" for k, row in enumerate(m["accuracy_matrix"])]
        lines.append("")
    lines += ["Plots: `accuracy_matrix.png` (heatmaps), `forgetting_curves.png` (each task's accuracy over the sequence).", ""]
    return "\n".join(lines)


def learnable_section(report: dict) -> list[str]:
    """The second view: the average over the tasks some method learns (beats chance on validation by the
    margin), with each method's interval and its paired comparison with baas there."""
    view, methods = report.get("learnable"), report["methods"]
    if not view:
        return []
    lines = ["", "## The learnable tasks", ""]
    if view["tasks"] is None:
        return lines + ["No validation accuracy was recorded for these results (they predate it): no learnable-task view.", ""]
    margin = f"{100 * view['margin']:.0f} points"
    best = view["best"]
    left_out = [t for t in report["tasks"] if t in best and t not in view["tasks"]]
    lines.append(f"Tasks on which some method beats chance by at least {margin} on the validation split "
                 f"({len(view['tasks'])} of {len(report['tasks'])}): "
                 + (", ".join(f"{t} ({best[t]['method']} {_f(best[t]['validation_accuracy'])} against chance "
                              f"{_f(best[t]['chance'])})" for t in view["tasks"]) or "none") + ".")
    if left_out:
        lines.append("Left out, every method within " + margin + " of chance: " + ", ".join(
            f"{t} (best {best[t]['method']} {_f(best[t]['validation_accuracy'])}, chance {_f(best[t]['chance'])})" for t in left_out) + ".")
    if view["unknown"]:
        lines.append(f"No validation accuracy recorded for: {', '.join(view['unknown'])} (left out).")
    if not view["tasks"]:
        return lines + [""]
    lines += ["", "| method | avg acc, learnable tasks | baas − method (points) |", "|---|---|---|"]
    for name, m in methods.items():
        value = m.get("learnable_average_accuracy")
        interval = _interval((m.get("intervals") or {}).get("learnable_average_accuracy")) if value is not None else ""
        lines.append(f"| {name} | {_f(value)}{interval} | {'' if name == 'baas' else _versus(m.get('versus_baas_learnable'))} |")
    return lines + [""]


def cells_csv(report: dict) -> str:
    """Every measured cell of the first order as CSV, one row per (method, after task k, task i): accuracy, its
    question count and 95% Wilson interval, macro F1. For spreadsheets and plotting scripts."""
    order = report["orders"][0]
    rows = ["method,after_task,k,task,i,accuracy,n,accuracy_low,accuracy_high,macro_f1"]
    for name, m in report["methods"].items():
        n_matrix = m.get("n_matrix") or []
        wilson = m.get("accuracy_interval_matrix") or []
        for k, row in enumerate(m["accuracy_matrix"]):
            for i, accuracy in enumerate(row):
                if accuracy is None:
                    continue
                n = n_matrix[k][i] if k < len(n_matrix) else None
                low, high = (wilson[k][i] if k < len(wilson) and wilson[k][i] else (None, None))
                f1 = m["macro_f1_matrix"][k][i]
                rows.append(",".join("" if v is None else str(v) for v in (name, order[k], k + 1, order[i], i + 1, accuracy, n,
                                                                           low, high, f1)))
    return "\n".join(rows) + "\n"


def write_report(report: dict, out: Path, command: str | None = None) -> list[Path]:
    """report.json, report.md, report.csv and the plots in `out`, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=1, default=str)
    atomic_write(out / "report.json", lambda f: f.write(text.encode()))
    md = markdown(report, command)
    atomic_write(out / "report.md", lambda f: f.write(md.encode()))
    csv = cells_csv(report)
    atomic_write(out / "report.csv", lambda f: f.write(csv.encode()))
    return [out / "report.json", out / "report.md", out / "report.csv", *plots(report, out)]
