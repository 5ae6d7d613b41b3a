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
# # 05 · Encoder–decoder models, part 4: a prompt becomes an image, one token at a time
#
# **Article sections:** §3.2.2 基于编码器-解码器模型的跨模态学习 and §3.2.2.2 跨模态序列生成
# (cross-modal sequence generation). Parts 1–3 (`05_captioning`, `05_captioning_exposure`,
# `05_captioning_heldout`) went from image to text. This part and the next
# (`05_text_to_image_fidelity`) go the other way.
#
# **Prerequisites:** `04_prompt_generation` (the prompts and the judge) and `05_captioning`
# (generating one token at a time, and sampling). **Study time:** about 20 minutes of reading
# and exercises, plus about 3 minutes for the notebook to run on a two-core laptop.
#
# A caption is a sequence of word tokens. If an image were a sequence of *image* tokens, the same
# machinery — predict the next token from the ones before it and the prompt — would draw pictures.
# That is DALL·E's recipe (Ramesh et al., 2021): a discrete image vocabulary, then an
# autoregressive model of image tokens conditioned on text. Here it is in miniature, on chapter
# 04's one-object 16×16 photos, judged by chapter 04's judge.
#
# **You will:**
# 1. build an image vocabulary: k-means over 2×2 patches, and measure what it can still express;
# 2. see an image as a sentence of 64 tokens;
# 3. train a gated PixelCNN that writes those sentences from a prompt, and check that it is causal;
# 4. sample with a temperature and guidance, and watch a picture being written token by token.
#
# Part 5 (`05_text_to_image_fidelity`) then scores this model's prompt fidelity beside chapter
# 04's CVAE and cGAN.
#
# **Key terms.** image token (图像词元) · codebook (码本) · vector quantisation (向量量化) ·
# autoregressive model (自回归模型) · raster order (光栅顺序) · sampling temperature (采样温度) ·
# classifier-free guidance (无分类器引导).

# %%
# %matplotlib inline
import time

CHAPTER_START = time.perf_counter()

import matplotlib.pyplot as plt
import numpy as np
import torch

from cmlib import runtime, viz
from cmlib.claims import Checkpoints

SEED = runtime.seed_everything()
checkpoint = Checkpoints("05_text_to_image")  # learning checkpoints: asserted and recorded
DEVICE = runtime.device()
print(runtime.describe())

# One recipe, shared with part 5 (which loads this part's model from the registry, or trains
# it the same way): its sizes for this run profile. The cpu profile is sized for about two
# minutes of training on 2 cores.
from cmlib.generation.token_recipe import TokenPriorRecipe

RECIPE = TokenPriorRecipe.for_profile(runtime.profile())
print(RECIPE)
IMAGE_SIZE, NUM_CODES, PATCH = RECIPE.image_size, RECIPE.num_codes, RECIPE.patch
GUIDANCE = 3.0
TEMPERATURE = 0.7

# %% [markdown]
# ## 1. Data, prompts and the judge (as in chapter 04)
#
# One object per image, photo style; a fresh prompt per image each time it is seen. The judge is
# chapter 04's attribute classifier, shipped in `models/`: trained on real photos only, perturbed
# so that it reads content, not sharpness.

# %%
from cmlib.data.shapes import COLORS, SHAPES
from cmlib.data.shapes.tasks import one_object_photos
from cmlib.judge import judge_accuracy, reference_judge, reference_judge_name

x_train, a_train, train_prompts = RECIPE.data(SEED)  # train_prompts: indices -> fresh prompts
x_test, a_test = one_object_photos("test", 1000, IMAGE_SIZE, SEED)

judge, judge_status = reference_judge(DEVICE, SEED)  # chapter 04's judge, shipped in models/
print(f"{reference_judge_name(SEED)}: {judge_status}")
judge_real = judge_accuracy(judge, x_test, a_test)["color+shape"]
print(f"judge on real test images, colour+shape: {judge_real:.3f}")

# %% [markdown]
# ## 2. An image vocabulary: vector quantisation (向量量化)
#
# Cut every image into 2×2 patches (12 numbers each) and cluster a sample of them with k-means.
# The 512 centres are the vocabulary; an image becomes, for each patch, the index of its nearest
# centre. The idea is two lines:

# %%
from cmlib.generation.codebook import PatchCodebook, kmeans, to_patches

patches = to_patches(x_train[:200], PATCH).flatten(0, 1)  # (200 · 64, 12)
centres = kmeans(patches, 16, seed=SEED)  # a toy vocabulary of 16 patches
tokens_by_hand = torch.cdist(patches, centres).argmin(1)  # nearest centre = the token
print(f"{len(patches)} patches of {patches.shape[1]} numbers → tokens in [0, 16):",
      tokens_by_hand[:12].tolist())

# %% [markdown]
# `PatchCodebook` does the same at full size, and decodes tokens back to pixels. Quantising loses
# detail, so the codebook sets a **ceiling**: the judge's accuracy on real test images after a
# round trip through tokens. No token model can draw better than its vocabulary can express.

