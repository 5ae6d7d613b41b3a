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
# # 05 · Encoder–decoder models, part 5: how faithful is a token model?
#
# **Article sections:** §3.2.2 基于编码器-解码器模型的跨模态学习 and §3.2.2.2 跨模态序列生成
# (cross-modal sequence generation).
#
# **Prerequisites:** `05_text_to_image` (part 4: the codebook, the PixelCNN, temperature and
# guidance), `04_prompt_generation` and `04_prompt_generation_gan` (the judge, prompt fidelity,
# and the CVAE and cGAN compared here). **Study time:** about 15 minutes of reading and
# exercises, plus about a minute and a half for the notebook to run on a two-core laptop.
#
# Part 4 trained a PixelCNN that writes an image as 64 tokens, and showed a few of its samples.
# A grid of samples is an impression; this part measures. The judge reads hundreds of samples,
# for prompts the model saw in training and for colour–shape pairs it never saw, with and
# without guidance, and the same judge scores chapter 04's two continuous generators.
#
# **You will:**
# 1. load part 4's model from the model registry (or train it here, the same way);
# 2. see what the sampling temperature does to one token's distribution (exercise 5.9);
# 3. predict, then measure, what guidance does to prompt fidelity;
# 4. put the same model, trained for about 13 minutes instead of one, through the same panel;
# 5. compare the token models with chapter 04's CVAE and cGAN, and list what DALL·E adds.
#
# **Key terms.** prompt fidelity (提示词保真度) · sampling temperature (采样温度) ·
# classifier-free guidance (无分类器引导) · held-out pair (留出组合) · entropy (熵).

# %%
# %matplotlib inline
import time

CHAPTER_START = time.perf_counter()

import matplotlib.pyplot as plt
import torch

from cmlib import runtime, viz
from cmlib.claims import Checkpoints

SEED = runtime.seed_everything()
checkpoint = Checkpoints("05_text_to_image_fidelity")  # learning checkpoints: asserted, recorded
DEVICE = runtime.device()
print(runtime.describe())

SAMPLES_PER_PROMPT = runtime.pick(cpu=30, gpu=100)
GUIDANCE = 3.0  # part 4's sampling settings
TEMPERATURE = 0.7

# %% [markdown]
# ## 1. Part 4's model, from the registry
#
# One registry entry holds part 4's codebook, PixelCNN and prompt encoder. Where part 4 has run
# on this machine with this profile and seed, it is loaded; otherwise the same recipe trains
# here first (a minute or two on two cores), and the status says why. The judge is chapter 04's
# reference judge, the shipped long run `ch04-judge`, trained on perturbed photos so that it
# reads content, not sharpness.

# %%
from cmlib.data.shapes.tasks import one_object_photos
from cmlib.generation.token_recipe import load_or_train_token_prior, token_prior_name
from cmlib.judge import judge_accuracy, reference_judge, reference_judge_name

generator, text_encoder, status = load_or_train_token_prior(SEED, DEVICE, guidance=GUIDANCE)
print(f"{token_prior_name(SEED)}: {status}")
judge, judge_status = reference_judge(DEVICE, SEED)
print(f"{reference_judge_name(SEED)}: {judge_status}")
prior, codebook = generator.prior, generator.codebook

# %% [markdown]
# The codebook's ceiling, as in part 4: the judge's colour+shape accuracy on real test images
# after a round trip through tokens: a rough upper guide, since every sample is built from the
# same codes (a judge's reading of samples can still land a little above it).

# %%
x_test, a_test = one_object_photos("test", 1000, 16, SEED)
judge_real = judge_accuracy(judge, x_test, a_test)["color+shape"]
ceiling = judge_accuracy(judge, codebook.decode(codebook.encode(x_test)), a_test)["color+shape"]
print(f"judge on real test images {judge_real:.3f}; after a round trip through "
      f"{codebook.num_codes} codes {ceiling:.3f}")

# %% [markdown]
# ## 2. One token's distribution, and the temperature
#
# Before the first token the canvas is empty, so the model's distribution for token 1 depends on
# the prompt alone. The temperature (采样温度) divides the logits before the softmax.
#
# **Exercise 5.9** — return the distribution a token is drawn from at temperature `temperature`:
# `softmax(logits / temperature)` over the last dimension (the codes), for logits of shape
# `(B, K)`. Tolerance: 1e-5 absolute, 1e-4 relative.

