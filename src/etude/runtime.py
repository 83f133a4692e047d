"""Where and how computation runs: the device, seeds, and what this machine's torch supports."""

from __future__ import annotations

import functools
import os
import random

import numpy as np
import torch

from etude.errors import ConfigError


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    """auto (CUDA when torch sees a device, else the CPU), cpu or cuda; refuses what is not here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {name!r}; choose auto, cpu or cuda")
    if name == "cuda" and not torch.cuda.is_available():
        build = "this torch is a CPU-only build" if torch.version.cuda is None else "torch sees no CUDA device"
        raise ConfigError(f"--device cuda asked for, but {build}; use --device cpu (or auto)")
    return torch.device(name)


@functools.cache
def bf16_supported(device_type: str) -> bool:
    """Whether an LSTM runs forward and backward under bf16 autocast on this device.

    On CUDA, the device's bf16 support. On a CPU, a probe: oneDNN has no bf16 LSTM on CPUs
    without native bf16 (e.g. AVX2-only ones) and fails with "could not create a primitive
    descriptor"; it is cheaper to try a 2 x 3 x 8 LSTM once than to predict that from CPU flags.
    """
    if device_type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        lstm = torch.nn.LSTM(8, 8, num_layers=2, batch_first=True)
        with torch.autocast(device_type, dtype=torch.bfloat16):
            out = lstm(torch.randn(2, 3, 8))[0]
        out.float().sum().backward()
        return True
    except RuntimeError:
        return False


def compile_cache_for_this_cpu() -> str:
    """Point torch.compile's cache at a folder of its own for the CPU capability torch runs with
    (e.g. .../torchinductor_USER/AVX2), unless the user set TORCHINDUCTOR_CACHE_DIR elsewhere
    (torch sets it to its default when its inductor is imported); returns the folder.

    torch 2.13's inductor cache is not keyed by that capability: a graph compiled under one
    (AVX-512, 16 floats a vector) and loaded under another (ATEN_CPU_CAPABILITY=avx2, 8) computed
    garbage here (NaN losses) or crashed (free(): invalid pointer), while each capability with a
    cache of its own gave the eager results. Call before the first compiled call."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    default = os.path.abspath(default_cache_dir())
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR", default) == default:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(default, torch.backends.cpu.get_cpu_capability())
    return os.environ["TORCHINDUCTOR_CACHE_DIR"]
