"""Data-parallel training of chapter 07's dual encoder: the loop ``torchrun`` runs on each rank.

Every rank holds a full copy of the model. ``DistributedSampler`` deals each rank a disjoint
share of every epoch's shuffled indices; DDP averages the gradients across ranks during
``backward``; so all copies take the same optimiser step and stay identical. The same function
runs as a single process (a world of one) for the baseline.
"""

from __future__ import annotations

import io
import json
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from ..data.cache import atomic_write_bytes
from ..shapes_retrieval import CaptionedSplit, load_split, make_dual_encoder, text_to_image_metrics
from ..train import History, progress_bar
from .env import DistContext, local_batch_size, rank_seed
from .loss import distributed_clip_loss

CHECKPOINT_FORMAT = "cmlib-ddp-state-v1"


@dataclass(frozen=True)
class DDPConfig:
    """One distributed run. ``global_batch_size`` is split evenly over the ranks.

    Args:
        num_train: training scenes.
        num_test: test scenes for the retrieval metric (rank 0 only).
        image_size: image height and width.
        cnn_width: width of the image tower.
        embed_dim: size of the shared space.
        num_epochs: epochs of the learning-rate schedule.
        global_batch_size: pairs per optimiser step, over all ranks together.
        grad_accum_steps: micro-batches per optimiser step (DDP syncs only on the last).
        lr: peak learning rate of the one-cycle schedule.
        weight_decay: AdamW's decoupled weight decay.
        seed: initialisation and shuffling (shared) and caption draws (per rank).
        gather: score each rank's pairs against the whole global batch.
        gather_with_grad: keep the gradient through gathered features (exact equivalence).
        bf16: autocast to bfloat16 (for GPUs).
    """

    num_train: int = 5000
    num_test: int = 1000
    image_size: int = 32
    cnn_width: int = 16
    embed_dim: int = 128
    num_epochs: int = 4
    global_batch_size: int = 128
    grad_accum_steps: int = 1
    lr: float = 3e-3
    weight_decay: float = 0.01
    seed: int = 0
    gather: bool = True
    gather_with_grad: bool = True
    bf16: bool = False


def build_model(config: DDPConfig, device: torch.device) -> nn.Module:
    """The same initial weights on every rank: seeded with the *shared* seed."""
    torch.manual_seed(config.seed)
    return make_dual_encoder(config.image_size, config.cnn_width, config.embed_dim).to(device)


def wrap(model: nn.Module, ctx: DistContext) -> nn.Module:
    """DDP in a real group (it broadcasts rank 0's weights and all-reduces gradients)."""
    if ctx.world_size == 1:
        return model
    device_ids = [ctx.local_rank] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def local_batches(sampler: DistributedSampler, batch_size: int) -> list[torch.Tensor]:
    """This rank's batches of one epoch (a short last batch is dropped)."""
    indices = torch.tensor(list(iter(sampler)))
    num_batches = len(indices) // batch_size
    return list(indices[: num_batches * batch_size].split(batch_size))


