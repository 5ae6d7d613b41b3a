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
# # 07 · Part 2: does a dual encoder read "left of"? Relations, word order and hard negatives
#
# **Prerequisites:** `07_retrieval` (the dual encoder, the contrastive loss, recall@K with
# relevance defined by attributes). **Study time:** about 35 minutes of reading and the exercises,
# plus about 1½ minutes for the notebook to run on a two-core laptop.
#
# Part 1's retrieval model reached R@1 1.000 on one-object scenes: a score that cannot show a
# model getting worse. This part makes the task harder, with the kind of prompt that
# **跨模态检索** (cross-modal retrieval), the application the article's **§3.1 提示词的概念与应用**
# (prompts: concept and applications) names, has to handle: prompts that say how things stand
# to each other, "a red circle to the left of a blue square". Swap the two objects and the same
# words describe another scene, its mirror image. A model that reads a caption as a **bag of
# words** (词袋), or an image as a bag of local features, cannot tell the two apart. Reading "red
# circle left of blue square" as more than its parts is **compositionality** (组合性).
#
# You will:
#
# 1. train part 1's dual encoder on two-object scenes and measure retrieval (not at 1.0 any more);
# 2. run the **swap test** (交换测试): does an image prefer its own caption to the swapped one?
# 3. look for the tower at fault, and read what a run of all four combinations showed;
# 4. write the contrastive loss with **hard negatives** (困难负样本), as NegCLIP (introduced in
#    section 4) does, and train a model whose image tower keeps the scene's **layout** (空间布局).
#
# **Key terms.** relation (关系) · word order (词序) · bag of words (词袋) · compositionality
# (组合性) · swap test (交换测试) · hard negative (困难负样本) · global average pooling
# (全局平均池化) · spatial layout (空间布局).

# %%
import time

CHAPTER_START = time.perf_counter()

from cmlib import runtime
from cmlib.claims import Checkpoints

SEED = runtime.seed_everything()
checkpoint = Checkpoints("07_retrieval_relations")  # learning checkpoints: asserted and recorded
DEVICE = runtime.device()
print(runtime.describe())

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F

from cmlib import relation_retrieval, viz
from cmlib.exercises import check, use_if_passed

# %% [markdown]
# ## 1. Two-object scenes, and each caption's swapped twin
#
# Every scene holds two objects in one of four relations (left of, right of, above, below). Each
# scene has five captions: the canonical one, and four paraphrases with synonyms (three of them
# leave out the sizes), one of which turns the relation around ("an orange ball to the left of a
# purple triangle" for "a purple triangle to the right of an orange circle"). For the test (and,
# in section 4, for training), each scene also gets its **swapped caption**: the canonical
# caption with the two objects exchanged. It uses exactly the same words.

# %%
NUM_TRAIN = runtime.pick(cpu=10_000, gpu=30_000)
NUM_EPOCHS = runtime.pick(cpu=4, gpu=12)
train = relation_retrieval.load_relation_split("train", NUM_TRAIN, seed=SEED)
test = relation_retrieval.load_relation_split("test", 1000)
for i in range(3):
    print(f"{test.captions[i][0]!r:70} swapped: {test.swapped[i]!r}")
fig = viz.show_images(test.images[:6], [c[0] for c in test.captions[:6]], ncols=3, cell_size=2.4,
                      wrap=30, title="Two-object test scenes and their canonical captions")
viz.show(fig, "Grid of six two-object ShapesWorld test images, each captioned with its "
         "canonical caption naming both objects and their relation.")

# %% [markdown]
# A retrieved image counts as relevant when it shows the same scene as the caption, in either
# order of telling: "A left of B" and "B right of A" are the same scene.

