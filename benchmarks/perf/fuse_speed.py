"""Fused inference against single-entry inference on real questions, query pass included.

    python benchmarks/perf/fuse_speed.py --data-dir DIR --store STORE [--tasks arc_easy,cosmos_qa] [--n 100]

STORE holds the trained bank (benchmarks/routing/train_bank.py). Per round and per way of answering, the
questions of each task are answered from their token ids: `single` runs the task's own entry (the
oracle, no query); every routed way first embeds the questions' queries (uncached, as at deployment),
routes them over the whole bank and then runs the fused prompt (prompt space, one pass) or each
selected entry (output space, one pass per entry); `<query>/query` rows time the query pass alone for
several query kinds and layers. Rounds interleave the ways; the median of 3 rounds
is reported with its ratio to `single` from the same run. Writes benchmarks/results/fuse_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from baas.store import Store
from baas.training.backbone import load_backbone
from baas.training.cache import encode_cached
from baas.training.data import load_task_data
from baas.training.fusion import Query, fit_router, load_bank, query_vectors
from baas.training.scoring import logits

OUT = Path(__file__).resolve().parents[1] / "results"
WAYS = [("single", None), ("hard", "prompt"), ("topk3", "prompt"), ("soft", "prompt"), ("topk3", "output")]
QUERIES = ["question:6", "context:6", "options:6", "options:3", "options:2"]  # the query pass alone


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--tasks", default="arc_easy,cosmos_qa")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(2)
    store, backbone = Store(args.store), load_backbone(None)
    bank = load_bank(store, backbone)
    router = fit_router(bank, backbone, store, data_dir=args.data_dir)
    query = Query.parse(router.query)
    pooling, max_length = bank.meta["pooling"], bank.meta["max_length"]
    times: dict[tuple[str, str], list[float]] = {}
    for task in args.tasks.split(","):
        examples = load_task_data(task, args.data_dir, max_eval=args.n).eval.examples
        encoded = encode_cached(examples, backbone, max_length, store)
        own = bank.tasks.index(task)

        def answer(strategy: str, space: str | None):
            if space == "query":
                return query_vectors(examples, backbone, Query.parse(strategy))
            if strategy == "single":
                return logits(backbone, encoded, bank.single(own), pooling)
            w = router.with_strategy(strategy).route(query_vectors(examples, backbone, query))[0]  # uncached
            if space == "prompt":
                return logits(backbone, encoded, lambda idx: bank.fuse(w[idx]), pooling)
            for j in (w > 0).any(0).nonzero().flatten().tolist():
                rows = (w[:, j] > 0).nonzero().flatten().tolist()
                logits(backbone, [encoded[i] for i in rows], bank.single(j), pooling)

        for _ in range(args.rounds):
            for strategy, space in WAYS + [(q, "query") for q in QUERIES]:
                started = time.perf_counter()
                answer(strategy, space)
                times.setdefault((task, f"{strategy}/{space or '-'}"), []).append((time.perf_counter() - started) / len(encoded))
        print(task, {k[1]: round(1000 * sorted(v)[len(v) // 2], 1) for k, v in times.items() if k[0] == task}, flush=True)
    rows = []
    for (task, way), v in times.items():
        median = sorted(v)[len(v) // 2]
        base = sorted(times[(task, "single/-")])[len(v) // 2]
        rows.append({"task": task, "way": way, "ms_per_question": 1000 * median, "ratio_to_single": median / base})
    OUT.mkdir(exist_ok=True)
    (OUT / "fuse_speed.json").write_text(json.dumps({"n": args.n, "entries": len(bank), "rule": router.rule.name,
                                                     "query": router.query, "rows": rows}, indent=1))
    lines = ["# Fused against single-entry inference (real questions, query pass included)", "",
             f"`python benchmarks/perf/fuse_speed.py --data-dir DIR --store STORE --tasks {args.tasks} --n {args.n}`: "
             f"{len(bank)}-entry bank, rule {router.rule.name}, {router.query} queries, 2 threads, median of "
             f"{args.rounds} interleaved rounds.", "", "| task | way (strategy/space) | ms per question | x single |", "|---|---|---|---|"]
    lines += [f"| {r['task']} | {r['way']} | {r['ms_per_question']:.1f} | {r['ratio_to_single']:.2f} |" for r in rows]
    (OUT / "fuse_speed.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
