"""The GPU check of issue 27: one prepared run, no network, under 5 minutes on one GPU.

    python benchmarks/perf/gpu_check.py                      # on a GPU machine: --device auto finds it
    python benchmarks/perf/gpu_check.py --device cpu --quick # the smoke test CI runs (tiny configs, seconds)

bert-base-sized (12 layers, d 768) and bert-large-sized (24 layers, d 1024) BERT encoders are built from
their configs with random weights (speed and memory need no trained weights), with a tiny synthetic MCQ set
of fixed-length rows (4 options per question, `--seq` tokens per row). On the same batches it reports:

- training and evaluation questions per second, in fp32 and bf16, for baas's deep pair (`make_trainable`'s
  pair at every layer, 5 + 5 vectors, gated; `loop.PairLearner`) and for PEFT prefix tuning (eval-forgetting's
  learner, `peft.PeftLearner` with `PrefixTuningConfig(num_virtual_tokens=10)`), both through the
  library's one step (`loop.train_step`) and evaluator (`loop.evaluate`); full fine-tuning's training too, for
  memory;
- the in-run bf16 (and fp32) matmul peak (best of square `torch.mm`s) and the share of it each side reaches,
  from the FLOP model of benchmarks/perf/train_throughput.py (per row: a training step 4*P*S + 12*L*S^2*d, an
  evaluation 2*P*S + 4*L*S^2*d; P the encoder's per-token weights, S the row width with the 10 prompt
  positions);
- peak GPU memory of each side's training (torch.cuda.max_memory_allocated, reset per side);
- the fp32 logits of a tiny model on the device against the CPU's (max abs difference).

Results go to --out (default: $OUT, else benchmarks/results) as gpu.json and gpu.md on a GPU, or
gpu_check_<device>.json / .md elsewhere. Every side stops early, with a note, when --budget runs out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from baas.training.backbone import Backbone, resolve_device
from baas.training.batching import Encoded
from baas.training.config import TrainConfig
from baas.training.loop import PairLearner, evaluate, learner_scorer, train_step
from baas.training.trainer import make_trainable

SIZES = {  # BertConfig fields
    "bert-base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072),
    "bert-large": dict(num_hidden_layers=24, hidden_size=1024, num_attention_heads=16, intermediate_size=4096),
    "tiny": dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=2, intermediate_size=128),
}
VOCAB = 30522
OPTIONS = 4
PROMPT = 5  # prefix and suffix vectors each (PEFT: 2 * PROMPT virtual tokens)
GOALS = {"deep_vs_prefix_bf16": 1.3, "peak_share": 0.40, "memory_vs_full_ft": 0.60}


def log(text: str) -> None:
    print(f"[gpu_check] {text}", file=sys.stderr, flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def tokenizer():
    """A WordPiece tokenizer over a small vocabulary, made here (no network): baas reads its special ids."""
    from transformers import BertTokenizerFast

    folder = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(200)]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    return BertTokenizerFast(vocab=str(folder / "vocab.txt"))


def backbone(size: str, device: torch.device, tok, seed: int = 0) -> Backbone:
    """A random BERT encoder of `size`, frozen, built directly on `device`."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=VOCAB, max_position_embeddings=512, **SIZES[size])
    with torch.device(device):
        model = BertModel(config, add_pooling_layer=False)
    model.requires_grad_(False).eval()
    return Backbone(name=f"random-{size}", model=model, tokenizer=tok, is_decoder=False)


def questions(n: int, seq: int, seed: int) -> list[Encoded]:
    """n questions of OPTIONS joint rows of exactly `seq` tokens ([CLS] ... [SEP] ... [SEP]), labels spread."""
    g = torch.Generator().manual_seed(seed)
    out = []
    first = seq // 2 - 1

    def ids(k: int) -> list[int]:
        return torch.randint(1000, VOCAB, (k,), generator=g).tolist()

    for i in range(n):
        rows = [[2] + ids(first) + [3] + ids(seq - 3 - first) + [3] for _ in range(OPTIONS)]
        out.append(Encoded(rows, i % OPTIONS))
    return out


def encoder_weights(bb: Backbone) -> int:
    """P: the weights every token passes through once (the encoder's layers; embeddings are lookups)."""
    return sum(p.numel() for p in bb.model.encoder.parameters())


