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
# **Study time:** about 30 minutes of reading and the exercise, plus about two minutes for the
# notebook to run on a two-core laptop.
#
# Most trainers in this course so far share two habits: a **one-cycle** learning-rate schedule
# (单周期学习率调度), and float32 arithmetic. This part takes both apart on one small model, part
# 3's image tower naming a shape's colour and shape from a noisy image:
#
# 1. the schedule: write a warm-up followed by a cosine decay (exercise 9.6), then train with a
#    constant rate, a **warm-up** (预热) and a **cosine decay** (余弦衰减), alone and together
#    at the recipe's peak rate, then the two extremes (constant, and warm-up + cosine) at five
#    times it;
# 2. **bf16 autocast** (混合精度, mixed precision): the same training with the forward pass in
#    bfloat16, and the trained model read in bfloat16: accuracy and time side by side.
#
# Part 6 turns to the gradients themselves (clipping and accumulation) and closes the chapter
# with a table of every method.
#
# **Key terms.** learning rate (学习率) · schedule (学习率调度) · warm-up (预热) · cosine decay
# (余弦衰减) · one-cycle schedule (单周期学习率调度) · Adam (自适应矩估计) · mixed precision
# (混合精度) · bfloat16 (BF16, 脑浮点格式) · float16, half precision (半精度) · autocast
# (自动类型转换) · mantissa and exponent (尾数与指数) · overflow and underflow (上溢与下溢).

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
from cmlib.exercises import check, use_if_passed
from cmlib.optim import ledger, precision, schedules
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
# total_steps, warmup)` gives it; the warm-ups here last a fifth of the run (`warmup=0.2`), as
# in part 3.
#
# * **constant**: the peak rate from the first step to the last;
# * **cosine**: from the peak down to 0 along half a cosine, `(1 + cos(π·t)) / 2` at progress t;
# * **warm-up + constant** and **warm-up + cosine**: a linear rise from near 0 first;
# * **one-cycle**, PyTorch's `OneCycleLR`, the course's usual choice: a warm-up from a 25th of the
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

STYLE = {"constant": "-", "cosine": "-", "warmup-constant": "--", "warmup-cosine": "--"}
fig, ax = plt.subplots(figsize=(7.5, 3.3))
for kind in schedules.SCHEDULES:
    ax.plot([schedules.lr_factor(kind, s, NUM_STEPS, WARMUP) for s in range(NUM_STEPS)],
            STYLE[kind], label=kind)
ax.plot(one_cycle_factors, ":", color="black", label="one-cycle (PyTorch)")
ax.set(title="Learning-rate schedules over one run", xlabel="training step",
       ylabel="rate / peak rate")
ax.legend(fontsize=8)
fig.tight_layout()
viz.show(fig, "Line plot of the learning rate as a share of the peak against training step "
         "for five schedules: constant, cosine, warm-up plus constant, warm-up plus cosine, "
         "and PyTorch's one-cycle.")

# %% [markdown]
# **Exercise 9.6 — build.** Write `warmup_cosine(total_steps, warmup_steps)`: a tensor of
# `total_steps` factors, one per step. During the warm-up, step s (counted from 0) gets
# (s + 1) / (warmup_steps + 1), so the first step is not wasted at a rate of 0. From step
# `warmup_steps` on, the progress t = (s − warmup_steps) / (total_steps − 1 − warmup_steps) runs
# from 0 to 1, and the factor is (1 + cos(π·t)) / 2: 1 at the first step after the warm-up, 0 at
# the last. The checker compares every factor with the library's to within 10⁻⁵, on random
# lengths and warm-ups, including runs with no warm-up. Hint: build both curves over
# `torch.arange(total_steps)` and let `torch.where` pick.

# %%
def warmup_cosine(total_steps, warmup_steps):
    ### BEGIN SOLUTION
    steps = torch.arange(total_steps, dtype=torch.float64)
    ramp = (steps + 1) / (warmup_steps + 1)
    progress = (steps - warmup_steps) / max(1, total_steps - 1 - warmup_steps)
    decay = 0.5 * (1 + torch.cos(torch.pi * progress))
    return torch.where(steps < warmup_steps, ramp, decay)
    ### END SOLUTION


check("9.6", warmup_cosine)

# %% [markdown]
# The warm-up + cosine runs below follow your factors where your function passed, and the
# library's otherwise:

# %%
WARMUP_STEPS = round(WARMUP * NUM_STEPS)
schedule_fn = use_if_passed("9.6", warmup_cosine, schedules.warmup_cosine,
                            "the warm-up + cosine runs below follow")
SCHEDULE = {kind: kind for kind in schedules.SCHEDULES}  # the names cmlib knows
SCHEDULE["warmup-cosine"] = schedule_fn(NUM_STEPS, WARMUP_STEPS)  # every step's factor
difference = SCHEDULE["warmup-cosine"] - schedules.warmup_cosine(NUM_STEPS, WARMUP_STEPS)
print(f"largest difference from the library's factors over {NUM_STEPS} steps: "
      f"{difference.abs().max():.1e}")

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
    model.eval()  # predict runs a function, not a module: evaluation mode is set here
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
    run(kind, SCHEDULE[kind])
