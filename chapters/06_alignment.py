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
# # 06 · Feature alignment, part 2: adapting a classifier, rotating embedding spaces
#
# **Article sections:** §4.1 特征对齐方法 (feature alignment methods): §4.1.1 对抗性训练算法
# (adversarial training) and 跨模态循环网络 (cross-modal cycle networks). Part 1
# (`06_cyclegan`) aligned two image domains pixel by pixel. This part aligns *features*.
#
# **Prerequisites:** `06_cyclegan` (the photo and sketch domains, and adversarial training),
# `02_language_features` (GloVe vectors and MiniLM sentence embeddings), plus the singular value
# decomposition and PCA. **Study time:** about 30 minutes of reading and exercises, plus about 3
# minutes for the notebook to run on a two-core laptop.
#
# **You will:**
# 1. train a colour-and-shape classifier on photos, watch it fail on sketches, win back much of
#    the loss with domain-adversarial training (DANN) — no sketch label used — check what it
#    costs on photos, and see on five longer runs how much of the gain depends on the seed;
# 2. align two embedding spaces with a rotation learnt from a few seed pairs (Procrustes), solved
#    by the function you write;
# 3. align an image space and a text space that were trained separately, and count how many
#    image–caption pairs it takes;
# 4. try it with no pairs at all, by comparing distances inside each space: on a rotated copy of
#    GloVe, and on images and captions, which defeat it here.
#
# **Key terms.** domain adaptation (域适应) · gradient reversal (梯度反转) · source / target
# domain (源域 / 目标域) · orthogonal Procrustes (正交普氏分析) · seed dictionary (种子词典) ·
# hubness (枢纽性) · CSLS (跨域相似度局部缩放) · isomorphic spaces (同构空间) ·
# optimal transport (最优传输) · Gromov–Wasserstein distance (格罗莫夫–瓦瑟斯坦距离).

# %%
# %matplotlib inline
import time

CHAPTER_START = time.perf_counter()

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F

from cmlib import alignment, pretrained, retrieval, runtime, viz
from cmlib.claims import Checkpoints
from cmlib.cyclegan import photo_sketch_pairs
from cmlib.data.shapes import COLORS, SHAPES, ShapesWorld
from cmlib.embeddings.vectors import load_glove_6b_50d
from cmlib.exercises import check, use_if_passed
from cmlib.judge import AttributeJudge, train_judge
from cmlib.train import predict

SEED = runtime.seed_everything()
checkpoint = Checkpoints("06_alignment")  # learning checkpoints: asserted and recorded
DEVICE = runtime.device()
print(runtime.describe())

# Sizes for the two run profiles: the cpu profile is sized for a few minutes on 2 cores.
IMAGE_SIZE = 16
NUM_PER_DOMAIN = runtime.pick(cpu=2000, gpu=8000)
DANN_STEPS = runtime.pick(cpu=1000, gpu=4000)
ADVERSARIAL_STEPS = runtime.pick(cpu=2000, gpu=20000)

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
# **Question 6.11 — predict, then run.** The five shipped source-only models read the test
# *photos* almost perfectly (the table's "source only on photos"). None ever sees a sketch. How
# far apart will the five end on the test sketches: (a) within 0.05 of each other, since all
# five learn the photos almost perfectly, (b) more
# than 0.25 apart between the best and the worst seed, or (c) all near chance (1/18), since a
# model trained on photos cannot read sketches? Set `prediction` before you run the next cells.

# %%
### BEGIN SOLUTION
prediction = "b"
### END SOLUTION
check("6.11", prediction)

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
# The answer to 6.11 is (b), by the checkpoint above: one architecture, one recipe, near-perfect
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
# ## 2 · A rotation between two spaces: orthogonal Procrustes
#
# Take GloVe's 5,000 most frequent words, rotate the whole space at random and shuffle the rows:
# a "second language" that is the first one in disguise. Given k seed pairs (word, its rotated
# self), the best rotation has a closed form: with U S Vᵀ the SVD of XᵀY, W = U Vᵀ.

