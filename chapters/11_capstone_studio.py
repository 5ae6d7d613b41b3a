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
# # 11 · Capstone: a prompt studio that finds, draws, describes and translates
#
# **Article sections:** the abstract's practical project (实际项目:
# 通过实际项目展示了跨模态学习的应用), and §1.3 跨模态学习的挑战与机遇 (challenges and
# opportunities). The studio uses the models of §2 (视觉与语言特征), §3 (提示词驱动的生成,
# 编码器–解码器), §4.1 (特征对齐) and §4.2 (跨模态推理).
#
# **Prerequisites:** `04_prompt_generation` (the CVAE and the judge), `05_captioning` (the captioner
# and the caption grammar), `06_cyclegan` (photo → sketch), `07_retrieval` (the dual encoder) and
# `08_reasoning_transformer`, `08_reasoning_models` and `08_reasoning_generalisation` (the
# tagger, the reasoners, CoGenT); the
# review of §1.3 also quotes `03_fusion` and `05_captioning_heldout`. **Study time:** about 55
# minutes of reading and exercises. On a two-core laptop the notebook runs in well under a minute
# when the model registry already holds its models, and in a minute or more when it must train
# them first (section 2 prints how long the models took in this run).
#
# A prompt goes in, such as "a small red circle on the left". The studio
# 1. **finds** the best-matching real images with chapter 07's dual encoder;
# 2. **draws** new ones with chapter 04's CVAE;
# 3. **describes** every image with chapter 05's captioner;
# 4. **translates** photos into sketches with chapter 06's CycleGAN;
# 5. **checks itself**: each caption is read back into a scene and compared with the prompt.
#
# And a question about a scene of several objects ("How many red shapes are left of the
# circle?") goes to chapter 08's reasoners: two of them answer, and the studio states an answer
# only when they agree.
#
# Then we measure it: is the round-trip verdict a usable metric, when does finding beat drawing,
# when can two reasoners' agreement be trusted, and which of §1.3's challenges did this course
# run into?
#
# **Key terms.** round-trip evaluation (往返评估) · retrieval (检索) · generation (生成) ·
# image captioning (图像描述) · image-to-image translation (图像翻译) ·
# model registry (模型注册表) · compositional generalisation (组合泛化) ·
# paraphrase (同义改写) · mode collapse (模式崩溃) · visual question answering (视觉问答) ·
# scene tagger (场景标注器) · scene graph (场景图) · neuro-symbolic reasoning (神经符号推理) ·
# shortcut learning (捷径学习) · shared blind spot (共同盲点).

# %%
# %matplotlib inline
import time

CHAPTER_START = time.perf_counter()

import pandas as pd
import torch
from IPython.display import display

from cmlib import registry, runtime, viz
from cmlib.claims import Checkpoints

pd.set_option("display.width", 120)
SEED = runtime.seed_everything()
checkpoint = Checkpoints("11_capstone_studio")  # learning checkpoints: asserted and recorded
DEVICE = runtime.device()
print(runtime.describe())

NUM_DRAWN = runtime.pick(cpu=4, gpu=16)  # images drawn per evaluation prompt

# %% [markdown]
# ## 1 · How the pieces fit
#
# Every box is a model a chapter trained, imported from `cmlib`; the studio adds only the glue
# (`cmlib.studio`). The dashed arrow is the round trip: the prompt's own scene is compared with
# what the captioner says it sees.

# %%
from cmlib.widgets.studio_flow import data_flow_figure

fig = data_flow_figure()
viz.show(fig, "Flow diagram of the studio: prompt, understand, then find (dual encoder) and draw "
         "(CVAE), translate to sketches (CycleGAN), describe (captioner), and a round-trip "
         "verdict.")

# %% [markdown]
# ## 2 · The models, by name
#
# The studio asks for each model by name. One is a chapter's own: the drawer is chapter 04's
# CVAE (`ch04-cvae-<profile>-seed<seed>` in the model registry, `cmlib.registry`, saved by
# chapter 04 part 1). Two are long runs shipped with the course in `models/`: the judge is
# chapter 04's reference judge (`models/ch04-judge-seed0.safetensors`, the one chapters 04 and
# 05 score with, trained to read content through blur, noise and shifts), and the translator is
# chapter 06's long-run CycleGAN (`models/ch06-cyclegan-seed0.safetensors` for seed 0; seeds 1
# and 2 have their own): trained for about seventeen minutes, it keeps colour and shape in at
# least 90% of chapter 06's test scenes in both directions, which a notebook's few minutes of
# training cannot (chapter 06 part 1, section 5, compares the two). The others are the studio's
# compact versions of chapters 05 and 07 (`ch11-<role>-…`). A registry entry is used only if
# its config and the code that trained it are unchanged; a missing, stale or corrupt entry is
# trained again, here, with its chapter's recipe (`cmlib.studio.models.SIZES`), so a fresh
# clone runs this chapter on its own. If a shipped file is missing or corrupt, the judge is
# trained here with its recipe (`cmlib.judge.REFERENCE_CONFIG`) and a compact CycleGAN takes the
# translator's place, and the status says so.
#
# The studio's world is chapter 04's: one shape, 16×16 pixels. The captioner reads the images
# upsampled to 32×32, photos and sketches alike. It learns from each training scene three times:
# once clean and in two perturbed copies, where each image, by chance, gets some noise, a 3×3 blur
# or a one-pixel shift, or several of them (colour and shape survive), because it referees drawn
# images, which are never pixel-perfect; section 6 measures how well it reads perturbed photos.

