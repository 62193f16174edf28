"""Which query and which routing rule: routing accuracy on validation, and what each query costs.

    python benchmarks/routing_queries.py --data-dir DIR --store STORE [--max-train 600] [--max-eval 200]

For every query kind (question only, question + passage, question + options + passage), each of the
ten datasets' training questions (the bank's 600) are embedded by the frozen MiniLM and summarised
(`QuerySummary`); every routing rule is fitted from the summaries alone and routes the validation
questions (up to 200 per dataset). Two references use the raw training queries instead (which a
continual router may not keep): sklearn's shrinkage LDA and logistic regression. Query cost is the
wall time per question of the first (uncached) embedding pass, both threads, in this run.
Writes benchmarks/results/routing_queries.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression

from baas.router.router import Router
from baas.router.rules import RULES, LDARule, QDARule
from baas.router.summary import QuerySummary
from baas.store import Store
from baas.training.backbone import load_backbone
from baas.training.data import load_task_data
from baas.training.routing import QUERY_KINDS, query_vectors

TASKS = "arc_easy,arc_challenge,openbookqa,commonsense_qa,qasc,mmlu,medqa,medmcqa,dream,cosmos_qa"
OUT = Path(__file__).parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--tasks", default=TASKS)
    ap.add_argument("--max-train", type=int, default=600)
    ap.add_argument("--max-eval", type=int, default=200)
    args = ap.parse_args()
    tasks = args.tasks.split(",")
    store, backbone = Store(args.store), load_backbone(None)
    data = [load_task_data(t, args.data_dir, max_train=args.max_train, max_eval=args.max_eval) for t in tasks]
    results = {"tasks": tasks, "max_train": args.max_train, "max_eval": args.max_eval, "kinds": {}}
    for kind in QUERY_KINDS:
        started = time.perf_counter()
        train = [query_vectors(d.train.examples, backbone, kind, store) for d in data]
        val = [query_vectors(d.validation.examples, backbone, kind, store) for d in data]
        n = sum(len(q) for q in train + val)
        seconds = time.perf_counter() - started
        true = torch.cat([torch.full((len(q),), i) for i, q in enumerate(val)])
        queries = torch.cat(val)
        summaries = [QuerySummary.from_queries(q) for q in train]
        rules = {}
        for name in RULES:
            router = Router.fit(tasks, [1] * len(tasks), summaries, name, "hard", kind)
            routed = router.route(queries)[0].argmax(-1)
            rules[name] = {"accuracy": float((routed == true).float().mean()),
                           "per_task": [float((routed[true == i] == i).float().mean()) for i in range(len(tasks))]}
        for shrinkage in (0.01, 0.03, 0.3):  # the fixed 0.1 of LDARule / QDARule against neighbours
            for cls in (LDARule, QDARule):
                rule = cls()
                rule.shrinkage = shrinkage
                routed = rule.fit(summaries).log_probs(queries).argmax(-1)
                rules[f"{cls.name} shrinkage {shrinkage}"] = {"accuracy": float((routed == true).float().mean())}
        x, y = torch.cat(train).numpy(), torch.cat([torch.full((len(q),), i) for i, q in enumerate(train)]).numpy()
        for name, model in (("raw queries: sklearn LDA (shrinkage auto)", LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")),
                            ("raw queries: logistic regression", LogisticRegression(max_iter=2000, C=1.0))):
            routed = torch.as_tensor(model.fit(x, y).predict(queries.numpy()))
            rules[name] = {"accuracy": float((routed == true).float().mean())}
        results["kinds"][kind] = {"seconds_per_query": seconds / n if seconds > 1 else None, "rules": rules}
        print(kind, {k: round(v["accuracy"], 3) for k, v in rules.items()}, flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "routing_queries.json").write_text(json.dumps(results, indent=1))
    write_markdown(results, args)


def write_markdown(results: dict, args) -> None:
    kinds = list(results["kinds"])
    rules = list(results["kinds"][kinds[0]]["rules"])
    lines = ["# Routing: which query, which rule (validation splits)", "",
             f"`python benchmarks/routing_queries.py --data-dir DIR --store STORE --max-train {args.max_train} "
             f"--max-eval {args.max_eval}`: frozen all-MiniLM-L6-v2, mean-pooled queries (128 tokens at most), "
             f"summaries of each dataset's {args.max_train} training questions (the bank's), up to {args.max_eval} "
             "validation questions per dataset routed. Share of questions routed to their own dataset:", "",
             "| rule | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for rule in rules:
        lines.append(f"| {rule} | " + " | ".join(f"{results['kinds'][k]['rules'][rule]['accuracy']:.3f}" for k in kinds) + " |")
    cost = [results["kinds"][k]["seconds_per_query"] for k in kinds]
    lines.append("| query cost, ms per question (uncached, this run) | "
                 + " | ".join(f"{1000 * c:.1f}" if c else "cached" for c in cost) + " |")
    lines += ["", "Per dataset (rules fitted from summaries):", "",
              "| query / rule | " + " | ".join(results["tasks"]) + " |", "|---|" + "---|" * len(results["tasks"])]
    for k in kinds:
        for rule in RULES:
            per = results["kinds"][k]["rules"][rule]["per_task"]
            lines.append(f"| {k} / {rule} | " + " | ".join(f"{p:.2f}" for p in per) + " |")
    (OUT / "routing_queries.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