# %%
codebooks = {32: PatchCodebook.fit(x_train, 32, PATCH, seed=SEED),
             NUM_CODES: RECIPE.fit_codebook(x_train, SEED)}
ceiling = {}
for k, book in codebooks.items():
    rebuilt = book.decode(book.encode(x_test))
    ceiling[k] = judge_accuracy(judge, rebuilt, a_test)["color+shape"]
    print(f"K = {k:>3}: judge colour+shape on round-tripped test images {ceiling[k]:.3f}")
print(f"(real images: {judge_real:.3f})")
codebook = codebooks[NUM_CODES]

# %%
from cmlib.viz import show_images

round_trips = [x_test[:8]] + [b.decode(b.encode(x_test[:8])) for b in codebooks.values()]
labels = ["real"] + [f"K = {k}" for k in codebooks]
viz.show(
    show_images(torch.cat(round_trips), ncols=8,
                captions=[label if i == 0 else "" for label in labels for i in range(8)],
                title="Test images (top) and their round trips through two codebooks"),
    "Grid of the same eight test images in three rows: real, then round-tripped through the "
    "smaller and the larger patch codebook, each row labelled above its first image.",
)

# %% [markdown]
# ## 3. An image is a sentence
#
# With 2×2 patches a 16×16 image is an 8×8 grid of tokens: 64 words, read in raster order
# (光栅顺序), row by row. The photo style's backgrounds are textured, so even the background is
# spread over many codes.