# %%
from cmlib.studio import models
from cmlib.studio.pipeline import Studio

started = time.perf_counter()
studio, statuses = Studio.load(SEED, DEVICE)
judge, statuses["judge"] = models.load_role("judge", SEED, DEVICE)
load_seconds = time.perf_counter() - started
print(f"models ready in {load_seconds:.0f} s")
display(pd.DataFrame({"status": statuses}))

# %% [markdown]
# What the registry keeps with each model: the config that rebuilds it and the code version (a
# hash of the source files that trained it).

# %%
rows = {}
for role in models.ROLES:
    if statuses[role].startswith("loaded the long run"):
        continue  # shipped in models/, with its manifest (chapter 06 shows it)
    saved = registry.describe_model(models.registry_name(role, SEED))
    rows[saved.name] = {"code version": saved.code_version, "config": saved.config}
display(pd.DataFrame(rows).T)

# %% [markdown]
# ## 3 · Understanding a prompt
#
# The studio speaks ShapesWorld's caption grammar (chapter 05's parser), plus a leading verb.
# What it cannot serve gets a message that names what it understands, never a traceback.

# %%
from cmlib.studio import PromptNotUnderstood

for prompt in ["draw a little red ball on the left", "find a large blue square",
               "draw a cat", "", "a red circle left of a blue square"]:
    try:
        print(f"{prompt!r:40} → {studio.understand(prompt).scene}")
    except PromptNotUnderstood as err:
        print(f"{prompt!r:40} → message: {str(err)[:110]}…")

# %% [markdown]
# ## 4 · One prompt, all the way
#
# Three found images, three drawn ones, and all six as sketches. Each title is the captioner's
# description, with ✓ when it says what the prompt asked (colour, shape, and size and position
# where the prompt says them) and ✗ when it does not.

# %%
from cmlib.widgets.studio import answer_figure

answer = studio.serve("a small red circle on the left", k=3, n=3, seed=SEED)
fig = answer_figure(answer)
viz.show(fig, "Grid of the studio's answer to 'a small red circle on the left': rows of found, "
         "drawn and sketched images, each titled with its caption and a ✓ or ✗ verdict.")
for item in answer.shown:
    print(f"{item.kind:>6}: {item.verdict.message()}")

# %% [markdown]
# ## 5 · The round trip as a metric
#
# Over many prompts, the share of ✓ estimates how faithful the studio is, without labels. We use
# chapter 04's prompt sets: `seen` ("a red circle", the 15 pairs the models trained on),
# `seen, full` (with size and position), `held-out` (the 3 pairs no model saw, e.g. "a red
# triangle") and `paraphrase` ("a crimson disc"). For every prompt the studio finds its top-1
# image and draws `NUM_DRAWN`; each image is captioned and checked. An independent referee
# scores the same images: chapter 04's attribute judge for drawn images, and the true
# attributes for found ones.

# %%
from cmlib.data.shapes.prompt_text import evaluation_prompts
from cmlib.studio import evaluation

prompt_sets = evaluation_prompts(SEED)
records = evaluation.evaluate(studio, judge, prompt_sets, NUM_DRAWN, seed=SEED)
table = pd.DataFrame(evaluation.summary_table(records)).set_index(["prompt set", "source"])
display(table.round(3))

# %% [markdown]
# The checkpoints: on seen prompts, the drawn images' round trip names the prompt's colour and
# shape, and the finder's top-1 shows everything the prompt says (for prompts the gallery can
# answer: with 1,000 photos, a "large orange square at the top" may simply not be there); over
# all drawn images, the verdict agrees with the judge.

# %%
seen = [r for r in records if r.prompt_set in ("seen", "seen, full")]
round_trip = evaluation.rate(seen, "verdict_color_shape", source="drawn")
unanswerable = [r.prompt for r in seen if r.source == "found" and not r.gallery_has_answer]
print(f"seen prompts with no matching image in the gallery (left out of top-1): {unanswerable}")
top1 = evaluation.rate(seen, "judge_agrees", source="found", gallery_has_answer=True)
verdict_vs_judge = evaluation.verdict_judge_agreement(records, source="drawn")
checkpoint("round-trip-seen-color-shape", round_trip, ">=", 0.85, chance=1 / 18)
checkpoint("retrieval-top1-seen", top1, ">=", 0.95)
checkpoint("verdict-judge-agreement", verdict_vs_judge, ">=", 0.85);

