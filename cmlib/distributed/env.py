"""The process group: who am I (rank), how many are we (world size), and how to start and stop.

``torchrun`` starts one process per device and tells each its place through environment
variables (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``).
:func:`init_distributed` reads them and joins the group: NCCL between GPUs, gloo on CPUs.
Run without ``torchrun``, the same code is a single process of a world of one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """One process's view of the job.

    Attributes:
        rank: this process's index, 0 … world_size − 1.
        world_size: number of processes.
        local_rank: index on this machine (picks the GPU).
        device: where this process computes.
        backend: ``"nccl"``, ``"gloo"``, or ``None`` for a single process without a group.
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, evaluates and writes files; the others only train."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True inside a process that ``torchrun`` started."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_distributed(backend: str | None = None, use_cuda: bool | None = None) -> DistContext:
    """Join the process group that ``torchrun`` set up, or describe a single process.

    Args:
        backend: ``"gloo"`` or ``"nccl"``; default NCCL with CUDA, else gloo.
        use_cuda: compute on GPU ``local_rank``; default when CUDA is available.

    Returns:
        This process's :class:`DistContext`.
    """
    use_cuda = torch.cuda.is_available() if use_cuda is None else use_cuda
    if backend not in (None, "gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    if backend == "nccl" and not use_cuda:
        raise ValueError("NCCL only connects GPUs; use backend='gloo' on the CPU")
    if not launched_by_torchrun():
        device = torch.device("cuda" if use_cuda else "cpu")
        return DistContext(0, 1, 0, device, None)
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    backend = backend or ("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistContext(rank, world_size, local_rank, device, backend)


def cleanup() -> None:
    """Leave the process group (every rank, at the end, so no one waits for a departed peer)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def require_process_group() -> int:
    """The world size of the initialised process group.

    Raises:
        RuntimeError: when there is none: launch with ``torchrun`` and call
            :func:`init_distributed` first.
    """
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            "no process group: launch with `torchrun --nproc_per_node=N script.py` and call "
            "cmlib.distributed.init_distributed() before any collective operation"
        )
    return dist.get_world_size()


def local_batch_size(global_batch_size: int, world_size: int) -> int:
    """Each rank's share of a global batch.

    Raises:
        ValueError: if ``world_size`` does not divide ``global_batch_size``: the ranks would see
            different batch sizes, and the gathered batch would not be the global one.
    """
    for name, value in (("global_batch_size", global_batch_size), ("world_size", world_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if global_batch_size % world_size:
        raise ValueError(
            f"world size {world_size} does not divide the global batch {global_batch_size}; "
            f"pick a batch that is a multiple of {world_size}"
        )
    return global_batch_size // world_size


def rank_seed(seed: int, rank: int) -> int:
    """A seed for randomness that must *differ* between ranks (data augmentation, dropout).

    Initialisation must instead use the same ``seed`` everywhere (DDP also broadcasts rank 0's
    weights when it wraps the model); otherwise every rank would draw the same "random" captions.
    """
    return seed * 1000 + rank
