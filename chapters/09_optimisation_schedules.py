# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 09 · Optimisation methods, part 5: the learning rate's schedule, and bf16
#
# **Article section:** §4.3 优化方法 (optimisation methods), which the article names and does not
# write; part 1 introduces the chapter.
#
# **Prerequisites:** `09_optimisation_imbalance` (part 3: its task and its image tower).
# **Study time:** about 25 minutes of reading, plus about two minutes for the notebook to run on
# a two-core laptop.
#
# Every trainer in this course so far used the same two habits without comment: a **one-cycle**
# learning-rate schedule (单周期学习率调度), and float32 arithmetic. This part takes both apart
# on one small model, part 3's image tower naming a shape's colour and shape from a noisy image:
#
# 1. the schedule: a constant rate against a **warm-up** (预热) and a **cosine decay** (余弦衰减),
#    alone and together, at the recipe's peak rate and at five times it;
# 2. **bf16 autocast** (bfloat16 混合精度): the same training with the forward pass in
#    bfloat16, and the trained model read in bfloat16: accuracy and time side by side.
#
# Part 6 turns to the gradients themselves (clipping and accumulation) and closes the chapter
# with a table of every method.
#
# **Key terms.** learning rate (学习率) · schedule (学习率调度) · warm-up (预热) · cosine decay
# (余弦衰减) · one-cycle schedule (单周期学习率调度) · Adam (自适应矩估计) · mixed precision
# (混合精度) · bfloat16 (脑浮点数) · autocast (自动类型转换) · mantissa and exponent (尾数与指数).

# %%
import time

CHAPTER_START = time.perf_counter()

from cmlib import runtime
from cmlib.claims import Checkpoints

SEED = runtime.seed_everything()
checkpoint = Checkpoints("09_optimisation_schedules")  # learning checkpoints: asserted, recorded
DEVICE = runtime.device()
print(runtime.describe())

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch

from cmlib import imbalance, viz
from cmlib.optim import precision, schedules
from cmlib.train import predict

# %% [markdown]
# ## 1. The task and the model
#
# Part 3's image tower alone: a small CNN (chapter 01's, width 16) and a linear head name the
# object's colour and shape, 18 classes, from a 32×32 image under Gaussian pixel noise of
# standard deviation 0.15. Unlike part 3, no image is blank: the image always answers. Every run
# below takes the same 400 steps of 64 images, Adam, and seed; only the schedule, the peak rate
# or the precision changes.

# %%
NUM_TRAIN = runtime.pick(cpu=6000, gpu=20_000)
NUM_STEPS = runtime.pick(cpu=400, gpu=1500)
PEAK_LR = 2e-3  # part 3's recipe
options = dict(blank_images=0.0)
train = imbalance.load_imbalance_split("train", NUM_TRAIN, seed=SEED, **options)
test = imbalance.load_imbalance_split("test", 1000, **options)
print(f"{len(train)} training images, {len(test)} test images, "
      f"{NUM_STEPS} steps of 64 ({NUM_STEPS * 64 / len(train):.1f} passes over the data)")

# %% [markdown]
# ## 2. Five schedules
#
# A schedule is a factor on the peak rate at each step. `schedules.lr_factor(kind, step,
# total_steps)` gives it; the warm-ups here last a fifth of the run, as in part 3.
#
# * **constant**: the peak rate from the first step to the last;
# * **cosine**: from the peak down to 0 along half a cosine, `(1 + cos(π·t)) / 2` at progress t;
# * **warm-up + constant** and **warm-up + cosine**: a linear rise from near 0 first;
# * **one-cycle**, PyTorch's `OneCycleLR`, the course's default: a warm-up from a 25th of the
#   peak along a cosine, then a cosine down to nearly 0. With Adam it also moves β₁ (the
#   momentum's decay) the other way: 0.95 at the bottom of the rate, 0.85 at its peak.

# %%
WARMUP = 0.2
dummy = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1.0)
one_cycle = schedules.make_scheduler(dummy, "one-cycle", NUM_STEPS, warmup=WARMUP)
one_cycle_factors = []
for _ in range(NUM_STEPS):
    one_cycle_factors.append(dummy.param_groups[0]["lr"])
    dummy.step()
    one_cycle.step()

fig, ax = plt.subplots(figsize=(7.5, 3.3))
for kind in schedules.SCHEDULES:
    ax.plot([schedules.lr_factor(kind, s, NUM_STEPS, WARMUP) for s in range(NUM_STEPS)],
            label=kind.replace("-", " + "))