# %% [markdown]
# ## 6 · Where the verdict and the judge disagree
#
# A metric is only as good as its checker. Below, every drawn image on which the two disagree,
# with the caption and what the judge saw.

# %%
from cmlib.data.shapes import COLORS, POSITIONS, SHAPES, SIZES
from cmlib.viz import show_images

drawn = [r for r in records if r.source == "drawn"]
disagree = [r for r in drawn if r.verdict_agrees != r.judge_agrees]
print(f"they disagree on {len(disagree)} of {len(drawn)} drawn images; by prompt set:")
for name in prompt_sets:
    share = 1 - evaluation.verdict_judge_agreement(drawn, prompt_set=name)
    print(f"{name:>11}: {share:.2f} of its drawn images")

# %% [markdown]
# Which set disagrees most often in this run is printed above. To look, we redraw two held-out
# prompts and show what the captioner and the judge say.

# %%
def judge_says(images):
    pred = judge.predict(images)
    return [f"{SIZES[s]} {COLORS[c]} {SHAPES[h]} {POSITIONS[p]}" for s, c, h, p in
            zip(pred["size"], pred["color"], pred["shape"], pred["position"])]


held_texts = [p[0] for p in prompt_sets["held-out"][:2]]
images = torch.cat([studio.draw(text, 4, seed=SEED) for text in held_texts])
captions = studio.describe(images)
labels = [f"caption: {c}\njudge: {j}" for c, j in zip(captions, judge_says(images))]
fig = show_images(images, captions=labels, ncols=4, cell_size=2.4, wrap=40,
                  title=f"drawn for {held_texts}: the captioner against the judge")
viz.show(fig, "Grid of images drawn for two held-out prompts, one row of four per prompt, each "
         "captioned with the captioner's caption and the judge's reading.")

# %%
held = [r for r in drawn if r.prompt_set == "held-out"]
judge_right = evaluation.rate(held, "judge_agrees")
round_trip_right = evaluation.rate(held, "verdict_agrees")
print(f"held-out prompts, drawn images: judge says right {judge_right:.2f}, "
      f"round trip says right {round_trip_right:.2f}")

# %% [markdown]
# In this run the drawer composes the unseen pairs (the judge, which learned all 18 pairs from
# real images, sees them), but the captioner, trained on the same 15 pairs as the drawer, often
# names a pair it knows instead: in this run's figure every green circle comes back as a green
# square, and two of the four red triangles come back as red circles. The round trip then calls
# good drawings bad, and confirms only a small share of them (printed above). **A round-trip
# metric shares the blind spots of its captioner**: it can vouch only for what the captioner
# learned. That is why the chapter keeps an independent judge trained on every pair.
#
# The verdict has a second duty as a referee: it must read content, not sharpness, as chapter
# 04's judge must (chapter 04, section 4). Here both read the same true test photos of seen
# pairs, clean and perturbed in ways that keep colour and shape: does the caption name the
# photo's colour and shape, and does the judge see them?

# %%
from cmlib import perturb
from cmlib.data.shapes.tasks import one_object_photos
from cmlib.judge import judge_accuracy

x_true, a_true = one_object_photos("test", 500, 16, SEED)
readers = {  # each reads the same photos, clean and perturbed (cmlib.perturb.readings)
    "verdict (captioner)": perturb.readings(
        lambda x: evaluation.verdict_reads(studio, x, a_true), x_true, SEED),
    "judge": perturb.readings(
        lambda x: judge_accuracy(judge, x, a_true)["color+shape"], x_true, SEED),
}
robustness = {name: {r: readers[r][name] for r in readers} for name in readers["judge"]}
print(f"{'colour+shape read on true photos':34}" + "".join(f"{n:>8}" for n in robustness))
for reader in robustness["clean"]:
    print(f"{reader:34}" + "".join(f"{robustness[n][reader]:8.3f}" for n in robustness))
worst = min(perturb.PERTURBATIONS, key=lambda n: robustness[n]["verdict (captioner)"])
drop = {r: robustness["clean"][r] - robustness[worst][r] for r in robustness["clean"]}
print(f"the verdict's worst case is {worst}: {drop['verdict (captioner)']:.3f} below its clean "
      f"reading (the judge: {drop['judge']:.3f})")