def draw_captions(
    split: CaptionedSplit, indices: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One paraphrase per image, drawn with this rank's own generator (text augmentation)."""
    variant = torch.randint(split.ids.shape[1], (len(indices),), generator=generator)
    return split.ids[indices, variant], split.lengths[indices, variant]


# ---------------------------------------------------------------- checkpoints
def save_state(path: Path, ctx: DistContext, payload: dict[str, Any]) -> None:
    """Rank 0 writes ``payload`` atomically; every rank waits until it is on disk."""
    if ctx.is_main:
        buffer = io.BytesIO()
        torch.save({"format": CHECKPOINT_FORMAT, **payload}, buffer)
        atomic_write_bytes(Path(path), buffer.getvalue())
    if ctx.world_size > 1:
        dist.barrier()  # no rank runs ahead and reads a checkpoint that is not written yet


def load_state(path: Path, world_size: int) -> dict[str, Any]:
    """Read a training state; it must come from a run with the same world size."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} is not a readable training state: {err}") from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a {CHECKPOINT_FORMAT} file")
    if len(state["generator_states"]) != world_size:
        raise ValueError(
            f"{path} was saved by {len(state['generator_states'])} ranks; resume with as many "
            f"(got {world_size})"
        )
    return state


def _all_generator_states(generator: torch.Generator, ctx: DistContext) -> list[torch.Tensor]:
    """Every rank's caption generator state, in rank order (so a resume continues each stream)."""
    if ctx.world_size == 1:
        return [generator.get_state()]
    states: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(states, generator.get_state())
    return states


# ---------------------------------------------------------------- training
def train_retrieval(
    config: DDPConfig,
    ctx: DistContext,
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    stop_after_epochs: int | None = None,
    progress: bool = True,
) -> tuple[nn.Module, History]:
    """Train the dual encoder on this rank; rank 0 evaluates, logs and saves.

    Args:
        config: the run.
        ctx: this process (from :func:`cmlib.distributed.init_distributed`).
        checkpoint_path: where rank 0 saves the training state after each epoch.
        resume: continue from ``checkpoint_path`` (model, optimiser, schedule, sampler epoch,
            every rank's caption generator).
        stop_after_epochs: stop early after this many epochs in total, as if interrupted.
        progress: rank 0 shows a progress bar.

    Returns:
        ``(model, history)``: the trained model (the same on every rank) and a
        :class:`~cmlib.train.History` with each epoch's global mean loss and seconds; on rank 0
        also each epoch's test metrics (``R@1``, ``R@5``, ...; the last are the final ones).
        :func:`run_report` turns it into the script's JSON.
    """
    batch_size = local_batch_size(config.global_batch_size, ctx.world_size)
    if resume and checkpoint_path is None:
        raise ValueError("resume=True needs a checkpoint_path")
    train_split = load_split("train", config.num_train, config.image_size)
    test_split = load_split("test", config.num_test, config.image_size) if ctx.is_main else None
    model = build_model(config, ctx.device)
    ddp_model = wrap(model, ctx)
    sampler = DistributedSampler(
        range(len(train_split)),
        ctx.world_size,
        ctx.rank,
        shuffle=True,
        seed=config.seed,
        drop_last=True,
    )
    steps_per_epoch = len(local_batches(sampler, batch_size)) // config.grad_accum_steps
    if steps_per_epoch == 0:
        raise ValueError(f"{config.num_train} scenes make no full step of the global batch")
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, config.lr, total_steps=config.num_epochs * steps_per_epoch, pct_start=0.2
    )
    generator = torch.Generator().manual_seed(rank_seed(config.seed, ctx.rank))
    history = History()
    start_epoch = 0
    if resume:
        state = load_state(Path(checkpoint_path), ctx.world_size)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator_states"][ctx.rank])
        start_epoch, history = state["epoch"], History(**state["history"])
    last_epoch = config.num_epochs if stop_after_epochs is None else stop_after_epochs
    autocast = (
        torch.autocast(ctx.device.type, dtype=torch.bfloat16) if config.bf16 else nullcontext()
    )
    for epoch in range(start_epoch, last_epoch):
        sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank
        batches = local_batches(sampler, batch_size)
        started, losses = time.perf_counter(), []
        ddp_model.train()
        bar = progress_bar(
            total=steps_per_epoch, desc=f"epoch {epoch + 1}", disable=not (progress and ctx.is_main)
        )
        for step in range(steps_per_epoch):
            micro = batches[step * config.grad_accum_steps : (step + 1) * config.grad_accum_steps]
            for i, indices in enumerate(micro):
                # Skip the gradient all-reduce on all but the last micro-batch: no_sync.
                last = i == len(micro) - 1
                sync = nullcontext() if last or ctx.world_size == 1 else ddp_model.no_sync()
                ids, lengths = draw_captions(train_split, indices, generator)
                with sync, autocast:
                    images = train_split.images[indices].to(ctx.device)
                    image_emb, text_emb, scale = ddp_model(
                        images, ids.to(ctx.device), lengths.to(ctx.device)
                    )
                    loss = distributed_clip_loss(
                        image_emb.float(),
                        text_emb.float(),
                        scale,
                        config.gather,
                        config.gather_with_grad,
                    )
                    (loss / len(micro)).backward()
                losses.append(loss.detach())
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            bar.update(1)
        bar.close()
        epoch_loss = torch.stack(losses).mean()
        if ctx.world_size > 1:  # the global loss is the mean of the ranks' losses
            dist.all_reduce(epoch_loss, op=dist.ReduceOp.AVG)
        seconds = time.perf_counter() - started
        metrics = text_to_image_metrics(model, test_split, ctx.device) if ctx.is_main else {}
        history.train_loss.append(epoch_loss.item())
        history.seconds.append(seconds)
        history.metrics.append(metrics)
        if ctx.is_main and not progress:
            print(json.dumps(_epoch_record(history, epoch)), flush=True)
        if checkpoint_path is not None:
            save_state(
                Path(checkpoint_path),
                ctx,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "epoch": epoch + 1,
                    "generator_states": _all_generator_states(generator, ctx),
                    "history": asdict(history),
                },
            )
    return model.eval(), history


