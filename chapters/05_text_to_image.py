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
# `05_captioning_heldout`) went from image to text. This part goes the other way.
#
# **Prerequisites:** `04_prompt_generation` and `04_prompt_generation_gan` (the prompts, the judge,
# and the CVAE and cGAN compared here) and `05_captioning` (generating one token at a time, and
# sampling). **Study time:** about 25 minutes of reading and exercises, plus about 4 minutes for the
# notebook to run on a two-core laptop.
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
# 4. sample, turn the temperature, and score prompt fidelity beside chapter 04's CVAE and cGAN.
#
# **Key terms.** image token (图像词元) · codebook (码本) · vector quantisation (向量量化) ·
# autoregressive model (自回归模型) · raster order (光栅顺序) · sampling temperature (采样温度) ·
# prompt fidelity (提示词保真度).

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

# Sizes for the two run profiles: the cpu profile is sized for a few minutes on 2 cores.
IMAGE_SIZE = 16
NUM_TRAIN = runtime.pick(cpu=6000, gpu=20000)
NUM_CODES = 512
PATCH = 2
CHANNELS = runtime.pick(cpu=32, gpu=96)
DEPTH = runtime.pick(cpu=5, gpu=8)
NUM_EPOCHS = runtime.pick(cpu=10, gpu=30)
COND_DIM = 32
SAMPLES_PER_PROMPT = runtime.pick(cpu=30, gpu=100)
PROMPT_DROPOUT = 0.15  # share of training images seen without their prompt (for guidance)
GUIDANCE = 3.0
TEMPERATURE = 0.7

# %% [markdown]
# ## 1. Data, prompts and the judge (as in chapter 04)
#
# One object per image, photo style; a fresh prompt per image each time it is seen. The judge is
# chapter 04's attribute classifier, trained on real images only.

# %%
from cmlib.data.shapes import COLORS, SHAPES
from cmlib.data.shapes.prompt_text import evaluation_prompts, prompt_sampler
from cmlib.data.shapes.tasks import one_object_photos
from cmlib.data.shapes.text import shapes_vocab
from cmlib.generation.generative import fidelity_over
from cmlib.judge import judge_accuracy, reference_judge, reference_judge_name

x_train, a_train = one_object_photos("train", NUM_TRAIN, IMAGE_SIZE, SEED)
x_test, a_test = one_object_photos("test", 1000, IMAGE_SIZE, SEED)
x_heldout, a_heldout = one_object_photos("heldout", 1000, IMAGE_SIZE, SEED)
train_prompts = prompt_sampler(a_train, np.random.default_rng(SEED))  # indices -> fresh prompts
vocab = shapes_vocab()

judge, judge_status = reference_judge(DEVICE, SEED)  # chapter 04's judge, from the registry
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
codebooks = {k: PatchCodebook.fit(x_train, k, PATCH, seed=SEED) for k in (32, NUM_CODES)}
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
    "smaller and the larger patch codebook, each row labelled under its first image.",
)

# %% [markdown]
# ## 3. An image is a sentence
#
# With 2×2 patches a 16×16 image is an 8×8 grid of tokens: 64 words, read in raster order
# (光栅顺序), row by row. The photo style's backgrounds are textured, so even the background is
# spread over many codes.

# %%
GRID = IMAGE_SIZE // PATCH
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
# convolutions whose shapes see only the rows above and the tokens to the left, and the prompt,
# turned into a map over the grid, inside every gate (read
# `cmlib/generation/autoregressive.py`). One forward pass scores all 64 positions at once —
# teacher forcing for free.
#
# Causality is a claim we can check: change one token and see which positions' predictions move.

# %%
from cmlib.generation import prompts
from cmlib.generation.autoregressive import (
    PromptPixelCNN,
    TokenImageGenerator,
    train_prompt_pixelcnn,
)