# %% [markdown]
# Read the two rows against each other. Both readers learned from perturbed images: the judge
# for 20 epochs on 9,000 photos, perturbed afresh in every batch, the captioner for 16 epochs on
# 3,000 scenes and two fixed perturbed copies of each. A referee of drawn images should read
# perturbed true photos about as well as clean ones; chapter 04 asks its judge for 0.97 under
# each perturbation, and the verdict's worst case, printed above, falls short of it in this run:
# it is not yet a referee the course can hold to that bar. Where the verdict falls below the
# judge under a perturbation, the round
# trip is partly a check of sharpness, and some of section 5's disagreements between verdict
# and judge on drawn images may be the captioner's misreadings rather than the drawer's
# mistakes. Trained on clean scenes alone, the same captioner read blurred photos far worse:
# 0.546 for seed 0 and 0.508 for seed 2 when the course measured it (`chapters/notes/models.md`
# has the search); a blur costs a small object its corners, and what the captioner gets wrong
# is the shape. Try it: set `models.SIZES[runtime.profile()]["describer"]["perturbed_copies"] =
# 0`, load the studio again with `studio, statuses = Studio.load(SEED, DEVICE)` (the describer
# trains again, about 25 s, in place of the registry's), and run this cell again; setting it back
# to 2 trains the describer once more (about 70 s).

# %% [markdown]
# ## 7 · Retrieval against generation
#
# For the same prompts: is the finder's top-1 or a drawn image more often right (by the
# referee)?

# %%
compare = table["judge: right"].unstack("source")[["found", "drawn"]]
ax = compare.plot.bar(figsize=(7, 3.2), rot=0)
ax.set(title="Retrieval against generation, by prompt set", xlabel="prompt set",
       ylabel="share right (referee)", ylim=(0, 1.05))
ax.legend(title="source")
viz.show(ax.figure, "Grouped bar chart of the share of found (top-1) and drawn images the referee "
         "judges right, for each prompt set.")

# %% [markdown]
# The gallery holds only test-split photos, and the test split has no held-out pairs: for a
# red triangle there is nothing to find. Add held-out photos to the gallery and ask again.

# %%
from cmlib.shapes_retrieval import load_split

extra = load_split("heldout", 300, models.IMAGE_SIZE)
mixed = studio.with_gallery(
    torch.cat([studio.gallery, extra.images]),
    {k: torch.cat([studio.gallery_attrs[k], extra.attrs[k]]) for k in extra.attrs},
)
mixed_records = evaluation.evaluate(mixed, judge, {k: prompt_sets[k] for k in
                                                   ("seen", "seen, full", "held-out")}, 1, SEED)
for name in ("seen", "seen, full", "held-out"):
    found = [r for r in mixed_records if r.prompt_set == name and r.source == "found"]
    print(f"{name:>10}: top-1 right {evaluation.rate(found, 'judge_agrees'):.2f}, "
          f"round trip says right {evaluation.rate(found, 'verdict_agrees'):.2f}")
wrong = [r for r in mixed_records if r.source == "found" and not r.judge_agrees]
for r in wrong:
    print(f"wrong top-1 for {r.prompt!r}: captioned {r.caption!r}, verdict {r.verdict_agrees}")

# %% [markdown]
# In this run, with held-out photos in the gallery, the finder retrieves two of the three unseen
# pairs (chapter 07 showed the dual encoder composes; for "a green circle" its top-1 is a green
# square), and the captioner confirms none of them. The extra photos also cost some of the full
# seen prompts: their top-1 is right less often than with the test gallery alone (0.96 against
# 0.987 in section 5's table), because for some of them the finder now ranks one of the added
# photos first. Look at the verdicts of the wrong top-1s listed above: for two of them the
# captioner names exactly what the prompt asked for ("a small blue circle on the left"), so
# **the round trip approves the finder's mistake**. A photo of a held-out pair would do that: the
# captioner never saw the pair and names the nearest one it knows. Checker and model then share
# a blind spot, and the metric is blind exactly there. Where the captioner knows what it sees,
# as for the orange square the gallery cannot supply, or the green square returned for "a green
# circle", the round trip does reject the wrong top-1.
#
# When the gallery holds the answer, finding is as faithful as drawing (in this run the two are
# within two points of each other on the seen prompts) and new content costs no training; drawing
# wins when the gallery has nothing to find, as for the held-out pairs, and for prompts no gallery
# anticipates. In this run both fail on the paraphrases ("a crimson disc", table of section 5):
# their text encoders know only the course's words.

# %% [markdown]
# With the test gallery alone, the finder's top-1 on the seen prompts the gallery can answer was
# right every time in this run (section 5's checkpoint, 1.000), and a task solved every time
# cannot show a finder getting a little worse. The 300 held-out photos make it harder: they are
# distractors, photos of pairs the finder never trained on, and each can outrank the right answer.
#
# > **Learning checkpoint.** With held-out photos in the gallery, the finder's top-1 is still
# > right ≥ 0.80 of the time on those of the 90 seen prompts (15 short, 75 full) that the gallery
# > can answer.