# %%
from cmlib.exercises import check, use_if_passed
from cmlib.generation.autoregressive import tempered_probabilities


def tempered(logits, temperature):
    ### BEGIN SOLUTION
    return torch.softmax(logits / temperature, dim=-1)
    ### END SOLUTION


check("5.9", tempered)

# %% [markdown]
# Now apply it to the model: the logits of token 1 for one prompt, with guidance, at four
# temperatures. The entropy (熵) in nats measures how spread the distribution is: log 512 = 6.24
# for a uniform one, 0 for a certain one.

# %%
distribution = use_if_passed("5.9", tempered, tempered_probabilities,
                             "the temperature plot uses", device=DEVICE)
with torch.no_grad():
    c = text_encoder(["a large red triangle"]).to(DEVICE)
    empty = torch.zeros(1, prior.grid_size, prior.grid_size, dtype=torch.long, device=DEVICE)
    with_prompt = prior(empty, c)[0, :, 0, 0]
    without = prior(empty, torch.zeros_like(c))[0, :, 0, 0]
    first_logits = without + GUIDANCE * (with_prompt - without)  # part 4's guidance
temperatures = (2.0, 1.0, TEMPERATURE, 0.3)
dists = {t: distribution(first_logits[None], t)[0].cpu() for t in temperatures}
entropy = {t: -(p * p.clamp_min(1e-12).log()).sum().item() for t, p in dists.items()}
for t in temperatures:
    print(f"T = {t:<4}: entropy {entropy[t]:.2f} nats, likeliest code's probability "
          f"{dists[t].max().item():.3f}")

# %%
fig, ax = plt.subplots(figsize=(6, 3))
order = dists[1.0].argsort(descending=True)[:40]
for t in temperatures:
    ax.plot(range(len(order)), dists[t][order], marker=".", label=f"T = {t}")
ax.set(title="Token 1's distribution for 'a large red triangle' (40 likeliest codes)",
       xlabel="code, by probability at T = 1", ylabel="probability")
ax.legend()
viz.show(fig, "Line plot of the probabilities of the 40 likeliest codes for the first token "
         "of 'a large red triangle', one line per sampling temperature; lower temperatures put "
         "more mass on the first few codes.")

# %% [markdown]
# Each lower temperature moves probability from the tail to the head: every draw becomes more
# typical, and samples become less varied. Temperature alone does not use the prompt any more
# than before; guidance does. Section 3 measures the two together on the judge: plain sampling
# against guidance 3 at temperature 0.7.

# %% [markdown]
# ## 3. Prompt fidelity: plain, guided, held out
#
# The judge reads colour and shape of `SAMPLES_PER_PROMPT` samples per prompt (30 in the cpu
# profile): the 15 seen colour–shape pairs, and
# the 3 held-out pairs no generator saw. Plain sampling (guidance 1, temperature 1) against
# part 4's settings (guidance 3, temperature 0.7).
#
# **Question 5.8 — predict, then run.** On the seen prompts, will the guided samples' fidelity
# be (a) higher than plain sampling's, (b) about the same (within 0.02), or (c) lower? Set
# `prediction` to `"a"`, `"b"` or `"c"` before you run the cells after it.

# %%
### BEGIN SOLUTION
prediction = "a"
### END SOLUTION
check("5.8", prediction)

# %%
from cmlib.data.shapes.prompt_text import evaluation_prompts
from cmlib.generation.generative import fidelity_over

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
print(f"codebook ceiling (real test images through tokens): {ceiling:.3f}")

# %% [markdown]
# The bar for this model is a fidelity of 0.80 on seen prompts. Section 4 holds a model to it;
# first, what this run's live model reached, and the effect of guidance, which is a checkpoint.
# The cell also says which attribute holds the live model back: to draw a shape, the model must
# commit to it in the object's first rows and keep every later token consistent with that
# choice; a colour can be right token by token.

