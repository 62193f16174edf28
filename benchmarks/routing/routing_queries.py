"""Which query and which routing rule: routing accuracy on validation, and what each query costs.

    python benchmarks/routing/routing_queries.py --data-dir DIR --store STORE [--max-train 600] [--max-eval 200]

For every query text (question only, question + passage, question + options + passage) and several
choices of layers (the mean states after those layers of the frozen MiniLM, concatenated), each of the
ten datasets' training questions (the bank's 600) are summarised (`QuerySummary`); every routing rule
is fitted from the summaries alone and routes the validation questions (up to 200 per dataset). Two
references use the raw training queries instead (which a continual router may not keep): sklearn's
shrinkage LDA and logistic regression. What each query costs is measured apart, on an idle machine
(benchmarks/perf/fuse_speed.py). Writes benchmarks/results/routing_queries.{json,md}.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression

from baas.router.router import Router
from baas.router.rules import RULES
from baas.router.summary import QuerySummary
from baas.store import Store
from baas.training.backbone import load_backbone
from baas.training.data import load_task_data
from baas.training.fusion import QUERY_KINDS, Query, query_vectors
from train_bank import bank_arguments

OUT = Path(__file__).resolve().parents[1] / "results"
LAYER_SETS = [(6,), (3,), (2,), (1,), (2, 4, 6)]


def main() -> None:
    ap = bank_arguments()
    ap.add_argument("--queries", help="only these queries, e.g. context:6,options:2 (default: every kind at each of "
                    "LAYER_SETS)")
    ap.add_argument("--name", default="routing_queries", help="results/NAME.{json,md}")
    ap.add_argument("--report-only", action="store_true", help="rewrite the markdown from the JSON of a finished run")
    args = ap.parse_args()
    if args.report_only:
        write_markdown(json.loads((OUT / f"{args.name}.json").read_text()), args)
        return
    torch.set_num_threads(2)
    tasks = args.tasks.split(",")
    store, backbone = Store(args.store), load_backbone(None)
    data = [load_task_data(t, args.data_dir, max_train=args.max_train, max_eval=args.max_eval) for t in tasks]
    every = tuple(range(backbone.num_layers + 1))
    d = backbone.hidden_size
    results = {"tasks": tasks, "max_train": args.max_train, "max_eval": args.max_eval, "queries": {}}
    grid = [Query.parse(q) for q in args.queries.split(",")] if args.queries else \
        [Query(kind, layers) for kind in QUERY_KINDS for layers in LAYER_SETS]
    for kind in dict.fromkeys(q.kind for q in grid):
        all_layers = Query(kind, every)
        train = [query_vectors(x.train.examples, backbone, all_layers, store) for x in data]
        val = [query_vectors(x.validation.examples, backbone, all_layers, store) for x in data]
        true = torch.cat([torch.full((len(q),), i) for i, q in enumerate(val)])
        for layers in [q.layers for q in grid if q.kind == kind]:
            pick = lambda q: q.view(len(q), -1, d)[:, list(layers)].flatten(1)  # noqa: E731
            query = Query(kind, layers)
            summaries = [QuerySummary.from_queries(pick(q)) for q in train]
            queries = torch.cat([pick(q) for q in val])
            rules = {}
            for name in RULES:
                routed = Router.fit(tasks, [1] * len(tasks), summaries, name, "hard", str(query)).route(queries)[0].argmax(-1)
                rules[name] = {"accuracy": float((routed == true).float().mean()),
                               "per_task": [float((routed[true == i] == i).float().mean()) for i in range(len(tasks))]}
            x = torch.cat([pick(q) for q in train]).numpy()
            y = torch.cat([torch.full((len(q),), i) for i, q in enumerate(train)]).numpy()
            for name, model in (("raw queries: sklearn LDA (shrinkage auto)", LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")),
                                ("raw queries: logistic regression", LogisticRegression(max_iter=3000))):
                routed = torch.as_tensor(model.fit(x, y).predict(queries.numpy()))
                rules[name] = {"accuracy": float((routed == true).float().mean())}
            results["queries"][str(query)] = {"rules": rules}
            print(query, {k: round(v["accuracy"], 3) for k, v in rules.items()}, flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / f"{args.name}.json").write_text(json.dumps(results, indent=1))
    write_markdown(results, args)


def write_markdown(results: dict, args) -> None:
    queries = results["queries"]
    rules = list(next(iter(queries.values()))["rules"])
    lines = ["# Routing: which query, which rule (validation splits)", "",
             f"`python benchmarks/routing/routing_queries.py --data-dir DIR --store STORE --max-train {args.max_train} "
             f"--max-eval {args.max_eval}" + (f" --queries {args.queries} --name {args.name}" if args.queries else "") + "`: frozen all-MiniLM-L6-v2, queries of 128 tokens at most, mean states after "
             f"the named layers (6 = the output), summaries of each dataset's {args.max_train} training questions (the "
             f"bank's), up to {args.max_eval} validation questions per dataset routed. Share routed to their own "
             "dataset:", "",
             "| query (kind:layers) | " + " | ".join(rules) + " |", "|---|" + "---|" * len(rules)]
    for q, r in queries.items():
        lines.append(f"| {q} | " + " | ".join(f"{r['rules'][k]['accuracy']:.3f}" for k in rules) + " |")
    best = max(queries, key=lambda q: max(queries[q]["rules"][k]["accuracy"] for k in RULES))
    rule = max(RULES, key=lambda k: queries[best]["rules"][k]["accuracy"])
    lines += ["", f"Per dataset, best summary-fitted pair ({best}, {rule}):", "",
              "| " + " | ".join(results["tasks"]) + " |", "|" + "---|" * len(results["tasks"]),
              "| " + " | ".join(f"{p:.2f}" for p in queries[best]["rules"][rule]["per_task"]) + " |"]
    (OUT / f"{args.name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