def _epoch_record(history: History, epoch: int) -> dict[str, float]:
    return {
        "epoch": epoch + 1,
        "loss": history.train_loss[epoch],
        "seconds": history.seconds[epoch],
        "R@1": history.metrics[epoch]["R@1"],
    }


def run_report(history: History, config: DDPConfig, world_size: int) -> dict[str, Any]:
    """Rank 0's history as the script writes it: the config, the world size, one record per epoch
    (loss, seconds, test R@1) and the final test metrics."""
    if not history.metrics or not history.metrics[-1]:
        raise ValueError("run_report needs rank 0's history, which has test metrics")
    return {
        "config": asdict(config),
        "world_size": world_size,
        "epochs": [_epoch_record(history, k) for k in range(len(history.train_loss))],
        "final": dict(history.metrics[-1]),
    }


# ---------------------------------------------------------------- N × B against 1 × N·B
def compare_with_one_process(
    config: DDPConfig, ctx: DistContext, modes: tuple[str, ...] = ("gather", "local grad", "none")
) -> dict[str, dict[str, float]]:
    """One training step's loss and gradients on N ranks against one process on the whole batch.

    Every rank takes its slice of the same fixed global batch (canonical captions). Rank 0 also
    computes the loss and gradients of one process on all of it, and compares. The models are in
    eval mode: batch norm then uses its running statistics, where in training mode each rank
    would normalise by its own slice's (DDP does not synchronise them; ``SyncBatchNorm`` does,
    on GPUs).

    Args:
        config: sizes, seed and global batch size.
        ctx: this process; needs a process group of two or more ranks.
        modes: ``"gather"`` (with gradient), ``"local grad"`` (gradient through the local slice
            only, open_clip's default) and ``"none"`` (each rank's own negatives only).

    Returns:
        On rank 0, per mode: ``loss_diff`` and ``grad_max_diff`` (largest absolute difference
        over all parameters) and ``grad_max`` (the gradient's scale). Empty on other ranks.
    """
    if ctx.world_size < 2:
        raise ValueError("compare_with_one_process needs a process group of 2 or more ranks")
    options = {"gather": (True, True), "local grad": (True, False), "none": (False, False)}
    unknown = set(modes) - set(options)
    if unknown:
        raise ValueError(f"unknown modes {sorted(unknown)}; choose from {sorted(options)}")
    batch = local_batch_size(config.global_batch_size, ctx.world_size)
    split = load_split("train", config.global_batch_size, config.image_size)
    mine = slice(ctx.rank * batch, (ctx.rank + 1) * batch)
    results = {}
    for mode in modes:
        gather, with_grad = options[mode]
        model = build_model(config, ctx.device).eval()
        ddp_model = wrap(model, ctx)
        image_emb, text_emb, scale = ddp_model(*_fixed_batch(split, mine, ctx.device))
        loss = distributed_clip_loss(image_emb, text_emb, scale, gather, with_grad)
        loss.backward()
        global_loss = loss.detach().clone()
        dist.all_reduce(global_loss, op=dist.ReduceOp.AVG)
        if ctx.is_main:
            reference = build_model(config, ctx.device).eval()
            ref_loss = distributed_clip_loss(
                *reference(*_fixed_batch(split, slice(None), ctx.device)), gather=False
            )
            ref_loss.backward()
            diffs = [
                (p.grad - r.grad).abs().max().item()
                for p, r in zip(model.parameters(), reference.parameters())
            ]
            results[mode] = {
                "loss": global_loss.item(),
                "loss_one_process": ref_loss.item(),
                "loss_diff": abs(global_loss.item() - ref_loss.item()),
                "grad_max_diff": max(diffs),
                "grad_max": max(r.grad.abs().max().item() for r in reference.parameters()),
            }
        dist.barrier()
    return results


def _fixed_batch(split: CaptionedSplit, rows: slice, device: torch.device):
    return (
        split.images[rows].to(device),
        split.ids[rows, 0].to(device),
        split.lengths[rows, 0].to(device),
    )
