"""What each speed measure is worth: baas's training step with one measure taken away (or an allocator added).

    python benchmarks/perf/train_effects.py --quick     # a few minutes on 2 cores
    python benchmarks/perf/train_effects.py             # writes benchmarks/results/train_effects.md

Every side runs baas's own training step (`make_trainable`, a `loop.PairLearner`, `loop.train_step`) on
the same real questions as train_throughput.py, in its own process, in interleaved rounds; only one thing
differs per row:

- shipped: what `train_task` does (length buckets, dynamic padding, SDPA attention, glibc malloc)
- no length bucketing: random batches, still padded to their own longest row
- no dynamic padding: every batch padded to the full 256-token budget
- eager attention: the backbone's attention in plain matmuls instead of scaled_dot_product_attention
- bf16 autocast: the shipped step with the frozen backbone's forward under bf16 autocast (`--precision bf16`)
- jemalloc / tcmalloc: the shipped step with that allocator preloaded (rows appear only where the library is installed; baas itself never preloads one: this table is why)
"""

from __future__ import annotations

import argparse
import ctypes.util
import json
import os
from dataclasses import replace
from pathlib import Path

import torch
from train_throughput import QUICK, BaasTrain, padded_shape

from baas.training.batching import Batch
from baas.training.loop import Learner
from baas.training.config import TrainConfig
from throughput import (
    BenchError,
    SideSpec,
    add_common_args,
    compare,
    environment_lines,
    fill_defaults,
    load_questions,
    log,
    main_guard,
    random_batches,
    resolve_data_dir,
    results_table,
    report_path,
    write_report,
)

FULL = {"questions": 100, "rounds": 4, "steps": 15, "warmup": 2}


class NoBucketing(BaasTrain):
    def __init__(self, examples, backbone_spec, batch_size: int, **kw):
        super().__init__(examples, backbone_spec, batch_size, **kw)
        self.order = random_batches(len(self.encoded), batch_size, self.config.seed)


class PaddedTo(Learner):
    """A learner whose batches are padded to `width` tokens before it scores them: what no dynamic padding computes."""

    def __init__(self, inner: Learner, width: int, pad_id: int):
        self.inner, self.module, self.width, self.pad_id = inner, inner.module, width, pad_id

    def logits(self, batch: Batch) -> torch.Tensor:
        pad = self.width - batch.input_ids.shape[1]  # the joint sequences (dual's own pieces stay as they are)
        return self.inner.logits(replace(batch, input_ids=torch.nn.functional.pad(batch.input_ids, (0, pad), value=self.pad_id),
                                         attention_mask=torch.nn.functional.pad(batch.attention_mask, (0, pad))))


class NoDynamicPadding(BaasTrain):
    def __init__(self, examples, backbone_spec, batch_size: int, **kw):
        super().__init__(examples, backbone_spec, batch_size, **kw)
        self.width = min(self.config.max_length, self.backbone.max_positions - self.virtual)
        self.learner = PaddedTo(self.learner, self.width, self.backbone.pad_id)  # the same pair and optimiser

    def shape(self, idx) -> tuple[int, int]:
        return padded_shape([self.questions[i] for i in idx])[0], self.width


class EagerAttention(BaasTrain):
    def __init__(self, examples, backbone_spec, batch_size: int, **kw):
        super().__init__(examples, backbone_spec, batch_size, **kw)
        self.backbone.model.set_attn_implementation("eager")


class Bf16Autocast(BaasTrain):
    def __init__(self, examples, backbone_spec, batch_size: int, **kw):
        super().__init__(examples, backbone_spec, batch_size, **kw)
        self.learner.precision = "bf16"


def allocator_path(name: str) -> str | None:
    """The shared library of an allocator, where one is installed (never required)."""
    found = ctypes.util.find_library(name)
    if not found:
        return None
    for folder in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"):
        if (Path(folder) / found).exists():
            return str(Path(folder) / found)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, batch_size=TrainConfig().batch_size)
    parser.add_argument("--pair", choices=("shallow", "default"), default="shallow",
                        help="the pair every row trains: shallow (depth 1, joint scoring: the published table) or default "
                             "(what baas train-task trains: every layer, both scoring)")
    parser.add_argument("--sides", default=None,
                        help="comma-separated row keys to run (shipped is always run; default: every row)")
    args = parser.parse_args()
    fill_defaults(args, QUICK, FULL)
    examples = load_questions(args.datasets, resolve_data_dir(args.data_dir), "train", args.questions)
    common = {"examples": examples, "backbone_spec": args.backbone, "batch_size": args.batch_size, "pair": args.pair}
    specs = [
        SideSpec("shipped", "shipped", "length buckets, dynamic padding, SDPA, glibc malloc", BaasTrain, common),
        SideSpec("no_bucketing", "no length bucketing", "random batches, each padded to its longest row", NoBucketing, common),
        SideSpec("no_dynamic_padding", "no dynamic padding", "every batch padded to 256 tokens", NoDynamicPadding, common),
        SideSpec("eager", "eager attention", "attention as plain matmuls + softmax", EagerAttention, common),
        SideSpec("bf16", "bf16 autocast", "the frozen backbone's forward under bf16 autocast", Bf16Autocast, common),
    ]
    for name, lib in (("jemalloc", "jemalloc"), ("tcmalloc", "tcmalloc_minimal")):
        path = allocator_path(lib)
        if path:
            specs.append(SideSpec(name, f"{name} preloaded", f"shipped, LD_PRELOAD={Path(path).name}", BaasTrain, common,
                                  env={"LD_PRELOAD": path}))
        else:
            log(f"{name}: not installed, no row")
    if args.sides:
        wanted = {"shipped", *args.sides.split(",")}
        unknown = wanted - {spec.key for spec in specs}
        if unknown:
            raise BenchError(f"--sides: unknown row(s) {', '.join(sorted(unknown))}; rows: {', '.join(s.key for s in specs)}")
        specs = [spec for spec in specs if spec.key in wanted]
    result = compare(specs, args.rounds, args.steps, args.warmup, args.threads)
    table = results_table(specs, result, "shipped", gflops=True)
    table = [line.replace("× baas", "× shipped") for line in table]
    lines = ["# Training step: what each speed measure is worth", "",
             f"baas's own training step on {len(examples)} real training questions ({args.datasets}), batch "
             f"{args.batch_size}, 5+5 prompt vectors, "
             + ("depth 1, joint scoring" if args.pair == "shallow" else "the default pair (every layer, both scoring)")
             + f"; each row takes one measure away from (or adds an allocator "
             f"to) the shipped step; {args.rounds} interleaved rounds of {args.steps} steps per row.", "",
             *table, "", *environment_lines(args, "train_effects.py", result)]
    write_report(report_path(args, "train_effects"), lines)
    print("\n".join(table))
    if args.json:
        sides = result["sides"]
        print(json.dumps({k: v["questions_per_s"] / sides["shipped"]["questions_per_s"] for k, v in sides.items()}))


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main_guard(main)
