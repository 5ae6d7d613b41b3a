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
# # 04 · Prompt-driven generation, part 3: a conditional GAN
#
# **Article sections:** §3.2.1 基于条件生成模型的跨模态学习 (cross-modal learning with conditional
# generative models), here §3.2.1.1 GANs在跨模态学习中的应用 (GANs in cross-modal learning); section
# 6 also touches §2.1.1.2 图像嵌入模型 (a GAN's discriminator as an image embedding). Part 1
# (`04_prompt_generation`) introduced the prompts (§3.1 提示词的概念与应用), the prompt encoders,
# the judge and the conditional VAE; this part trains a GAN on the same prompts and judges it the
# same way.
#
# **Prerequisites:** `04_prompt_generation` (the prompts, the prompt encoders, the judge and the
# CVAE) and the image embeddings and linear probes of `01_visual_features`. **Study time:** about 30
# minutes of reading and exercises, plus about 2 minutes for the notebook to run on a two-core
# laptop (including part 1's CVAE, where it has to be trained first).
#
# **You will:**
# 1. see why the article's GAN listing cannot generate anything (errata);
# 2. build a conditional GAN: a generator G(z, c) and a projection discriminator D(x, c), trained
#    with the fakes **detached** in D's step;
# 3. find out why a standard DCGAN draws round blobs here: *a discriminator that cannot see a shape
#    cannot teach it*;
# 4. measure prompt fidelity, diversity (mode collapse), held-out pairs and paraphrases;
# 5. reuse the discriminator as an image embedding, and play with a prompt box.
#
# **Key terms.** generative adversarial network, GAN (生成对抗网络) · generator / discriminator
# (生成器 / 判别器) · conditional GAN (条件GAN) · projection discriminator (投影判别器) · auxiliary
# classifier (辅助分类器) · mode collapse (模式崩溃) · exponential moving average, EMA
# (指数移动平均) · image embedding (图像嵌入) · linear probe (线性探测).

# %%
import time

CHAPTER_START = time.perf_counter()

import numpy as np
import torch
import torch.nn.functional as F

from cmlib import runtime
from cmlib.claims import Checkpoints

SEED = runtime.seed_everything()
checkpoint = Checkpoints("04_prompt_generation_gan")  # learning checkpoints: asserted and recorded
DEVICE = runtime.device()
PROFILE = runtime.profile()
print(runtime.describe())

# %%
import matplotlib.pyplot as plt

from cmlib import errata, viz
from cmlib.data.shapes import COLORS, SHAPES
from cmlib.data.shapes.prompt_text import (
    alignment_prompts,
    all_prompts,
    evaluation_prompts,
    make_prompt,
    prompt_sampler,
)
from cmlib.data.shapes.tasks import one_object_photos
from cmlib.data.shapes.text import shapes_vocab
from cmlib.exercises import check
from cmlib.generation import gan, gan_losses, gan_training, prompts
from cmlib.generation.generative import fidelity_over, generate
from cmlib.judge import (
    diversity,
    judge_accuracy,
    real_diversity,
    reference_judge,
    reference_judge_name,
)
from cmlib.widgets.generative import sample_grid

# Sizes for the two run profiles: the cpu profile is sized for a few minutes on 2 cores.
IMAGE_SIZE = 16
NUM_TRAIN = runtime.pick(cpu=6000, gpu=20000)
GAN_STEPS = runtime.pick(cpu=3000, gpu=8000)
COND_DIM = 32
SAMPLES_PER_PROMPT = runtime.pick(cpu=30, gpu=100)

# %% [markdown]
# ## 1. Data, prompts and the judge (as in part 1)
#
# One object per image, photo style, 16×16 pixels; a fresh prompt per image each time it is seen ("a
# small red ball on the left", "a red circle", …). The judge is part 1's attribute classifier,
# trained on real photos only — including photos of the three held-out colour–shape pairs, which
# the generator never sees — and on perturbed copies of them, so that it reads content, not
# sharpness.

# %%
x_train, a_train = one_object_photos("train", NUM_TRAIN, IMAGE_SIZE, SEED)
x_test, a_test = one_object_photos("test", 1000, IMAGE_SIZE, SEED)
train_prompts = prompt_sampler(a_train, np.random.default_rng(SEED))  # indices -> fresh prompts
vocab = shapes_vocab()