# %% [markdown]
# ## 2. Part 1's model on relations
#
# Part 1's dual encoder, unchanged: chapter 01's CNN as the image tower (three conv blocks, then
# **global average pooling** over the 4 × 4 grid of features), chapter 02's GRU as the text tower.
# The same recipe as part 1: AdamW, a one-cycle schedule, a fresh paraphrase each time.
#
# **Question 7.6 — predict, then run.** Part 1's model retrieved one-object scenes almost without a
# miss. Here, for each test scene, it must score the scene's own caption above the *swapped*
# caption, the same words with the two objects exchanged. What share of scenes will it get right:
# (a) 0.70 or less, close to a coin's 0.5, (b) between 0.70 and 0.90, or (c) above 0.90? Set
# `prediction` to `"a"`, `"b"` or `"c"` before you run the cells after it.

# %%
### BEGIN SOLUTION
prediction = "a"
### END SOLUTION
check("7.6", prediction)

# %%
def train_model(pool, step_fn, desc):
    # part 1's recipe (AdamW, one-cycle, a fresh paraphrase each time), in cmlib
    model, _ = relation_retrieval.train_relation_model(
        train, DEVICE, pool=pool, step_fn=step_fn, num_epochs=NUM_EPOCHS, seed=SEED, desc=desc)
    return model


pooled = train_model("mean", relation_retrieval.plain_step, "pooled, CLIP loss")
results = {"pooled image tower, CLIP loss": relation_retrieval.relation_metrics(pooled, test,
                                                                                DEVICE)}
pd.DataFrame(results).T.round(3)

# %% [markdown]
# Retrieval is no longer perfect, and R@1 can now show a model getting worse: part 1's R@1 was
# 1.0 in every one of the course's seeds runs, where a change that cost a few points would have
# gone unseen.
#
# > **Learning checkpoint.** On two-object scenes, part 1's model still retrieves: text → image
# > R@1 ≥ 0.60, far above chance (how often a random image shows the caption's scene, printed
# > below).

# %%
pooled_r1 = results["pooled image tower, CLIP loss"]["t2i R@1"]
same_scene = test.scene_ids[:, None] == test.scene_ids[None, :]
r1_chance = same_scene.float().mean().item()  # the chance that a random image is relevant
print(f"text → image R@1 {pooled_r1:.3f} (chance {r1_chance:.4f})")
checkpoint("pooled-relations-t2i-R@1", pooled_r1, ">=", 0.60, chance=r1_chance);

# %% [markdown]
# The swap test reads more: for each test scene, does its image score its own caption above the
# swapped one? A coin scores 0.5.

# %% [markdown]
# > **Learning checkpoint.** Part 1's model, trained on relations, barely beats a coin on the swap
# > test: swap accuracy ≤ 0.70.

# %%
pooled_swap = results["pooled image tower, CLIP loss"]["swap accuracy"]
print(f"swap accuracy {pooled_swap:.3f} (a coin: 0.5)")
checkpoint("pooled-swap-near-chance", pooled_swap, "<=", 0.70, chance=0.5);

# %% [markdown]
# The answer to question 7.6 is (a), by the checkpoint above: the model that composed colour and
# shape without a miss in part 1 tells a scene from its mirror image little better than a coin.
#
# ## 3. Which tower is at fault?
#
# The text tower is a GRU: it reads words in order, so it *can* tell "A left of B" from "B left of
# A". Does it? Compare each caption's embedding with its swapped caption's: identical vectors
# (cosine 1) would mean the tower ignores the order.

# %%
def caption_swap_cosine(model, split):
    """Mean cosine between each canonical caption's embedding and its swapped caption's."""
    with torch.no_grad():
        model.eval()
        own = model.encode_text(split.ids[:, 0].to(DEVICE), split.lengths[:, 0].to(DEVICE))
        swapped = model.encode_text(split.swapped_ids.to(DEVICE), split.swapped_lengths.to(DEVICE))
    return F.cosine_similarity(own, swapped).cpu()[~split.symmetric].mean().item()


print(f"caption vs its swap, text tower: mean cosine {caption_swap_cosine(pooled, test):.3f}")

