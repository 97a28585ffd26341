"""Running a stage on several processes with torchrun: which rank this is, and waiting for the others.

`torchrun --nproc-per-node N -m pipeline.extract ARGS` (plus torchrun's usual --nnodes/--node-rank/
--rdzv-endpoint flags across machines) starts N copies; each extracts its share of the clips on its
own GPU (or CPU threads) into the shared feature cache, and rank 0 assembles the one feature file
once all have finished. `torchrun ... -m pipeline.train ARGS` trains one model with
DistributedDataParallel, each rank on its share of the clips (features.stream.shard). Without
torchrun, world size is 1 and nothing here does anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = World(0, 1, 0)


def init(device_type: str) -> World:
    """Join the torchrun process group if there is one (gloo on CPU, nccl on GPUs)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    world = World(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")))
    if size > 1 and not dist.is_initialized():
        if device_type == "cuda":
            torch.cuda.set_device(world.local_rank)
        # Ranks wait for the slowest at the end of extraction: allow hours, not the default 30 min.
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo", timeout=timedelta(hours=12))
    return world


def barrier(world: World) -> None:
    """Wait until every rank gets here."""
    if world.size > 1:
        dist.barrier()


def gather(world: World, obj: object) -> list:
    """Every rank's `obj`, in rank order, on every rank."""
    if world.size == 1:
        return [obj]
    out: list = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def all_sum(world: World, values: list[float]) -> list[float]:
    """The sums over every rank of each of `values` (float64, so counts stay exact)."""
    if world.size == 1:
        return values
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    total = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return total.tolist()


def shutdown(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()
