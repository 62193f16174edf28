"""Data parallelism over the processes of a launcher that sets torch.distributed's environment (RANK,
WORLD_SIZE, MASTER_ADDR, MASTER_PORT): `torchrun --nproc_per_node N`, or `accelerate launch --multi_gpu
--num_processes N` (accelerate's multi-process launcher runs torchrun underneath; it works without GPUs too,
where `accelerate launch --cpu` would start one process unless MPI is set up). gloo carries CPU tensors and
NCCL CUDA tensors (one process group with both backends where torch sees a GPU); each process uses its local
rank's GPU (`local_rank`, taken by `backbone.resolve_device` under --device auto or cuda).

One process is the default and costs nothing. Under N processes every process runs the same command: each
takes every N-th question of each training batch, and the gradients of their summed losses are added up
across processes before the step, so every process takes the step a single process would take on the whole
batch (up to floating-point summation order). Scoring is shared the same way (`scoring.logits`, and the
continual protocol's learners): each process scores every N-th question and the answers are gathered, so every
process holds every answer and takes the same decisions. Only the main process writes to the store and to
report files, and the others wait for it (`barrier`) before reading what it wrote.
"""

from __future__ import annotations

import os

import torch


def local_rank() -> int:
    """This process's rank on its machine (LOCAL_RANK, set by torchrun and accelerate); 0 alone."""
    return int(os.environ.get("LOCAL_RANK", "0") or 0)


def backend() -> str:
    """The process group's backend: gloo for CPU tensors, plus NCCL for CUDA tensors where torch sees a GPU
    (torch sends each collective to the backend of its tensors' device), so a CPU run never hands NCCL a CPU
    tensor and a GPU run never sends its tensors through gloo."""
    return "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"


class Processes:
    """Where this process stands among the processes of a launch."""

    def __init__(self):
        self.rank, self.world = 0, 1
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                if torch.cuda.is_available():  # NCCL's communicator belongs to this process's GPU
                    torch.cuda.set_device(local_rank() % torch.cuda.device_count())
                dist.init_process_group(backend())
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

    def sum_gradients(self, params: list[torch.Tensor], loss: torch.Tensor) -> None:
        """Add up each parameter's gradient (a missing one counts as zero) and the loss across processes, in place."""
        if self.world > 1:
            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            self.sum_([p.grad for p in params] + [loss])

    def gather(self, values: torch.Tensor, n: int) -> torch.Tensor:
        """The whole [n, ...] result from every process's share of its rows (rows `share(range(n))`), on every process."""
        if self.world == 1:
            return values
        size = -(-n // self.world)
        padded = values.new_zeros((size, *values.shape[1:]))
        padded[: len(values)] = values
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        torch.distributed.all_gather(parts, padded)
        out = values.new_empty((n, *values.shape[1:]))
        for rank, part in enumerate(parts):
            out[rank::self.world] = part[: len(range(rank, n, self.world))]
        return out

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()