# %%
glove = load_glove_6b_50d(max_words=5000)
vectors = torch.from_numpy(glove.vectors).float()
words = F.normalize(vectors - vectors.mean(0), dim=1)  # centred, unit length
g = torch.Generator().manual_seed(SEED)
rotation, _ = torch.linalg.qr(torch.randn(50, 50, generator=g))
rotated = F.normalize(words @ rotation + 0.02 * torch.randn(5000, 50, generator=g), dim=1)
test_words = torch.arange(1000, 5000)  # seed pairs come from the 1,000 most frequent words

# %% [markdown]
# **Exercise 6.3 — build the rotation solver.** Write `procrustes_map(source, target)`: the
# orthogonal W `(D, D)` that best maps the rows of `source` `(N, D)` onto those of `target`. Every
# seed-pair rotation in this section and the next is then solved with your function. The check
# compares your W with cmlib's on random seed pairs in float64, within 1e-6 + 1e-4·|W|, element
# by element, and does the same for the gradients with respect to both inputs. It rejects the
# inverse map (the SVD of targetᵀ · source), the least-squares map, the map that keeps the
# singular values, and the right map computed in NumPy, through which no gradient flows.

# %%
def procrustes_map(source, target):
    ### BEGIN SOLUTION
    u, _, vh = torch.linalg.svd(source.T @ target)
    return u @ vh
    ### END SOLUTION


check("6.3", procrustes_map)

# %% [markdown]
# The rotations below use your function where the check passed, and cmlib's
# `alignment.procrustes` where it did not; the next line says which. Both are handed the seed
# pairs in float64, as cmlib computes them. With fewer seed pairs than the 50 dimensions, many
# rotations fit the pairs equally well, and which one comes out depends on the precision and on
# how the SVD is taken: a correct answer written another way (the SVD of targetᵀ · source,
# transposed, say) can pick another one, and its P@1 from 5 or 20 pairs can differ from the
# table below. From 50 pairs or more the rotation is unique.

# %%
solve_rotation = use_if_passed("6.3", procrustes_map, alignment.procrustes,
                               "the seed-pair rotations are solved with")


def rotation_from_pairs(source, target):
    """The rotation from seed pairs, solved in float64 and returned in float32."""
    return solve_rotation(source.double(), target.double()).float()

# %%
def word_p1(w, csls=True):
    """P@1 of the 4,000 test words under the map ``w``."""
    mapped, target = words[test_words] @ w, rotated[test_words]
    score = alignment.csls_scores if csls else alignment.cosine_scores
    return alignment.precision_at_1(score(mapped, target))


procrustes_rows = {}
for k in (5, 20, 50, 200):
    seeds = torch.randperm(1000, generator=g)[:k]
    w = rotation_from_pairs(words[seeds], rotated[seeds])
    refined = alignment.refine(w, words[:3000], rotated[:3000])  # no pairs used here
    procrustes_rows[k] = {"P@1 nearest neighbour": word_p1(w, csls=False), "P@1 CSLS": word_p1(w),
                          "P@1 CSLS, refined": word_p1(refined)}
pd.DataFrame(procrustes_rows).T.rename_axis("seed pairs").round(3)

# %% [markdown]
# > **Learning checkpoint.** From 20 seed pairs and refinement, the rotation is recovered:
# > P@1 ≥ 0.95 on 4,000 words that were never paired.

# %%
checkpoint("glove-rotation-P@1", procrustes_rows[20]["P@1 CSLS, refined"], ">=", 0.95,
           baseline=procrustes_rows[20]["P@1 CSLS"], chance=1 / 4000);

# %% [markdown]
# Why the refinement column matters. k seed pairs span at most k of the 50 directions, so with
# fewer than 50 pairs Procrustes must guess the rest of the rotation. But a half-right map
# already makes many words pick their true partner, and those that pick *each other* (mutual
# CSLS neighbours) are a new, larger seed dictionary — with no pair given. Solve Procrustes on
# it and repeat. In this run, 20 seed pairs give P@1 0.533 (CSLS) and refinement lifts it to
# 0.999; from 5 pairs the start is too poor (0.009), and refinement reaches only 0.064. The
# rigidity that makes this work is also the method's assumption: the two spaces must be (nearly)
# rotations of each other.

