"""bf16 autocast against float32 on the CPU: chapter 09 part 5's image tower, two threads.

Writes benchmarks/results/precision.json. Inference: 1,000 test images in batches of 500, the
model read in float32 and under bf16 autocast. Training: 100 steps of 64 with Adam, the forward
pass in each precision (``cmlib.optim.precision.in_precision``). Best of three runs each.

Targets, on a CPU with bf16 instructions (``avx512_bf16`` or ``amx_bf16`` in /proc/cpuinfo):
bf16 inference at least 1.5× as fast as float32, and bf16 training no slower (≥ 1.0×). On
another CPU the numbers are recorded and the targets do not apply (autocast then emulates bf16
and can be slower). The chapter reports its own run's speeds and asserts only accuracy.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch
import torch.nn.functional as F
from timing import best_seconds

from cmlib import imbalance
from cmlib.optim import precision
from cmlib.train import endless_batches, fit_steps

RESULTS = Path(__file__).resolve().parent / "results"
INFERENCE_TARGET, TRAINING_TARGET = 1.5, 1.0


def has_bf16_instructions() -> bool:
    """Whether the CPU advertises bf16 arithmetic (Linux: the flags in /proc/cpuinfo)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def main() -> None:
    torch.set_num_threads(2)
    device = torch.device("cpu")
    train = imbalance.load_imbalance_split("train", 2000, blank_images=0.0, seed=0)
    test = imbalance.load_imbalance_split("test", 1000, blank_images=0.0)
    torch.manual_seed(0)
    model = imbalance.LateFusionClassifier().eval()

    def infer(number_format):
        with torch.no_grad(), precision.autocast(device, number_format):
            for images in test.images.split(500):
                model.image_head(model.image_encoder(images))

    def step(m, batch):
        images, labels = batch
        return F.cross_entropy(m.image_head(m.image_encoder(images)), labels)

    def train_steps(number_format):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        order = endless_batches(len(train), 64, torch.Generator().manual_seed(0))
        batches = ((train.images[i], train.labels[i]) for i in order)
        fit_steps(
            model,
            batches,
            optimizer,
            100,
            device,
            step_fn=precision.in_precision(step, device, number_format),
            progress=False,
        )

    seconds = {}
    for number_format in precision.PRECISIONS:
        infer(number_format)  # warm-up
        seconds[f"inference_{number_format}"] = best_seconds(lambda f=number_format: infer(f))
        seconds[f"training_{number_format}"] = best_seconds(
            lambda f=number_format: train_steps(f), repeats=2
        )
    capability = torch.backends.cpu.get_cpu_capability()
    applies = has_bf16_instructions()
    inference = seconds["inference_fp32"] / seconds["inference_bf16"]
    training = seconds["training_fp32"] / seconds["training_bf16"]
    result = {
        "benchmark": "precision",
        "threads": 2,
        "machine": platform.machine(),
        "cpu_capability": capability,
        "targets_apply": applies,
        "seconds": {k: round(v, 4) for k, v in seconds.items()},
        "bf16_inference_speedup": round(inference, 2),
        "bf16_training_speedup": round(training, 2),
        "targets": {"inference": INFERENCE_TARGET, "training": TRAINING_TARGET},
        "meets_target": (not applies)
        or (inference >= INFERENCE_TARGET and training >= TRAINING_TARGET),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "precision.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"bf16 against float32 on {capability}: inference {inference:.2f}× (target "
        f"{INFERENCE_TARGET}), training {training:.2f}× (target {TRAINING_TARGET}); targets "
        f"{'apply' if applies else 'do not apply on this CPU'} -> {RESULTS / 'precision.json'}"
    )


if __name__ == "__main__":
    main()