pd.DataFrame(results).T.round(3)

# %% [markdown]
# The training loss of each run (a running mean over 20 steps):

# %%
fig, ax = plt.subplots(figsize=(7.5, 3.3))
for name in schedules.SCHEDULES:
    ax.plot(pd.Series(histories[name].steps["loss"]).rolling(20).mean(), STYLE[name],
            label=name)
ax.set(title=f"Training loss at peak rate {PEAK_LR:g}", xlabel="training step",
       ylabel="cross-entropy (running mean)", yscale="log")
ax.legend(fontsize=8)
fig.tight_layout()
viz.show(fig, "Line plot of the training loss, log scale, against training step for the image "
         "tower trained with four learning-rate schedules at the same peak rate.")

# %% [markdown]
# Each half's effect, read from the table as differences in test accuracy:

# %%
acc = pd.DataFrame(results).T["test accuracy"]
print(f"adding the warm-up: {acc['warmup-constant'] - acc['constant']:+.3f} to a constant rate, "
      f"{acc['warmup-cosine'] - acc['cosine']:+.3f} to a cosine decay")
print(f"adding the decay:   {acc['cosine'] - acc['constant']:+.3f} without a warm-up, "
      f"{acc['warmup-cosine'] - acc['warmup-constant']:+.3f} after one")

# %% [markdown]
# In this run, at the recipe's rate, each half helped on its own, and the two together did
# 0.021 worse than the warm-up alone (the printout). Do not read much into a difference of a
# hundredth or two here. Over seeds 0–4 (the chapter's notes) the order of the four schedules
# changed from seed to seed, and the two that end at a constant rate were the least
# predictable: warm-up + constant ranged from 0.74 to 0.98, probably because the last few noisy
# steps decide where such a run stops. Warm-up + cosine was the steadiest (0.949 to 0.971).
#
# The loss columns show what a warm-up costs: its first 50 steps learn less, because they are
# short. In this run the constant rate also reached the lowest training loss over the last 50
# steps and the lowest test accuracy: a lower training loss was not a better model.

# %% [markdown]
# ## 3. Five times the rate
#
# A schedule earns its keep when the rate is too high for a constant one. The same two
# extremes, constant and warm-up + cosine, at five times the peak rate:

# %%
HIGH_LR = 5 * PEAK_LR
for kind in ("constant", "warmup-cosine"):
    run(f"{kind}, ×5 rate", SCHEDULE[kind], lr=HIGH_LR)
pd.DataFrame(results).T.round(3)

# %% [markdown]
# The four runs' training losses, at the recipe's rate and at five times it:

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
# How much each schedule lost at five times the rate, in this run (18 classes: chance is
# 0.056):

# %%
high = pd.DataFrame(results).T["test accuracy"]
print(f"this run, five times the rate: warm-up + cosine {high['warmup-cosine, ×5 rate']:.3f} "
      f"({high['warmup-cosine, ×5 rate'] - high['warmup-cosine']:+.3f} against the recipe's "
      f"rate), constant {high['constant, ×5 rate']:.3f} "
      f"({high['constant, ×5 rate'] - high['constant']:+.3f})")

# %% [markdown]
# On the machine that measured the course's seeds, warm-up + cosine at five times the rate
# reached 0.931 to 0.975 over seeds 0–4 and one thread, within −0.04 to +0.005 of its accuracy
# at the recipe's rate, while the constant rate fell by 0.07 to 0.29 (the chapter's notes give
# each run). "Warm-up + cosine stays at 0.90 or above" looked like a checkpoint. On a second
# machine (this run's, above), seed 0 reached 0.891, 0.053 below its accuracy at the recipe's
# rate: another CPU rounds differently, and the run takes another path, as it would with
# another seed. A checkpoint must hold for every seed on every machine, and 0.90 sat inside
# that spread, so the claim was withdrawn: what the numbers above show is this run's outcome.
#
# ## 4. bfloat16: the same range, fewer digits
#
# A float32 number has 8 exponent bits and 23 mantissa bits; **bfloat16** (bf16) keeps the 8
# exponent bits and only 7 of the mantissa's: the same range, and between two and three
# significant decimal digits. float16, the other half-precision format (半精度), has more
# digits (10 mantissa bits) and a far smaller range (5 exponent bits). So it **overflows**
# (上溢) where bf16 does not, and it **underflows** (下溢): a number well below 6·10⁻⁸, float16's
# smallest, becomes 0, as a small gradient would. That is why float16 training scales the loss
# up before the backward pass, and bf16 training need not:

# %%
for value in (1 / 3, 1 + 2 ** -9, 70_000.0, 1e-8):
    x = torch.tensor(value)
    print(f"{value:>12.6g}: float32 {x.item():.8g}, bfloat16 {x.bfloat16().item():.8g}, "
          f"float16 {x.half().item():.8g}")

