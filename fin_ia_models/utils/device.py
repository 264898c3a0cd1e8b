"""Device and precision choice for training entry points: CUDA when present (honouring CUDA_VISIBLE_DEVICES, which
torch applies itself), else CPU. bf16 + TF32 on CUDA; fp32 on CPU so CPU runs stay bit-reproducible."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceChoice:
    accelerator: str  # "cuda" or "cpu", as Lightning names it
    precision: str  # Lightning precision string: "bf16-mixed" on CUDA, "32-true" on CPU
    device_name: str  # human-readable, for logs and MLflow system info


def choose_device(prefer_cuda: bool = True) -> DeviceChoice:
    """Pick CUDA with bf16-mixed and TF32 matmuls when available, otherwise CPU with fp32."""
    import torch

    if prefer_cuda and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.set_float32_matmul_precision("high")
        return DeviceChoice("cuda", "bf16-mixed", torch.cuda.get_device_name(0))
    return DeviceChoice("cpu", "32-true", "cpu")
