"""Train chapter 07's dual encoder with PyTorch DDP: one process per device, launched by torchrun.

    # two CPU processes (gloo):
    torchrun --standalone --nproc_per_node=2 scripts/train_retrieval_ddp.py --out run.json
    # one process, the baseline (plain python works too):
    torchrun --standalone --nproc_per_node=1 scripts/train_retrieval_ddp.py --out one.json
    # GPUs (NCCL), bfloat16 autocast:
    torchrun --standalone --nproc_per_node=8 scripts/train_retrieval_ddp.py --bf16 --out gpu.json
    # interrupted and resumed: the same weights as one straight run
    ... --checkpoint state.pt --stop-after-epochs 2   then   ... --checkpoint state.pt --resume
    # the one-step check: N ranks with batch B against one process with batch N*B
    torchrun --standalone --nproc_per_node=2 scripts/train_retrieval_ddp.py --compare --out cmp.json

Rank 0 writes the JSON results (atomically) and the checkpoints; every rank trains.
"""

import argparse
import io
import json
import sys
from dataclasses import fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import torch  # noqa: E402

from cmlib import distributed  # noqa: E402
from cmlib.data.cache import atomic_write_bytes  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in fields(distributed.DDPConfig):
        flag = "--" + field.name.replace("_", "-")
        if field.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
        else:
            kind = float if field.type in ("float", float) else int
            parser.add_argument(flag, type=kind, default=field.default)
    parser.add_argument("--out", type=Path, help="where rank 0 writes the results (JSON)")
    parser.add_argument("--checkpoint", type=Path, help="training state, saved after each epoch")
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    parser.add_argument("--stop-after-epochs", type=int, help="stop early, as if interrupted")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="only compare one step's loss and gradients with one process",
    )
    parser.add_argument("--save-weights", type=Path, help="rank 0 saves the final state_dict")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    config = distributed.DDPConfig(
        **{f.name: getattr(args, f.name) for f in fields(distributed.DDPConfig)}
    )
    ctx = distributed.init_distributed()
    try:
        if args.compare:
            results = distributed.compare_with_one_process(config, ctx)
        else:
            model, history = distributed.train_retrieval(
                config, ctx, args.checkpoint, args.resume, args.stop_after_epochs, args.progress
            )
            results = distributed.run_report(history, config, ctx.world_size) if ctx.is_main else {}
            if ctx.is_main and args.save_weights is not None:
                buffer = io.BytesIO()
                torch.save(model.state_dict(), buffer)
                atomic_write_bytes(args.save_weights, buffer.getvalue())
        if ctx.is_main:
            results["device"] = str(ctx.device)
            results["backend"] = ctx.backend
            text = json.dumps(results, indent=1)
            if args.out is not None:
                atomic_write_bytes(args.out, text.encode())
            print(text if args.compare else json.dumps(results.get("final", {})), flush=True)
    finally:
        distributed.cleanup()


if __name__ == "__main__":
    main()
