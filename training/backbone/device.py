"""Where and in what precision a backbone runs: `--device` and `--precision` resolved for this machine."""

from __future__ import annotations

import torch

from baas.training.config import PRECISIONS, check_device
from baas.prompts_bank.errors import BaasError


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """The torch device of `--device`: auto (or None) is CUDA when torch sees a GPU, then MPS, then the CPU;
    cpu, cuda, cuda:N and mps are taken as given, and one that is not present is a BaasError. Under a launch
    of several processes, auto and cuda give each process its local rank's GPU (cuda:LOCAL_RANK)."""
    if isinstance(spec, torch.device):
        return spec
    spec = "auto" if spec is None else str(spec)
    check_device(spec)
    mps = getattr(torch.backends, "mps", None)
    mps_ok = mps is not None and mps.is_available()
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "mps" if mps_ok else "cpu"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BaasError(f"--device {spec}: torch sees no CUDA GPU here (torch.cuda.is_available() is false); "
                            "use --device cpu or --device auto")
        from baas.training.parallel import local_rank

        index = int(spec.partition(":")[2]) if ":" in spec else local_rank()
        if index >= torch.cuda.device_count():
            raise BaasError(f"--device cuda:{index}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                            f"numbered from 0")
        return torch.device("cuda", index)
    if spec == "mps" and not mps_ok:
        raise BaasError("--device mps: torch has no MPS (Apple GPU) here; use --device cpu or --device auto")
    return torch.device(spec)


def resolve_precision(spec: str | None, device: torch.device) -> str:
    """fp32, bf16 or fp16 of `--precision`: auto (or None) is bf16 on a CUDA GPU that supports it and on a CPU
    with native bf16 instructions (AVX512-BF16 or AMX, as torch's oneDNN kernels report), else fp32.
    fp16 and bf16 apply to the frozen backbone's forward only (autocast); trained tensors stay fp32."""
    spec = spec or "auto"
    if spec not in PRECISIONS:
        raise BaasError(f"unknown --precision '{spec}'; expected one of {', '.join(PRECISIONS)}")
    if spec == "auto":
        native = ((device.type == "cuda" and torch.cuda.is_bf16_supported())
                  or (device.type == "cpu" and cpu_has_native_bf16()))
        return "bf16" if native else "fp32"
    return spec


def cpu_has_native_bf16() -> bool:
    """Whether this CPU runs bf16 matrix products natively (oneDNN's check; an older torch without it: no)."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(check is not None and check())


AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