def flops(bb: Backbone, rows: int, width: int, train: bool) -> float:
    """The FLOP model of benchmarks/perf/train_throughput.py for `rows` rows of `width` positions."""
    p, layers, d = encoder_weights(bb), bb.num_layers, bb.hidden_size
    per_row = (4 * p * width + 12 * layers * width ** 2 * d) if train else (2 * p * width + 4 * layers * width ** 2 * d)
    return rows * per_row


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int, seconds: float = 2.0) -> float:
    """Best TFLOP/s of an n x n torch.mm in `dtype` on `device`, over about `seconds`."""
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    sync(device)
    best, stop = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < stop:
        start = time.perf_counter()
        for _ in range(10):
            a @ b
        sync(device)
        best = max(best, 10 * 2 * n ** 3 / (time.perf_counter() - start) / 1e12)
    return best


class Ctx:
    """What peft.PeftLearner reads of eval-forgetting's context."""

    def __init__(self, bb: Backbone, config: TrainConfig):
        self.backbone, self.config = bb, config


def learner(side: str, bb: Backbone, config: TrainConfig, train: list[Encoded]):
    from baas.training.continual.methods.peft import PeftLearner

    torch.manual_seed(0)
    if side == "deep_pair":
        module, _ = make_trainable(bb, train, config)
        return PairLearner(bb, module, "mean_input", config.precision)
    if side == "prefix_tuning":
        from peft import PrefixTuningConfig, TaskType

        return PeftLearner(Ctx(bb, config), PrefixTuningConfig(task_type=TaskType.FEATURE_EXTRACTION,
                                                               num_virtual_tokens=2 * PROMPT))
    if side == "full_ft":
        return PeftLearner(Ctx(bb, config), None)
    raise ValueError(side)


def measure(side: str, bb: Backbone, precision: str, train: list[Encoded], val: list[Encoded], args, device) -> dict:
    config = TrainConfig(prefix_len=PROMPT, suffix_len=PROMPT, batch_size=args.batch, eval_batch_size=args.eval_batch,
                         precision=precision, device=str(device), lr=1e-2 if side != "full_ft" else 1e-5,
                         scoring="joint")  # the synthetic rows are joint rows, the PEFT sides' scoring too
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    lrn = learner(side, bb, config, train)
    optimizer = lrn.optimizer(config)
    batches = [train[i: i + args.batch] for i in range(0, len(train) - args.batch + 1, args.batch)]
    width = args.seq + 2 * PROMPT  # the deep pair's rows and prefix tuning's attention span alike
    for b in batches[: args.warmup]:
        train_step(lrn, optimizer, [b], bb.pad_id, 1.0)
    sync(device)
    start, done = time.perf_counter(), 0
    for i in range(args.steps):
        loss = train_step(lrn, optimizer, [batches[(args.warmup + i) % len(batches)]], bb.pad_id, 1.0)
        done += args.batch
    sync(device)
    train_s = time.perf_counter() - start
    out = {"side": side, "precision": precision, "train_questions": done, "train_seconds": round(train_s, 4),
           "train_qps": round(done / train_s, 2), "final_loss": round(float(loss), 4),
           "train_tflops": round(flops(bb, done * OPTIONS, width, True) / train_s / 1e12, 3)}
    if device.type == "cuda":
        out["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 3)
    if side != "full_ft":
        evaluate(learner_scorer(lrn), val[: args.eval_batch], bb.pad_id, args.eval_batch, device=device)  # warm-up
        sync(device)
        start = time.perf_counter()
        metrics = evaluate(learner_scorer(lrn), val, bb.pad_id, args.eval_batch, device=device)
        sync(device)
        eval_s = time.perf_counter() - start
        out.update(eval_questions=len(val), eval_seconds=round(eval_s, 4), eval_qps=round(len(val) / eval_s, 2),
                   eval_accuracy=metrics["accuracy"],
                   eval_tflops=round(flops(bb, len(val) * OPTIONS, width, False) / eval_s / 1e12, 3))
    del lrn, optimizer
    return out


def cpu_agreement(device: torch.device, tok) -> dict:
    """The fp32 logits of a tiny deep pair on `device` against the same model's on the CPU."""
    from baas.training.batching import collate
    from baas.training.scoring import score

    cpu = backbone("tiny", torch.device("cpu"), tok, seed=1)
    enc = questions(8, 24, seed=5)
    module, _ = make_trainable(cpu, enc, TrainConfig(prefix_len=PROMPT, suffix_len=PROMPT, device="cpu", scoring="joint"))
    batch = collate(enc, cpu.pad_id)
    with torch.no_grad():
        pair, head = module()
        on_cpu = score(cpu, batch, pair, head, "mean_input", "fp32")
        cpu.model.to(device)
        module.to(device)
        pair, head = module()
        on_device = score(cpu, batch, pair, head, "mean_input", "fp32").cpu()
    return {"max_abs_diff": float((on_cpu - on_device).abs().max()), "max_abs_logit": float(on_cpu.abs().max())}


def environment(device: torch.device) -> dict:
    import transformers

    env = {"device": str(device), "torch": torch.__version__, "transformers": transformers.__version__,
           "python": platform.python_version(), "cpus": os.cpu_count()}
    if device.type == "cuda":
        env.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                   bf16=torch.cuda.is_bf16_supported(), gpu_memory_gib=round(torch.cuda.get_device_properties(device).total_memory / 2 ** 30, 1),
                   tf32_matmul=torch.backends.cuda.matmul.allow_tf32)
    return env