# %% [markdown]
# ## 3 · An image space and a text space, trained apart
#
# The image space: the features of a photo attribute classifier (trained on labels, never on
# captions). The text space: MiniLM's sentence embeddings of captions (trained on the web, never
# on these images). Both are centred and reduced to 16 dimensions by PCA. Then Procrustes from k
# image–caption seed pairs, and text → image retrieval on 600 test scenes: a hit when the top
# image has the caption's colour and shape.

# %%
train_scenes = ShapesWorld("train", size=3000, image_size=IMAGE_SIZE, num_objects=1, seed=SEED)
test_scenes = ShapesWorld("test", size=600, image_size=IMAGE_SIZE, num_objects=1)
x_train, a_train = train_scenes.tensors(cache=False)
x_test, a_test = test_scenes.tensors(cache=False)
image_model = AttributeJudge(IMAGE_SIZE)
train_judge(image_model, x_train, a_train, 6, DEVICE, seed=SEED, progress=False)
image_train = F.relu(predict(image_model.encoder, x_train, DEVICE))
image_test = F.relu(predict(image_model.encoder, x_test, DEVICE))

# %%
minilm = pretrained.load_minilm(DEVICE)
def caption_embeddings(scenes):
    return minilm.encode([scenes.captions(i)[0] for i in range(len(scenes))]).float()


text_train, text_test = caption_embeddings(train_scenes), caption_embeddings(test_scenes)
print(image_train.shape, text_train.shape)


# %%
def pca(train, test, dim=16):
    """Centre on the training rows, project both on their top ``dim`` components, unit length."""
    mean = train.mean(0)
    _, _, v = torch.pca_lowrank(train - mean, q=dim, center=False)
    return F.normalize((train - mean) @ v, dim=1), F.normalize((test - mean) @ v, dim=1)


image_train16, image_test16 = pca(image_train, image_test)
text_train16, text_test16 = pca(text_train, text_test)
relevant = ((a_test["color"][:, None] == a_test["color"][None, :])
            & (a_test["shape"][:, None] == a_test["shape"][None, :]))
chance = retrieval.chance_recall_at_k(relevant, 1)


def text_to_image_r1(w):
    scores = alignment.cosine_scores(text_test16 @ w, image_test16)
    return retrieval.recall_at_k(retrieval.first_relevant_rank(scores, relevant), 1)


print(f"chance R@1 (colour and shape match): {chance:.3f}")

# %%
NUM_DRAWS = 20  # which k pairs are drawn matters; average over 20 random draws of them


def seed_pair_r1(k, generator=g):
    values = []
    for _ in range(NUM_DRAWS):
        seeds = torch.randperm(len(train_scenes), generator=generator)[:k]
        w = rotation_from_pairs(text_train16[seeds], image_train16[seeds])
        values.append(text_to_image_r1(w))
    values = torch.tensor(values)
    return {"mean R@1": values.mean().item(), "worst draw": values.min().item()}


seed_rows = {k: seed_pair_r1(k) for k in (3, 18, 100)}
pd.DataFrame(seed_rows).T.rename_axis("seed pairs").round(3)

# %% [markdown]
# > **Learning checkpoint.** With 18 image–caption seed pairs, text → image R@1 ≥ 0.90 (the mean
# > over 20 random draws of the 18 pairs).

# %%
checkpoint("procrustes-18-pairs-R@1", seed_rows[18]["mean R@1"], ">=", 0.90, chance=chance);

# %% [markdown]
# How many pairs does it take? The same measurement for more values of k, with fresh random draws
# (a generator of their own, so the rest of the notebook is unchanged). The spaces have 16
# dimensions: k pairs span at most k of them, so below 16 pairs the rotation is partly a guess.

# %%
curve_g = torch.Generator().manual_seed(SEED + 1)
curve_ks = [2, 3, 5, 8, 12, 16, 18, 24, 32, 50, 100]
curve = {k: seed_pair_r1(k, curve_g) for k in curve_ks}
fig, ax = plt.subplots(figsize=(7, 3.6))
ax.plot(curve_ks, [curve[k]["mean R@1"] for k in curve_ks], marker="o",
        label=f"mean over {NUM_DRAWS} draws")
