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
# # 06 · Feature alignment, part 2: adapting a classifier from photos to sketches (DANN)
#
# **Article sections:** §4.1 特征对齐方法 (feature alignment methods): §4.1.1 对抗性训练算法
# (adversarial training). Part 1 (`06_cyclegan`) aligned two image domains pixel by pixel. This
# part aligns the *features* a classifier reads, so that a model trained on one domain can read
# the other; part 6 (`06_alignment_spaces`) aligns whole embedding spaces, words and captions.
#
# **Prerequisites:** `06_cyclegan` (the photo and sketch domains, and adversarial training),
# `03_fusion_models` (your gradient reversal layer, exercise 3.5). **Study time:**
# about 15 minutes of reading and the question, plus about a minute for the notebook to run on a
# two-core laptop.
#
# **You will** train a colour-and-shape classifier on photos, watch it fail on sketches, win back
# much of the loss with domain-adversarial training (DANN) — no sketch label used — check what it
# costs on photos, and see on five longer runs how much of the gain depends on the seed.
#
# **Key terms.** domain adaptation (域适应) · gradient reversal (梯度反转) · source / target
# domain (源域 / 目标域) · negative transfer (负迁移) · marginal alignment (边缘分布对齐).

# %%
# %matplotlib inline
import time

CHAPTER_START = time.perf_counter()

import matplotlib.pyplot as plt
import pandas as pd
import torch

from cmlib import alignment, runtime, viz
from cmlib.claims import Checkpoints
from cmlib.cyclegan import photo_sketch_pairs
from cmlib.data.shapes import COLORS
from cmlib.exercises import check
from cmlib.train import predict

SEED = runtime.seed_everything()
checkpoint = Checkpoints("06_alignment")  # learning checkpoints: asserted and recorded
DEVICE = runtime.device()
print(runtime.describe())

# Sizes for the two run profiles: the cpu profile is sized for a few minutes on 2 cores.
IMAGE_SIZE = 16
NUM_PER_DOMAIN = runtime.pick(cpu=2000, gpu=8000)
DANN_STEPS = runtime.pick(cpu=1000, gpu=4000)

# %% [markdown]
# ## 1 · Domain adaptation with gradient reversal (DANN)
#
# The source domain is labelled photos; the target domain is sketches whose labels we pretend
# not to have (they are used only to score). The photos and sketches show different scenes.

# %%
photos_all, sketches_all, attrs_all = photo_sketch_pairs(
    "train", 2 * NUM_PER_DOMAIN, IMAGE_SIZE, seed=SEED
)
photos = photos_all[:NUM_PER_DOMAIN]
photo_attrs = {k: v[:NUM_PER_DOMAIN] for k, v in attrs_all.items()}
sketches = sketches_all[NUM_PER_DOMAIN:]  # unlabelled, as far as training knows
sketch_attrs = {k: v[NUM_PER_DOMAIN:] for k, v in attrs_all.items()}  # the oracle's labels only
test_photos, test_sketches, test_attrs = photo_sketch_pairs("test", 500, IMAGE_SIZE)

# %% [markdown]
# Three models with one architecture and one budget: **source only** (photos), **DANN** (photos
# with labels, sketches without, and the domain game) and an **oracle** trained on labelled
# sketches, the ceiling.
#
# The DANN run adds one term that the course found it needs (`chapters/notes/06_alignment.md`):
# the entropy of its predictions on sketches, weight 0.1, with the domain loss at weight 0.3
# (DANN+Ent). Plain DANN aligned the two clouds of features, but in two of five seeds it left
# sketch features *between* classes and did worse than no adaptation at all — negative transfer.
# Asking for confident predictions on sketches pushes each into one class or another.

# %%
def train_model(images, attrs, target, adapt):
    torch.manual_seed(SEED)
    model = alignment.DomainAdaptationNet(IMAGE_SIZE)
    history = alignment.train_dann(model, images, attrs, target, DANN_STEPS, DEVICE, adapt=adapt,
                                   domain_weight=0.3, entropy_weight=0.1, seed=SEED)
    return model, history


source_only, _ = train_model(photos, photo_attrs, None, adapt=False)
dann, dann_history = train_model(photos, photo_attrs, sketches, adapt=True)
oracle, _ = train_model(sketches, sketch_attrs, None, adapt=False)

