"""The speed benchmarks still run at the library's defaults: each at its smallest size on the tiny model (the
throughput pair) or one small configuration (scaling). When the default scoring changed to `both`, the three
broke without a test noticing: their rows are joint rows, and they now pin `joint`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

PERF = Path(__file__).resolve().parents[1] / "benchmarks" / "perf"


@pytest.mark.parametrize("script", ["train_throughput.py", "eval_throughput.py"])
def test_throughput_benchmarks_run_on_the_tiny_model(script, shared_mcq, tiny_backbone_dir, tmp_path):
    out = subprocess.run([sys.executable, str(PERF / script), "--datasets", "arc_easy", "--data-dir", str(shared_mcq),
                          "--backbone", str(tiny_backbone_dir("bert")), "--questions", "8", "--batch-size", "4",
                          "--rounds", "1", "--steps", "1", "--warmup", "0", "--threads", "1",
                          "--output", str(tmp_path / "report.md"), "--json"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["baas_questions_per_s"] > 0 and summary["peft_questions_per_s"] > 0
    assert summary["speedup_vs_peft"] == pytest.approx(summary["baas_questions_per_s"] / summary["peft_questions_per_s"])
    assert "PEFT" in (tmp_path / "report.md").read_text()


def test_scaling_measures_one_configuration():
    sys.path.insert(0, str(PERF))
    try:
        import scaling
    finally:
        sys.path.remove(str(PERF))
    result = scaling.measure(dict(scaling.DEFAULT, length=16, options=2, prompt=2))
    assert result["step_s"] > 0 and result["peak_rss_mb"] > 0


def test_train_effects_runs_the_rows_asked_for_on_the_default_pair(shared_mcq, tiny_backbone_dir, tmp_path):
    """`--pair default --sides bf16`: only the shipped and bf16 rows, on the pair `train-task` trains; an unknown row
    is refused by name."""
    args = [sys.executable, str(PERF / "train_effects.py"), "--datasets", "arc_easy", "--data-dir", str(shared_mcq),
            "--backbone", str(tiny_backbone_dir("bert")), "--questions", "8", "--batch-size", "4", "--rounds", "1",
            "--steps", "1", "--warmup", "0", "--threads", "1", "--pair", "default", "--output", str(tmp_path / "report.md")]
    out = subprocess.run([*args, "--sides", "bf16", "--json"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    ratios = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(ratios) == {"shipped", "bf16"} and ratios["shipped"] == 1 and ratios["bf16"] > 0
    assert "the default pair (every layer, both scoring)" in (tmp_path / "report.md").read_text()
    refused = subprocess.run([*args, "--sides", "bf16,nope"], capture_output=True, text=True, timeout=600)
    assert refused.returncode != 0 and "unknown row(s) nope" in refused.stderr + refused.stdout