# %%
print(f"live model (part 4), seen prompts, guided: {guided['color+shape']:.3f} "
      f"({'meets' if guided['color+shape'] >= 0.80 else 'falls short of'} the 0.80 bar)")
change = guided["color+shape"] - plain["color+shape"]
checkpoint("guidance-gain", change, ">=", 0.02, baseline=plain["color+shape"]);
weaker = min(("color", "shape"), key=lambda k: guided[k])
print(f"the weaker attribute in this run: {weaker} ({guided[weaker]:.3f}, the other "
      f"{guided['shape' if weaker == 'color' else 'color']:.3f})")

# %% [markdown]
# The answer to question 5.8 is (a), by the checkpoint above: guidance raises seen-prompt
# fidelity by more than 0.02. The table shows where the gain comes from in this run, colour or
# shape: guidance sharpens what the prompt already steers, token by token. In this run it does
# not close the gap to 0.80 (printed above); the codebook's ceiling bounds the live model too.

# %% [markdown]
# ## 4. A minute against thirteen: the long run
#
# In the cpu profile part 4's model is small, because a notebook has a few minutes on a laptop.
# The long-run recipe `ch05-token-prior` (`cmlib/longrun/token_prior.py`) trains the same model
# — codebook recipe, gated PixelCNN, prompt encoder, loss, schedule — twice as wide, with 8
# gated layers instead of 5, on 12,000 images instead of 6,000, for 20 epochs instead of 10:
# 12 to 14 minutes on two cores. `make models` trained it for seeds 0, 1 and 2 and shipped the
# weights in `models/`, each with a manifest: its recipe, wall time, the fidelity reached during
# training, and its scores, part of which a unit test recomputes. The gpu profile trains it here
# instead, for this run's seed; there part 4's own model is the larger one, as the size table
# shows.

# %%
from cmlib.generation.token_recipe import TokenPriorRecipe
from cmlib.longrun import token_prior
from cmlib.longrun.recipes import get_recipe, long_run
from cmlib.train import count_parameters

LONG = "ch05-token-prior"
LONG_SEEDS = runtime.pick(cpu=get_recipe(LONG).seeds, gpu=(SEED,))
long_runs = {seed: long_run(LONG, seed, DEVICE) for seed in LONG_SEEDS}
for seed, (_, manifest, how) in long_runs.items():
    print(f"{LONG} seed {seed}: {how}, trained in {manifest['wall_seconds'] / 60:.1f} min on "
          f"{manifest['threads']} CPU threads ({manifest['device']})")
long_config = long_runs[LONG_SEEDS[0]][1]["config"]


live_recipe = TokenPriorRecipe.for_profile(runtime.profile())  # part 4's
sizes = {
    "live (part 4)": (live_recipe.num_train, live_recipe.channels, live_recipe.depth,
                      live_recipe.num_epochs, count_parameters(prior)),
    "long run": (long_config["num_train"], long_config["channels"], long_config["depth"],
                 long_config["num_epochs"], count_parameters(long_runs[LONG_SEEDS[0]][0]["prior"])),
}
print(f"{'':<15}{'images':>8}{'channels':>10}{'layers':>8}{'epochs':>8}{'parameters':>12}")
for label, (images, channels, depth, epochs, count) in sizes.items():
    print(f"{label:<15}{images:>8,}{channels:>10}{depth:>8}{epochs:>8}{count:>12,}")

# %% [markdown]
# The same panel as section 3 (guidance 3, temperature 0.7, 30 samples per prompt), for the live
# model and for each long-run seed. One judge recipe reads them all: chapter 04's long run
# `ch04-judge`, which reads blurred, noisy and shifted true photos at 0.97 or more; each long run
# is read by the judge of its own seed, the live model by this run's. The long runs' rows come
# from their manifests: `make models` scored them with that judge when it trained them, and a
# unit test recomputes part of each.

# %%
panel = {"live (part 4)": {"seen colour": guided["color"], "seen shape": guided["shape"],
                           "seen colour+shape": guided["color+shape"],
                           "held-out colour+shape": heldout["color+shape"],
                           "ceiling": ceiling}}