ax.plot(curve_ks, [curve[k]["worst draw"] for k in curve_ks], marker=".", linestyle="--",
        label="worst draw")
ax.axvline(16, color="grey", linestyle=":", label="16 pairs = the dimension")
ax.axhline(chance, color="black", linestyle=":", label=f"chance ({chance:.3f})")
ax.set(xscale="log", title="Text → image R@1 against the number of seed pairs",
       xlabel="seed pairs k (log scale)", ylabel="R@1 (colour and shape match)")
ax.legend(fontsize=8)
viz.show(fig, "Line plot of text-to-image R@1 against the number of image-caption seed pairs "
         "on a log axis, mean and worst of 20 draws, with a dotted line at 16 pairs and one at "
         "chance.")

# %% [markdown]
# These are fresh draws, so they can differ from the table above; in this run the means for 3
# pairs happen to agree (about 0.35 here, 0.344 there). How much the choice of pairs matters shows
# in the worst draw. In this run the mean R@1 climbs from about 0.24 with 2 pairs to about 0.95
# with 12, and stays within a few hundredths of 1.0 from 16 pairs on; the worst of the 20 draws
# lags behind (about 0.45 with 8 pairs, 0.86 with 12, and only 0.78 with 16, one unlucky draw,
# before 0.93 with 18). Twelve pairs leave four of the 16 directions to chance and still do well
# on average, most likely because random pairs mostly span the directions of most variance, and
# PCA put the directions of least variance last.
#
# And what the rotation does. For each colour–shape class in the test set (15: red triangle,
# green circle and blue square, the three held-out pairs, do not appear in it), take the test
# captions of that class and the test images of each class, and average their cosine
# similarities: a 15 × 15 table, captions down, images across. Left, the caption vectors as
# MiniLM and PCA left them (two spaces fitted apart, so their coordinates do not line up); right,
# after the rotation W from one draw of 18 seed pairs. Retrieval works when each row is brightest
# on the diagonal.

# %%
pairs18 = torch.randperm(len(train_scenes), generator=curve_g)[:18]
w18 = rotation_from_pairs(text_train16[pairs18], image_train16[pairs18])
test_class = a_test["color"] * len(SHAPES) + a_test["shape"]
one_hot = F.one_hot(test_class, len(COLORS) * len(SHAPES)).float()
present = one_hot.sum(0) > 0  # the held-out colour-shape pairs are not in the test split
one_hot = one_hot[:, present]
class_names = [f"{c} {s}" for c in COLORS for s in SHAPES]
class_names = [name for name, kept in zip(class_names, present) if kept]


def class_similarity(texts):
    """Mean cosine between the captions of class i and the images of class j: (15, 15)."""
    sims = alignment.cosine_scores(texts, image_test16)
    return (one_hot.T @ sims @ one_hot) / (one_hot.sum(0)[:, None] * one_hot.sum(0)[None, :])


fig, axes = plt.subplots(1, 2, figsize=(11, 5.2), layout="constrained")
for ax, (title, texts) in zip(axes, [("before: captions as they are", text_test16),
                                     ("after: captions rotated by W", text_test16 @ w18)]):
    sim = class_similarity(texts)
    shown = ax.imshow(sim, cmap="viridis", vmin=-1, vmax=1)
    diagonal_wins = (sim.argmax(dim=1) == torch.arange(len(sim))).sum().item()
    off_diagonal = sim[~torch.eye(len(sim), dtype=torch.bool)]
    print(f"{title}: diagonal mean {sim.diag().mean():.2f}, off-diagonal mean "
          f"{off_diagonal.mean():.2f} (max {off_diagonal.max():.2f})")
    ax.set(title=f"{title}\n(row's best on the diagonal: {diagonal_wins} of {len(sim)})",
           xlabel="images of class", xticks=range(len(sim)), yticks=range(len(sim)))
    ax.set_xticklabels(class_names, rotation=90, fontsize=6)
    ax.set_yticklabels(class_names, fontsize=6)