ax.plot(one_cycle_factors, ":", color="black", label="one-cycle (PyTorch)")
ax.set(title="Learning-rate schedules over one run", xlabel="training step",
       ylabel="rate / peak rate")
ax.legend(fontsize=8)
fig.tight_layout()
viz.show(fig, "Line plot of the learning rate as a share of the peak against training step "
         "for five schedules: constant, cosine, warm-up plus constant, warm-up plus cosine, "
         "and PyTorch's one-cycle.")

# %% [markdown]
# Why either half might help:
#
# * **The warm-up.** Adam divides each gradient by a running estimate of its size, so its first
#   updates move every weight by about the learning rate, whatever the gradient says. A fresh
#   network's first gradients are poor guides, and its running estimates rest on a handful of
#   batches. A warm-up keeps those first steps short.
# * **The decay.** A constant rate keeps taking steps of the same size to the end, so the last
#   weights are wherever the last noisy steps left them. A decaying rate lets the run settle.
#
# A function that trains one model and reads its test accuracy, the row of this part's table:

# %%
results, histories, models = {}, {}, {}


def test_accuracy(model, number_format="fp32"):
    """The image tower's accuracy on the test images, its forward pass in ``number_format``."""
    with precision.autocast(DEVICE, number_format):
        logits = predict(lambda x: model.image_head(model.image_encoder(x)), test.images, DEVICE)
    return (logits.float().argmax(dim=1) == test.labels).float().mean().item()


def run(name, schedule, lr=PEAK_LR, number_format="fp32"):
    """Train part 3's image tower with one schedule, rate and precision; one table row."""
    start = time.perf_counter()
    models[name], histories[name] = imbalance.train_imbalance_model(
        train, DEVICE, modalities=("image",), num_steps=NUM_STEPS, lr=lr, schedule=schedule,
        precision=number_format, seed=SEED, desc=name)
    seconds = time.perf_counter() - start
    loss = histories[name].steps["loss"]
    results[name] = {"peak rate": lr, "test accuracy": test_accuracy(models[name]),
                     "loss, first 50 steps": sum(loss[:50]) / 50,
                     "loss, last 50 steps": sum(loss[-50:]) / 50, "train seconds": seconds}


for kind in schedules.SCHEDULES:
    run(kind, kind)
pd.DataFrame(results).T.round(3)

# %% [markdown]
# The training loss of each run (a running mean over 20 steps):

# %%
fig, ax = plt.subplots(figsize=(7.5, 3.3))
for name in schedules.SCHEDULES:
    ax.plot(pd.Series(histories[name].steps["loss"]).rolling(20).mean(), label=name)
ax.set(title=f"Training loss at peak rate {PEAK_LR:g}", xlabel="training step",
       ylabel="cross-entropy (running mean)", yscale="log")
ax.legend(fontsize=8)
fig.tight_layout()
viz.show(fig, "Line plot of the training loss, log scale, against training step for the image "
         "tower trained with four learning-rate schedules at the same peak rate.")

# %%
table = pd.DataFrame(results).T
best = table["test accuracy"].idxmax()
print(f"this run, at peak rate {PEAK_LR:g}: best schedule {best} "
      f"({table.loc[best, 'test accuracy']:.3f}); constant "
      f"{table.loc['constant', 'test accuracy']:.3f}; warm-up + cosine "
      f"{table.loc['warmup-cosine', 'test accuracy']:.3f}")

# %% [markdown]
# ## 3. Five times the rate
#
# A schedule earns its keep when the rate is too high for a constant one. The same two
# extremes, constant and warm-up + cosine, at five times the peak rate:

# %%
HIGH_LR = 5 * PEAK_LR
for kind in ("constant", "warmup-cosine"):
    run(f"{kind}, ×5 rate", kind, lr=HIGH_LR)
pd.DataFrame(results).T.round(3)

# %%
fig, ax = plt.subplots(figsize=(7.5, 3.3))
for name, style in (("constant", "-"), ("warmup-cosine", "-"), ("constant, ×5 rate", "--"),
                    ("warmup-cosine, ×5 rate", "--")):
    ax.plot(pd.Series(histories[name].steps["loss"]).rolling(20).mean(), style, label=name)
ax.set(title="Training loss at the recipe's rate (solid) and five times it (dashed)",
       xlabel="training step", ylabel="cross-entropy (running mean)", yscale="log")
