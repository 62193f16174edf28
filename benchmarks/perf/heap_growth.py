"""Why a training process's resident memory grows: glibc heap fragmentation, or something the loop keeps?

Each variant runs in a fresh child process: STEPS library training steps (`loop.train_step`, the default
config: deep gated pair, `both` scoring, batch 4) on medqa's first 600 training questions, in the trainer's
batch order (length buckets, seed 0; medqa's vignettes make the widest batches of the ten datasets). The child
reads its RSS after every 10th step and its peak RSS and CPU time at the end. Variants:

    none        as the trainer runs today
    trim1       glibc malloc_trim(0) after every step (hands the heap's free pages back to the kernel)
    trim10      the same every 10th step
    mmap64k     MALLOC_MMAP_THRESHOLD_=65536: every allocation above 64 KiB is its own mapping, unmapped when freed
    mmap1m      the same above 1 MiB
    mmap4m      the same above 4 MiB (glibc's own threshold starts at 128 KiB and rises up to 32 MiB as big
                blocks are freed, which is what lets the heap keep them)

If the loop kept tensors alive, trimming could not lower the RSS; if freed memory merely stays in the heap,
it does. CPU seconds (not wall) are compared, as ratios to `none` in the same run.

    python benchmarks/perf/heap_growth.py --data-dir DIR [--steps 60] [--out benchmarks/results/heap_growth.md]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {"none": ({}, 0), "trim1": ({}, 1), "trim10": ({}, 10),
            **{f"mmap{name}": ({"MALLOC_MMAP_THRESHOLD_": str(size)}, 0) for name, size in
               (("64k", 2**16), ("1m", 2**20), ("4m", 2**22))}}


def child(data_dir: str, store_dir: str, steps: int, trim_every: int) -> dict:
    import torch

    from baas.store import Store
    from baas.training.backbone import load_backbone
    from baas.training.batching import batch_indices
    from baas.training.cache import encode_cached
    from baas.training.config import TrainConfig
    from baas.training.data import load_task_data
    from baas.training.loop import PairLearner, train_step
    from baas.training.trainer import make_trainable
    from throughput import rss_mb

    torch.manual_seed(0)
    config, backbone = TrainConfig(), load_backbone(None)
    data = load_task_data("medqa", data_dir, max_train=600, max_eval=200)
    encoded = encode_cached(data.train.examples, backbone, config.max_length, Store(store_dir))
    module, _ = make_trainable(backbone, encoded, config)
    learner = PairLearner(backbone, module, config.pooling or backbone.default_pooling)
    optimizer = learner.optimizer(config)
    trim = ctypes.CDLL("libc.so.6").malloc_trim if trim_every else None
    rss, started = {}, time.process_time()
    for step, idx in enumerate(batch_indices(encoded, config.batch_size, shuffle=True, seed=0)[:steps], start=1):
        train_step(learner, optimizer, [[encoded[i] for i in idx]], backbone.pad_id, config.clip)
        if trim is not None and step % trim_every == 0:
            trim(0)
        if step % 10 == 0:
            rss[step] = round(rss_mb(peak=False))
    return {"cpu_s": round(time.process_time() - started, 1), "rss_mb": rss,
            "peak_mb": round(rss_mb(peak=True))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--out", default="benchmarks/results/heap_growth.md")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.data_dir, args.store, args.steps, VARIANTS[args.child][1])))
        return
    if not sys.platform.startswith("linux"):
        sys.exit("heap_growth.py measures glibc's heap: Linux only")
    results = {}
    with tempfile.TemporaryDirectory() as store:
        for name, (env, _) in VARIANTS.items():
            print(f"{name}: {args.steps} steps ...", file=sys.stderr, flush=True)
            out = subprocess.run([sys.executable, __file__, "--child", name, "--data-dir", args.data_dir, "--store", store,
                                  "--steps", str(args.steps)], env=dict(os.environ, **env), check=True,
                                 capture_output=True, text=True).stdout
            results[name] = json.loads(out.strip().splitlines()[-1])
            print(f"{name}: {results[name]}", file=sys.stderr, flush=True)
    marks = sorted({int(s) for r in results.values() for s in r["rss_mb"]})
    base = results["none"]["cpu_s"]
    lines = ["# Heap growth in training: fragmentation, not a leak", "",
             f"`python benchmarks/perf/heap_growth.py --data-dir DIR --steps {args.steps}` "
             f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}). Each row a fresh process: "
             f"{args.steps} training steps on medqa (600 questions, default config, trainer's batch order). "
             "RSS read after the step named; peak: the process's maximum; CPU: process time of the steps.", "",
             "| variant | " + " | ".join(f"RSS after step {m} (MB)" for m in marks) + " | peak RSS (MB) | CPU (s) | CPU vs none |",
             "|---|" + "---|" * (len(marks) + 3)]
    for name, r in results.items():
        cells = [str(r["rss_mb"].get(str(m), "–")) for m in marks]  # (JSON made the steps strings)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {r['peak_mb']} | {r['cpu_s']} | {r['cpu_s'] / base:.2f}x |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
