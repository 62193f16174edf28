"""Tokenising a dataset vs reading its tokens back from the store's cache (what `train-task` does on a rerun).

    python benchmarks/perf/token_cache.py [--data-dir DIR]     # writes benchmarks/results/token_cache.md

For each dataset of the real mix, the whole training split: `encode` (the tokenizer's work plus the
pair template and truncation) against `encode_cached` hitting the store, alternated 3 times; the
median of each and their ratio. Both return identical token ids (checked).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from baas.store import Store
from baas.training.backbone import load_backbone
from baas.training.batching import encode
from baas.training.cache import encode_cached
from baas.training.data import load_task_data

sys.path.insert(0, str(Path(__file__).parent))
from throughput import DEFAULT_DATASETS, RESULTS, command_line, resolve_data_dir  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--datasets", default=",".join(DEFAULT_DATASETS))
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data_dir)
    bb = load_backbone(None)
    max_length = 256 - 10
    lines = ["# Token cache: tokenising vs reading back from the store", "",
             "| dataset | questions | option rows | encode s (median of 3) | cache hit s | speed-up |", "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(tmp)
        for name in args.datasets.split(","):
            examples = load_task_data(name, data_dir).train.examples
            fresh = encode_cached(examples, bb, max_length, store)  # fills the cache
            times = {"encode": [], "cache": []}
            for _ in range(3):
                t = time.perf_counter()
                again = encode(examples, bb.tokenizer, max_length)
                times["encode"].append(time.perf_counter() - t)
                t = time.perf_counter()
                cached = encode_cached(examples, bb, max_length, store)
                times["cache"].append(time.perf_counter() - t)
            assert cached == fresh == again
            e, c = statistics.median(times["encode"]), statistics.median(times["cache"])
            rows = sum(len(x.options) for x in fresh)
            lines.append(f"| {name} | {len(examples)} | {rows} | {e:.3f} | {c:.3f} | {e / c:.1f}x |")
            print(lines[-1], flush=True)
    lines += ["", f"Command: `{command_line('token_cache.py')}`; backbone all-MiniLM-L6-v2 (fast tokenizer), "
              f"max length {max_length}; {time.strftime('%Y-%m-%d')}."]
    (RESULTS / "token_cache.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