# %%
seen_mixed = [r for r in mixed_records if r.prompt_set in ("seen", "seen, full")]
top1_mixed = evaluation.rate(seen_mixed, "judge_agrees", source="found", gallery_has_answer=True)
checkpoint("retrieval-top1-seen-with-distractors", top1_mixed, ">=", 0.80, baseline=top1);

# %% [markdown]
# ## 8 · Translation, and captions of sketches
#
# The captioner learned both styles, so the round trip also checks the CycleGAN's sketches: does
# the translation keep the colour and shape the prompt asked for?

# %%
sketch_ok, sketch_total = 0, 0
for text, *_ in prompt_sets["seen"]:
    answer = studio.serve(text, k=1, n=2, seed=SEED)
    for item in answer.of_kind("sketch"):
        sketch_ok += item.verdict.matches["color_shape"]
        sketch_total += 1
print(f"sketches of seen prompts whose caption names the prompt's colour and shape: "
      f"{sketch_ok}/{sketch_total} = {sketch_ok / sketch_total:.2f}  (translator: "
      f"{statuses['translator']})")

# %% [markdown]
# ## 9 · Asking about a scene: a question-answering role
#
# "How many red shapes are left of the circle?" The studio's prompt roles cannot answer that:
# they draw and find one shape at a time. A question about a scene of several objects needs a
# model that reasons over it (跨模态推理, §4.2), and chapter 08 compared several. The studio's
# question-answering role (视觉问答, visual question answering) loads chapter 08's shipped
# long run `ch08-reasoning` (seed 0) from `models/`, in every profile. It holds two models:
# the **scene tagger** (场景标注器, chapter 08 part 2), a small frozen CNN that names the
# colour, shape and size of the object in each cell of a grid, and the **cross-attention
# transformer**, trained on the tagger's features, whose question tokens attend to the image's
# cells. Beside them stands the **neuro-symbolic** reasoner (神经符号推理, part 3): it turns the
# tagger's cells into a **scene graph** (场景图: the objects, their attributes and positions)
# and runs the question's program on it. The glue, `cmlib.studio.questions`,
# maps the few words a reader uses that the course's questions say otherwise ("shapes" and
# "things" become "objects", "color" becomes "colour") and asks both reasoners.

# %%
from cmlib.widgets.studio_flow import question_flow_figure

fig = question_flow_figure()
viz.show(fig, "Flow diagram of the studio's questions: the scene goes to the scene tagger, whose "
         "features feed the cross-attention transformer and whose parse feeds the program; the "
         "question is read into words and a program for both; the two answers meet in an "
         "agreement check that states the answer or shows both.")

# %%
from cmlib.studio.questions import EXAMPLE_QUESTION, QuestionAnswerer, agreement

qa, statuses["reasoner"] = QuestionAnswerer.load(DEVICE)
print(statuses["reasoner"])
scene_items, scene_images = qa.scenes(50, SEED)
fits = qa.answerable(scene_items, EXAMPLE_QUESTION)  # the scenes with exactly one circle
some = [k for k in fits if qa.true_answer(scene_items[k], EXAMPLE_QUESTION) != "zero"]
first = (some or fits)[0]  # one with red objects left of its circle, if any of the 50 has them
reply = qa.ask(scene_images[first], EXAMPLE_QUESTION)
print(f"scene {first}: {EXAMPLE_QUESTION!r} is read as {reply.question!r} ({reply.family})")
print(f"transformer: {reply.transformer};  neuro-symbolic: {reply.neuro_symbolic};  "
      f"true answer: {qa.true_answer(scene_items[first], EXAMPLE_QUESTION)}")
print("the program's steps:", *reply.steps, sep="\n  ")

# %% [markdown]
# Two reasoners of different kinds answer every question: one learned from examples on the
# frozen tagger's features, one runs an exact program on the scene the same tagger parsed.
# Their agreement is this role's round trip. The studio states an answer only when the two
# agree, and shows both when they do not. Is agreement a usable check? `agreement` scores it
# over many questions: each reasoner's accuracy, how often they agree, how often the shared
# answer is right, the share of the transformer's wrong answers on which they disagree
# (mistakes the studio would not state), and how often the program is right when they
# disagree. Three tests: chapter 08's **i.i.d.** questions
# (独立同分布: drawn like the training questions, 3–6 objects); scenes of 7–8 objects, more than
# any training scene had; and CoGenT's condition B. In CoGenT's **condition A** circles are
# only ever red, blue or yellow and squares green, purple or orange; **condition B** swaps the
# two. Condition B is asked of chapter 08 part 4's long run (`ch08-reasoning-generalisation`),
# whose tagger and transformer saw only condition A's colour–shape pairs (and no
# `count_relate` question, so none is asked here).
#
# **Question 11.1 — predict, then run.** On CoGenT's condition B, both reasoners stand on a
# tagger trained on condition A. How often is an answer the two agree on right: (a) as often as
# on the i.i.d. test, 0.99 or more; (b) clearly less often, 0.85 or less; (c) in between? Set
# `prediction` before you run the next cells.

