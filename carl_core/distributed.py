"""Jobs split over the processes ``torchrun`` starts: who this process is, its share, waiting.

``torchrun`` (PyTorch's launcher) sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` and the
rendezvous address; this module only reads them and joins the process group, so the same
command runs alone, on several GPUs or on several machines. Training uses PyTorch's
DistributedDataParallel (``carl_core.train``); embedding jobs such as ``carl index add`` give
each process a share of the videos and merge the shards (``carl_core.cli``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world(backend: str | None = None) -> World:
    """This process's place among ``torchrun``'s; joins the process group on first call.

    ``backend``: "gloo" or "nccl"; by default NCCL where CUDA is available, gloo otherwise (a
    job that only waits on the others, like indexing, can ask for gloo on any machine).
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend=backend or ("nccl" if torch.cuda.is_available() else "gloo"))
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def share(items: Sequence[T], w: World) -> list[T]:
    """This process's items: every ``size``-th, from its rank on (round robin keeps the loads even)."""
    return list(items[w.rank :: w.size])


def barrier(w: World) -> None:
    """Wait until every process gets here (nothing to wait for alone)."""
    if w.size > 1:
        import torch.distributed as dist

        dist.barrier()