# Part 1's judge, the shipped long run `ch04-judge` (trained here with the same recipe if its
# file is missing): both parts score with the same judge.
judge, judge_status = reference_judge(DEVICE, SEED)
print(f"{reference_judge_name(SEED)}: {judge_status}")
judge_test = judge_accuracy(judge, x_test, a_test)
print("judge on real test images:", {k: round(v, 3) for k, v in judge_test.items()})
checkpoint("judge-color-shape", judge_test["color+shape"], ">=", 0.98);

# %% [markdown]
# ## 2. Errata: the article's GAN listing
#
# > **Errata — `GAN` listing (§3.2.1.1)**
# >
# > 1. The generator takes only the text: there is **no noise input**, so one prompt always gives
# >    the same output — a conditional *function*, not a generative model.
# > 2. It ends in `nn.Linear(vis_dim * 4, 1)`: it outputs **one number, not an image**.
# > 3. The discriminator concatenates the image with **the generator's output** instead of with the
# >    condition (the text), so it cannot judge "real image *of this prompt*"; and the sizes don't
# >    even match (`vis_dim + 1` values into a layer that expects `vis_dim + lang_dim`).
# > 4. `Linear(…, 1) → ReLU → Linear(1, 1)` squeezes everything through **one unit**; when that
# >    unit's ReLU is off, no gradient flows at all.

# %%
print(errata.LISTINGS["GAN"].source)  # the listing, as printed

# %%
vis_dim, lang_dim = 3 * IMAGE_SIZE * IMAGE_SIZE, COND_DIM
article_gan = errata.GAN(vis_dim, lang_dim)  # it builds as printed; what it computes is the problem
text = torch.randn(4, lang_dim)
out1, out2 = article_gan(text), article_gan(text)
print("generator output shape:", tuple(out1.shape), "(an image would be", (4, vis_dim), ")")
print("same prompt twice gives the same output:", torch.equal(out1, out2))
try:
    article_gan(text, x_train[:4].flatten(1))
except RuntimeError as err:
    print("discriminator call fails:", type(err).__name__, str(err).splitlines()[0])

# %% [markdown]
# The working versions in `cmlib.generation.gan`: a generator takes noise *and* the prompt and
# outputs an image; `ProjectionDiscriminator` scores an image together with the prompt:
# D(x, c) = w·φ(x) + ⟨Vc, φ(x)⟩ (Miyato & Koyama, 2018). It also has two small auxiliary heads that
# classify colour and shape (AC-GAN), which give G a direct signal about the prompt.
#
# The one line that matters most: in D's step the fakes are **detached**, so D's loss does not
# update G.

# %%
g_check = gan.Generator(COND_DIM, noise_dim=8, image_size=IMAGE_SIZE, width=8)
d_check = gan.ProjectionDiscriminator(COND_DIM, image_size=IMAGE_SIZE, width=8)
c_check = torch.randn(2, COND_DIM)
fake = g_check(torch.randn(2, 8), c_check)
print("G(z, c):", tuple(fake.shape), " D(x, c):", tuple(d_check(fake, c_check).shape))
d_loss = gan_losses.discriminator_hinge_loss(
    d_check(x_train[:2], c_check), d_check(fake.detach(), c_check)
)
d_loss.backward()
print("after D's backward, G has gradients:", any(p.grad is not None for p in g_check.parameters()))

# %% [markdown]
# Exercise 4.3: the classic discriminator loss, binary cross-entropy on D's logits (we train with
# its hinge cousin, `discriminator_hinge_loss`).

# %%
def my_discriminator_loss(d_real, d_fake):
    ### BEGIN SOLUTION
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    ### END SOLUTION


check("4.3", my_discriminator_loss)

# %% [markdown]
# ## 3. A discriminator that cannot see a shape cannot teach it
#
# A DCGAN (transposed-conv generator, strided-conv discriminator) trained on these images draws
# the right *colours* within a few hundred steps, but round blobs for the shapes. The reason is on
# D's side. At 16×16 an object is 3–6
# pixels wide, and DCGAN's first layer (4×4, stride 2) halves the image at once. Train each
# discriminator trunk **as a plain shape classifier** on real images, same steps, and compare:

# %%
def shape_probe(trunk, num_steps=300):
    """Shape accuracy on real test images of ``trunk`` trained for ``num_steps`` as a classifier."""
    runtime.seed_everything(SEED)
    d = gan.ProjectionDiscriminator(COND_DIM, image_size=IMAGE_SIZE, width=16, trunk=trunk,
                                    aux_classes={"shape": 3})
    optimizer = torch.optim.Adam(d.parameters(), 1e-3, betas=(0.5, 0.999))
    batches = torch.randint(
        len(x_train), (num_steps, 32), generator=torch.Generator().manual_seed(SEED)
    )
    for idx in batches:
        loss = F.cross_entropy(d.classify(x_train[idx])["shape"], a_train["shape"][idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    d.eval()
    with torch.no_grad():
        return (d.classify(x_test)["shape"].argmax(1) == a_test["shape"]).float().mean().item()


trunk_accuracy = {trunk: shape_probe(trunk) for trunk in ("strided", "pooled")}
for trunk, acc in trunk_accuracy.items():
    print(f"{trunk:>8} trunk: shape accuracy after 300 supervised steps {acc:.3f} (chance 0.333)")

# %% [markdown]
# After 300 steps the **pooled** trunk (3×3 convolutions at full resolution, batch norm, max-pooling
# — like the judge) reads shape better than the strided one: 0.694 against 0.499, with chance at
# 0.333. Neither reads shape well yet. This is one seed and 300 steps: it shows which trunk is ahead
# early, not where each one ends (try both for 600 steps and compare). G only learns what D
# already knows, so we use the pooled trunk, and give D's auxiliary classification loss a larger
# weight (5) than G's (3), so that D learns *what* the images show early.
#
# On G's side the same lesson as the CVAE's coordinate decoder: `GlyphGenerator` draws the object
# **in its own frame** — every pixel computes where it lies relative to a centre and radius that G
# chooses from (z, c), and a per-pixel MLP of that position and the prompt gives its opacity and
# colour — then lays it over a background drawn by a small DCGAN decoder (a layered generator, like
# LR-GAN). A shape is then learnt once, not at every pixel offset.
#
# A third lesson of the same kind is about the pairs no image shows. D's shape head learns from
# real images, where green objects are only ever squares or triangles. Nothing stops it from
# reading "green" as "not a circle" — a **shortcut** (捷径) through colour — and G, which learns
# its shapes from that head, would then never draw a green circle. So D's shape head also trains on
# real images with their **colour channels shuffled** (`color_invariant=("shape",)`, through
# `cmlib.vision.permute_channels`): a red square turns green or blue and stays a square. Be clear
# about what that shows D: a red circle with its red and green channels swapped looks much like
# a green circle, a pair absent from the data. The shape head sees shapes in colours the data
# never paired them with, labelled with the shape alone; its colour head, the projection term and
# G never see such an image or hear a held-out prompt. A data augmentation states an invariance
# (不变性) — shape does not depend on colour — and an invariance is what lets a model compose what
# it has never seen together.
#
# ## 4. Training the cGAN
#
# Two more choices: a learning rate of 5e-4 for both players with Adam's β₁ = 0.5, and an
# **exponential moving average** (EMA) of G's weights, which is the generator we keep: the players'
# oscillation averages out. (At a learning rate of 1e-3, one of five seeds drew some seen
# prompts in the wrong colour in the course's earlier runs: the game is sensitive to its seed at
# this budget.)

# %%
runtime.seed_everything(SEED)
g_text, d_text = (
    prompts.BagOfWordsEncoder(vocab, COND_DIM),
    prompts.BagOfWordsEncoder(vocab, COND_DIM),
)
generator = gan.GlyphGenerator(COND_DIM, noise_dim=16, image_size=IMAGE_SIZE, width=32)
discriminator = gan.ProjectionDiscriminator(
    COND_DIM,
    image_size=IMAGE_SIZE,
    width=16,
    trunk="pooled",
    aux_classes={"color": len(COLORS), "shape": len(SHAPES)},
)
gan_history = gan_training.train_cgan(
    generator,
    discriminator,
    g_text,
    d_text,
    x_train,
    train_prompts,
    GAN_STEPS,
    DEVICE,
    batch_size=32,
    lr=5e-4,
    attrs=a_train,
    aux_weight=3.0,
    d_aux_weight=5.0,
    ema_decay=0.99,
    color_invariant=("shape",),
    seed=SEED,
)
print(f"trained in {gan_history.total_seconds:.0f} s")


# %%
def smooth(values, k=50):
    return np.convolve(values, np.ones(k) / k, mode="valid")


fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
axes[0].plot(smooth(gan_history.steps["d_loss"]), label="D loss (hinge + 5 × auxiliary)")
axes[0].plot(smooth(gan_history.steps["g_loss"]), label="G loss (hinge + 3 × auxiliary)")
axes[0].set(title="cGAN: both players' losses", xlabel="step", ylabel="loss (moving average)")
axes[1].plot(smooth(gan_history.steps["d_real"]), label="D(real, c)")
axes[1].plot(smooth(gan_history.steps["d_fake"]), label="D(fake, c)")
axes[1].set(title="cGAN: D's scores", xlabel="step", ylabel="mean score (moving average)")
for ax in axes:
    ax.legend(fontsize=8)
fig.tight_layout()
viz.show(fig, "Two line plots against training step, as moving averages: the cGAN's "
         "discriminator and generator losses, and the discriminator's mean scores on real and "
         "fake images.")

# %%
grid_prompts = [
    "a red circle",
    "a blue triangle",
    "a yellow square",
    "a large purple circle on the left",
    "a small orange triangle at the top",
]
viz.show(
    sample_grid(generator, g_text, grid_prompts, "cGAN samples (EMA generator), one prompt per row",
                seed=SEED),
    "Grid of 16x16 samples from the cGAN's EMA generator, one row per prompt, eight noise draws "
    "per row, the prompt written above each row's first image.",
)

# %% [markdown]
# **Mode collapse (模式崩溃)** is a generator that ignores its noise and draws (almost) the same
# image for every z. Measure it: the mean pixel distance between samples of one prompt, next to
# the same number for real images of that colour and shape. A ratio near 1 is the variety of real
# images; near 0 is collapse.

# %%
diversity_ratio = {}
print(f"{'prompt':<22}{'real':>8}{'cGAN / real':>13}")
for color, shape in [("red", "circle"), ("blue", "triangle"), ("yellow", "square")]:
    prompt, real = make_prompt(color, shape), real_diversity(x_test, a_test, color, shape)
    diversity_ratio[prompt] = diversity(generate(generator, g_text, prompt, 40, seed=SEED)) / real
    print(f"{prompt:<22}{real:8.3f}{diversity_ratio[prompt]:13.2f}")

# %% [markdown]
# In this run the ratios are 0.10–0.20: this cGAN's samples of one prompt vary about a tenth to
# a fifth as much as real images do, and in the grid above each row repeats nearly one image,
# shifted a little. It does not draw exactly one image per prompt, but it is far short of real
# variety: this cGAN is the chapter's case of mode collapse, a partial but strong one. Section 5
# puts part 1's CVAE beside it, and prints how much more its samples of "a red circle" vary.
# Repairing the collapse is a question of optimisation, the article's §4.3 优化方法 (named
# there, never written): chapter 09 part 4 (`09_optimisation_gans`) repairs it, and section 5b
# below loads the repaired cGAN.
#
# ## 5. Evaluation: does it draw what it is told?
#
# The same four prompt sets as in part 1 (`evaluation_prompts`): *seen* pairs, *seen, full* (with
# size and position), *held-out* pairs, and *paraphrases* ("a crimson disc") through a MiniLM head
# fitted onto G's prompt encoder — alone, and as in part 1 (section 2, parts (c)–(d)): colour
# words grounded by the xkcd colour survey ("crimson" → "red"), then the nearest prompt G knows
# by MiniLM similarity ("a red disc" → "a red circle").

# %%
from cmlib.pretrained import load_minilm

minilm = load_minilm("cpu")
head_prompts = alignment_prompts()
gan_minilm = prompts.SentencePromptEncoder(minilm, COND_DIM)
with torch.no_grad():
    r2 = gan_minilm.fit(head_prompts, g_text(head_prompts))
print(f"MiniLM head fit on {len(head_prompts)} prompts: R² = {r2:.3f}")
gan_nearest = prompts.NearestPromptEncoder(minilm, all_prompts(), g_text)
gan_grounded = prompts.GroundedPromptEncoder(
    gan_nearest, vocab
)  # survey, then nearest known prompt
prompt_sets = evaluation_prompts(SEED)

# %% [markdown]
# **Question 4.6 — predict, then run.** Section 4 measured how much this cGAN's samples of one
# prompt vary: in this run well short of real images, a partial mode collapse. On the *seen*
# prompts (colour and shape only), how often will the judge find the colour and the shape the
# prompt asked for: (a) near chance (below 0.2), (b) in between (0.2 to 0.85), or (c) most of the
# time (0.85 or more)? Set `prediction` to `"a"`, `"b"` or `"c"` before you run the cells after
# it.

# %%
### BEGIN SOLUTION
prediction = "c"
### END SOLUTION
check("4.6", prediction)


# %%
def gan_fidelity(encoder, name):
    return fidelity_over(judge, generator, encoder, prompt_sets[name], SAMPLES_PER_PROMPT, SEED)


full = gan_fidelity(g_text, "seen, full")
results = {
    "seen": gan_fidelity(g_text, "seen")["color+shape"],
    "seen, full": full["color+shape"],
    "held-out": gan_fidelity(g_text, "held-out")["color+shape"],
    "seen via MiniLM": gan_fidelity(gan_minilm, "seen")["color+shape"],
    "held-out via MiniLM": gan_fidelity(gan_minilm, "held-out")["color+shape"],
    "paraphrase via MiniLM": gan_fidelity(gan_minilm, "paraphrase")["color+shape"],
    "paraphrase, grounded": gan_fidelity(gan_grounded, "paraphrase")["color+shape"],
}
CHANCE = 1 / (len(COLORS) * len(SHAPES))
print(f"chance (colour+shape) = {CHANCE:.3f}; seen, full: size {full['size']:.3f}, "
      f"position {full['position']:.3f}")
for key, value in results.items():
    print(f"{key:<22}{value:.3f}")

# %%
fig, ax = plt.subplots(figsize=(8, 3.5))
ax.bar(range(len(results)), list(results.values()), label="cGAN")
ax.axhline(CHANCE, color="k", ls=":", label="chance")
ax.axhline(3 * CHANCE, color="grey", ls="--", label="3 × chance")
ax.set_xticks(range(len(results)))
ax.set_xticklabels(list(results), rotation=20, ha="right")
ax.set(
    title="cGAN prompt fidelity (colour+shape) by the judge",
    xlabel="prompt set",
    ylabel="fidelity",
    ylim=(0, 1),
)
ax.legend(fontsize=8)
fig.tight_layout()
viz.show(fig, "Bar chart of the cGAN's colour-and-shape prompt fidelity per prompt set, with "
         "dotted chance and dashed three-times-chance lines.")

# %%
checkpoint("cgan-seen", results["seen"], ">=", 0.85, chance=CHANCE)
for key in ("held-out", "held-out via MiniLM", "paraphrase, grounded"):
    checkpoint(f"cgan-{key.replace(',', '').replace(' ', '-')}", results[key], ">=", 3 * CHANCE,
               chance=CHANCE)

# %% [markdown]
# The answer to question 4.6 is (c), by the checkpoint above: `cgan-seen`, the cGAN's
# colour+shape fidelity on seen prompts, is at least 0.85 (the printed `seen` row gives this
# run's value; chance is 0.056). Mode collapse costs variety, not correctness: the judge scores
# each sample on its own, so a generator that draws the same few good red circles for "a red
# circle" is right on every one of them. That is why section 4 measured diversity separately:
# fidelity alone would not have shown the collapse.

# %% [markdown]
# Compare with part 1's CVAE on the same prompts, judge and samples. Part 1 put it in the model
# registry; where it has not run on this machine, the registry trains part 1's recipe first (about
# a minute). The cell prints both, the CVAE at part 1's
# sampling temperature τ = 0.3 and at τ = 1 (its whole prior: more variety, less fidelity;
# the cGAN has no temperature). The two reach held-out
# pairs in different ways: the CVAE reconstructs real images, colour and shape through one
# decoder; the cGAN's glyph is a function of the whole prompt vector, and what pushes it towards
# "red triangle" is only D's colour head and its colour-blind shape head, each read on its own.

# %%
from cmlib.studio import models as studio_models

drawer, drawer_status = studio_models.load_role("drawer", SEED, DEVICE)
cvae_model, cvae_text = drawer.cvae, drawer.text
print(f"part 1's CVAE, {studio_models.registry_name('drawer', SEED)}: {drawer_status}")
CVAE_TEMPERATURE = 0.3  # part 1 scores its CVAE at this sampling temperature
cvae_results = {}  # prompt set -> {temperature: colour+shape fidelity}
print(f"{'prompt set':<12}{'cGAN':>8}{'CVAE τ=0.3':>12}{'CVAE τ=1':>10}   "
      "(colour+shape fidelity, this judge)")
for name in ("seen", "held-out"):
    cvae_fid = [fidelity_over(judge, cvae_model, cvae_text, prompt_sets[name],
                              SAMPLES_PER_PROMPT, SEED, temperature=t)["color+shape"]
                for t in (CVAE_TEMPERATURE, 1.0)]
    print(f"{name:<12}{results[name]:8.3f}{cvae_fid[0]:12.3f}{cvae_fid[1]:10.3f}")
    cvae_results[name] = dict(zip((CVAE_TEMPERATURE, 1.0), cvae_fid))
prompt = make_prompt("red", "circle")
cvae_div = diversity(generate(cvae_model, cvae_text, prompt, 40, seed=SEED))
cvae_ratio = cvae_div / real_diversity(x_test, a_test, "red", "circle")
print(f"diversity / real for '{prompt}': cGAN {diversity_ratio[prompt]:.2f}, CVAE at τ = 1 "
      f"{cvae_ratio:.2f}")

# %% [markdown]
# What the table says, in words (each comparison within 0.02 is called level). Read it with the
# sampling error in mind: the seen prompts' 450 samples (15 prompts × 30) carry about ±0.02, but
# the held-out pairs' 90 samples (3 × 30) about ±0.05 each, and more in practice, since three
# prompts move the score a whole prompt at a time. A held-out difference under about 0.1 is
# within noise, whatever word it gets:

# %%
def compare(a, b):
    return "level with" if abs(a - b) <= 0.02 else ("above" if a > b else "below")


for name in ("seen", "held-out"):
    for t, value in cvae_results[name].items():
        print(f"{name}: the CVAE at τ = {t:g} ({value:.3f}) is {compare(value, results[name])} "
              f"the cGAN ({results[name]:.3f})")
print(f"variety of '{prompt}' relative to real images: CVAE at τ = 1 {cvae_ratio:.2f}, "
      f"cGAN {diversity_ratio[prompt]:.2f}")

# %% [markdown]
# ## 5b. The repaired cGAN: chapter 09's recipe, the long run
#
# The live run above is chapter 04's recipe, kept here as the case of collapse. Chapter 09
# part 4 repairs it with four changes to the game: spectral normalisation in D, a learning rate
# three times G's for D (two time-scales), both rates decayed to 0 over the second half, and a
# mode-seeking term in G's loss that rewards two noises for drawing two different images. For
# the held-out pairs it adds three more: G is also asked for every colour–shape pair, the three
# held-out ones included, with D's colour and shape heads as the teacher; D's heads learn to
# doubt G's samples of those prompts, so that G cannot pass by fooling them; and mode seeking
# doubles. No training image shows a held-out pair, as before, but the repaired G has been asked
# to draw them: its held-out score measures what heads trained on the seen pairs could teach it,
# not composition left entirely to chance. That recipe, trained for 6,000 steps (about five
# minutes on two cores), is shipped as the long run `ch04-cgan` for seeds 0–4: the course's
# reference cGAN from here on. (The rest of this notebook, section 6 and the registry entry
# that chapter 05 loads, still uses the live run.) The same judge, prompts and samples score
# both, and the MiniLM head and the grounded encoder of section 5 are fitted again onto the
# repaired G's prompt encoder:

# %%
from cmlib.longrun import cgan as cgan_recipe
from cmlib.longrun.recipes import long_run

repaired, repaired_manifest, repaired_status = long_run(cgan_recipe.RECIPE.name, SEED, DEVICE)
print(f"{cgan_recipe.RECIPE.name} seed {SEED}: {repaired_status}, "
      f"{repaired_manifest['steps']} steps")
repaired_results = cgan_recipe.evaluate(repaired, repaired_manifest["config"], SEED, DEVICE)
repaired_minilm = prompts.SentencePromptEncoder(minilm, COND_DIM)
with torch.no_grad():
    repaired_minilm.fit(head_prompts, repaired["text"](head_prompts))
repaired_grounded = prompts.GroundedPromptEncoder(
    prompts.NearestPromptEncoder(minilm, all_prompts(), repaired["text"]), vocab
)
for key, encoder, name in (("held-out via MiniLM", repaired_minilm, "held-out"),
                           ("paraphrase, grounded", repaired_grounded, "paraphrase")):
    repaired_results[key] = fidelity_over(judge, repaired["generator"], encoder, prompt_sets[name],
                                          SAMPLES_PER_PROMPT, SEED)["color+shape"]
live_div = float(np.mean(list(diversity_ratio.values())))
print(f"{'':<22}{'live, chapter 04 recipe':>25}{'long run, repaired':>20}")
for key in ("seen", "held-out", "held-out via MiniLM", "paraphrase, grounded", "diversity"):
    live_value = live_div if key == "diversity" else results[key]
    print(f"{key:<22}{live_value:25.3f}{repaired_results[key]:20.3f}")

# %%
viz.show(
    sample_grid(repaired["generator"], repaired["text"], grid_prompts,
                "the repaired cGAN (long run): one prompt per row", seed=SEED),
    "Grid of 16x16 samples from the repaired cGAN long run, one row per prompt, eight noise "
    "draws per row, the prompt written above each row's first image.",
)

# %%
checkpoint("repaired-cgan-seen", repaired_results["seen"], ">=", 0.85, chance=CHANCE)
for key in ("held-out", "held-out via MiniLM", "paraphrase, grounded"):
    checkpoint(f"repaired-cgan-{key.replace(',', '').replace(' ', '-')}", repaired_results[key],
               ">=", 3 * CHANCE, chance=CHANCE)
checkpoint("repaired-cgan-diversity", repaired_results["diversity"], ">=", 0.50);

# %% [markdown]
# In this run the live cGAN of chapter 04's recipe drew the seen prompts right every time
# (1.000) with 0.16 of real images' variety (the three prompts' mean); the repaired long run
# drew them right 0.998 of the time with 0.79 of real images' variety. Look at where that
# variety is in its grid: within a row the object keeps its place and size, and the background
# changes. The diversity ratio counts every pixel, so a varied background is enough to clear its
# bar: in this grid the repaired G varies the background more than the object.
# On the held-out pairs the two were level here (0.656 and 0.667), and through MiniLM the
# repaired cGAN drew all three right (1.000 against 0.722). The checkpoints above assert all of
# section 5's bars on the shipped model of your seed; over seeds 0–4 its held-out fidelity ends
# between 0.667 and 0.933 (chapter 09 part 4 prints each seed). The prompt box of section 7
# offers both cGANs.
#
# ## 6. The discriminator as an image embedding (§2.1.1.2)
#
# The article lists GAN-based image embeddings. D's features φ(x) were trained to tell real from
# fake (and, through the auxiliary heads, colour and shape). A linear probe — the same L-BFGS
# logistic regression as chapter 01's `linear_probe_accuracy` — for the 18-way colour–shape pair,
# fitted on 500 test images and scored on the other 500, beside chapter 01's kinds of embedding
# computed here on ShapesWorld: raw pixels, PCA, and a supervised CNN's features (the judge's).

# %%
from sklearn.decomposition import PCA

from cmlib.probes import linear_probe_accuracy

pair_test = a_test["color"] * len(SHAPES) + a_test["shape"]
pixels = x_test.flatten(1)
pca = PCA(n_components=32, random_state=SEED).fit(pixels[:500].numpy())
untrained_d = gan.ProjectionDiscriminator(
    COND_DIM, image_size=IMAGE_SIZE, width=16, trunk="pooled"
).eval()
discriminator.cpu().eval()
with torch.no_grad():
    embeddings = {
        "raw pixels": pixels,
        "PCA (32)": torch.from_numpy(pca.transform(pixels.numpy())).float(),
        "untrained D": untrained_d.features(x_test),
        "trained D (cGAN)": discriminator.features(x_test),
        "judge's CNN features (supervised)": F.relu(judge.cpu().encoder(x_test)),
    }
probe_rows = {name: linear_probe_accuracy(e[:500], pair_test[:500], e[500:], pair_test[500:])
              for name, e in embeddings.items()}
for name, acc in probe_rows.items():
    print(f"linear probe on {name:<36}: {acc:.3f}")

# %% [markdown]
# The generator (its EMA weights) and its prompt encoder go to the model registry, with the sizes
# that rebuild them, the recipe and a hash of the code: chapter 05 compares its token-by-token
# image decoder with them.

# %%
from cmlib.generation.generative import save_cgan

entry = save_cgan(generator, g_text, SEED,
                  recipe={"steps": GAN_STEPS, "batch_size": 32, "lr": 5e-4, "num_train": NUM_TRAIN},
                  metrics={"seen": results["seen"], "held-out": results["held-out"]})
print("saved", entry.name, "code version", entry.code_version)

# %% [markdown]
# ## 7. Try it: a prompt box
#
# Type a prompt, pick a seed and a model. An empty prompt, or one with no word the model knows,
# shows a message. Without a running kernel you see the static grid only. Part 1's CVAE is in the
# switch too.

# %%
from cmlib.widgets.generative import prompt_explorer

models = {"cGAN, repaired (long run)": (repaired["generator"], repaired["text"]),
          "cGAN, chapter 04's recipe (this run)": (generator, g_text),
          "cGAN + grounded MiniLM": (generator, gan_grounded)}
models["CVAE (part 1)"] = (cvae_model, cvae_text)
_ = prompt_explorer(models, prompt="a large blue circle on the right")

# %% [markdown]
# ## Summary
#
# * A conditional GAN learns from a discriminator's verdict "real image *of this prompt*?"; detach
#   the fakes in D's step, watch both players' losses and scores.
# * G can only learn what D can see. In this run's short probe (one seed, 300 steps) the pooled
#   trunk read shape better than DCGAN's strided one, 0.694 against 0.499 (chance 0.333); section
#   3 explains why a DCGAN draws round blobs. With a discriminator that reads small shapes,
#   auxiliary class heads, a generator that draws in the object's frame and an EMA of G's weights,
#   the cGAN draws seen prompts right at least 0.85 of the time (checkpoint `cgan-seen`; this
#   run's value is printed in section 5).
# * A classifier that can read shape off colour teaches a shortcut. D's shape head trained on
#   recoloured images (an invariance, stated as data augmentation). G then draws held-out pairs,
#   which no image it trained on shows, well above chance (0.056; checkpoint `cgan-held-out`) but
#   well below its seen-prompt fidelity (section 5 prints both).
# * Fidelity alone hides mode collapse: report diversity beside it. This cGAN collapses in part:
#   in this run its samples vary 0.10–0.20 as much as real images. Section 5 sets part 1's CVAE
#   beside it on held-out pairs (at two temperatures) and variety. Its repair is a question of
#   optimisation (§4.3 优化方法): chapter 09 part 4 repairs the recipe, and section 5b's long
#   run of the repaired cGAN draws seen prompts right at least 0.85 of the time, held-out pairs
#   at least three times chance, with at least half of real images' variety (checkpoints
#   `repaired-cgan-seen`, `repaired-cgan-held-out`, `repaired-cgan-diversity`, and the MiniLM
#   and grounded ones). Its variety is mostly the background's; and its held-out pairs are
#   taught: the repaired G was asked to draw them, by heads trained on the seen pairs.
# * The discriminator's features are an image embedding; section 6 prints how a linear probe on
#   them compares with pixels, PCA and a supervised CNN's features in this run.

# %%
print(f"chapter took {time.perf_counter() - CHAPTER_START:.0f} s")