ax.legend(fontsize=8)
fig.tight_layout()
viz.show(fig, "Line plot of the training loss, log scale, against training step for a constant "
         "rate and a warm-up with cosine decay, each at the recipe's peak rate and at five "
         "times it.")

# %% [markdown]
# **Learning checkpoint.** At five times the rate, warm-up + cosine reaches a test accuracy at
# least 0.05 above the constant rate's. (Over seeds 0–4, and seed 0 with one thread, see
# `chapters/notes/checkpoints.md`.)

# %%
high_gain = (results["warmup-cosine, ×5 rate"]["test accuracy"]
             - results["constant, ×5 rate"]["test accuracy"])
checkpoint("schedule-gain-at-5x-rate", high_gain, ">=", 0.05,
           baseline=results["constant, ×5 rate"]["test accuracy"], chance=1 / 18);

# %% [markdown]
# ## 4. bfloat16: the same range, fewer digits
#
# A float32 number has 8 exponent bits and 23 mantissa bits; **bfloat16** (bf16) keeps the 8
# exponent bits and only 7 of the mantissa's. Same range, about three significant decimal
# digits. float16 is the other half-precision format: more digits (10 mantissa bits) and a far
# smaller range (5 exponent bits), so it overflows where bf16 does not:

# %%
for value in (1 / 3, 1 + 2 ** -9, 70_000.0, 1e-8):
    x = torch.tensor(value)
    print(f"{value:>12.6g}: float32 {x.item():.8g}, bfloat16 {x.bfloat16().item():.8g}, "
          f"float16 {x.half().item():.8g}")

# %% [markdown]
# `torch.autocast` runs the operations that gain from it (convolutions, matrix products) in
# bf16 and keeps the ones that need the digits (softmax, the loss, normalisation statistics) in
# float32; the weights and Adam's state stay float32. `precision.in_precision(step, device,
# "bf16")` wraps a training step in it, and `precision.autocast(device, "bf16")` wraps
# inference. The bf16 run below repeats the warm-up + cosine run of section 2, the forward pass
# in bf16. Then both models are read in both formats, each timed over five passes of the test
# images.

# %%
run("warmup-cosine, bf16", "warmup-cosine", number_format="bf16")


def timed_accuracy(model, number_format, repeats=5):
    """Test accuracy in ``number_format``, and the median seconds of one pass over the test set."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        accuracy = test_accuracy(model, number_format)
        seconds.append(time.perf_counter() - start)
    return accuracy, sorted(seconds)[repeats // 2]


precision_table = {}
for trained, name in (("fp32", "warmup-cosine"), ("bf16", "warmup-cosine, bf16")):
    for read in ("fp32", "bf16"):
        accuracy, seconds = timed_accuracy(models[name], read)
        precision_table[f"trained in {trained}, read in {read}"] = {
            "test accuracy": accuracy, "train seconds": results[name]["train seconds"],
            "inference seconds (1,000 images)": seconds}
precision_table = pd.DataFrame(precision_table).T
precision_table.round(4)

# %% [markdown]
# **Learning checkpoints.** Reading the float32 model in bf16 changes its test accuracy by at
# most 0.01, and so does training it in bf16. Speed is reported, not asserted: it depends on
# the machine (a CPU without bf16 instructions gains little or loses), and the course keeps
# speed targets in `benchmarks/`.

# %%
accuracy = precision_table["test accuracy"]
reference = accuracy["trained in fp32, read in fp32"]
checkpoint("bf16-inference-within-0.01",
           abs(accuracy["trained in fp32, read in bf16"] - reference), "<=", 0.01,
           baseline=reference)
checkpoint("bf16-training-within-0.01",
           abs(accuracy["trained in bf16, read in bf16"] - reference), "<=", 0.01,
           baseline=reference)
train_seconds = precision_table["train seconds"]
inference_seconds = precision_table["inference seconds (1,000 images)"]
FP32, BF16_READ, BF16_BOTH = precision_table.index[[0, 1, 3]]
print(f"this run on this CPU: bf16 training ran "
      f"{train_seconds[FP32] / train_seconds[BF16_BOTH]:.2f}× as fast as float32, bf16 inference "
      f"{inference_seconds[FP32] / inference_seconds[BF16_READ]:.2f}× as fast")

# %% [markdown]
# ## Summary
#
# (written after the run)

# %%
print(f"chapter took {time.perf_counter() - CHAPTER_START:.0f} s")
