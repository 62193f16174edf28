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
