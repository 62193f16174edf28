"""Devices and precision on the CPU (issue 27): the device is one value passed down, so everything here runs
with an explicit torch.device("cpu"), and `auto` is checked with CUDA's and MPS's availability patched."""

from __future__ import annotations

import pytest
import torch

from baas.prompts_bank.errors import BaasError
from baas.store import Store
from baas.training.backbone import load_backbone, resolve_device, resolve_precision
from baas.training.config import TrainConfig
from baas.training.data import load_task_data

SMALL = dict(epochs=2, batch_size=4, prefix_len=3, suffix_len=2, eval_batch_size=16, max_length=48)
CPU = torch.device("cpu")


def _gpus(monkeypatch, n: int, bf16: bool = True, mps: bool = False):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.fixture(scope="module")
def cpu_backbone(tiny_backbone_dir):
    return load_backbone(str(tiny_backbone_dir("bert")), device=CPU)


def test_auto_picks_cuda_then_mps_then_the_cpu(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    _gpus(monkeypatch, 2, mps=True)
    assert resolve_device("auto") == torch.device("cuda", 0) and resolve_device(None) == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1) and resolve_device("cpu") == CPU
    monkeypatch.setenv("LOCAL_RANK", "1")  # under torchrun / accelerate: each process its local rank's GPU
    assert resolve_device("auto") == torch.device("cuda", 1) and resolve_device("cuda") == torch.device("cuda", 1)
    _gpus(monkeypatch, 0, mps=True)
    assert resolve_device("auto") == torch.device("mps")
    _gpus(monkeypatch, 0, mps=False)
    assert resolve_device("auto") == CPU


def test_auto_precision_is_bf16_on_a_gpu_or_cpu_that_has_it_else_fp32(monkeypatch):
    import baas.training.backbone.device as device

    _gpus(monkeypatch, 1, bf16=True)
    assert resolve_precision("auto", torch.device("cuda", 0)) == "bf16"
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", CPU) == "fp32" and resolve_precision(None, CPU) == "fp32"
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", CPU) == "bf16" and resolve_precision("fp32", CPU) == "fp32"
    assert resolve_precision("auto", torch.device("mps")) == "fp32"
    assert resolve_precision("fp16", CPU) == "fp16"
    _gpus(monkeypatch, 1, bf16=False)
    assert resolve_precision("auto", torch.device("cuda", 0)) == "fp32"


@pytest.mark.parametrize("spec", ["gpu", "cuda:", "cuda:x", "cpu:0", "tpu", "mps:1"])
def test_an_unknown_device_is_one_line(spec):
    with pytest.raises(BaasError) as err:
        TrainConfig(device=spec).check()
    assert "\n" not in str(err.value) and spec in str(err.value)
    with pytest.raises(BaasError):
        TrainConfig(precision="fp8").check()


def test_a_device_that_is_not_there_is_one_line(monkeypatch):
    _gpus(monkeypatch, 0)
    for spec in ("cuda", "cuda:0", "mps"):
        with pytest.raises(BaasError) as err:
            resolve_device(spec)
        assert "\n" not in str(err.value) and spec in str(err.value)
    _gpus(monkeypatch, 1)
    with pytest.raises(BaasError, match="cuda:3"):
        resolve_device("cuda:3")


def test_the_api_refuses_cuda_without_one_before_loading_anything(monkeypatch, tmp_path):
    from baas.training import api

    _gpus(monkeypatch, 0)
    monkeypatch.setattr(api.tasks, "load_task_data", lambda *a, **k: load_task_data("demo_categories", max_train=8, max_eval=8))
    with pytest.raises(BaasError, match="no CUDA GPU"):
        api.train_task("demo_categories", store=tmp_path / "s", device="cuda", progress=False)


def test_parallel_uses_gloo_for_cpu_tensors_and_nccl_only_for_cuda(monkeypatch):
    from baas.training import parallel

    _gpus(monkeypatch, 0)
    assert parallel.backend() == "gloo"
    _gpus(monkeypatch, 2)
    assert parallel.backend() == "cpu:gloo,cuda:nccl"
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert parallel.local_rank() == 1


def test_batch_to_the_cpu_is_the_same_batch(cpu_backbone):
    from baas.training.batching import collate, encode

    enc = encode(load_task_data("demo_categories", max_train=4, max_eval=4).train.examples, cpu_backbone.tokenizer, 48)
    batch = collate(enc, cpu_backbone.pad_id)
    assert batch.to(CPU) is batch
    moved = batch.to(torch.device("meta"))  # another device: every tensor goes, none stays behind
    assert all(t is None or t.device.type == "meta" for t in vars(moved).values())


def test_training_on_an_explicit_cpu_records_it_and_saves_cpu_tensors(cpu_backbone, tmp_path):
    from baas.training.trainer import train_pair

    assert cpu_backbone.device == CPU and all(p.device == CPU for p in cpu_backbone.model.parameters())
    store = Store(tmp_path)
    data = load_task_data("demo_categories", max_train=24, max_eval=16)
    result = train_pair("cats", data, cpu_backbone, store, TrainConfig(**dict(SMALL, epochs=1), device="cpu"))
    auto = resolve_precision("auto", CPU)  # bf16 on a CPU with native bf16, else fp32
    assert result["device"] == "cpu" and result["precision"] == auto
    entry = store.load_entry("cats")
    assert entry.meta["device"] == "cpu" and entry.meta["precision"] == auto
    assert all(t.device == CPU for t in entry.tensors().values())
    from safetensors import safe_open

    with safe_open(result["bank_file"], "pt") as f:  # the file itself: device-free tensors, read back on the CPU
        assert all(f.get_tensor(k).device == CPU for k in f.keys())
    assert entry.to(CPU).prefix.device == CPU
    # auto on a machine with no GPU is the same run: the same key, so the entry is found again
    again = train_pair("cats", data, cpu_backbone, store, TrainConfig(**dict(SMALL, epochs=1), device="auto"))
    assert again["reused"] and again["device"] == "cpu"