# %% [markdown]
# The mean cosine printed above is close to 1: the text tower maps a caption and its swap to very
# similar vectors, although a GRU could keep them apart. That is a symptom, not yet a cause:
# nothing in training made the text tower keep them apart if the image tower cannot say which
# object is where, since a text tower that kept the order would then gain nothing in the match.
#
# The image tower is the likely culprit. Global average pooling averages the 16 cells of the
# grid and forgets which cell each feature came from, the visual twin of a bag of words. The
# tower can then tell "red left of blue" from "blue left of red" only through features that
# already combine the two objects (each cell sees most of the image) or through what the padding
# at the border leaks. In this run it did not learn to. Part 1 needed no more: with one object,
# no colour has to be tied to a place relative to another. The comparison at the end of section
# 4 decides between the towers.

# %% [markdown]
# ## 4. Hard negatives, and an image tower that keeps the layout
#
# Two changes, each aimed at one cause.
#
# * **Hard negatives.** Only a few captions in a batch of random scenes are another caption's
#   swap, so the loss asks for word order only now and then. NegCLIP (Yuksekgonul et al., 2023)
#   adds, for each image, a caption with the same words as the scene's own canonical caption, in
#   another order, which must be rejected. Here: the swapped caption.
# * **Keep the layout.** `pool="flatten"` projects the whole 4 × 4 grid instead of its average, so
#   the embedding can say which object sits where.
#
# **Exercise 7.7 — the contrastive loss with hard negatives.** `image_features`,
# `text_features` and `negative_features` are (N, D) unit vectors; row i of `negative_features` is
# a caption image i must reject. Image i picks its caption among the N captions *and* the N
# negatives (2N logits, target i); each caption still picks its image among the N images. Average
# the two cross-entropies. The check compares your loss with cmlib's `hard_negative_clip_loss` on
# random inputs, to within 1e-5 + 1e-4 × |cmlib's value|, and then your gradients with respect to
# the three feature matrices and `logit_scale` (a scalar tensor), to the same tolerance. The
# layout model below trains with your loss.

# %%
def hard_negative_loss(image_features, text_features, negative_features, logit_scale):
    ### BEGIN SOLUTION
    labels = torch.arange(len(image_features), device=image_features.device)
    texts = torch.cat([text_features, negative_features])
    per_image = logit_scale * image_features @ texts.T
    per_text = logit_scale * text_features @ image_features.T
    return (F.cross_entropy(per_image, labels) + F.cross_entropy(per_text, labels)) / 2
    ### END SOLUTION


check("7.7", hard_negative_loss)

# %% [markdown]
# Now both changes at once. The layout model trains with your `hard_negative_loss` where exercise
# 7.7 passed, else with cmlib's `hard_negative_clip_loss`, so that the chapter runs to the end
# either way:

# %%
from functools import partial

loss_fn = use_if_passed("7.7", hard_negative_loss, relation_retrieval.hard_negative_clip_loss,
                        "the layout model trains with", device=DEVICE)
layout_step = partial(relation_retrieval.hard_negative_step, loss_fn=loss_fn)
layout = train_model("flatten", layout_step, "layout, hard negatives")
results["layout image tower, hard negatives"] = relation_retrieval.relation_metrics(
    layout, test, DEVICE)
pd.DataFrame(results).T.round(3)

# %%
pooled_row = results["pooled image tower, CLIP loss"]
layout_row = results["layout image tower, hard negatives"]
print(f"swap accuracy {layout_row['swap accuracy']:.3f} (layout) vs "
      f"{pooled_row['swap accuracy']:.3f} (pooled); R@1 {layout_row['t2i R@1']:.3f} vs "
      f"{pooled_row['t2i R@1']:.3f}; caption vs its swap, mean cosine "
      f"{caption_swap_cosine(layout, test):.3f} vs {caption_swap_cosine(pooled, test):.3f}")

