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
# # 08 · Cross-modal reasoning, part 2: a multimodal transformer, built from attention
#
# **Prerequisites:** `08_reasoning` (part 1: the scenes, the questions and their programs).
# **Study time:** about 60 minutes of reading and the exercises, plus one to two minutes for
# the notebook to run on a two-core laptop.
#
# Article section: **§4.2 跨模态推理** (cross-modal reasoning). The article names the section
# without writing it; this chapter supplies it.
#
# Part 1 showed that each question is a program, and that the question alone gives away no
# more than each family's answer prior. Now a network must learn the reasoning from examples,
# with no program given. The tool of choice since 2017 is the **transformer** (Transformer):
# every token of the image and of the question can look at every other, and the model learns
# where to look. This part builds one from its smallest piece upwards, then trains it.
#
# You will:
#
# 1. write **scaled dot-product attention** (缩放点积注意力) with a padding mask, and check it
#    against PyTorch's fused kernel;
# 2. cut features into **heads** (多头注意力, multi-head attention) and glue them back;
# 3. assemble the **pre-norm block** and the **patch embedding** (图像块嵌入) of ViT, and two ways
#    for an image and a question to meet: one shared encoder, or **cross-attention** (交叉注意力);
# 4. train the cross-attention model for about a minute, then load the same model trained far
#    longer on more questions, and compare the two family by family;
# 5. look at where the trained model's question looks in the image.
#
# **Key terms.** attention (注意力) · query, key, value (查询、键、值) · padding mask (填充掩码) ·
# multi-head attention (多头注意力) · layer normalisation (层归一化) · residual connection
# (残差连接) · patch embedding (图像块嵌入) · single-stream and cross-attention transformers
# (单流与交叉注意力 Transformer).

# %%
import time

CHAPTER_START = time.perf_counter()

from cmlib import runtime
from cmlib.claims import Checkpoints

SEED = runtime.seed_everything()
checkpoint = Checkpoints("08_reasoning_transformer")  # learning checkpoints: asserted and recorded
DEVICE = runtime.device()
print(runtime.describe())

# %%
import math

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F

from cmlib import backbone, viz
from cmlib.data import reasoning
from cmlib.data.reasoning import ANSWERS, FAMILIES, ReasoningDataset
from cmlib.exercises import check
from cmlib.reasoning import models, training
from cmlib.transformer import attention, blocks

# %% [markdown]
# ## 1 · Attention: a soft lookup (注意力)
#
# Attention answers one question for each **query** (查询): which of the **keys** (键) match
# me, and what do their **values** (值) say? A match is a dot product; a softmax turns the
# matches of one query into weights that sum to 1, and the answer is the weighted mean of the
# values:
#
# $$\mathrm{attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{D}}\right) V$$
#
# In a VQA model a query can be the word "circle", the keys and values the image's patches:
# the word collects what the patches that look like circles hold. Here is one query and four
# keys by hand. The query points the same way as the third key, and the opposite way from the
# fourth:

# %%
q = torch.tensor([[1.0, 0.0, 1.0, 0.0]])  # one query, D = 4
k = torch.tensor([[0.0, 1.0, 0.0, 1.0],   # four keys
                  [1.0, 0.0, 0.0, 0.0],
                  [1.0, 0.0, 1.0, 0.0],
                  [-1.0, 0.0, -1.0, 0.0]])
v = torch.eye(4)  # value i is the one-hot vector i: the output shows the weights themselves
weights = (q @ k.T / math.sqrt(4)).softmax(dim=-1)
print("weights:", weights.squeeze().numpy().round(3))
print("output: ", (weights @ v).squeeze().numpy().round(3))
print(f"largest weight: key {weights.argmax().item() + 1} of 4; smallest: key "
      f"{weights.argmin().item() + 1}")

# %% [markdown]
# Even the opposite key keeps a little weight: a softmax never gives exactly zero. That is why
# padding, below, needs a mask rather than a low score.
#
# Why divide by √D? The dot product of two random D-dimensional vectors with unit-variance
# entries has variance D. Without the scaling, longer vectors give larger scores, the softmax
# saturates on one key, and its gradient vanishes for all the others. With it, the scores keep
# unit variance whatever D is:

# %%
for d in (4, 64, 1024):
    scores = torch.randn(2000, d) @ torch.randn(d, 8)
    print(f"D = {d:4d}: score std {scores.std():6.2f} unscaled, "
          f"{(scores / math.sqrt(d)).std():.2f} scaled")