# %%
results = {}
models = {"source only": source_only, "DANN": dann, "oracle (sketch labels)": oracle}
for name, model in models.items():
    on_sketches = alignment.label_accuracy(model, test_sketches, test_attrs)
    row = {f"sketch {k}": v for k, v in on_sketches.items()}
    on_photos = alignment.label_accuracy(model, test_photos, test_attrs)
    row["photo color+shape"] = on_photos["color+shape"]
    results[name] = row
pd.DataFrame(results).T.round(3)

# %% [markdown]
# Read the table row by row. In this run DANN lifts colour+shape accuracy on sketches from 0.324
# (source only) to 0.732, against the oracle's 1.000. **On photos, its own source domain, it paid
# for it in this run:** the source-only model reads test photos perfectly (1.000), DANN at 0.830,
# a drop of 0.170. Pulling the encoder towards features that also fit sketches can cost accuracy
# on the source domain; here the cost was large, about 1 photo in 6. The oracle, trained on
# sketches, reads photos at 0.132: the gap between the domains is large both ways.
#
# The domain game over training. In the textbook picture, the discriminator first learns to tell
# photo features from sketch features, and then, as the reversal strength λ ramps up, the encoder
# pushes its accuracy back to chance (0.5). **In this run that game is barely visible.** The plot
# below averages the discriminator's accuracy over 25 steps: it never rises above about 0.62 (near
# step 150, while λ is still ramping up), and from about step 300 on it stays between about 0.42 and
# 0.53. The discriminator never told the two domains apart well, so the plot cannot show the encoder
# winning a contest; it shows only that the features stay hard to tell apart while DANN trains.

# %%
steps = dann_history.steps
fig, ax = plt.subplots(figsize=(7, 3.2))
acc = torch.tensor(steps["domain_accuracy"]).unfold(0, 25, 5).mean(1)
ax.plot(torch.arange(len(acc)) * 5 + 12, acc, label="domain discriminator accuracy")
ax.plot(steps["lambda"], label="reversal strength λ")
ax.axhline(0.5, color="grey", linestyle=":", label="chance")
ax.set(title="DANN: the domain game", xlabel="step", ylabel="value")
ax.legend(fontsize=8)
viz.show(fig, "Line plot against training step of DANN's domain discriminator accuracy "
         "(averaged over 25 steps), the reversal strength λ, and a dotted chance line at 0.5.")

# %% [markdown]
# What did DANN do to the features? Below, the encoder's 64-dimensional features of 300 test
# photos and 300 test sketches, projected to 2-D by PCA (fitted per model), for the source-only
# model and for DANN. The top row colours each point by its domain, the bottom row by the colour
# of the object it shows.

# %%
NUM_CLOUD = 300
cloud_colors = torch.cat([test_attrs["color"][:NUM_CLOUD]] * 2)
domain = torch.cat([torch.zeros(NUM_CLOUD), torch.ones(NUM_CLOUD)]).long()
fig, axes = plt.subplots(2, 2, figsize=(10, 8.4))
for column, (name, model) in enumerate([("source only", source_only), ("DANN", dann)]):
    feats = predict(model.features, torch.cat([test_photos[:NUM_CLOUD],
                                               test_sketches[:NUM_CLOUD]]), DEVICE)
    viz.plot_embedding_2d(feats, domain, ["photos", "sketches"], ax=axes[0, column],
                          title=f"{name}: features by domain")
    viz.plot_embedding_2d(feats, cloud_colors, list(COLORS), ax=axes[1, column],
                          title=f"{name}: features by object colour", palette=COLORS)
fig.tight_layout()
viz.show(fig, "Four PCA scatter plots of encoder features of 300 test photos and 300 test "
         "sketches: source-only model left, DANN right; top row coloured by domain, bottom row "
         "by object colour.")

# %% [markdown]
# In this run, without adaptation the sketches gather in one region left of the middle of the
# source-only plot, apart from most photos; in that region orange, purple, yellow and some red
# sketches lie mixed together (bottom left): an encoder that never saw a sketch sorts sketches
# by colour only partly (its sketch colour accuracy is in the table above). With DANN the two
# domains overlap much more: on the left of the plot photos and sketches mix, though the band
# along the bottom is mostly sketches and the far right holds photos only. The colours form
# regions of their own (blue and yellow on the left, green along the bottom, red to the right),
# and the regions on the left hold sketches as well as photos. PCA shows two of 64 directions, so
# this is a picture of the change, not a measurement; the accuracies in the table are the
# measurement.

# %% [markdown]
# How much did DANN gain in this run, against the course's bar of 0.15 over the source-only
# model? This is this run's outcome, printed, not a checkpoint: both models vary from seed to
# seed, and the source-only model most (it reads sketches only by luck).

