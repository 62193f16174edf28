"""Data-parallel training over the processes of a launcher that sets torch.distributed's environment
(RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT): `torchrun --nproc_per_node N` on CPUs (gloo), and
`accelerate launch --multi_gpu --num_processes N` on GPUs (NCCL; accelerate runs torchrun underneath).
`accelerate launch --cpu` starts one process unless MPI is set up, so on CPUs torchrun is the launcher.

One process is the default and costs nothing. Under N processes, each process
takes every N-th question of each batch, and the gradients of their summed losses are added up across
processes before the step, so every process takes the step a single process would take on the whole
batch (up to floating-point summation order). Evaluation is shared the same way: each process scores every
N-th question and the answers are gathered. Only the main process writes to the store.
"""

from __future__ import annotations

import os

import torch


class Processes:
    """Where this process stands among the processes of a launch."""

    def __init__(self):
        self.rank, self.world = 0, 1
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
            self.rank, self.world = dist.get_rank(), dist.get_world_size()

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, indices: list[int]) -> list[int]:
        """This process's questions of a batch."""
        return indices[self.rank :: self.world]

    def sum_(self, tensors: list[torch.Tensor]) -> None:
        """Add each tensor up across processes, in place."""
        if self.world > 1:
            for t in tensors:
                torch.distributed.all_reduce(t)

    def gather(self, values: torch.Tensor, n: int) -> torch.Tensor:
        """The whole [n] result from every process's share of it (its items `share(range(n))`), on every process."""
        if self.world == 1:
            return values
        size = -(-n // self.world)
        padded = torch.zeros(size, dtype=values.dtype)
        padded[: len(values)] = values
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        torch.distributed.all_gather(parts, padded)
        out = torch.empty(n, dtype=values.dtype)
        for rank, part in enumerate(parts):
            out[rank::self.world] = part[: len(range(rank, n, self.world))]
        return out

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()
