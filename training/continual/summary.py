"""The report object of a protocol run (`report.json`, `--json`), built from its results file: per method the
accuracy and macro-F1 matrices, the continual metrics (mean and spread over orders) with their Wilson and
bootstrap intervals, the learnable-task view, the paired comparison with baas, the cost, and the findings.
report.py renders it."""

from __future__ import annotations

from dataclasses import asdict

from baas.training.continual.context import Settings
from baas.training.continual.results import Results
from baas.training.metrics import (CONFIDENCE, RESAMPLES, continual_metrics, mean_of, percentile_interval,
                                   resampled_cells, verdict, wilson_interval)


def _spread(values: list[float | None]) -> dict:
    if not values or any(v is None for v in values):
        return {"mean": None, "std": None}
    mean = sum(values) / len(values)
    return {"mean": mean, "std": (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5}


def build_report(settings: Settings, methods: list[str], strategies: list[str], results: Results, backbone: str,
                 chances: dict[str, float], validation_chances: dict[str, float] | None = None) -> dict:
    """The report object (`report.json`, `--json`): per matrix, its accuracy and macro-F1 matrices in the
    first order, the metrics (mean and spread over orders) with their intervals, the final accuracy per task,
    the learnable-task view, and the cost. FWT's reference b_i is task i's chance accuracy (`chances`); the
    learnable tasks are judged against chance on the validation split (`validation_chances`, else `chances`)."""
    T, names = len(settings.tasks), []
    for m in methods:
        names += (["baas", *[f"baas:{s}" for s in strategies[1:]], "oracle"] if m == "baas" else [m])
    learnable = _learnable(settings, methods, results, validation_chances or chances)
    samples = _bootstrap(settings, names, results, chances, learnable["tasks"] or [])
    out = {}
    for name in names:
        method = "baas" if name.startswith("baas") or name == "oracle" else name
        per_order = []
        for o in range(settings.orders):
            order = settings.order(o)
            R, F1, ref = results.matrix(o, name, T), results.matrix(o, name, T, "macro_f1"), [chances[t] for t in order]
            per_order.append({"order": order, "accuracy_matrix": R, "macro_f1_matrix": F1,
                              "accuracy": continual_metrics(R, ref), "macro_f1": continual_metrics(F1, ref)})
        first = per_order[0]
        steps = [s for (o, m, k), s in results.steps.items() if m == method]
        metrics = {key: _spread([p["accuracy"][key] for p in per_order]) for key in first["accuracy"]}
        wilson = _wilson_matrix(results, name, T)
        out[name] = dict(
            accuracy_matrix=first["accuracy_matrix"], macro_f1_matrix=first["macro_f1_matrix"],
            **{key: v["mean"] for key, v in metrics.items()},
            spread={key: v["std"] for key, v in metrics.items()} if settings.orders > 1 else None,
            macro_f1={key: _spread([p["macro_f1"][key] for p in per_order])["mean"] for key in first["macro_f1"]},
            final_accuracy={t: first["accuracy_matrix"][-1][i] for i, t in enumerate(first["order"])},
            n_matrix=results.matrix(0, name, T, "n"), accuracy_interval_matrix=wilson,
            final_accuracy_interval={t: wilson[-1][i] for i, t in enumerate(first["order"])},
            learnable_average_accuracy=mean_of([_learnable_mean(p["accuracy_matrix"][-1], p["order"], learnable["tasks"])
                                                for p in per_order]),
            intervals={key: percentile_interval(v) for key, v in samples[name].items()},
            parameters=next((s["parameters"] for s in steps if s.get("parameters")), None),  # counted after the last task
            seconds=round(sum(s["learn_seconds"] + s["eval_seconds"] for s in steps), 1),
            train_seconds=round(sum(s["learn_seconds"] for s in steps), 1),
            # steps recorded before CPU time was: none for the method
            cpu_seconds=round(sum(s["learn_cpu_seconds"] + s["eval_cpu_seconds"] for s in steps), 1)
            if steps and all("learn_cpu_seconds" in s for s in steps) else None,
            reused_steps=sum(bool(s["reused"]) for s in steps),
            peak_rss_mb=max((s["peak_rss_mb"] for s in steps), default=None),
            lr=next((s["lr"] for s in steps if s.get("lr") is not None), None),
            lr_scores=next((s["lr_scores"] for s in steps if s.get("lr_scores")), None),
            **({"ewc_lambda": next((s["ewc_lambda"] for s in steps if s.get("ewc_lambda") is not None), None),
                "ewc_lambda_scores": next((s["ewc_lambda_scores"] for s in steps if s.get("ewc_lambda_scores")), None)}
               if method == "ewc" else {}),
            steps_done=len({k for (o, m, k) in results.steps if m == method and o == 0}),
            latest=_latest(first["accuracy_matrix"]),
            orders=per_order if settings.orders > 1 else None,
        )
    for name, m in out.items():
        m["versus_baas"] = _versus(samples, name, m, out.get("baas"))
        m["versus_baas_learnable"] = _versus(samples, name, m, out.get("baas"), "learnable_average_accuracy")
    return {"tasks": settings.tasks, "orders": [settings.order(o) for o in range(settings.orders)],
            "budget": asdict(settings.budget), "backbone": backbone, "rule": settings.rule, "query": settings.query,
            "space": settings.space, "scoring": settings.config.scoring, "ewc_lambda": settings.ewc_lambda, "strategies": strategies, "chance": chances,
            "uncertainty": UNCERTAINTY | {"seed": settings.budget.seed}, "learnable": learnable,
            "methods": out, "findings": findings(out),
            "failed": {f"{r['method']}" + (f" (order {o + 1})" if settings.orders > 1 else ""): {"task": r["k"] + 1, "error": r["error"]}
                       for (o, _), r in sorted(results.failures.items())}}


UNCERTAINTY = {
    "confidence": CONFIDENCE, "cell": "wilson", "resamples": RESAMPLES,
    "bootstrap": "percentile bootstrap over evaluation questions, resampled within each task (the same resamples "
                 "for every row, order and method: `versus_baas` is paired); metrics recomputed from each resampled "
                 "matrix and averaged over orders as the point values are",
}


def _wilson_matrix(results: Results, name: str, T: int, o: int = 0) -> list[list[list[float] | None]]:
    """Each cell's Wilson interval (from its per-question results, else from its accuracy and n)."""
    def interval(cell):
        if not cell or cell.get("n") is None:
            return None
        hits = sum(cell["correct"]) if cell.get("correct") is not None else round(cell["accuracy"] * cell["n"])
        return wilson_interval(hits, cell["n"])

    return [[interval(results.cells.get((o, name, k, i))) for i in range(T)] for k in range(T)]


LEARNABLE_MARGIN = 0.05  # a task is learnable when some method beats chance by this much on its validation split


def _learnable(settings: Settings, methods: list[str], results: Results, chances: dict[str, float]) -> dict:
    """The tasks some method learns: its validation accuracy on the task, once learned, at least
    LEARNABLE_MARGIN above chance (on the validation split). `best` names, per task, the method with the
    highest validation accuracy; `tasks` is None when no step recorded one (results from before they were kept)."""
    best: dict[str, dict] = {}
    for (o, m, k), step in results.steps.items():
        v = step.get("validation_accuracy")
        if v is None or m not in methods or o >= settings.orders:
            continue
        task = settings.order(o)[k]
        if task not in best or v > best[task]["validation_accuracy"]:
            best[task] = {"method": m, "validation_accuracy": v, "chance": chances[task]}
    tasks = [t for t in settings.tasks if t in best and best[t]["validation_accuracy"] - best[t]["chance"] >= LEARNABLE_MARGIN - 1e-9]
    return {"margin": LEARNABLE_MARGIN, "tasks": tasks if best else None, "best": best,
            "unknown": [t for t in settings.tasks if t not in best]}


def _learnable_mean(final_row: list, order: list[str], tasks: list[str] | None):
    """The mean of a final row's cells (values or resample arrays) over the learnable tasks."""
    if not tasks:
        return None
    return mean_of([final_row[order.index(t)] for t in tasks])


def _bootstrap(settings: Settings, names: list[str], results: Results, chances: dict[str, float],
               learnable: list[str]) -> dict[str, dict]:
    """Per method, each metric of `continual_metrics` (and the average accuracy over the `learnable` tasks) in
    every bootstrap resample ([RESAMPLES] arrays, the mean over orders), or None where a cell it reads has no
    per-question results."""
    orders = [settings.order(o) for o in range(settings.orders)]
    cells = {key: (orders[key[0]][key[3]], (value or {}).get("correct")) for key, value in results.cells.items()
             if key[0] < len(orders) and key[1] in names}
    resampled = resampled_cells(cells, RESAMPLES, settings.budget.seed)
    T, out = len(settings.tasks), {}
    for name in names:
        per_order = []
        for o, order in enumerate(orders):
            R = [[resampled.get((o, name, k, i)) for i in range(T)] for k in range(T)]
            per_order.append(continual_metrics(R, [chances[t] for t in order])
                             | {"learnable_average_accuracy": _learnable_mean(R[-1], order, learnable)})
        out[name] = {key: mean_of([m[key] for m in per_order]) for key in per_order[0]}
    return out


def _versus(samples: dict[str, dict], name: str, point: dict, baas: dict | None, key: str = "average_accuracy") -> dict | None:
    """The paired bootstrap of `baas - name` on average accuracy (or `key`): the difference, its interval and the
    verdict for baas ("ahead", "level", "behind", from the interval alone; None without per-question results)."""
    if name == "baas" or baas is None or baas[key] is None or point[key] is None:
        return None
    a, b = samples["baas"][key], samples[name][key]
    interval = None if a is None or b is None else percentile_interval(a - b)
    return {"difference": baas[key] - point[key], "interval": interval, "verdict": verdict(interval)}


def _latest(R) -> dict | None:
    """The last row whose learned tasks are all measured: after how many tasks, and their mean accuracy."""
    for k in range(len(R) - 1, -1, -1):
        if all(v is not None for v in R[k][: k + 1]):
            return {"tasks": k + 1, "average_accuracy": sum(R[k][: k + 1]) / (k + 1)}
    return None


def findings(methods: dict) -> dict:
    """Which router strategy won, the goals for baas (forgetting within 1 point of zero, average accuracy
    within 1 point of the oracle and at least 95% of multitask), and how baas compares with every other
    method: ahead, level or behind, from the paired bootstrap interval of `baas - method` alone (a method
    without per-question results has no interval, no verdict, and is listed under `no_interval`)."""
    baas = {k: v for k, v in methods.items() if k.startswith("baas") and v["average_accuracy"] is not None}
    if not baas:
        return {}
    best = max(baas, key=lambda k: baas[k]["average_accuracy"])
    main = methods["baas"]
    interval = lambda key: (main.get("intervals") or {}).get(key)  # noqa: E731
    goals = {}
    if main["forgetting"] is not None:
        goals["forgetting_within_1_point"] = {"value": main["forgetting"], "interval": interval("forgetting"),
                                              "met": abs(main["forgetting"]) <= 0.01 + 1e-9}
    for ref, name, target in (("oracle", "within_1_point_of_oracle", lambda a: a - 0.01),
                              ("multitask", "at_least_95pct_of_multitask", lambda a: 0.95 * a)):
        acc = methods.get(ref, {}).get("average_accuracy")
        if acc is not None and main["average_accuracy"] is not None:
            goals[name] = {"value": main["average_accuracy"], "interval": interval("average_accuracy"), "reference": acc,
                           "target": target(acc), "met": main["average_accuracy"] >= target(acc) - 1e-9,
                           "difference_interval": (methods[ref].get("versus_baas") or {}).get("interval")}
    verdicts, learnable = _verdicts(methods, "versus_baas"), _verdicts(methods, "versus_baas_learnable")
    baselines = [k for k in verdicts["behind"] if not k.startswith("baas") and k != "oracle"]
    return {"best_strategy": best, "goals": goals, "baas_versus": verdicts, "baselines_above_baas": baselines,
            "baas_versus_on_learnable_tasks": learnable if any(learnable.values()) else None}


def _verdicts(methods: dict, field: str) -> dict[str, list[str]]:
    """The methods baas is ahead of, level with and behind, by the paired intervals in `field`."""
    versus = {k: v[field] for k, v in methods.items() if v.get(field)}
    verdicts = {key: [k for k, c in versus.items() if c["verdict"] == key] for key in ("ahead", "level", "behind")}
    verdicts["no_interval"] = [k for k, c in versus.items() if c["verdict"] is None]
    return verdicts