runtime.seed_everything(SEED)
text_encoder = prompts.BagOfWordsEncoder(vocab, COND_DIM)
prior = PromptPixelCNN(NUM_CODES, GRID, COND_DIM, channels=CHANNELS, depth=DEPTH)

probe_tokens, probe_c = train_tokens[:1].clone(), torch.randn(1, COND_DIM)
changed = probe_tokens.clone()
changed[0, 3, 4] = (changed[0, 3, 4] + 1) % NUM_CODES  # change the token at row 3, column 4
with torch.no_grad():
    moved = (prior(changed, probe_c) - prior(probe_tokens, probe_c)).abs().amax(1)[0] > 0
print("positions whose prediction moved (1) when token (3, 4) changed:")
print(moved.int().numpy())

# %% [markdown]
# Only positions after (3, 4) in raster order may move — the rest of row 3 to its right, and the
# rows below; nothing before it does. Now train it: next-token cross-entropy, a fresh prompt per
# image each epoch, the prompt encoder learning alongside. For 15% of the images the prompt's
# vector is replaced by zeros, so the same model also learns to draw *without* a prompt — section
# 5 needs that.

# %%
history = train_prompt_pixelcnn(prior, text_encoder, train_tokens, train_prompts, NUM_EPOCHS,
                                DEVICE, prompt_dropout=PROMPT_DROPOUT, seed=SEED)
print(f"final loss {history.train_loss[-1]:.3f} nats per token "
      f"(uniform over {NUM_CODES} codes: {np.log(NUM_CODES):.3f})")

# %%
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(range(1, NUM_EPOCHS + 1), history.train_loss, marker="o", label="train")
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
    "row, the prompt written under each row's first image.",
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
# ## 6. Prompt fidelity, beside chapter 04
#
# The judge reads colour and shape of 30 samples per prompt: the 15 seen colour–shape pairs, and
# the 3 held-out pairs no generator saw. First plain sampling, then guided:

# %%
prompt_sets = evaluation_prompts(SEED)


def token_fidelity(name: str, guidance: float, temperature: float) -> dict[str, float]:
    generator.guidance = guidance
    return fidelity_over(judge, generator, text_encoder, prompt_sets[name], SAMPLES_PER_PROMPT,
                         SEED, temperature=temperature)


plain = token_fidelity("seen", 1.0, 1.0)
guided = token_fidelity("seen", GUIDANCE, TEMPERATURE)
heldout = token_fidelity("held-out", GUIDANCE, TEMPERATURE)
print(f"{'seen prompts':<34}{'colour':>8}{'shape':>8}{'both':>8}")
for label, scores in (("plain (w 1, T 1)", plain),
                      (f"guided (w {GUIDANCE}, T {TEMPERATURE})", guided),
                      ("held-out pairs, guided", heldout)):
    print(f"{label:<34}{scores['color']:8.3f}{scores['shape']:8.3f}{scores['color+shape']:8.3f}")
print(f"codebook ceiling (real test images through tokens): {ceiling[NUM_CODES]:.3f}")

# %% [markdown]
# The bar for this model is a fidelity of 0.80 on seen prompts. The cpu profile trains a
# 0.3M-parameter PixelCNN for 10 epochs (about 1.5 minutes on 2 cores); in our measurements over
# seeds (`chapters/notes/checkpoints.md`) that has not been enough, so the checkpoint is measured
# and recorded in every run but asserted only in the gpu profile, which trains a 3× wider,
# deeper model three times longer. The cell says which attribute holds this run back: to draw a
# shape, the model must commit to it in the object's first rows and keep every later token
# consistent with that choice; a colour can be right token by token.

# %%
checkpoint("seen-prompt-fidelity", guided["color+shape"], ">=", 0.80, chance=1 / 18,
           asserted_in=("gpu",))
