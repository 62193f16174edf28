"""Does the device plumbing (issue 27: --device, --precision, batches moved to the learner's device, autocast
hooks) slow the CPU down? `baas train-task` of this checkout against the same command of the commit before the
plumbing (4209973^), run alternately in one session so that the machine's drift hits both sides alike.

    git worktree add ../baas-predevice 4209973^ && (cd ../baas-predevice && make setup)
    python benchmarks/perf/device_overhead.py --old ../baas-predevice --data-dir DIR [--rounds 3]

Each side has its own store, warmed by one untimed run (token cache, data-driven start), then every round runs
old and new once with `--force` (a fresh training run, evaluation included) and reads the record's `seconds`.
Both sides run fp32 on the CPU with the same threads. Writes results/device_overhead.{json,md}: each round's
seconds and the new/old ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "benchmarks" / "results"


def train_seconds(checkout: Path, store: Path, args) -> float:
    command = [str(checkout / ".venv" / "bin" / "baas"), "train-task", args.task, "--data-dir", args.data_dir,
               "--max-train", str(args.max_train), "--max-eval", str(args.max_eval), "--epochs", "1",
               "--scoring", "joint", "--store", str(store), "--force", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


def write_markdown(result: dict) -> None:
    """Each round's paired ratio (after / before, the two runs back to back) and their geometric mean."""
    old, new = result["seconds"]["old"], result["seconds"]["new"]
    ratios = [n / o for o, n in zip(old, new)]
    mean = statistics.geometric_mean(ratios)
    rounds = "\n".join(f"| {r + 1} | {o:.1f} | {n:.1f} | {n / o:.3f} |" for r, (o, n) in enumerate(zip(old, new)))
    (OUT / "device_overhead.md").write_text(
        "# CPU cost of the device plumbing (issue 27)\n\n"
        f"`python benchmarks/perf/device_overhead.py --old CHECKOUT_OF_{result['old_commit']} --new CHECKOUT_OF_"
        f"{result['new_commit']} --data-dir DIR --rounds {len(old)}`: `baas train-task {result['task']} --max-train "
        f"{result['max_train']} --max-eval {result['max_eval']} --epochs 1 --scoring joint --force` (training and evaluation, fp32, "
        f"CPU, joint scoring on both sides), the commit before the plumbing ({result['old_commit']}) against "
        f"{result['new_commit']}, back to back in each round (the order alternating), after one untimed warm-up each."
        "\n\n| round | before (s) | after (s) | after / before |\n|---|---|---|---|\n"
        f"{rounds}\n\nGeometric mean of the paired ratios: **{mean:.3f}** (min {min(ratios):.3f}, max {max(ratios):.3f}). "
        "Each ratio compares two runs made back to back; their spread is the noise of the measurement.\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", required=True, type=Path, help="a checkout of the commit before the plumbing, set up")
    ap.add_argument("--new", type=Path, default=REPO, help="the checkout measured against it (default: this one)")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--task", default="arc_easy")
    ap.add_argument("--max-train", type=int, default=200)
    ap.add_argument("--max-eval", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--report-only", action="store_true", help="rewrite the markdown from the JSON of a finished run")
    args = ap.parse_args()
    if args.report_only:
        write_markdown(json.loads((OUT / "device_overhead.json").read_text()))
        return
    sides = {"old": args.old.resolve(), "new": args.new.resolve()}
    seconds: dict[str, list[float]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory() as tmp:
        stores = {side: Path(tmp) / side for side in sides}
        for side, checkout in sides.items():
            train_seconds(checkout, stores[side], args)  # warm-up: caches, not timed
        for r in range(args.rounds):
            for side in (("old", "new") if r % 2 == 0 else ("new", "old")):
                seconds[side].append(train_seconds(sides[side], stores[side], args))
                print(f"round {r + 1} {side}: {seconds[side][-1]:.1f} s", flush=True)
    old_commit, new_commit = (subprocess.run(["git", "-C", str(sides[s]), "rev-parse", "--short", "HEAD"],
                                             capture_output=True, text=True).stdout.strip() for s in ("old", "new"))
    result = dict(task=args.task, max_train=args.max_train, max_eval=args.max_eval, epochs=1, old_commit=old_commit,
                  new_commit=new_commit, seconds=seconds)
    (OUT / "device_overhead.json").write_text(json.dumps(result, indent=1) + "\n")
    write_markdown(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