for seed, (_, manifest, _) in long_runs.items():
    m = manifest["metrics"]
    panel[f"long run, seed {seed}"] = {
        "seen colour": m["seen color"], "seen shape": m["seen shape"],
        "seen colour+shape": m["seen color+shape"],
        "held-out colour+shape": m["held-out color+shape"], "ceiling": m["ceiling"]}
print(f"{'':<20}" + "".join(f"{k:>23}" for k in panel["live (part 4)"]))
for label, row in panel.items():
    print(f"{label:<20}" + "".join(f"{v:23.3f}" for v in row.values()))

# %% [markdown]
# > **Learning checkpoint.** The long run reaches a seen-prompt fidelity of at least 0.80 for
# > every shipped seed. It is asserted on the worst one. In the gpu profile, which trains the
# > long run live for this run's seed, it is asserted on that seed.
#
# Each seed's fidelity comes from 30 samples of each of 15 prompts, 450 images, so near 0.9 it
# carries a sampling error of about ±0.015; the margin the checkpoint prints is to be read
# against it.

# %%
long_seen = {label: row["seen colour+shape"] for label, row in panel.items()
             if label.startswith("long run")}
for label, value in long_seen.items():
    print(f"{label}: seen-prompt fidelity {value:.3f}, "
          f"{'meets' if value >= 0.80 else 'falls short of'} the 0.80 bar")
checkpoint("seen-prompt-fidelity", min(long_seen.values()), ">=", 0.80, chance=1 / 18,
           baseline=guided["color+shape"]);

# %% [markdown]
# Fidelity during training, from the manifests (seen prompts, a third of the samples, read by the
# reference judge of each run's seed), and the live model's final value for comparison:

# %%
fig, ax = plt.subplots(figsize=(6, 3.2))
for seed, (_, manifest, _) in long_runs.items():
    curve = manifest["curve"]
    ax.plot(curve["step"], curve["seen color+shape"], marker="o", label=f"long run, seed {seed}")
ax.axhline(guided["color+shape"], color="grey", ls=":", label="live model (part 4), final")
ax.axhline(0.80, color="k", ls="--", label="the 0.80 bar")
ax.set(title="Seen-prompt fidelity of the long run during training",
       xlabel="training step (batches of 64)", ylabel="colour+shape fidelity", ylim=(0, 1))
ax.legend(fontsize=8)
viz.show(fig, "Line plot of the long-run token model's seen-prompt colour-and-shape fidelity "
         "read by the reference judge against training step, one line per shipped seed, with a "
         "dotted line at the live model's final value and a dashed line at the 0.80 bar.")

# %% [markdown]
# Samples of the long run (seed 0), the same prompts as part 4's grid:

# %%
from cmlib.widgets.generative import sample_grid

long_model = long_runs[LONG_SEEDS[0]][0]
long_generator = token_prior.generator_of(long_model, long_config)
grid_prompts = ["a red circle", "a green triangle", "a blue circle", "a large yellow square",
                "a small purple triangle on the left"]
viz.show(
    sample_grid(long_generator, long_model["text"], grid_prompts,
                f"Long-run samples (seed {LONG_SEEDS[0]}, guidance {GUIDANCE}, temperature "
                f"{TEMPERATURE}), one prompt per row", n=8, seed=SEED, temperature=TEMPERATURE),
    "Grid of 16x16 samples from the long-run token PixelCNN, one row per prompt, eight samples "
    "per row, the prompt written above each row's first image.",
)

# %% [markdown]
# Compare the rows of the panel: which
# attribute does the long run gain, and how far do the held-out pairs follow the seen ones?
# Shape needs the whole object to be planned from its first rows, and a deeper model sees more
# of the rows above each token.

# %% [markdown]
# Chapter 04 put its CVAE (part 1) and cGAN (part 3) in the model registry. Here they are on the
# same prompts and number of samples, by the same judge; the CVAE samples at the prior
# temperature τ = 0.3 its chapter uses (the cGAN has no temperature). Where part 1 has not run on
# this machine the registry trains its recipe first (about a minute); part 3's cGAN is shown where
# part 3 has run.

