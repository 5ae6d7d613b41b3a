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
# # 11 · The prompt studio (app)
#
# **Article:** the practical project (实际项目) of the abstract; the chapter is
# `11_capstone_studio`. This page is the studio alone, served by `make studio` with Voilà
# (no code shown). Type a prompt such as "a small red circle on the left" and press **Ask the
# studio**: it finds (检索) real images, draws (生成) new ones, translates them into sketches
# (图像翻译), describes (图像描述) each one and checks every caption against your prompt
# (往返评估, round-trip evaluation). Below it, ask a question about a scene of several objects
# (视觉问答, chapter 08's reasoners).
#
# **Prerequisites:** `11_capstone_studio` (what the studio does, and the models it loads). **Study
# time:** about 5 minutes of reading, plus under a minute for the notebook to run on a two-core
# laptop.
#
# The models come from the registry and from the long runs shipped in `models/`; whatever is
# missing is trained first (a few minutes on a CPU, once).

# %%
# %matplotlib inline
import time

CHAPTER_START = time.perf_counter()

from cmlib import runtime, viz
from cmlib.studio.pipeline import Studio
from cmlib.widgets.studio import studio_app

SEED = runtime.seed_everything()
studio, statuses = Studio.load(SEED, runtime.device(), progress=False)
print("models:", "; ".join(f"{role} {status}" for role, status in statuses.items()))

# %% [markdown]
# How a prompt flows through the course's models:

# %%
from cmlib.widgets.studio_flow import data_flow_figure

fig = data_flow_figure()
viz.show(fig, "Flow diagram of the studio: prompt, understand, then find (dual encoder) and draw "
         "(CVAE), translate to sketches (CycleGAN), describe (captioner), and a round-trip "
         "verdict.")

# %% [markdown]
# Under Voilà a kernel always runs, so the app shows its live view only (no static copy first).

# %%
_ = studio_app(studio, prompt="a small red circle on the left", static=False)

# %% [markdown]
# ## Ask about a scene
#
# The studio's question-answering role (视觉问答, visual question answering) works in chapter
# 08's world of several objects. Pick a scene, type a question such as "How many red shapes are
# left of the circle?" and press **Ask about the scene**. Two of chapter 08's reasoners answer:
# the cross-attention transformer, and the question's program run on the scene its tagger
# parsed. When they agree the studio states the answer; when they do not, it shows both.

# %%
from cmlib.studio.questions import EXAMPLE_QUESTION, QuestionAnswerer
from cmlib.widgets.studio import question_app

qa, status = QuestionAnswerer.load(runtime.device())
print("question answering:", status)
scene_items, scenes = qa.scenes(50, SEED)
first = qa.answerable(scene_items, EXAMPLE_QUESTION)[0]  # a scene with exactly one circle
_ = question_app(qa, scenes, index=first, static=False)

# %%
print(f"chapter took {time.perf_counter() - CHAPTER_START:.0f} s")
