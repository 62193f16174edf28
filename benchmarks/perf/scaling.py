"""Scaling of baas's training step: time and peak RSS against sequence length, options, prompt length,
prompt depth, and a bert-base-size backbone (random weights) for users with bigger models.

    python benchmarks/perf/scaling.py            # writes benchmarks/results/scaling.md (a few minutes on 2 cores)
    python benchmarks/perf/scaling.py --sweeps depth --out benchmarks/results/scaling_depth.md   # one sweep

Each configuration runs in its own process (peak RSS is per process): 4 questions per step, every row
exactly `length` tokens of input (no padding, so the figures are for that length), prompts from the
vocabulary, baas's `make_trainable`, a `loop.PairLearner` and the library's `loop.train_step` (which
collates the batch: its time is in each step); 1 untimed step, then the median of 3 timed steps.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results"
DEFAULT = dict(length=128, options=4, prompt=5, depth=1, backbone="minilm")
SWEEPS = [
    ("sequence length (tokens of input per row)", "length", [64, 128, 256, 502]),
    ("options per question", "options", [2, 3, 4, 5]),
    ("prompt vectors on each side (prefix = suffix)", "prompt", [0, 8, 16, 32, 64]),
    ("prompt depth (layers with their own prompt vectors; MiniLM has 6)", "depth", [1, 2, 4, 6]),
    ("backbone (random weights for bert-base size)", "backbone", ["minilm", "bert-base"]),
]

CHILD = r"""
import json, statistics, sys, time, torch
from baas.training.backbone import Backbone, load_backbone
from baas.training.batching import Encoded
from baas.training.config import TrainConfig
from baas.training.loop import PairLearner, train_step
from baas.training.trainer import make_trainable
cfg = json.loads(sys.argv[1])
bb = load_backbone(None)
if cfg["backbone"] == "bert-base":
    from transformers import BertConfig, BertModel
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=bb.tokenizer.vocab_size, hidden_size=768, num_hidden_layers=12,
                                 num_attention_heads=12, intermediate_size=3072)).eval().requires_grad_(False)
    bb = Backbone("bert-base-random", model, bb.tokenizer, False)
B, K, T, P = 4, cfg["options"], cfg["length"], cfg["prompt"]
g = torch.Generator().manual_seed(0)
ids = torch.randint(1000, 20000, (B, K, T), generator=g).tolist()
questions = [Encoded(rows, 0) for rows in ids]  # every row exactly T tokens: the batch has no padding
config = TrainConfig(prefix_len=P, suffix_len=P, depth=cfg["depth"], scoring="joint")  # the rows are joint rows
module, _ = make_trainable(bb, questions, config)
learner = PairLearner(bb, module, "mean_input")
opt = learner.optimizer(config)
train_step(learner, opt, [questions], bb.pad_id, 1.0)
times = []
for _ in range(3):
    t = time.perf_counter()
    train_step(learner, opt, [questions], bb.pad_id, 1.0)
    times.append(time.perf_counter() - t)
rss = next(int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"step_s": statistics.median(times), "peak_rss_mb": rss}))
"""


def measure(cfg: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"scaling: the configuration {cfg} failed:\n{out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sweeps", default=",".join(key for _, key, _ in SWEEPS), help="which sweeps (comma list of keys)")
    ap.add_argument("--out", default=str(RESULTS / "scaling.md"))
    args = ap.parse_args()
    chosen = args.sweeps.split(",")
    lines = ["# Training step scaling (baas, 2 CPU cores, fp32)", "",
             f"Command: `python benchmarks/perf/scaling.py {' '.join(sys.argv[1:])}`. One process per configuration; 4 questions per step; "
             "every input row exactly the given length (no padding), scored `joint` (the option in the row; the default `both` "
             "adds a dual pass, `scoring_speed.md`); median of 3 steps after 1 untimed. "
             f"Defaults when not varied: {DEFAULT}. bert-base: 12 layers, hidden 768, random weights "
             f"(the shape of bert-base, not its weights). {time.strftime('%Y-%m-%d')}.", ""]
    for title, key, values in (sweep for sweep in SWEEPS if sweep[1] in chosen):
        lines += [f"## {title}", "", f"| {key} | step s | questions/s | peak RSS MB |", "|---|---|---|---|"]
        for value in values:
            r = measure(dict(DEFAULT, **{key: value}))
            lines.append(f"| {value} | {r['step_s']:.3f} | {4 / r['step_s']:.2f} | {r['peak_rss_mb']:.0f} |")
            print(title, lines[-1], flush=True)
        lines.append("")
    Path(args.out).write_text("\n".join(lines))


if __name__ == "__main__":
    main()