# %% [markdown]
# `torch.autocast` runs the operations that gain from it (convolutions, matrix products) in
# bf16 and keeps some that need the digits in float32: the losses on a CPU, and on a GPU also
# softmax and layer and group normalisation (each device has its own lists). Batch
# normalisation takes the bf16 input and keeps float32 statistics. The weights, batch
# normalisation's running statistics and Adam's state stay float32 whatever the device.
# `precision.in_precision(step, device, "bf16")` wraps a training step in it, and
# `precision.autocast(device, "bf16")` wraps inference. The bf16 run below repeats the warm-up +
# cosine run of section 2, the forward pass in bf16. Then both models are read in both formats,
# each timed over five passes of the test images.

# %%
run("warmup-cosine, bf16", SCHEDULE["warmup-cosine"], number_format="bf16")


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
# **Learning checkpoint.** Reading the float32 model in bf16 changes its test accuracy by at
# most 0.01. Training in bf16 is not claimed here: its rounding changes every step a little, so
# the bf16 run follows another path, as a run with another seed would, and its accuracy moves
# by as much as seeds move it. Over the course's runs with seeds 0–4 the two trained models
# differed by 0.001 to 0.010 (0.012 for seed 0 on one thread), too close to 0.01 to assert
# that bar (the chapter's notes give each run). Speed is reported, not asserted: it depends on
# the machine (a CPU without bf16 instructions gains little, or loses), and the course keeps
# speed targets in `benchmarks/` (`bench_precision.py`).

# %%
accuracy = precision_table["test accuracy"]
FP32, BF16_READ, BF16_BOTH = precision_table.index[[0, 1, 3]]
reference = accuracy[FP32]
checkpoint("bf16-inference-within-0.01", abs(accuracy[BF16_READ] - reference), "<=", 0.01,
           baseline=reference)
print(f"this run: trained in bf16 and read in bf16, {accuracy[BF16_BOTH]:.3f} against "
      f"{reference:.3f} in float32 ({accuracy[BF16_BOTH] - reference:+.3f})")
train_seconds = precision_table["train seconds"]
inference_seconds = precision_table["inference seconds (1,000 images)"]
print(f"this run on this CPU: bf16 training ran "
      f"{train_seconds[FP32] / train_seconds[BF16_BOTH]:.2f}× as fast as float32, bf16 inference "
      f"{inference_seconds[FP32] / inference_seconds[BF16_READ]:.2f}× as fast")

# %% [markdown]
# In this run, reading the float32 model in bf16 changed its accuracy by a few thousandths at
# most and ran faster than float32 (the printout); training in bf16 saved less of its time.
# Autocast casts only at the operations it lists: the convolutions and matrix products run in
# bf16, and the operations after them (batch normalisation, ReLU, pooling) run in bf16 on the
# tensors they receive. The loss, the weights, their gradients and Adam's update stay float32.
#
# Part 6 closes the chapter with one table of every method; this part's rows go into the
# chapter's ledger (`cmlib.optim.ledger`), from this run:

# %%
ledger.clear(5)  # this part's rows from an earlier run
for name, baseline in (("warmup-cosine", "constant"),
                       ("warmup-cosine, ×5 rate", "constant, ×5 rate")):
    rate = "the recipe's rate" if baseline == "constant" else "5 × the recipe's rate"
    ledger.record(f"warm-up + cosine decay, {rate}", 5,
                  "a poor start and a noisy end at a constant rate", "test accuracy",
                  results[baseline]["test accuracy"], results[name]["test accuracy"],
                  results[baseline]["train seconds"], results[name]["train seconds"])
ledger.record("bf16 autocast, training", 5, "float32's time", "test accuracy",
              accuracy[FP32], accuracy[BF16_BOTH], train_seconds[FP32], train_seconds[BF16_BOTH])
ledger.record("bf16 autocast, inference (timed: the test pass)", 5, "float32's time",
              "test accuracy", accuracy[FP32], accuracy[BF16_READ], inference_seconds[FP32],
              inference_seconds[BF16_READ])
print(f"{len(ledger.read())} methods in the ledger so far")

# %% [markdown]
# ## Summary
#
# * A schedule is a factor on the peak rate at each step. PyTorch's one-cycle, the course's
#   usual choice, is a warm-up followed by a cosine decay (with β₁ moved the other way).
# * At the recipe's rate the four schedules differed by up to 0.09 in this run and by up to
#   0.24 over the course's seeds, and their order changed with the seed; the runs that end at a
#   constant rate were the least predictable.
# * At five times the rate the constant rate lost 0.07 to 0.29 of test accuracy over the
#   course's seeds; warm-up + cosine lost at most 0.04 there, on the machine that measured
#   them. On a second machine the same seed 0 fell to 0.891: another CPU's rounding acts like
#   another seed, so "stays at 0.90" is not a checkpoint (section 3 says why).
# * bfloat16 keeps float32's range with fewer digits. Reading the float32 model in bf16 kept
#   its accuracy within 0.01 (a checkpoint) and ran faster on this CPU; training in bf16 changes
#   the run's path as a new seed would.

# %%
print(f"chapter took {time.perf_counter() - CHAPTER_START:.0f} s")