# %%
from cmlib.exercises import check

### BEGIN SOLUTION
prediction = "b"
### END SOLUTION
check("11.1", prediction)

# %%
from cmlib.longrun.reasoning import data_options

NUM_QUESTIONS = runtime.pick(cpu=1000, gpu=2000)
general, statuses["reasoner, condition A"] = QuestionAnswerer.load(
    DEVICE, "ch08-reasoning-generalisation")
beyond = tuple(qa.config["beyond_objects"])
trust_tests = {
    "3–6 objects": (qa, {}),
    f"{beyond[0]}–{beyond[1]} objects": (qa, {"num_objects": beyond}),
    "CoGenT B (trained on A)": (general, {**data_options(general.config), "condition": "B"}),
}
trust = {}
for name, (answerer, options) in trust_tests.items():
    items, images = answerer.scenes(NUM_QUESTIONS, SEED, **options)
    said = answerer.answer(images, [i.question for i in items])
    trust[name] = agreement(*said, [i.answer for i in items])
display(pd.DataFrame(trust).T.round(3))

# %% [markdown]
# Read the table row by row. On the questions chapter 08 trained for, the transformer is wrong
# on about one question in twenty in this run (its accuracy is in the first column) and the
# program on almost none. The studio states an answer for the share printed under `agree`, and
# `right when they agree` is how many of those are right. With more objects than any training
# scene, the transformer loses several points more (chapter 08 part 4: it never learned to say
# "seven"), but the program counts on, so the two disagree on almost every one of the
# transformer's mistakes, and the studio states almost none of them. Two checkpoints hold the
# studio to that:

# %%
more = trust[f"{beyond[0]}–{beyond[1]} objects"]
checkpoint("qa-right-when-they-agree-more-objects", more["right when they agree"], ">=", 0.99,
           baseline=more["transformer"])
checkpoint("qa-errors-flagged-more-objects", more["errors flagged"], ">=", 0.90);

# %% [markdown]
# The last row is the negative result, the answer to 11.1 (b, by the checkpoint below), and the
# lesson of this section. On CoGenT's condition
# B both reasoners stand on one tagger, and chapter 08 part 4 showed that tagger reads shape
# from colour: **shortcut learning** (捷径学习), a cue that held in training standing in for
# the outline. The two then make **the same mistake together**: a good part of the answers
# they agree on is wrong, and disagreement flags only part of the transformer's mistakes
# (printed below), mostly, we expect, because the program, reading the same misread scene,
# gives the same wrong answer. When the two disagree, the program is seldom the one that is
# right in this run (the table's last column). Agreement is evidence only where the two
# checkers fail independently; these two share their perception, so they share its blind
# spot. It is section 6's lesson again, for questions: the round trip could vouch only for what
# its captioner had learned.

# %%
shifted = trust["CoGenT B (trained on A)"]
print(f"CoGenT B: they agree on {shifted['agree']:.2f} of the questions, and "
      f"{1 - shifted['right when they agree']:.2f} of those shared answers are wrong; "
      f"disagreement flags {shifted['errors flagged']:.2f} of the transformer's mistakes")
checkpoint("qa-cogent-right-when-they-agree", shifted["right when they agree"], "<=", 0.85,
           baseline=trust["3–6 objects"]["right when they agree"]);

# %% [markdown]
# ## 10 · The studio app
#
# Type a prompt and press **Ask the studio**. Without a running kernel you see the static
# answer only. `make studio` serves the same app as a standalone web page with Voilà
# (`chapters/11_capstone_studio_app.ipynb`), with no code shown.

# %%
from cmlib.widgets.studio import studio_app

_ = studio_app(studio, prompt="a large purple square at the top")

# %% [markdown]
# And the question box of section 9: pick a scene (0–49), type a question and press **Ask about
# the scene**. The picture shows the scene as the tagger parsed it and where the transformer's
# question looked; below it, both answers and the program's steps. The app page has it too.

# %%
from cmlib.widgets.studio import question_app

_ = question_app(qa, scene_images, index=first)

# %% [markdown]
# ## 11 · Exercises
#
# **Exercise 11.2 — how much of a prompt a caption says.** The verdict is all or nothing. Write a
# score: the share of the attributes the prompt states (colour and shape always; size and
# position only where the prompt says them) on which the caption's scene agrees; a caption that
# does not parse scores 0.

# %%
from cmlib.exercises import check