# %%
source_acc = results["source only"]["sketch color+shape"]
dann_acc = results["DANN"]["sketch color+shape"]
print(f"this run: sketch colour+shape, source only {source_acc:.3f}, DANN {dann_acc:.3f}, "
      f"gain {dann_acc - source_acc:+.3f} "
      f"({'meets' if dann_acc - source_acc >= 0.15 else 'falls short of'} the +0.15 bar)")

# %% [markdown]
# ### The long run: does the gain hold for every seed?
#
# In the course's own runs of this notebook, for seeds 0–4, the gain ranged from 0.14 to 0.42
# (`chapters/notes/06_alignment.md`): seed 3's source-only model happened to read sketches well.
# Is that the short budget? The long run `ch06-dann` trains the same two models, from the same
# initial weights, with the same code and loss weights, on four times the images (8,000 per
# domain) for four times the steps (4,000), and ships them for seeds 0–4
# (`make models NAMES="ch06-dann"`, about two minutes a seed on two cores;
# `chapters/notes/models.md` has the runs). In the gpu profile the notebook trains it live, for
# this run's seed.
#
# Longer was not enough. At this notebook's constant learning rate, the long run's source-only
# model kept moving to its last step, and how well it read sketches moved with it, by 0.30 to
# 0.73 within each run; seed 3's ended at 0.918, which leaves no DANN room to gain 0.15
# (`chapters/notes/models.md`). So the long run also anneals the learning rate as Ganin et al.
# (2016) do, by 1 / (1 + 10p)^0.75 at progress p: the last steps move the weights less, which
# damps how far the baseline can move late in a run (it does not stop it; the range each run
# still moved is printed below).

# %%
from cmlib.alignment import lr_annealing
from cmlib.longrun.recipes import get_recipe, long_run
from cmlib.longrun.store import read_manifest

LONG = "ch06-dann"
LONG_SEEDS = runtime.pick(cpu=get_recipe(LONG).seeds, gpu=(SEED,))
long_dann = {seed: long_run(LONG, seed, DEVICE, progress=False)[1] for seed in LONG_SEEDS}
long_config = long_dann[LONG_SEEDS[0]]["config"]
print(f"{LONG}: {long_config['num_per_domain']:,} images per domain, "
      f"{long_config['num_steps']:,} steps, learning rate "
      + (f"annealed from {long_config['lr']:g} to {long_config['lr'] * lr_annealing(1.0):.1e}"
         if long_config["anneal_lr"] else f"{long_config['lr']:g} throughout")
      + f"; live run: {NUM_PER_DOMAIN:,} images and {DANN_STEPS:,} steps at a constant rate")
long_rows = {"live run (above)": {"source only": source_acc, "DANN": dann_acc,
                                  "gain": dann_acc - source_acc,
                                  "source only on photos":
                                      results["source only"]["photo color+shape"],
                                  "DANN on photos": results["DANN"]["photo color+shape"]}}
for seed, manifest in long_dann.items():
    m = manifest["metrics"]
    long_rows[f"long run, seed {seed} ({manifest['wall_seconds'] / 60:.1f} min)"] = {
        "source only": m["source_only sketch color+shape"],
        "DANN": m["dann sketch color+shape"], "gain": m["gain"],
        "source only on photos": m["source_only photo color+shape"],
        "DANN on photos": m["dann photo color+shape"]}
pd.DataFrame(long_rows).T.rename_axis("colour+shape accuracy").round(3)

# %% [markdown]
# > **Learning checkpoints.** On the long runs, for every seed:
# > 1. adaptation never hurts here: DANN reads sketches at least as well as the source-only
# >    model (`dann-no-negative-transfer`);
# > 2. the course's bar, DANN ≥ source-only + 0.15 (`dann-gain`).
# >
# > Both are asserted on the seed with the smallest gain.

# %%
worst = min(long_dann, key=lambda seed: long_dann[seed]["metrics"]["gain"])
worst_source = long_dann[worst]["metrics"]["source_only sketch color+shape"]
worst_dann = long_dann[worst]["metrics"]["dann sketch color+shape"]
print(f"smallest long-run gain: seed {worst}, source only {worst_source:.3f}, "
      f"DANN {worst_dann:.3f}, gain {worst_dann - worst_source:+.3f}")
checkpoint("dann-no-negative-transfer", worst_dann, ">=", worst_source, baseline=worst_source,
           chance=1 / 18)