# %% [markdown]
# Questions differ in length, so a batch pads the short ones with a padding token. A padding
# token must never be attended to: its score is set to −∞ before the softmax, so its weight is
# exactly 0 and the real keys share all of it.
#
# **Exercise 8.3 — attention with a padding mask.** Write `masked_attention(q, k, v,
# key_padding_mask)` for `q` of shape `(B, H, Lq, D)`, `k` and `v` of shape `(B, H, Lk, D)`
# (`H` heads; section 2 explains them) and a bool mask `(B, Lk)`, True where a key is padding.
# Return `(output, weights)`, shaped `(B, H, Lq, D)` and `(B, H, Lq, Lk)`. The checker compares
# your output, your weights *and the gradients* flowing back into `q`, `k` and `v` with the
# course's version, to within 1e-5, on random batches with and without padding.

# %%
def masked_attention(q, k, v, key_padding_mask):
    ### BEGIN SOLUTION
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ v, weights
    ### END SOLUTION


check("8.3", masked_attention)

# %% [markdown]
# The course's version, `cmlib.transformer.attention.scaled_dot_product_attention`, is the same
# few lines with checks on the shapes. PyTorch ships a fused kernel that never builds the
# weights matrix; its boolean mask means the opposite ("True: may attend"). The two agree:

# %%
torch.manual_seed(SEED)
qb, kb, vb = (torch.randn(2, 3, 5, 8) for _ in range(3))  # batch 2, 3 heads, 5 tokens, D = 8
padding = torch.tensor([[False] * 5, [False, False, False, True, True]])  # the second: 3 keys
ours, _ = attention.scaled_dot_product_attention(qb, kb, vb, key_padding_mask=padding)
fused = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=~padding[:, None, None, :])
print(f"largest difference from torch's fused kernel: {(ours - fused).abs().max():.1e}")

# %% [markdown]
# ## 2 · Many heads (多头注意力)
#
# One attention map mixes everything a query might look for. **Multi-head attention** cuts the
# `E` features of each token into `H` heads of `E / H` features, and lets each head attend on
# its own: one head can follow colour while another follows position. Each head's output is
# glued back into `E` features, and a linear layer mixes them.
#
# **Exercise 8.4 — cut each token's features into heads.** Write `split_heads(x, num_heads)`:
# `(B, L, E)` → `(B, H, L, E / H)`, where head `h` of token `l` holds features
# `h·E/H … (h+1)·E/H − 1` of that token. The checker compares with the course's version
# exactly, and tries the two usual mistakes on you first: see its hint if you are stuck.