def scene_agreement(asked, said):
    ### BEGIN SOLUTION
    (size, color, shape), = asked.objects
    if said is None:
        return 0.0
    (said_size, said_color, said_shape), = said.objects
    checks = [color == said_color, shape == said_shape]
    if size is not None:
        checks.append(size == said_size)
    if asked.position is not None:
        checks.append(asked.position == said.position)
    return sum(checks) / len(checks)
    ### END SOLUTION


check("11.2", scene_agreement)

# %% [markdown]
# Your score on this run's drawn images for the `seen, full` prompts (where the verdict also
# asks for size and position, all or nothing), next to the verdict's share:

# %%
from cmlib.data.shapes.parse import parse_caption
from cmlib.studio.evaluation import prompt_scene

full = [(p, r) for p in prompt_sets["seen, full"] for r in drawn if r.prompt == p[0]]
scores = [scene_agreement(prompt_scene(p), parse_caption(r.caption)) for p, r in full]
print(f"mean agreement {sum(scores) / len(scores):.3f} against the verdict's "
      f"{evaluation.rate([r for _, r in full], 'verdict_agrees'):.3f}")

# %% [markdown]
# **Exercise 11.3 — one ranking.** Found images come with a cosine similarity, drawn ones with
# the captioner's log-probability of its caption: two scales. Rank them together: images whose
# verdict agrees first, then by their score *standardised within its own source*, best first.

# %%
def combined_ranking(found_scores, drawn_scores, found_agrees, drawn_agrees):
    ### BEGIN SOLUTION
    def standardised(s):
        s = s.double()
        std = s.std(unbiased=False)
        return (s - s.mean()) / (std if std > 0 else 1.0)

    z = torch.cat([standardised(found_scores), standardised(drawn_scores)]).tolist()
    agrees = torch.cat([found_agrees, drawn_agrees]).tolist()
    return sorted(range(len(z)), key=lambda i: (not agrees[i], -z[i]))
    ### END SOLUTION


check("11.3", combined_ranking)

# %% [markdown]
# Applied to the studio's answer for one prompt (drawn images scored by their caption's
# log-probability):

# %%
from cmlib.captioning import caption_images
from cmlib.data.shapes.captioning import caption_vocab

answer = studio.serve("a large green triangle", k=4, n=4, seed=SEED, sketches=False)
found_items, drawn_items = answer.of_kind("found"), answer.of_kind("drawn")
drawn_images = torch.stack([s.image for s in drawn_items])
log_prob = caption_images(studio.describer.captioner, studio.describer.encoder,
                          models.upsample_for_captions(drawn_images), caption_vocab(),
                          style_prompt="in detail").log_prob
order = combined_ranking(torch.tensor([s.score for s in found_items]), log_prob,
                         torch.tensor([s.verdict.agrees for s in found_items]),
                         torch.tensor([s.verdict.agrees for s in drawn_items]))
items = found_items + drawn_items
fig = show_images(torch.stack([items[i].image for i in order]),
                  captions=[f"{items[i].kind}: {items[i].caption}" for i in order], ncols=8,
                  cell_size=1.8, title="found and drawn, in one ranking (best first)")
viz.show(fig, "Row of found and drawn images for 'a large green triangle' in one combined ranking, "
         "best first, each captioned with its kind and the captioner's caption.")

# %% [markdown]
# **Exercise 11.4 — route a prompt.** A real studio sends each prompt to the step that serves
# it: `"translate"` when it mentions a sketch (anywhere), else `"find"` when its first word is
# "find" or "show", else `"draw"`. Case does not matter.

# %%
def route(prompt):
    ### BEGIN SOLUTION
    words = prompt.lower().split()
    if "sketch" in words or "sketches" in words:
        return "translate"
    if words and words[0] in ("find", "show"):
        return "find"
    return "draw"
    ### END SOLUTION


check("11.4", route)

# %% [markdown]
# ## 12 · The challenges of §1.3, with this course's evidence
#
# The article names four challenges. Each row below is one of the course's checkpoints, as
# recorded over five seeds and a one-thread run of its chapter
# (`chapters/notes/checkpoints.md`, read by `cmlib.studio.evidence`).

# %%
from cmlib.studio.evidence import evidence, run_times

# %% [markdown]
# **Data and annotation (数据与标注).** Every model here learned from labelled pairs, and
# knows only what those labels cover. This chapter's captioner never saw a red triangle; the
# held-out rows of section 6 show the cost. Chapter 05's slot captioner and chapter 07's dual
# encoder reach held-out pairs only because they were built to compose:

# %%
display(evidence("05_captioning_heldout", ("slot-heldout-color-shape",)))
display(evidence("07_retrieval", ("heldout-t2i-R@1", "emoji-zero-shot-R@1")))