change = guided["color+shape"] - plain["color+shape"]
print(f"in this run, guidance changed seen-prompt fidelity by {change:+.3f}")
weaker = min(("color", "shape"), key=lambda k: guided[k])
print(f"the weaker attribute in this run: {weaker} ({guided[weaker]:.3f}, the other "
      f"{guided['shape' if weaker == 'color' else 'color']:.3f})")

# %% [markdown]
# Chapter 04 put its CVAE (part 1) and cGAN (part 3) in the model registry. Here they are on the
# same prompts, judge and number of samples; the CVAE samples at the prior temperature τ = 0.3 its
# chapter uses (the cGAN has no temperature). Where part 1 has not run on this machine the registry
# trains its recipe first (about a minute); part 3's cGAN is shown where part 3 has run.

# %%
from cmlib.checkpoint import CheckpointError
from cmlib.generation.generative import cgan_name, load_cgan
from cmlib.registry import StaleModelError
from cmlib.studio import models as studio_models

drawer, drawer_status = studio_models.load_role("drawer", SEED, DEVICE)
print(f"{studio_models.registry_name('drawer', SEED)}: {drawer_status}")
generators = {"CVAE (chapter 04, part 1)": (drawer.cvae, drawer.text, 0.3)}
try:
    cgan, cgan_text = load_cgan(SEED, vocab)
    generators["cGAN (chapter 04, part 3)"] = (cgan.to(DEVICE), cgan_text.to(DEVICE), 1.0)
except (FileNotFoundError, StaleModelError, CheckpointError) as err:
    print(f"{cgan_name(SEED)} is not available ({err}); run chapter 04 part 3 to add it")
rows = {"PixelCNN on tokens (this part)": (guided["color+shape"], heldout["color+shape"])}
for label, (model, encoder, temperature) in generators.items():
    rows[label] = tuple(fidelity_over(judge, model, encoder, prompt_sets[name],
                                      SAMPLES_PER_PROMPT, SEED, temperature)["color+shape"]
                        for name in ("seen", "held-out"))
print(f"{'model':<32}{'seen':>8}{'held-out':>10}   (colour+shape fidelity, this judge)")
for label, (seen, held) in rows.items():
    print(f"{label:<32}{seen:8.3f}{held:10.3f}")

# %% [markdown]
# ## 7. DALL·E in miniature — and what is missing
#
# The recipe is DALL·E's: a discrete image vocabulary, and an autoregressive model of image
# tokens given the text. What this miniature leaves out, each a reason it draws worse:
#
# * **The vocabulary.** Here: k-means over 2×2 patches, 512 codes, never trained for the task.
#   DALL·E: a discrete VAE learned end to end, 8192 codes, 32×32 tokens per 256×256 image.
# * **The model.** Here: a gated PixelCNN of about 0.3M parameters with a local receptive field.
#   DALL·E: a 12-billion-parameter transformer attending to every earlier token.
# * **The prompt.** Here: a bag-of-words vector added inside the gates. DALL·E: text tokens and
#   image tokens in one stream, every image token attending to the text.
# * **The data.** Here: 6,000 synthetic images of 18 colour–shape pairs. DALL·E: 250 million
#   image–text pairs from the web.
# * **The choice.** Here: one sample per draw, sharpened by guidance. DALL·E: 512 samples
#   reranked by CLIP (chapter 07's contrastive model).
#
# What is the same is the point of §3.2.2.2 跨模态序列生成: once both modalities are token
# sequences, generating either from the other is next-token prediction.

# %% [markdown]
# ## 8 · Exercise
#
# **Exercise 5.5** — classifier-free guidance: from the logits with the prompt and without it,
# return `l(∅) + guidance · (l(prompt) − l(∅))`.

# %%
from cmlib.exercises import check


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
# * Guidance and temperature trade diversity for fidelity at sampling time, without retraining.
# * This run's fidelities are printed above, beside chapter 04's continuous generators on the
#   same judge and prompts.

# %%
print(f"chapter run time: {time.perf_counter() - CHAPTER_START:.0f} s")