checkpoint("dann-gain", worst_dann, ">=", worst_source + 0.15, baseline=worst_source,
           chance=1 / 18);

# %% [markdown]
# **Question 6.3 — predict, then run.** The five shipped source-only models read the test
# *photos* almost perfectly (the table's "source only on photos"). None ever sees a sketch. How
# far apart will the five end on the test sketches: (a) within 0.05 of each other, since all
# five learn the photos almost perfectly, (b) more
# than 0.25 apart between the best and the worst seed, or (c) all near chance (1/18), since a
# model trained on photos cannot read sketches? Set `prediction` before you run the next cells.

# %%
### BEGIN SOLUTION
prediction = "b"
### END SOLUTION
check("6.3", prediction)

# %%
fig, ax = plt.subplots(figsize=(7, 3.4))
for seed, manifest in long_dann.items():
    curve = manifest["curve"]
    ax.plot(curve["step"], curve["dann sketch color+shape"], color="C0", alpha=0.7,
            label="DANN, long run" if seed == LONG_SEEDS[0] else None)
    ax.plot(curve["step"], curve["source_only sketch color+shape"], color="C1", alpha=0.7,
            label="source only, long run" if seed == LONG_SEEDS[0] else None)
ax.scatter([DANN_STEPS] * 2, [dann_acc, source_acc], c=["C0", "C1"], marker="x", zorder=3,
           label="this notebook's live run, final")
ax.set(title="Sketch colour+shape accuracy during training (one line per seed)",
       xlabel="training step", ylabel="colour+shape accuracy on test sketches", ylim=(0, 1))
ax.legend(fontsize=8)
viz.show(fig, "Line plot of test-sketch colour-and-shape accuracy against training step for "
         "the long-run DANN and source-only models, one line per shipped seed, with crosses at "
         "the live run's final values.")

# %%
# the shipped seeds in every profile (the gpu profile trains only this run's seed live)
shipped = {seed: read_manifest(LONG, seed) for seed in get_recipe(LONG).seeds}
ends = {seed: m["metrics"]["source_only sketch color+shape"] for seed, m in shipped.items()}
print("source only, final sketch accuracy by shipped seed: "
      + ", ".join(f"{seed}: {v:.3f}" for seed, v in ends.items()))
wander = {seed: max(m["curve"]["source_only sketch color+shape"])
          - min(m["curve"]["source_only sketch color+shape"]) for seed, m in shipped.items()}
print("range within each run, by seed: "
      + ", ".join(f"{seed}: {w:.3f}" for seed, w in wander.items()))
checkpoint("source-only-sketch-luck", max(ends.values()) - min(ends.values()), ">=", 0.25);

# %% [markdown]
# The answer to 6.3 is (b), by the checkpoint above: one architecture, one recipe, near-perfect
# on photos every time, and yet how well each model reads sketches is a draw of its seed. Nothing
# in the source-only loss mentions sketches, so which photo features it settles on, and whether
# they happen to carry over to outlines, is luck. DANN's lines sit higher: its loss ties the
# sketch features to the photo features at every step. The second line printed above says how
# much each annealed run still moved within itself.

# %% [markdown]
# Aligning marginals is not aligning classes. DANN makes photo features and sketch features
# *look alike as a whole*; nothing forces a red sketch to land next to red photos. It helped on
# sketches in this run, where the two domains share their label distribution. When they do not
# (say, mostly red photos and mostly blue sketches), aligning the marginals pulls the wrong
# classes together.

# %% [markdown]
# ## Summary
#
# * DANN aligns feature *distributions* across domains with one reversed gradient, so that a
#   classifier trained on photos can read sketches; it aligns marginals, not classes, and an
#   entropy term on the target helps keep it from leaving sketches between classes. In this run
#   it raised sketch colour+shape accuracy from 0.324 to 0.732 and cost photo accuracy, from 1.000
#   to 0.830, while its domain discriminator never rose above about 0.62. On the five shipped
#   long runs, with the learning rate annealed, it gained at least 0.15 over the source-only
#   model on every seed (by the checkpoints); how well the source-only model reads sketches is a
#   draw of its seed (and at a constant rate it also wandered within each run, by 0.30–0.73:
#   `chapters/notes/models.md`).
#
# Part 3 (`06_cyclegan_ablations`) returns to the CycleGAN of part 1 and takes its cycle loss
# away; part 6 (`06_alignment_spaces`) aligns embedding spaces, with seed pairs and without.

# %%
print(f"chapter run time: {time.perf_counter() - CHAPTER_START:.0f} s")