# %% [markdown]
# **Modality alignment (模态对齐).** Chapter 06 aligned photos and sketches without pairs. The
# styles were matched (target-style 1). Keeping the content is harder: a notebook's few minutes
# of training do not reach the 0.90 target, the shipped long runs do on each seed (the `long-`
# rows below give the worst of the three shipped seeds, the same in every run), and section 8
# measured it for this studio's sketches. With 18 anchor pairs,
# Procrustes aligns nearly perfectly:

# %%
display(evidence("06_", ("G-target-style", "long-G-preserved", "long-F-preserved",
                         "procrustes-18-pairs-R@1")))

# %% [markdown]
# **Fusion (融合).** Chapter 03: the question alone is near its majority baseline; fusing image
# and question answers it, and spatial relations need a fusion that keeps the image grid (FiLM
# or cross-attention; the claim's bound is concatenation's own relation accuracy):

# %%
display(evidence("03_fusion", ("best-fusion", "question-only", "spatial-relation")))

# %% [markdown]
# **Compute (计算资源).** Every notebook is sized to run in a few minutes on 2 CPU cores (the cpu
# profile); the gpu profile trains longer on more data (this chapter's sizes in the table below).
# The notebook times of the seeds runs, each a median over the runs recorded for that notebook
# (the legend says over how many):

# %%
times = run_times()
per_notebook = times.groupby("notebook")["seconds"].agg(["median", "count"])
median = per_notebook["median"].sort_values()
ax = median.plot.barh(figsize=(7, 5))
ax.set(title="Median notebook time over the seeds runs (2 CPU cores)", xlabel="seconds",
       ylabel="notebook")
counts = per_notebook["count"]
ax.legend([f"median over {counts.min()}–{counts.max()} runs per notebook"
           if counts.min() != counts.max() else f"median over {counts.min()} runs"])
viz.show(ax.figure, "Horizontal bar chart of each notebook's median run time in seconds over the "
         "seeds runs on 2 CPU cores.")
sizes = pd.DataFrame({p: {r: str(models.SIZES[p][r]) for r in models.SIZES[p]} for p in
                      models.SIZES})
display(sizes)

# %% [markdown]
# ## 13 · Future directions
#
# Grounded in what this course could not do:
#
# * **Paraphrases.** The studio's bag-of-words drawer and GRU finder know only the course's
#   words: on the paraphrase prompts they are near chance (table of section 5). Chapter 04 put a
#   frozen sentence encoder (MiniLM) in front of the generator, which helps:

# %%
display(evidence("04_prompt_generation", ("cvae-seen", "cvae-paraphrase-grounded")))

# %% [markdown]
# * **Held-out compositions.** A generator can compose unseen pairs; a checker must too, or
#   round-trip metrics punish exactly the creativity we want (section 6).
# * **Mode collapse (模式崩溃) and variety.** A low sampling temperature makes the drawer
#   faithful but samey. Variety of 16 drawings of "a red circle" against 16 real red circles
#   (mean pixel distance between pairs):

# %%
from cmlib.judge import diversity, real_diversity

for tau in (0.3, 1.0):
    samples = studio.draw("a red circle", 16, seed=SEED, temperature=tau)
    print(f"τ = {tau}: drawn variety {diversity(samples):.3f}")
real = real_diversity(studio.gallery, studio.gallery_attrs, "red", "circle", 16)
print(f"real variety {real:.3f}")

# %% [markdown]
# * **Richer scenes.** The studio draws one shape; chapter 05's captioner already describes two
#   with their relation, and section 9 answers questions about scenes of three to eight
#   objects. A generator for several
#   objects with relations, and a judge for them, is the next step.
# * **Independent checks.** Section 9's two reasoners share one tagger, and with it its
#   shortcut. A second perception, trained apart (other data, another architecture), could make
#   their agreement evidence on CoGenT too, provided it does not learn the same shortcut.
#
# ## Summary
#
# * The studio is glue: every model comes from a chapter, by name, from the model registry or the
#   long runs shipped in `models/`; a registry model is trained again only when its config or
#   code changed.
# * The round trip prompt → image → caption → scene is a label-free metric. It agrees with an
#   independent judge on seen content, and fails where its captioner has never been; section 6
#   also measures how it reads perturbed true photos beside the judge, which was trained to read
#   through them.
# * Retrieval is faithful when its gallery holds the answer, though photos the finder confuses
#   with it can take the top place (section 7); generation reaches beyond the gallery.
# * Two reasoners that agree are a check only where they fail independently: agreement catches
#   the mistakes the two do not share (the transformer's counts beyond six, which the program
#   does not make), not the tagger's, which both inherit: on CoGenT they agree on wrong answers
#   (section 9).
# * Each of §1.3's challenges left a measurable trace in this course's runs.

# %%
print(f"chapter took {time.perf_counter() - CHAPTER_START:.0f} s")