# %% [markdown]
# In this run the layout tower with hard negatives passed the swap test far more often than the
# pooled model, at about the same R@1 (the line above): it tells mirrored scenes apart without
# retrieving much better overall. Its text tower now keeps a caption and its swap further apart
# (the two mean cosines).
#
# This part sets no learning checkpoint on the layout model, and that is a result too. Over the
# course's runs with seeds 0–4 on two threads and seed 0 on one (a different thread count
# changes the rounding, which acts like another seed), with an earlier version of this recipe
# that also applied weight decay to the biases and the temperature, its swap accuracy ranged
# from 0.86 to 0.997 and, over the five seeds, its R@1 from 0.62 to 0.82
# (`chapters/notes/07_retrieval.md`):
# too wide a spread for a claim that must hold on every computer. One likely reason: the image
# tower's last linear layer now has 16 times as many inputs (1,024 instead of 64) to learn from
# 10,000 scenes, and with 6,000 scenes it did worse still. More data or more epochs than this
# notebook's time allows are the next thing to try.
#
# Which change did the work? This notebook trains only the two ends, to stay within its time. The
# course's runs of all four combinations (seed 0, the same sizes; `chapters/notes/07_retrieval.md`)
# give swap accuracies of 0.557 (pooled, CLIP loss), 0.630 (pooled, hard negatives), 0.985
# (layout, CLIP loss) and 0.981 (layout, hard negatives). That script built the layout tower by
# hand with another initialisation order and the earlier recipe, and another machine's rounding
# acts like another seed, so its numbers differ from this notebook's table as another seed's
# would. The spread between runs is larger than the gap between the
# script's last two rows. Keeping the layout did nearly all of it in that run; adding hard
# negatives to it made no difference that can be told apart from run-to-run variation. Hard
# negatives cannot make an image tower report an arrangement its pooling has already thrown away.

# %%
fig, ax = plt.subplots(figsize=(9, 3.4))
names = list(results)
bars = [("swap accuracy", "swap accuracy", "tab:blue"),
        ("t2i R@1", "text-to-image R@1", "tab:green")]
for k, (metric, label, color) in enumerate(bars):
    ax.bar([i + 0.38 * k for i in range(len(names))], [results[n][metric] for n in names],
           width=0.36, color=color, label=label)
ax.axhline(0.5, color="grey", linestyle=":", label="a coin on the swap test (0.5)")
ax.set_xticks([i + 0.19 for i in range(len(names))], names, fontsize=8)
ax.set(title="Two-object retrieval: swap test and R@1", ylabel="share of test scenes", ylim=(0, 1))
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the bars, not on them
fig.tight_layout()
viz.show(fig, "Bar chart of swap accuracy and text-to-image R@1 for the pooled model with the "
         "CLIP loss and the layout model with hard negatives, with a dotted line at 0.5.")

# %% [markdown]
# ## Summary
#
# * On two-object scenes with relations, part 1's dual encoder retrieves scenes well by R@1 but
#   reads an image as a bag of local features: its swap test is close to a coin's.
# * The text tower could read word order; the image tower's global average pooling forgot where
#   each object was. Keeping the 4 × 4 layout (trained with hard negatives) lifted the swap test
#   far above a coin (0.86 to 0.997 in the course's runs of the earlier recipe), though not yet
#   reliably enough for a learning checkpoint.
# * Hard negatives (NegCLIP) put word order into the loss, but here they changed little: 0.557 →
#   0.630 with the pooled tower (one seed, the script's run), and nothing measurable once the
#   layout was kept. Yuksekgonul et al. (2023) found the same bag-of-words behaviour in CLIP and
#   traced it to training: ordinary retrieval data rarely needs word order. This small model adds
#   a second side: what the architecture can represent.

# %%
print(f"chapter took {time.perf_counter() - CHAPTER_START:.0f} s")