# %%
GRID = RECIPE.grid
train_tokens = codebook.encode(x_train).view(-1, GRID, GRID)
first = {k: a_train[k][0].item() for k in ("color", "shape")}
print(f"image 0 ({COLORS[first['color']]} {SHAPES[first['shape']]}) as tokens:")
print(train_tokens[0].numpy())
counts = torch.bincount(train_tokens.flatten(), minlength=NUM_CODES).sort(descending=True).values
share_top = counts[:NUM_CODES // 10].sum().item() / counts.sum().item()
print(f"the commonest 10% of the codes make up {share_top:.0%} of all tokens")

# %% [markdown]
# ## 4. A model that writes image sentences
#
# `PromptPixelCNN` predicts every token from the tokens before it and the prompt:
# p(image) = ∏ᵢ p(tokenᵢ | token₁ … tokenᵢ₋₁, prompt). It is a gated PixelCNN: two stacks of
# masked convolutions, and the prompt, turned into a map over the grid, inside every gate (read
# `cmlib/generation/autoregressive.py`). One forward pass scores all 64 positions at once —
# teacher forcing for free.
#
# Whether the convolutions really keep to that product is a claim we can check: change one token
# and see which positions' predictions move.
#
# **Question 5.12 — predict, then run.** Change the token at row 3, column 4 of an image's
# sentence. Whose predictions can move: (a) every position's, (b) only those of positions after
# (3, 4) in raster order, or (c) only those of the eight neighbours of (3, 4)? Set `prediction`
# to `"a"`, `"b"` or `"c"` before you run the cells after it.

# %%
from cmlib.exercises import check

### BEGIN SOLUTION
prediction = "b"
### END SOLUTION
check("5.12", prediction)

# %%
from cmlib.generation.autoregressive import TokenImageGenerator
from cmlib.train import count_parameters

runtime.seed_everything(SEED)
prior, text_encoder = RECIPE.build()  # PromptPixelCNN(NUM_CODES, GRID, …) and its prompt encoder
print(f"{count_parameters(prior):,} parameters in the PixelCNN")

probe_c = torch.randn(1, RECIPE.cond_dim, generator=torch.Generator().manual_seed(SEED))
probe_tokens = train_tokens[:1].clone()
changed = probe_tokens.clone()
changed[0, 3, 4] = (changed[0, 3, 4] + 1) % NUM_CODES  # change the token at row 3, column 4
with torch.no_grad():
    moved = (prior(changed, probe_c) - prior(probe_tokens, probe_c)).abs().amax(1)[0] > 0
print("positions whose prediction moved (1) when token (3, 4) changed:")
print(moved.int().numpy())
earlier = torch.arange(GRID * GRID).view(GRID, GRID) <= 3 * GRID + 4  # (3, 4) and before it
checkpoint("causal-nothing-earlier-moved", moved[earlier].sum().item(), "<=", 0);

# %% [markdown]
# The answer to question 5.12 is (b), by the checkpoint above: only positions after (3, 4) in
# raster order may move — the rest of row 3 to its right, and the rows below; nothing before it
# does, not even (3, 4) itself, which must predict its token without seeing it. That is what
# the masks are for: the convolutions' shapes see only the rows above and the tokens to the
# left. A model that could see ahead would learn to copy, and then could not draw.
#
# Now train it: next-token cross-entropy, a fresh prompt per image each epoch, the prompt
# encoder learning alongside. For 15% of the images (`RECIPE.prompt_dropout`) the prompt's
# vector is replaced by zeros, so the same model also learns to draw *without* a prompt —
# section 5 needs that.

# %%
history = RECIPE.train(prior, text_encoder, train_tokens, train_prompts, DEVICE, seed=SEED)
print(f"final loss {history.train_loss[-1]:.3f} nats per token "
      f"(uniform over {NUM_CODES} codes: {np.log(NUM_CODES):.3f})")

# %%
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(range(1, RECIPE.num_epochs + 1), history.train_loss, marker="o", label="train")
ax.axhline(np.log(NUM_CODES), color="grey", ls="--", label="uniform guess")
ax.set(title="PixelCNN next-token loss", xlabel="epoch", ylabel="cross-entropy (nats/token)")
ax.legend()
viz.show(fig, "Line plot of the PixelCNN's next-token training loss in nats per token against "
         "epoch, with a dashed line at the loss of a uniform guess over the codes.")

# %% [markdown]
# ## 5. Drawing, one token at a time
#
# Sampling runs the model 64 times per image: draw token 1 from its predicted distribution, feed
# it back, draw token 2, … Two knobs act on each draw's logits:
#
# * the **temperature** (采样温度) divides them: below 1 sharpens every choice;
# * **classifier-free guidance** (无分类器引导; Ho & Salimans, 2022) compares the logits with and
#   without the prompt, `l(∅) + w · (l(prompt) − l(∅))`: with `w > 1` each token is pushed towards
#   what *this* prompt makes likelier than no prompt does. It costs a second forward pass per
#   token (exercise 5.5 asks you to write the formula).
#
# `TokenImageGenerator` pairs the prior with the codebook, so chapter 04's `generate` and
# `fidelity_over` treat it like the CVAE and the cGAN.

# %%
from cmlib.widgets.generative import sample_grid

prior.cpu()
text_encoder.cpu().eval()
generator = TokenImageGenerator(prior, codebook, guidance=GUIDANCE).eval()
grid_prompts = ["a red circle", "a green triangle", "a blue circle", "a large yellow square",
                "a small purple triangle on the left"]
viz.show(
    sample_grid(generator, text_encoder, grid_prompts, f"PixelCNN samples (guidance {GUIDANCE}, "
                f"temperature {TEMPERATURE}), one prompt per row", n=8, seed=SEED,
                temperature=TEMPERATURE),
    "Grid of 16x16 samples from the guided token PixelCNN, one row per prompt, eight samples per "
    "row, the prompt written above each row's first image.",
)

# %% [markdown]
# The order in which a sample is drawn: the canvas after 8, 16, … of its 64 tokens (the rest
# grey). The object appears row by row, each row conditioned on the rows above.

# %%
from cmlib.generation.generative import generate

one = generate(generator, text_encoder, "a large red triangle", 1, seed=SEED,
               temperature=TEMPERATURE)
steps = list(range(8, GRID * GRID + 1, 8))
pixel_step = torch.arange(GRID * GRID).view(GRID, GRID).repeat_interleave(PATCH, 0)
pixel_step = pixel_step.repeat_interleave(PATCH, 1)  # (16, 16): when each pixel was drawn
canvases = torch.stack([torch.where(pixel_step < t, one[0], torch.tensor(0.5)) for t in steps])
viz.show(
    show_images(canvases, ncols=len(steps), captions=[f"{t} tokens" for t in steps],
                title="'a large red triangle', drawn one token at a time"),
    "Row of canvases of one PixelCNN sample for 'a large red triangle', after every eighth "
    "token in raster order, captioned with the token count, the undrawn part grey.",
)

# %% [markdown]
# ## 6. Into the model registry
#
# Part 5 scores this model, on many more samples than a glance at a grid. It loads what this
# part trained from the model registry: the codebook, the PixelCNN and its prompt encoder in one
# entry, with the recipe and a hash of the code that trained them. Where this part has not run
# on a machine with this profile and seed, part 5 first trains the same recipe with the same
# seed.

# %%
from cmlib.generation.token_recipe import save_token_prior

saved = save_token_prior(prior, text_encoder, codebook, RECIPE, SEED,
                         metrics={"final_loss": history.train_loss[-1]})
print(f"saved {saved.name}: {saved.path.stat().st_size / 1e6:.2f} MB, code version "
      f"{saved.code_version[:12]}")

# %% [markdown]
# ## 7 · Exercise
#
# **Exercise 5.5** — classifier-free guidance: from the logits with the prompt and without it,
# return `l(∅) + guidance · (l(prompt) − l(∅))`.

# %%
def guided_logits(with_prompt, without_prompt, guidance):
    ### BEGIN SOLUTION
    return without_prompt + guidance * (with_prompt - without_prompt)
    ### END SOLUTION


check("5.5", guided_logits)

# %% [markdown]
# ## Summary
#
# * Vector quantisation turns an image into a sentence: k-means over patches is a vocabulary,
#   and its round trip sets a ceiling no token model can pass.
# * A causal model of those tokens, conditioned on the prompt, draws an image one token at a
#   time; its causality is a property of the convolutions' shapes, and checkable.
# * Temperature and guidance act on each draw's logits at sampling time, without retraining.
# * The model is in the registry now: part 5 (`05_text_to_image_fidelity`) measures what
#   guidance buys, and scores this model's prompt fidelity beside chapter 04's generators.

# %%
print(f"chapter run time: {time.perf_counter() - CHAPTER_START:.0f} s")