# %%
def split_heads(x, num_heads):
    ### BEGIN SOLUTION
    b, length, e = x.shape
    return x.view(b, length, num_heads, e // num_heads).transpose(1, 2)
    ### END SOLUTION


check("8.4", split_heads)

# %% [markdown]
# **Exercise 8.5 — glue the heads back together.** Write `merge_heads(x)`: `(B, H, L, D)` →
# `(B, L, H·D)`, the inverse of `split_heads`.

# %%
def merge_heads(x):
    ### BEGIN SOLUTION
    b, h, length, d = x.shape
    return x.transpose(1, 2).reshape(b, length, h * d)
    ### END SOLUTION


check("8.5", merge_heads)

# %% [markdown]
# The course's `MultiHeadAttention` projects queries, keys and values, splits them into heads,
# attends, merges and projects again. Loaded with the same weights as PyTorch's
# `nn.MultiheadAttention`, it gives the same output and the same head-averaged weights:

# %%
torch.manual_seed(SEED)
ours = attention.MultiHeadAttention(embed_dim=16, num_heads=4).eval()
theirs = torch.nn.MultiheadAttention(16, 4, batch_first=True).eval()
attention.load_into_torch(ours, theirs)
x, mem = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
mem_padding = torch.tensor([[False] * 7, [False] * 4 + [True] * 3])
out_ours, w_ours = ours(x, mem, mem, key_padding_mask=mem_padding)
out_theirs, w_theirs = theirs(x, mem, mem, key_padding_mask=mem_padding)
print(f"outputs differ by at most {(out_ours - out_theirs).abs().max():.1e}, "
      f"weights by {(w_ours.mean(dim=1) - w_theirs).abs().max():.1e}")

# %% [markdown]
# ## 3 · The block, the patches, and two ways to meet
#
# A transformer **block** adds two things to attention. A feed-forward network works on each
# token alone after the tokens have exchanged information. Around each of the two, a
# **residual connection** (残差连接) adds the input back, and a **layer normalisation**
# (层归一化) comes *first* ("pre-norm"): `x + attention(LN(x))`, then `x + MLP(LN(x))`. Pre-norm
# keeps an unchanged path from the output back to the input, which is what lets deep stacks
# train without a careful warm-up. The block keeps the shape of its input:

# %%
block = blocks.TransformerBlock(dim=64, num_heads=4, mlp_ratio=2.0)
tokens = torch.randn(2, 36, 64)
print(f"block: {tuple(tokens.shape)} → {tuple(block(tokens).shape)}, "
      f"{sum(p.numel() for p in block.parameters()):,} parameters")

# %% [markdown]
# **What the image tokens are.** ViT cuts an image into patches and embeds each patch with one
# linear map (`PatchEmbedding`, a convolution whose stride equals its kernel). Raw pixels would
# make the transformer learn vision and reasoning at once, from questions alone, on a CPU. So
# the image first goes through a small frozen CNN, a **scene tagger**: chapter 05's cell tagger,
# trained here to name, for each 4 × 4-pixel cell of the 48-pixel image, the colour, shape and
# size of the object whose centre lies in it (or that none does). Its features form a 12 × 12
# grid, and the transformer cuts that grid into 2 × 2-cell patches: 36 image tokens, each with
# a learned position embedding. The tagger belongs to the long run shipped with the course
# (section 5 says more); part 3 reads scene graphs off its tags.

# %%
from cmlib.longrun.recipes import long_run

LONG = "ch08-reasoning"
bundle, manifest, status = long_run(LONG, SEED if runtime.profile() == "gpu" else 0, DEVICE)
tagger = bundle["tagger"].encoder
config = manifest["config"]
side, patch = tagger.grid_size, config["patch_size"]
print(f"{LONG} ({status}): tagger grid {tagger.out_channels} × {side} × {side}; "
      f"reasoner patches of {patch} × {patch} cells")

# %% [markdown]
# The question becomes word tokens with their own position embedding. Then there are two ways
# for the streams to meet (`cmlib.transformer`):
#
# * **single stream** (单流, as in ViLT and VisualBERT): `[CLS] + patches + words` go through
#   one encoder, each token marked with a type embedding (image or word); every token attends to
#   every other, and the answer is read from `[CLS]`;
# * **cross-attention** (交叉注意力, as in LXMERT's cross layers or a captioner's decoder): the
#   patches first attend among themselves; then each word attends to the other words *and* to
#   the patches; the answer is read from the mean of the words.

# %%
vocab, channels, grid = len(reasoning.question_vocab()), tagger.out_channels, tagger.grid_size
architectures = {}
for name in ("single_stream", "cross_attention"):
    model = models.make_reasoner(name, vocab, len(ANSWERS), channels, grid, config["dim"],
                                 config["depth"], config["patch_size"])
    architectures[name] = {"parameters": sum(p.numel() for p in model.parameters()),
                           "image tokens": model.patches.num_patches}
pd.DataFrame(architectures).T.rename_axis("reasoner")

# %% [markdown]
# ## 4 · Train it: one minute of the cross-attention transformer
#
# The data: training questions of part 1's generator, each with its image turned into the
# tagger's grid once (the tagger is frozen, so its grids can be computed ahead of time and kept
# in half precision).

# %%
NUM_TRAIN = runtime.pick(cpu=12_000, gpu=150_000)
NUM_TEST = 2_000
STEPS = runtime.pick(cpu=1_200, gpu=24_000)
EVAL_EVERY = runtime.pick(cpu=200, gpu=2_000)


def grids_of(dataset, items, chunk=2000):
    """The frozen tagger's grids of the items' images, a chunk of images at a time."""
    out = []
    for lo in range(0, len(items), chunk):
        images = torch.from_numpy(dataset.images(items[lo:lo + chunk])).permute(0, 3, 1, 2)
        out.append(backbone.grid_features(tagger, images, DEVICE).half())
    return torch.cat(out)


train_set = ReasoningDataset("train", NUM_TRAIN, seed=SEED)
test_set = ReasoningDataset("test", NUM_TEST, seed=SEED)
start = time.perf_counter()
train_items, test_items = train_set.items(range(NUM_TRAIN)), test_set.items(range(NUM_TEST))
train_grids, test_grids = grids_of(train_set, train_items), grids_of(test_set, test_items)
train_q, train_a, _ = reasoning.encode_items(train_items)
test_q, test_a, test_f = reasoning.encode_items(test_items)
print(f"{NUM_TRAIN:,} training and {NUM_TEST:,} test grids {tuple(train_grids.shape[1:])} "
      f"in {time.perf_counter() - start:.0f} s")

# %% [markdown]
# The training loop is the course's `fit` (inside `training.train_reasoner`): AdamW, a constant
# rate for half the steps and a linear decay to zero after, cross-entropy on the answer. Every
# `EVAL_EVERY` steps it scores the test questions, for the curve below.

# %%
def test_accuracy(model):
    predicted = training.predict_answers(model, test_grids, test_q, DEVICE)
    return training.accuracy_by_family(predicted, test_a, test_f)


runtime.seed_everything(SEED)
short = models.make_reasoner("cross_attention", vocab, len(ANSWERS), channels, grid,
                             config["dim"], config["depth"], config["patch_size"])
start = time.perf_counter()
history = training.train_reasoner(
    short, train_grids, train_q, train_a, STEPS, DEVICE, config["batch_size"], config["lr"],
    seed=SEED, eval_fn=lambda m: {"accuracy": test_accuracy(m)["all"]}, eval_every=EVAL_EVERY)
short_seconds = time.perf_counter() - start
short_scores = test_accuracy(short)
print(f"live run: {STEPS:,} steps on {NUM_TRAIN:,} questions in {short_seconds:.0f} s → "
      f"{short_scores['all']:.3f} of the test questions right")

# %% [markdown]
# ## 5 · The long run: the same model, trained longer
#
# The long run `ch08-reasoning` is the same cross-attention transformer, same width, depth and
# learning rate, trained on the same tagger's grids of more questions for more steps
# (`make models NAMES="ch08-reasoning"`; `chapters/notes/models.md` has its runs). In the cpu
# profile it is loaded from `models/`; in the gpu profile it is trained live. It answers the same
# test questions:

# %%
long_scores = test_accuracy(bundle["reasoner"])
prior = reasoning.majority_rates(test_items, reference=train_items)
table = pd.DataFrame({
    "answer prior": prior["families"] | {"all": prior["per_family"]},
    f"live run ({NUM_TRAIN // 1000}k questions, {STEPS:,} steps)": short_scores,
    f"long run ({config['num_train'] // 1000}k questions, {manifest['steps']:,} steps)":
        long_scores,
}).loc[[*FAMILIES, "all"]]
print(f"long run: trained for {manifest['wall_seconds'] / 60:.0f} min on {manifest['device']} "
      f"with {manifest['threads']} threads")
table.round(3)

# %% [markdown]
# > **Learning checkpoint.** The long-run transformer answers at least 0.90 of the i.i.d. test
# > questions.

# %%
checkpoint("long-run-iid", long_scores["all"], ">=", 0.90, baseline=prior["per_family"]);

# %% [markdown]
# Which families does each run still get wrong most often?

# %%
for name, scores in (("live run", short_scores), ("long run", long_scores)):
    weakest = sorted(FAMILIES, key=scores.get)[:3]
    print(f"{name}, weakest families: "
          + ", ".join(f"{f} {scores[f]:.2f} (prior {prior['families'][f]:.2f})" for f in weakest))

# %% [markdown]
# In this run, a minute of training taught the one-step questions first: reading an attribute of
# an object the question names. Counting, comparing and relating take longer; what the long run
# still misses most often are the families that chain a relation onto a description
# (`count_relate`, `exist_relate`, `query_relate`). Part 3 asks whether that is a matter of
# training time or of architecture, by putting other reasoners beside this one.

# %% [markdown]
# The manifest keeps the long run's test accuracy during training. Drawn on the same axes as
# the live run's curve, it shows what the extra steps and questions bought:

# %%
curve = manifest["curve"]
fig, ax = plt.subplots(figsize=(7, 3.4))
ax.plot(curve["step"], curve["accuracy"], "o-",
        label=f"long run ({config['num_train']:,} questions)")
live_steps = [EVAL_EVERY * (k + 1) for k in range(len(history.metrics))]
ax.plot(live_steps, [m["accuracy"] for m in history.metrics], "s-",
        label=f"live run ({NUM_TRAIN:,} questions)")
ax.axhline(prior["per_family"], color="grey", ls=":", label="answer prior")
ax.set(title="Test accuracy of the cross-attention transformer during training",
       xlabel="training step (batches of 64)", ylabel="test accuracy", ylim=(0, 1), xscale="log")
ax.legend(fontsize=8)
viz.show(fig, "Line plot, log-scaled steps, of test accuracy against training step for the "
         "long-run and the live cross-attention transformer, with the answer prior as a dotted "
         "line.")

# %% [markdown]
# ## 6 · Where does the question look?
#
# The cross-attention weights say, for each word of the question and each head, how much of
# each patch it read. Averaged over the words of a question, they make one map per head over
# the 6 × 6 patches. Here is a relational question for the long-run model:

# %%
item = next(i for i in test_items if i.family == "query_relate")
index = test_items.index(item)
reasoner = bundle["reasoner"]
with torch.no_grad():
    answer = ANSWERS[reasoner(test_grids[index:index + 1].float(), test_q[index:index + 1])
                     .argmax().item()]
maps = [reasoner.patch_attention(layer) for layer in range(config["depth"])]  # (1, H, 6, 6) each
image = torch.from_numpy(test_set.images([item])[0])
heads = maps[-1].shape[1]
fig, axes = plt.subplots(1, 2 + heads, figsize=(2.1 * (2 + heads), 2.5))
axes[0].imshow(image)
axes[0].set_title("scene", fontsize=9)
axes[1].imshow(image)
axes[1].imshow(maps[0][0].mean(0), cmap="magma", alpha=0.6, extent=(0, 48, 48, 0))
axes[1].set_title("layer 1, mean of heads", fontsize=9)
for h in range(heads):
    axes[2 + h].imshow(image)
    axes[2 + h].imshow(maps[-1][0, h], cmap="magma", alpha=0.6, extent=(0, 48, 48, 0))
    axes[2 + h].set_title(f"layer {config['depth']}, head {h + 1}", fontsize=9)
for ax in axes:
    ax.axis("off")
fig.suptitle(f"{item.question} (answer: {item.answer}; the model says {answer})", fontsize=10)
viz.show(fig, "A test scene, then the same scene overlaid with the question's cross-attention "
         "over the 6 by 6 patches: the mean over heads in the first layer, and each head of "
         "the last layer.")

# %% [markdown]
# The same maps as numbers: for each object of the scene, the share of each map that falls on
# the patch holding its centre (36 patches, so a map spread evenly would give each 0.03):

# %%
side = maps[-1].shape[-1]  # patches per side
shares = {}
for obj in item.graph["objects"]:
    row, col = min(int(obj["y"] * side), side - 1), min(int(obj["x"] * side), side - 1)
    name = f"{obj['size']} {obj['color']} {obj['shape']}"
    shares[name] = {"layer 1, mean": maps[0][0, :, row, col].mean().item(),
                    **{f"layer {config['depth']}, head {h + 1}": maps[-1][0, h, row, col].item()
                       for h in range(heads)}}
print(item.question)
pd.DataFrame(shares).T.rename_axis("object").round(2)

# %% [markdown]
# Read the maps with care: attention says where a head *read*, not why the model answered.
# A head can read the object the question names, its neighbours, or the background that
# tells where nothing is; several heads together carry the answer.
#
# ## Summary
#
# * Attention is a soft lookup: `softmax(QKᵀ/√D)V`. The √D keeps the scores' spread the same
#   for every width, and a padding mask sets padding scores to −∞ before the softmax.
# * Multi-head attention cuts each token into heads that attend on their own, then glues them
#   back; the course's module matches PyTorch's to rounding.
# * A pre-norm block is `x + attention(LN(x))`, then `x + MLP(LN(x))`; images enter as patch
#   tokens (here patches of a frozen tagger's grid), questions as word tokens, and they meet in
#   one stream or through cross-attention.
# * On these questions, the same transformer that reached the live run's score in about a
#   minute reaches the long run's with more questions and steps (both printed above).
#
# Part 3 trains FiLM, a relation network and both transformers side by side, next to the
# neuro-symbolic model that reads the tagger's scene graphs, and compares them family by family.

# %%
print(f"chapter run time: {time.perf_counter() - CHAPTER_START:.0f} s")
