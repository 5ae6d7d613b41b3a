"""Distributed data-parallel training with ``torch.distributed`` (chapter 10).

* :mod:`.env` — the process group: rank, world size, gloo or NCCL, seeds per rank.
* :mod:`.loss` — gathering features across ranks for the contrastive loss.
* :mod:`.training` — the DDP loop for chapter 07's dual encoder, checkpoints and resume,
  and the one-step comparison with a single process.
* :mod:`.launch` — start a ``torchrun`` job from Python, bounded in time.

The entry point is ``scripts/train_retrieval_ddp.py``.
"""

from .env import (
    DistContext,
    cleanup,
    init_distributed,
    launched_by_torchrun,
    local_batch_size,
    rank_seed,
    require_process_group,
)
from .launch import JobResult, run_torchrun, torchrun_command
from .loss import distributed_clip_loss, gather_features
from .training import (
    DDPConfig,
    build_model,
    compare_with_one_process,
    load_state,
    run_report,
    save_state,
    train_retrieval,
)

__all__ = [
    "DDPConfig",
    "DistContext",
    "JobResult",
    "build_model",
    "cleanup",
    "compare_with_one_process",
    "distributed_clip_loss",
    "gather_features",
    "init_distributed",
    "launched_by_torchrun",
    "load_state",
    "local_batch_size",
    "rank_seed",
    "require_process_group",
    "run_report",
    "run_torchrun",
    "save_state",
    "torchrun_command",
    "train_retrieval",
]