axes[0].set_ylabel("captions of class")
fig.colorbar(shown, ax=axes, shrink=0.8, label="mean cosine similarity")
viz.show(fig, "Two 15-by-15 heatmaps of the mean cosine similarity between test captions of "
         "each colour-shape class (rows) and test images of each class (columns), before and "
         "after the Procrustes rotation from 18 seed pairs.")

# %% [markdown]
# In this run no row's best match lay on the diagonal before the rotation (0 of 15): the two
# spaces were fitted apart and their coordinates do not line up. The diagonal's mean cosine
# (−0.27) was even well below the rest's (0.02), so captions pointed away from their own images,
# probably because some axes of the two PCAs match with opposite signs (PCA chooses each axis's
# sign arbitrarily). After the rotation every row's best match was on the diagonal (15 of 15):
# the diagonal's mean rose to 0.64 while the rest's stayed near zero (−0.05), though single
# off-diagonal cells reach 0.47. A caption counts as a hit when its single most similar image has
# its class, so R@1 with 18 pairs is near 1.0 (0.995 in the table above) even though the picture
# is not a clean diagonal.

# %% [markdown]
# ## 4 · No pairs at all
#
# MUSE (Conneau et al., 2018) learns the rotation with no seed pairs: a map W that a
# discriminator cannot tell from real image vectors, a second map V back, a cycle term
# V(W(t)) ≈ t that makes the two directions agree (a cross-modal cycle network), then Procrustes
# refinement on the pairs that pick each other. The model is chosen by a criterion that needs no
# pairs either: the mean cosine of each text vector to its best match.

# %%
unsupervised_w, criteria = alignment.align_without_pairs(
    text_train16[:1500], image_train16[1500:], ADVERSARIAL_STEPS, seed=SEED
)
unsupervised_r1 = text_to_image_r1(unsupervised_w)
print({k: round(v, 3) for k, v in criteria.items()})
print(f"unsupervised text→image R@1 {unsupervised_r1:.3f} (chance {chance:.3f}, "
      f"18 seed pairs {seed_rows[18]['mean R@1']:.3f})")

# %% [markdown]
# Read the criterion and the R@1 together: the criterion says how well the aligned spaces *overlap*,
# R@1 whether the alignment is *right*. In this run they disagree: the criterion is high (0.894 for
# W, 0.895 for V), while R@1 is 0.068, the same as chance (0.068): the map retrieves no better
# than one drawn at random. They can disagree because these spaces have symmetries: 6 colours ×
# 3 shapes sit in both spaces as a near-regular grid of clusters, and a rotation that swaps
# colours maps the grid onto itself about as well as the right one does. A discriminator that
# sees only distributions cannot tell such rotations apart. Seed pairs can: each one fixes which
# cluster is which. MUSE was shown to work on languages, whose word clouds are lumpy and
# asymmetric; a clean synthetic world is a hard case. The course's script runs of this cell are
# in `chapters/notes/06_alignment.md`.

# %% [markdown]
# ### Distances instead of an adversary
#
# An adversary compares the two clouds only after W has rotated one onto the other, and W
# starts at the identity. Distances *inside* each space need no rotation at all: if one space is
# a rotated copy of the other, their distance matrices are the same up to the order of the
# points. Gromov–Wasserstein (Alvarez-Melis & Jaakkola, 2018) searches for the matching of points
# that keeps distances, as an optimal-transport plan; Procrustes turns the plan into a rotation;
# Wasserstein Procrustes (Grave et al., 2019) alternates plan and rotation. Still no pair is
# used. First the rotated GloVe of section 2, from its 500 most frequent words, shuffled.
#
# **Question 6.10 — predict, then run.** Section 2 needed 20 seed pairs and refinement to
# recover the rotation. With no pair at all, only the distances inside each space, what P@1 will
# the map reach on the 4,000 test words: (a) below 0.05, near chance, (b) between 0.05 and 0.95,
# or (c) at least 0.95, as with the seed pairs? Set `prediction` to `"a"`, `"b"` or `"c"` before
# you run the cells after it.

# %%
### BEGIN SOLUTION
prediction = "c"
### END SOLUTION
check("6.10", prediction)

