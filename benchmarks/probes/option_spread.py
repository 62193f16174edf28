"""How much a prompt pair squeezes the differences between one question's options (issue 12's demo probe).

    python benchmarks/probes/option_spread.py [TASK]     # default demo_animal_sounds; 32 training questions

For the pooled vectors of a question's options (mean over the input's tokens, MiniLM, the pair at its
starting values), prints the mean distance of each option's vector from the question's mean ("option
spread": what the scoring head can tell apart) and the spread across questions, for head-only, the
shallow pair, and the deep pair with its replacement start and with the additive start.

Archived: it needs the library hook `Backbone.deep_mode`, removed after commit 705cb0c, and stops at HEAD.
Rerun it from a checkout of 705cb0c (benchmarks/probes/README.md).
"""

import argparse

import torch

from baas.training.backbone import Backbone, load_backbone
from baas.training.batching import collate, encode
from baas.training.config import TrainConfig
from baas.training.data import load_task_data
from baas.training.trainer import make_trainable


def main(task: str = "demo_animal_sounds") -> None:
    if not hasattr(Backbone, "deep_mode"):
        raise SystemExit("option_spread.py: the library no longer has the hook this probe switches (Backbone.deep_mode); "
                         "run it from a checkout of commit 705cb0c (see benchmarks/probes/README.md)")
    torch.set_num_threads(1)
    bb = load_backbone(None)
    data = load_task_data(task, None, max_train=64, max_eval=16)
    enc = encode(data.train.examples[:32], bb.tokenizer, 256)
    batch = collate(enc, bb.pad_id)
    k = max(len(e.options) for e in enc)
    print(f"{task}: real tokens per option row, first rows: {batch.attention_mask.sum(1)[:4].tolist()}")
    for mode, depth, n in (("replace", 1, 0), ("replace", 1, 5), ("replace", 6, 5), ("add", 6, 5)):
        Backbone.deep_mode = mode
        torch.manual_seed(0)
        module, _ = make_trainable(bb, enc, TrainConfig(prefix_len=n, suffix_len=n, depth=depth))
        pair, _ = module()
        rows = pair.per_row(batch.options_per_question)
        with torch.no_grad():
            pooled = bb.forward(batch.input_ids, batch.attention_mask, rows.prefix, rows.suffix, "mean_input")
        P = pooled.view(len(enc), k, -1)
        spread = (P - P.mean(1, keepdim=True)).norm(dim=-1).mean()
        across = P.mean(1).std(0).norm()
        print(f"{'head-only' if n == 0 else f'{n}+{n} pair, depth {depth}, {mode} start':32s} option spread {spread:.3f}"
              f"   question spread {across:.3f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", nargs="?", default="demo_animal_sounds")
    main(ap.parse_args().task)
