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
# # 06 · Feature alignment, part 5: one cycle or two?
#
# **Article sections:** §4.1 特征对齐方法 (feature alignment methods), §4.1.1 对抗性训练算法
# (adversarial training), §4.1.1.1 CycleGAN.
#
# **Prerequisites:** `06_cyclegan` (the two cycles, the hidden messages of its section 6 and the
# referees), `06_cyclegan_ablations` and `06_cyclegan_identity` (the other two ablations, summed up
# at the end). **Study time:** about 5 minutes of reading, plus about 2½ minutes for the notebook
# to run on a two-core laptop once part 1 has run.
#
# CycleGAN closes two cycles: the **forward cycle** (前向循环) photo → G → F → photo, and the
# **backward cycle** (反向循环) sketch → F → G → sketch. This last ablation keeps the forward
# cycle only. F is still trained, as the second half of the forward cycle: it must undo G. But
# the only sketches F ever has to undo are G's own, never a real one.
#
# **You will:**
# 1. reload part 1's model from the model registry, and the shipped referees;
# 2. train with the forward cycle only;
# 3. ask what F learned to read: sketches, or G's hidden messages?
#
# **Key terms.** forward / backward cycle (前向/反向循环) · cycle consistency (循环一致性) ·
# steganography (隐写) · ablation (消融实验).

# %%
# %matplotlib inline
import time

CHAPTER_START = time.perf_counter()


import matplotlib.pyplot as plt
import pandas as pd
import torch

from cmlib import cyclegan, runtime, viz

SEED = runtime.seed_everything()
DEVICE = runtime.device()
print(runtime.describe())

# %% [markdown]
# ## 1 · Part 1's model and referees
#
# Part 1's CycleGAN from the model registry, as in part 3 (or trained here as part 1 trains
# it, if missing), and the referees shipped with the course:

# %%
part1 = cyclegan.load_part_one(SEED, DEVICE)
print(part1.statuses)
full, judges, style_classifier = part1.model, part1.judges, part1.style_classifier
test_photos, test_sketches, test_attrs = part1.test_photos, part1.test_sketches, part1.test_attrs

# %% [markdown]
# Part 1's panel (`part1.score`) for part 1's model:

# %%
scores = {"full": part1.score(full.g, full.f)}
pd.DataFrame(scores["full"]).T.round(3)

# %% [markdown]
# ## 2 · The forward cycle only
#
# Same data, steps, batch, learning rate and seed; only `cycles=("forward",)`.

# %%
# part1.ablation: reseed, copy part 1's config with this change, build and train (all else equal)
forward_only, history = part1.ablation(SEED, DEVICE, cycles=("forward",))
print("loss terms:", sorted(history.steps))

# %%
scores["forward cycle only"] = part1.score(forward_only.g, forward_only.f)
pd.DataFrame({f"{name} — {d}": row for name, by_direction in scores.items()
              for d, row in by_direction.items()}).T.round(3)

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
metrics = ["preserved", "target_style", "joint"]
for k, (name, by_direction) in enumerate(scores.items()):
    for j, direction in enumerate(cyclegan.DIRECTIONS):
        offset = (2 * k + j - 1.5) * 0.2
        ax.bar([m + offset for m in range(len(metrics))],
               [by_direction[direction][m] for m in metrics], width=0.2,
               label=f"{name}, {direction.split(':')[0]}")
ax.set_xticks(range(len(metrics)), metrics)
ax.set(title="Full CycleGAN against the forward cycle only (test scenes)", xlabel="metric",
       ylabel="fraction of test scenes", ylim=(0, 1.3))
ax.legend(fontsize=8, ncol=2, loc="upper center")
viz.show(fig, "Grouped bar chart of the preserved, target-style and joint fractions of test "
         "scenes for the full CycleGAN and the forward-cycle-only model, one bar per model and "
         "direction G or F.")

# %% [markdown]
# ## 3 · What did F learn to read?
#
# In the forward-only model F's only lesson about content is F(G(photo)) ≈ photo: F learns from
# G's sketches, never from real ones. It can learn that lesson by reading the sketch, or by
# reading whatever G hides in it (part 1, section 6). Two measurements:
#
# * F's `preserved` on *real* sketches, in the table above, full against forward-only;
# * F's pixel error on real sketches against its error on G's sketches of the same scenes. A real
#   sketch carries no hidden message, so the larger this ratio, the more F relies on G's.

# %%
def f_inputs(model):
    from_g = cyclegan.translate(model.f, cyclegan.translate(model.g, test_photos, DEVICE), DEVICE)
    from_real = cyclegan.translate(model.f, test_sketches, DEVICE)
    return {"MAE of F(G(photo))": (from_g - test_photos).abs().mean().item(),
            "MAE of F(true sketch)": (from_real - test_photos).abs().mean().item()}


pd.DataFrame({"full": f_inputs(full), "forward cycle only": f_inputs(forward_only)}).T.round(3)

# %%
ratio = {name: row["MAE of F(true sketch)"] / row["MAE of F(G(photo))"]
         for name, row in (("full", f_inputs(full)),
                           ("forward cycle only", f_inputs(forward_only)))}
kept = {name: scores[name][cyclegan.DIRECTIONS[1]]["preserved"] for name in scores}
print("this run: F keeps colour and shape of real sketches — "
      + ", ".join(f"{k} {v:.3f}" for k, v in kept.items()))
print("this run: F's error on real sketches over its error on G's sketches — "
      + ", ".join(f"{k} {v:.1f}×" for k, v in ratio.items()))

# %% [markdown]
# Read the two lines together. The ratio is above 1 for *both* models: both learn F from G's
# sketches through the forward cycle, and both lean on what G hides. What the backward cycle,
# G(F(sketch)) ≈ sketch, adds is the one lesson F gets on *real* sketches, and the first line
# shows what that lesson is worth in this run.
#
# A few scenes: a real sketch, F of it, and F of G's sketch of the same scene.

# %%
shown = torch.arange(8)
g_sketch = cyclegan.translate(forward_only.g, test_photos[shown], DEVICE)
rows = [test_sketches[shown], cyclegan.translate(forward_only.f, test_sketches[shown], DEVICE),
        cyclegan.translate(forward_only.f, g_sketch, DEVICE)]
fig = viz.show_images(torch.cat(rows), ncols=8,
                      title="Forward cycle only — rows: true sketch, F(true sketch), F(G(photo))")
viz.show(fig, "Grid of eight test scenes, one per column, for the forward-cycle-only model; "
         "rows are the true sketch, F(true sketch) and F(G(photo)).")

# %% [markdown]
# ## Summary of the ablations (parts 3–5)
#
# | removed | what it is there to prevent | where to look |
# |---|---|---|
# | cycle loss | G drawing *a* sketch, not this photo's | `preserved`, confusion tables (3) |
# | identity loss | colours that wander, undone by the cycle | colour tables, round trip (4) |
# | backward cycle | an F that never sees a real sketch | F's `preserved` on real sketches (5) |
#
# The sizes of these effects are this course's runs at this budget (part 3's is a learning
# checkpoint, asserted in the gpu profile and printed in the cpu one; parts 4 and 5 print their
# run's outcome); the gpu profile trains longer.
# Each loss term of part 1's recipe prevents a failure that can be measured once the truth is
# known, and ShapesWorld knows it.

# %%
print(f"chapter run time: {time.perf_counter() - CHAPTER_START:.0f} s")