# %%
shuffle = torch.randperm(500, generator=g)
glove_w, glove_runs = alignment.align_by_distances(words[:500], rotated[:500][shuffle],
                                                   num_starts=1, seed=SEED)
glove_no_pairs_p1 = word_p1(glove_w)
print(f"no pairs, Gromov–Wasserstein: P@1 {glove_no_pairs_p1:.4f} on the 4,000 test words "
      f"(20 seed pairs and refinement: {procrustes_rows[20]['P@1 CSLS, refined']:.4f})")

# %% [markdown]
# > **Learning checkpoint.** With no pair at all, the rotation of GloVe is recovered:
# > P@1 ≥ 0.95 on the 4,000 test words.

# %%
checkpoint("glove-rotation-no-pairs-P@1", glove_no_pairs_p1, ">=", 0.95, chance=1 / 4000);

# %% [markdown]
# The answer to question 6.10 is (c), by the checkpoint above: the rotated GloVe is a copy of
# GloVe up to a little noise, so its 500 × 500 distance matrix is GloVe's with the rows and
# columns shuffled, and finding the shuffle that makes the two agree finds the pairs. The
# rotation then follows by Procrustes, as in section 2, with no pair given.
#
# Now the image space and the text space of section 3: 400 captions, and 400 photos of other
# scenes.

# %%
distance_w, distance_runs = alignment.align_by_distances(
    text_train16[:400], image_train16[1500:1900], num_starts=2, seed=SEED
)
distance_r1 = text_to_image_r1(distance_w)
print(f"this run, no pairs, Gromov–Wasserstein: text→image R@1 {distance_r1:.3f} "
      f"(chance {chance:.3f}, {distance_r1 / chance:.1f}× chance; the target is 10×)")

# %% [markdown]
# In this run Gromov–Wasserstein reaches text → image R@1 0.092, 1.4× chance (0.068): a little above
# chance, far short of 10× chance, the level this chapter takes as a working alignment. Why it fails
# here, checked with the labels the method never saw. Take the centre of each colour–shape class in
# both spaces, and ask how well each way of naming the colours keeps the distances between centres.
# The held-out pairs (no red triangle, green circle or blue square in training) pin red, green and
# blue; yellow, purple and orange can be named 3! = 6 ways.

# %%
from itertools import permutations

from cmlib.data.shapes import COLORS, SHAPES

classes = [(c, s) for c in range(len(COLORS)) for s in range(len(SHAPES))
           if ((a_train["color"] == c) & (a_train["shape"] == s)).any()]


def class_centres(vectors, attrs):
    return torch.stack([vectors[(attrs["color"] == c) & (attrs["shape"] == s)].mean(0)
                        for c, s in classes])


text_centres = alignment.cosine_distances(class_centres(text_train16, a_train))
image_centres = alignment.cosine_distances(class_centres(image_train16, a_train))
free = [COLORS.index(name) for name in ("yellow", "purple", "orange")]
naming_rows = []
for order in permutations(free):
    rename = dict(zip(free, order))
    matching = torch.tensor([classes.index((rename.get(c, c), s)) for c, s in classes])
    naming_rows.append({"yellow, purple, orange ↦": ", ".join(COLORS[i] for i in order),
                        "distance mismatch": alignment.distance_mismatch(
                            text_centres, image_centres, matching)})
naming = pd.DataFrame(naming_rows).sort_values("distance mismatch", ignore_index=True)
truth_rank = 1 + naming.index[naming["yellow, purple, orange ↦"] == "yellow, purple, orange"][0]
print(f"this run: the true naming ranks {truth_rank} of {len(naming)} by distance mismatch")
naming.round(4)

# %% [markdown]
# The row "yellow, purple, orange" is the truth. In this run it ranks second: the naming that
# swaps yellow and purple keeps the distances between centres better (mismatch 0.0520, against
# the truth's 0.0560). Where the truth is not the smallest mismatch, a method that trusts
# distances must prefer a wrong naming, and no criterion without pairs can notice. The two
# spaces are not copies of each other: the image space comes from a classifier of four
# attributes (colour, shape, size, position), and MiniLM weighs the words of a caption its own
# way. The rotated GloVe, by contrast, is a copy of GloVe up to a little noise, and there the
# distances found the right matching (P@1 0.9995 above). Seed pairs settle it: 18 of them gave
# R@1 0.995 above. This is what
# "near-isomorphic" means in practice, and why unsupervised alignment of languages works best
# between related languages trained on similar text.