def test_bf16_autocast_on_the_cpu_trains_as_fp32_does(cpu_backbone, tmp_path):
    from baas.training.trainer import train_pair

    data = load_task_data("demo_categories", max_train=32, max_eval=32)
    runs = {p: train_pair("cats", data, cpu_backbone, Store(tmp_path / p), TrainConfig(**SMALL, precision=p))
            for p in ("fp32", "bf16")}
    assert runs["bf16"]["precision"] == "bf16"
    for a, b in zip(runs["fp32"]["history"], runs["bf16"]["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=0.05)
    assert abs(runs["fp32"]["accuracy"] - runs["bf16"]["accuracy"]) <= 0.15
    entry = Store(tmp_path / "bf16").load_entry("cats")
    assert entry.prefix.dtype == torch.float32  # trained tensors stay fp32 under autocast
    # the forward did run in bf16: close to fp32's, not equal to it, and handed back in fp32
    from baas.training.batching import collate, encode
    from baas.training.scoring import score

    batch = collate(encode(data.train.examples[:8], cpu_backbone.tokenizer, 48), cpu_backbone.pad_id)
    pair, head = entry.prompt()
    fp32, bf16 = (score(cpu_backbone, batch, pair, head, "mean_input", p) for p in ("fp32", "bf16"))
    assert bf16.dtype == torch.float32 and 0 < (fp32 - bf16).abs().max() < 1e-2


def test_fp16_trains_with_a_gradient_scaler(cpu_backbone, monkeypatch):
    from baas.training import loop
    from baas.training.batching import encode
    from baas.training.trainer import make_trainable

    made = []
    real = torch.amp.GradScaler
    monkeypatch.setattr(torch.amp, "GradScaler", lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    config = TrainConfig(**dict(SMALL, epochs=1), precision="fp16")
    enc = encode(load_task_data("demo_categories", max_train=8, max_eval=8).train.examples, cpu_backbone.tokenizer, 48)
    module, _ = make_trainable(cpu_backbone, enc, config)
    learner = loop.PairLearner(cpu_backbone, module, "mean_input", "fp16")
    state = loop.fit(learner, enc, enc, config, cpu_backbone.pad_id)
    assert made and all(p.dtype == torch.float32 for p in module.parameters())
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in state["history"])


def test_the_cli_says_one_line_for_a_missing_or_unknown_device(monkeypatch, cli_env):
    from test_cli import baas, error_line

    _gpus(monkeypatch, 0)
    for flag, says in (("cuda", "no CUDA GPU"), ("gpu", "unknown --device 'gpu'")):
        ran = baas("train-task", "demo_categories", "--device", flag, "--max-train", "8", env=cli_env, check=False)
        assert says in error_line(ran)


def test_gpu_check_runs_on_the_cpu(tmp_path, monkeypatch):
    """benchmarks/perf/gpu_check.py --device cpu --quick: the prepared GPU run, end to end on a tiny config."""
    import json
    import runpy
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "perf" / "gpu_check.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--device", "cpu", "--quick", "--precisions", "fp32",
                                      "--out", str(tmp_path)])
    runpy.run_path(str(script), run_name="__main__")
    report = json.loads((tmp_path / "gpu_check_cpu_quick.json").read_text())
    assert report["environment"]["device"] == "cpu"
    assert {r["side"] for r in report["runs"]} == {"deep_pair", "prefix_tuning", "full_ft"}
    assert all(r["train_qps"] > 0 for r in report["runs"]) and report["cpu_agreement"]["max_abs_diff"] == 0.0
    assert "| tiny | deep_pair | fp32 |" in (tmp_path / "gpu_check_cpu_quick.md").read_text()


def test_run_keys_of_fp32_runs_are_the_keys_made_before_device_and_precision(cpu_backbone):
    """A store trained before --device and --precision existed still finds its fp32 runs; bf16 is another run."""
    import hashlib
    import json
    from dataclasses import asdict

    from baas.training.cache import run_key
    from baas.training.data import fingerprint

    data = load_task_data("demo_categories", max_train=8, max_eval=8)
    config = TrainConfig(**SMALL)
    before = {k: v for k, v in asdict(config).items() if k not in ("device", "precision")}
    blob = json.dumps(["cats", cpu_backbone.name, fingerprint(data.train.examples), fingerprint(data.validation.examples),
                       before], sort_keys=True)
    old = hashlib.sha256(blob.encode()).hexdigest()[:16]
    for device in ("auto", "cpu", "cuda"):
        assert run_key("cats", cpu_backbone, data, TrainConfig(**SMALL, device=device, precision="fp32")) == old
    auto = run_key("cats", cpu_backbone, data, TrainConfig(**SMALL))  # auto: fp32's key only where it resolves to fp32
    assert (auto == old) == (resolve_precision("auto", CPU) == "fp32")
    assert run_key("cats", cpu_backbone, data, TrainConfig(**SMALL, precision="bf16")) != old


def test_eval_forgetting_results_folders_keep_their_identity():
    from baas.training.continual import Settings

    settings = Settings(tasks=["a", "b"], config=TrainConfig(device="cuda", precision="auto"))
    assert not {"device", "precision"} & set(settings.identity("bb")["config"])
    assert settings.identity("bb", "bf16")["config"]["precision"] == "bf16"
