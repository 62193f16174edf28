"""What each frozen backbone knows before anything is trained: the option whose sentence embedding lies
nearest the question's wins (cosine of mean-pooled last states, the way both sentence-transformers models
were trained to be used). No head, no prompt, no training, so the score is the backbone's alone.

    python benchmarks/accuracy/zero_shot.py --data-dir DIR   # -> benchmarks/results/zero_shot.md and zero_shot.json

Same evaluation subsets as benchmarks/accuracy/backbones.py (at most 200 validation and 200 evaluation questions).
A passage, where a dataset has one (cosmos_qa), goes before the question.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

RESULTS = Path(__file__).resolve().parents[1] / "results"
BACKBONES = ("minilm", "mpnet")
DATASETS = ("arc_easy", "commonsense_qa", "cosmos_qa", "arc_challenge", "mmlu")


@torch.no_grad()
def embed(backbone, texts: list[str], batch: int = 32) -> torch.Tensor:
    out = []
    for i in range(0, len(texts), batch):
        enc = backbone.tokenizer(texts[i:i + batch], padding=True, truncation=True, max_length=256, return_tensors="pt")
        hidden = backbone.model(**enc).last_hidden_state
        weights = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        out.append(F.normalize((hidden * weights).sum(1) / weights.sum(1), dim=-1))
    return torch.cat(out)


def accuracy(backbone, examples) -> float:
    queries = embed(backbone, [f"{e.context}\n{e.question}".strip() for e in examples])
    options = embed(backbone, [o for e in examples for o in e.options])
    correct, at = 0, 0
    for q, e in zip(queries, examples):
        scores = options[at:at + len(e.options)] @ q
        correct += int(scores.argmax()) == e.label
        at += len(e.options)
    return correct / len(examples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    args = ap.parse_args()
    from baas.training.backbone import load_backbone
    from baas.training.data import load_task_data
    from baas.training.metrics import chance

    rows = []
    for b in BACKBONES:
        backbone = load_backbone(b)
        backbone.model.eval()
        for d in DATASETS:
            data = load_task_data(d, args.data_dir, max_train=1, max_eval=200)
            started = time.perf_counter()
            rows.append(dict(dataset=d, backbone=b, validation_accuracy=accuracy(backbone, data.validation.examples),
                             eval_split=data.eval_split, eval_accuracy=accuracy(backbone, data.eval.examples),
                             chance=chance([len(e.options) for e in data.eval.examples]),
                             seconds=round(time.perf_counter() - started, 1), threads=torch.get_num_threads()))
            print(json.dumps(rows[-1]), flush=True)
    (RESULTS / "zero_shot.json").write_text(json.dumps(rows, indent=1) + "\n")
    cell = {(r["dataset"], r["backbone"]): r for r in rows}
    lines = ["# Zero-shot: the option nearest the question", "",
             "`python benchmarks/accuracy/zero_shot.py --data-dir DIR`. Cosine of mean-pooled last states; nothing trained. "
             "At most 200 questions per split, the subsets of `backbones.md`.", "",
             "| dataset | chance | MiniLM val | MiniLM eval | MPNet val | MPNet eval |", "|---|---|---|---|---|---|"]
    for d in DATASETS:
        m, p = cell[d, "minilm"], cell[d, "mpnet"]
        lines.append(f"| {d} | {m['chance']:.3f} | {m['validation_accuracy']:.3f} | {m['eval_accuracy']:.3f} | "
                     f"{p['validation_accuracy']:.3f} | {p['eval_accuracy']:.3f} |")
    (RESULTS / "zero_shot.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