# %% [markdown]
# ### Against a model trained on pairs
#
# Chapter 07 does the opposite of this section: it trains both towers *together* on
# image–caption pairs, with CLIP's contrastive loss. Here its model (`cmlib.shapes_retrieval`)
# is trained on all 3,000 training pairs of this section and scored on the same 600 test scenes,
# with the same relevance (colour and shape), next to the rotations:

# %%
from torch.utils.data import DataLoader

from cmlib import shapes_retrieval
from cmlib.train import fit

pairs = shapes_retrieval.load_split("train", len(train_scenes), IMAGE_SIZE, seed=SEED)
paired_model = shapes_retrieval.make_dual_encoder(IMAGE_SIZE)
loader = DataLoader(retrieval.CaptionedImages(pairs.images, pairs.ids, pairs.lengths),
                    batch_size=128, shuffle=True, drop_last=True)
optimizer = torch.optim.AdamW(paired_model.parameters(), lr=3e-3, weight_decay=0.01)
fit(paired_model, loader, optimizer, 8, DEVICE, step_fn=retrieval.contrastive_step,
    progress=False, desc="chapter 07's dual encoder")
test_pairs = shapes_retrieval.load_split("test", len(test_scenes), IMAGE_SIZE)
with torch.no_grad():
    paired_model.eval()
    texts = paired_model.encode_text(test_pairs.ids[:, 0].to(DEVICE),
                                     test_pairs.lengths[:, 0].to(DEVICE))
    scores = (texts @ paired_model.encode_image(test_pairs.images.to(DEVICE)).T).cpu()
paired_r1 = retrieval.recall_at_k(retrieval.first_relevant_rank(scores, relevant), 1)
pd.Series({"chance": chance, "no pairs (MUSE-style)": unsupervised_r1,
           "no pairs (Gromov–Wasserstein)": distance_r1,
           "3 seed pairs + Procrustes": seed_rows[3]["mean R@1"],
           "18 seed pairs + Procrustes": seed_rows[18]["mean R@1"],
           "100 seed pairs + Procrustes": seed_rows[100]["mean R@1"],
           "3,000 pairs, trained jointly (chapter 07)": paired_r1},
          name="text → image R@1").round(3)

# %% [markdown]
# Read the last line against the Procrustes rows, knowing what each stands on. The rotations
# learn only 16 × 16 numbers from their seed pairs; they inherit an image space from a classifier
# trained on 3,000 *labelled* images (labels of exactly the attributes the captions name) and a
# text space from MiniLM. The joint model learns both towers from scratch, from 3,000 pairs of
# 16-pixel images and captions, in 8 epochs. In this run the rotations come out ahead: R@1 0.995
# from 18 seed pairs and 1.000 from 100, against 0.825 for joint training (3 seed pairs: 0.344).
# That says which supervision was stronger at this budget, not that rotations beat joint
# training in general: chapter 07 trains the same model on 10,000 pairs at 32 pixels.

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
# * Between embedding spaces that are rotations of each other, about twenty seed pairs fix the
#   rotation in closed form (Procrustes) — in this run 20 with refinement on GloVe, 18 between
#   the 16-d image and text spaces — and CSLS ranks the translations.
# * With no pairs, an adversary can only match distributions; when the spaces have symmetries, a
#   wrong rotation matches as well as the right one (in this run R@1 0.068, no better than chance
#   0.068, while the pair-free criterion was high, 0.894).
# * Comparing distances within each space needs no rotation to start from: Gromov–Wasserstein
#   recovers a rotated GloVe with no pair at all. Between this course's image and text spaces it
#   fails (R@1 0.092, 1.4× chance, in this run), because their distances disagree: they are not
#   near-isomorphic.

# %%
print(f"chapter run time: {time.perf_counter() - CHAPTER_START:.0f} s")