def goals(report: dict) -> dict:
    """The issue's goals, read off the bert-base rows (None where a row is missing)."""
    rows = {(r["size"], r["side"], r["precision"]): r for r in report["runs"]}
    deep, prefix = rows.get(("bert-base", "deep_pair", "bf16")), rows.get(("bert-base", "prefix_tuning", "bf16"))
    full = rows.get(("bert-base", "full_ft", "bf16"))
    out = {}
    if deep and prefix:
        out["deep_vs_prefix_bf16_train_qps"] = round(deep["train_qps"] / prefix["train_qps"], 3)
    if deep and report["peaks_tflops"].get("bf16"):
        out["deep_bf16_train_peak_share"] = round(deep["train_tflops"] / report["peaks_tflops"]["bf16"], 3)
    if deep and full and "peak_memory_gib" in deep:
        out["deep_vs_full_ft_peak_memory"] = round(deep["peak_memory_gib"] / full["peak_memory_gib"], 3)
    return out


def markdown(report: dict) -> str:
    env, lines = report["environment"], []
    lines += ["# GPU check (benchmarks/perf/gpu_check.py)", "",
              f"Device {env['device']}" + (f" ({env['gpu']}, CUDA {env['cuda']}, bf16 {env['bf16']})" if "gpu" in env else "")
              + f"; torch {env['torch']}, transformers {env['transformers']}. Random-weight BERT encoders built from "
              f"their configs; {report['settings']['batch']} questions x {OPTIONS} options per training step, rows of "
              f"{report['settings']['seq']} tokens (+{2 * PROMPT} prompt positions); {report['settings']['steps']} timed "
              f"steps after {report['settings']['warmup']} warm-up; evaluation of {report['settings']['eval_questions']} "
              f"questions in batches of {report['settings']['eval_batch']}.", "",
              "In-run matmul peak (best square torch.mm): " + ", ".join(f"{k} {v:.1f} TFLOP/s" for k, v in report["peaks_tflops"].items()), "",
              "| size | side | precision | train q/s | eval q/s | train TFLOP/s (share of peak) | eval TFLOP/s | peak memory GiB | eval acc |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in report["runs"]:
        peak = report["peaks_tflops"].get(r["precision"]) or None
        share = f" ({r['train_tflops'] / peak:.0%})" if peak else ""
        lines.append(f"| {r['size']} | {r['side']} | {r['precision']} | {r['train_qps']:.1f} | {r.get('eval_qps', float('nan')):.1f} | "
                     f"{r['train_tflops']:.2f}{share} | {r.get('eval_tflops', float('nan')):.2f} | {r.get('peak_memory_gib', '-')} | "
                     f"{r.get('eval_accuracy', '-')} |")
    agree = report["cpu_agreement"]
    lines += ["", f"fp32 logits of a tiny deep pair, {env['device']} vs CPU: max abs difference {agree['max_abs_diff']:.2e} "
              f"(largest logit {agree['max_abs_logit']:.3f}).", "", "Goals (bert-base):", ""]
    g = report["goals"]
    for key, target, better in (("deep_vs_prefix_bf16_train_qps", GOALS["deep_vs_prefix_bf16"], ">="),
                                ("deep_bf16_train_peak_share", GOALS["peak_share"], ">="),
                                ("deep_vs_full_ft_peak_memory", GOALS["memory_vs_full_ft"], "<=")):
        value = g.get(key)
        met = value is not None and (value >= target if better == ">=" else value <= target)
        lines.append(f"- {key}: {value if value is not None else 'not measured'} (goal {better} {target}: "
                     f"{'met' if met else 'not met' if value is not None else 'n/a'})")
    for note in report["notes"]:
        lines.append(f"- note: {note}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    parser.add_argument("--quick", action="store_true", help="tiny configs and few steps (a smoke test, e.g. on the CPU)")
    parser.add_argument("--sizes", default=None, help="comma-separated of bert-base, bert-large, tiny")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--batch", type=int, default=8, help="questions per training step")
    parser.add_argument("--eval-batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128, help="tokens per option row")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--eval-questions", type=int, default=128)
    parser.add_argument("--budget", type=float, default=270.0, help="seconds; sides left when it runs out are skipped")
    parser.add_argument("--out", default=None, help="folder for the JSON and markdown (default: $OUT, else benchmarks/results)")
    args = parser.parse_args()
    if args.quick:
        args.sizes = args.sizes or "tiny"
        args.steps, args.warmup, args.seq, args.eval_questions, args.batch = 3, 1, 32, 16, 4
    sizes = (args.sizes or "bert-base,bert-large").split(",")
    precisions = args.precisions.split(",")
    started = time.perf_counter()
    device = resolve_device(args.device)
    log(f"device {device}")
    tok = tokenizer()
    notes = []
    if device.type == "cpu" and "bf16" in precisions:
        notes.append("on the CPU bf16 is autocast's CPU path: its speed says nothing about a GPU")
    peak_n = 1024 if args.quick else 8192
    peaks = {p: round(matmul_peak(device, {"fp32": torch.float32, "bf16": torch.bfloat16}[p], peak_n,
                                  0.5 if args.quick else 2.0), 2) for p in precisions if p in ("fp32", "bf16")}
    log(f"matmul peaks {peaks} TFLOP/s")
    runs = []
    train = questions(args.batch * (args.steps + args.warmup), args.seq, seed=1)
    val = questions(args.eval_questions, args.seq, seed=2)
    for size in sizes:
        bb = backbone(size, device, tok)
        sides = ["deep_pair", "prefix_tuning"] + (["full_ft"] if size in ("bert-base", "tiny") else [])
        for precision in precisions:
            for side in sides:
                if time.perf_counter() - started > args.budget:
                    notes.append(f"budget of {args.budget:.0f} s spent: {size} {side} {precision} skipped")
                    continue
                log(f"{size} {side} {precision}")
                try:
                    row = measure(side, bb, precision, train, val, args, device)
                except torch.OutOfMemoryError:
                    notes.append(f"{size} {side} {precision}: out of GPU memory at batch {args.batch}")
                    torch.cuda.empty_cache()
                    continue
                runs.append(dict(size=size, **row))
                log(json.dumps(runs[-1]))
        del bb
    report = {"environment": environment(device), "peaks_tflops": peaks, "runs": runs,
              "settings": dict(batch=args.batch, eval_batch=args.eval_batch, seq=args.seq, steps=args.steps,
                               warmup=args.warmup, eval_questions=args.eval_questions, sizes=sizes, quick=args.quick),
              "cpu_agreement": cpu_agreement(device, tok), "notes": notes}
    report["goals"] = goals(report)
    report["seconds"] = round(time.perf_counter() - started, 1)
    out = Path(args.out or os.environ.get("OUT") or Path(__file__).resolve().parents[1] / "results")
    out.mkdir(parents=True, exist_ok=True)
    stem = "gpu" if device.type == "cuda" and not args.quick else f"gpu_check_{device.type}{'_quick' if args.quick else ''}"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / f"{stem}.md").write_text(markdown(report))
    log(f"wrote {out / stem}.json and .md in {report['seconds']} s")
    print(json.dumps({"goals": report["goals"], "seconds": report["seconds"], "out": str(out / stem)}))


if __name__ == "__main__":
    main()
