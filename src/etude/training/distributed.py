"""Data-parallel training with PyTorch's DistributedDataParallel, launched by `torchrun`.

`torchrun --nproc_per_node N -m etude train ...` sets RANK, WORLD_SIZE and LOCAL_RANK; this module
joins the process group (nccl on GPUs, gloo on CPU) and offers the few collectives the training
loop needs. Without those variables everything is a no-op on one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Only the main process logs, evaluates and writes checkpoints."""
        return self.rank == 0

    @classmethod
    def from_env(cls, use_cuda: bool) -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        d = cls(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
        if use_cuda:
            torch.cuda.set_device(d.local_rank)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if use_cuda else "gloo")
        return d

    def device(self, base: torch.device) -> torch.device:
        return torch.device("cuda", self.local_rank) if base.type == "cuda" and self.world > 1 else base

    def wrap(self, model: nn.Module) -> nn.Module:
        if self.world <= 1:
            return model
        ids = [self.local_rank] if next(model.parameters()).is_cuda else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        """The sum of `value` over all processes."""
        if self.world > 1:
            value = value.clone()
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return value

    def any(self, flag: bool) -> bool:
        """True on every process when it is true on any (so all stop at the same iteration)."""
        return bool(self.sum(torch.tensor([float(flag)])).item() > 0) if self.world > 1 else flag

    def gather(self, obj) -> list:
        """`obj` from every process, in rank order (on every process)."""
        if self.world <= 1:
            return [obj]
        out: list = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def close(self, together: bool = True) -> None:
        """Leave the process group; `together` waits for every process first (a process tearing its
        connections down while another still uses them can make gloo abort the other). Pass
        False after an error, when the others may never arrive."""
        if self.world > 1 and dist.is_initialized():
            if together:
                dist.barrier()
            dist.destroy_process_group()