# %%
from cmlib.checkpoint import CheckpointError
from cmlib.data.shapes.text import shapes_vocab
from cmlib.generation.generative import cgan_name, load_cgan
from cmlib.registry import StaleModelError
from cmlib.studio import models as studio_models

drawer, drawer_status = studio_models.load_role("drawer", SEED, DEVICE)
print(f"{studio_models.registry_name('drawer', SEED)}: {drawer_status}")
generators = {"CVAE (chapter 04, part 1)": (drawer.cvae, drawer.text, 0.3)}
try:
    cgan, cgan_text = load_cgan(SEED, shapes_vocab())
    generators["cGAN (chapter 04, part 3)"] = (cgan.to(DEVICE), cgan_text.to(DEVICE), 1.0)
except (FileNotFoundError, StaleModelError, CheckpointError) as err:
    print(f"{cgan_name(SEED)} is not available ({err}); run chapter 04 part 3 to add it")
rows = {"PixelCNN on tokens (part 4)": (guided["color+shape"], heldout["color+shape"])}
for seed in LONG_SEEDS:
    row = panel[f"long run, seed {seed}"]
    rows[f"PixelCNN, long run, seed {seed}"] = (row["seen colour+shape"],
                                                row["held-out colour+shape"])
for label, (model, encoder, temperature) in generators.items():
    rows[label] = tuple(fidelity_over(judge, model, encoder, prompt_sets[name],
                                      SAMPLES_PER_PROMPT, SEED, temperature)["color+shape"]
                        for name in ("seen", "held-out"))
print(f"{'model':<46}{'seen':>8}{'held-out':>10}   (colour+shape fidelity)")
for label, (seen, held) in rows.items():
    print(f"{label:<46}{seen:8.3f}{held:10.3f}")

# %% [markdown]
# ## 5. DALL·E in miniature — and what is missing
#
# The recipe is DALL·E's: a discrete image vocabulary, and an autoregressive model of image
# tokens given the text. What this miniature leaves out, each a reason it draws worse:
#
# * **The vocabulary.** Here: k-means over 2×2 patches, 512 codes, never trained for the task.
#   DALL·E: a discrete VAE learned end to end, 8192 codes, 32×32 tokens per 256×256 image.
# * **The model.** Here: a gated PixelCNN of about 0.3M parameters (1.0M in the long run) with a
#   local receptive field. DALL·E: a 12-billion-parameter transformer attending to every
#   earlier token.
# * **The prompt.** Here: a bag-of-words vector added inside the gates. DALL·E: text tokens and
#   image tokens in one stream, every image token attending to the text.
# * **The data.** Here: 6,000 synthetic images (12,000 in the long run) of 15 colour–shape
#   pairs. DALL·E: 250 million image–text pairs from the web.
# * **The choice.** Here: one sample per draw, sharpened by guidance. DALL·E: 512 samples
#   reranked by CLIP (chapter 07's contrastive model).
#
# What is the same is the point of §3.2.2.2 跨模态序列生成: once both modalities are token
# sequences, generating either from the other is next-token prediction.

# %% [markdown]
# ## Summary
#
# * The temperature reshapes each token's distribution: lower is more typical and less varied.
#   It does not add information about the prompt.
# * Guidance does: it pushes each token towards what this prompt makes likelier than no prompt.
#   Its effect, with temperature 0.7, on seen-prompt fidelity in this run is printed in
#   section 3, beside plain sampling, the held-out pairs and the codebook's ceiling.
# * In the cpu profile the same model, wider and deeper and trained about 13 minutes instead of
#   one, draws the seen prompts more faithfully than the live run (in this run, section 4's
#   panel): every shipped seed reaches the 0.80 bar, read by the same reference-judge recipe
#   as the live run (section 4's checkpoint). The held-out pairs are printed beside them.
# * On the same judge and prompts, chapter 04's continuous generators are printed beside the
#   token models (the table closing section 4). In this run both read higher than every token
#   model, on the seen prompts and on the held-out pairs.
# * Once images are tokens, text-to-image is next-token prediction; what DALL·E adds is scale,
#   a learned vocabulary, attention to the text, and reranking.

# %%
print(f"chapter run time: {time.perf_counter() - CHAPTER_START:.0f} s")
