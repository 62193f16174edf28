"""Probe that chose the default query (options:2): routing accuracy on validation for query texts x layers.

    python benchmarks/probes/routing_layers_probe.py --data-dir DIR

Mean states after each layer (0 = embeddings, 6 = output) of the frozen MiniLM, one pass per query
text; summaries of 600 training questions per dataset; up to 200 validation questions per dataset;
lda/qda/cosine/aoa fitted from summaries. Its output, as run here: benchmarks/results/routing_layers_probe.txt
(rows: query text, layers, routing accuracy per rule, then lda per dataset in the order of TASKS)."""
import argparse

import torch

from baas.router.router import Router
from baas.router.summary import QuerySummary
from baas.training.backbone import load_backbone
from baas.training.data import load_task_data

TASKS = "arc_easy,arc_challenge,openbookqa,commonsense_qa,qasc,mmlu,medqa,medmcqa,dream,cosmos_qa".split(",")
KINDS = {"context": lambda e: (e.question, e.context or ""),
         "options": lambda e: (e.question + " " + " ".join(e.options), e.context or "")}
VARIANTS = {"L1": [1], "L2": [2], "L3": [3], "L4": [4], "L6": [6], "L0": [0], "L1+2": [1, 2], "L2+4": [2, 4],
            "L1+2+3": [1, 2, 3], "L2+4+6": [2, 4, 6], "L0+2": [0, 2]}


def feats(bb, examples, kind):
    out = []
    for i in range(0, len(examples), 64):
        ex = examples[i:i + 64]
        a, b = zip(*(KINDS[kind](e) for e in ex))
        enc = bb.tokenizer(list(a), list(b), truncation="longest_first", max_length=128, padding=True, return_tensors="pt")
        with torch.inference_mode():
            hs = bb.model(**enc, output_hidden_states=True).hidden_states
        m = enc["attention_mask"].unsqueeze(-1).float()
        out.append(torch.stack([(h * m).sum(1) / m.sum(1) for h in hs], 1))  # [B, 7, d]
    return torch.cat(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True, help="folder holding NAME/{train,validation,test}.jsonl for TASKS")
    args = ap.parse_args()
    torch.set_num_threads(2)
    bb = load_backbone(None)
    data = [load_task_data(t, args.data_dir, max_train=600, max_eval=200) for t in TASKS]
    for kind in KINDS:
        tr = [feats(bb, d.train.examples, kind) for d in data]
        va = [feats(bb, d.validation.examples, kind) for d in data]
        true = torch.cat([torch.full((len(v),), i) for i, v in enumerate(va)])
        for name, layers in VARIANTS.items():
            S = [QuerySummary.from_queries(x[:, layers].flatten(1)) for x in tr]
            q = torch.cat([v[:, layers].flatten(1) for v in va])
            res = {}
            for rule in ("lda", "qda", "cosine", "aoa"):
                routed = Router.fit(TASKS, [1] * 10, S, rule, "hard", kind).route(q)[0].argmax(-1)
                res[rule] = round(float((routed == true).float().mean()), 3)
                if rule == "lda":
                    per = [round(float((routed[true == i] == i).float().mean()), 2) for i in range(10)]
            print(kind, name, res, per, flush=True)


if __name__ == "__main__":
    main()
