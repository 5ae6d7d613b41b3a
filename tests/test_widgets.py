"""cmlib.widgets: each widget draws a static figure, redraws an Image widget, and shows messages."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import ipywidgets
import pytest
import torch
import torch.nn.functional as F

from cmlib import retrieval
from cmlib.data.shapes.text import shapes_vocab
from cmlib.embeddings import WordVectors
from cmlib.generation import prompts
from cmlib.generation.cvae import CVAE
from cmlib.hooks import capture_features
from cmlib.vision import CNNClassifier
from cmlib.widgets import interactive_view
from cmlib.widgets.features import draw_feature_map, feature_map_explorer, plot_feature_maps
from cmlib.widgets.generative import draw_prompt_grid, prompt_explorer, sample_grid
from cmlib.widgets.retrieval import plot_image_search, plot_text_search, search_widget
from cmlib.widgets.words import neighbour_explorer, plot_neighbours

COND = 8
PNG = b"\x89PNG"


def parts(widget):
    """The controls, the message line and the picture of an interactive view."""
    controls, message, picture = widget.children
    return list(controls.children), message, picture


def test_interactive_view_redraws_and_turns_errors_into_messages():
    def draw(value):
        import matplotlib.pyplot as plt

        if value == 0:
            raise ZeroDivisionError("no zero here")
        fig, ax = plt.subplots()
        ax.plot([0, value])
        return fig

    slider = ipywidgets.IntSlider(value=1, min=0, max=3)
    widget = interactive_view(draw, value=slider)
    (_,), message, picture = parts(widget)
    first = picture.value
    assert first[:4] == PNG and message.value == ""
    slider.value = 3
    assert picture.value[:4] == PNG and picture.value != first
    slider.value = 0  # an error: a message above the last picture, never a traceback
    assert "could not draw this view: ZeroDivisionError: no zero here" in message.value
    slider.value = 2
    assert message.value == ""


def test_feature_map_explorer():
    maps = capture_features(
        CNNClassifier(channels=(4, 8)),
        torch.rand(1, 1, 28, 28),
        ["features.relu1", "features.relu2"],
    )
    assert len(plot_feature_maps(maps, num_channels=3, image=torch.rand(1, 28, 28)).axes) == 2 * 4
    with pytest.raises(ValueError, match="expected feature map 'x' \\(B, C, h, w\\)"):
        plot_feature_maps({"x": torch.rand(4, 4)})
    with pytest.raises(ValueError, match="channel 9 does not exist"):
        draw_feature_map(maps, "features.relu1", 9)
    widget = feature_map_explorer(maps, image=torch.rand(1, 28, 28), num_channels=3)
    (layer, channel), message, picture = parts(widget)
    assert picture.value[:4] == PNG
    channel.value = 7  # relu2 has 8 channels, relu1 only 4
    assert "does not exist" in message.value
    layer.value = "features.relu2"
    assert message.value == ""


def test_prompt_widget_grid_and_bad_prompts():
    enc = prompts.BagOfWordsEncoder(shapes_vocab(), COND)
    model = CVAE(COND, latent_dim=4, image_size=16, width=8)
    fig = sample_grid(model, enc, ["a red circle", "a blue square"], "grid", n=3, temperature=0.5)
    assert len(fig.axes) == 6
    models = {"CVAE": (model, enc)}
    with pytest.raises(ValueError, match="unknown model"):
        draw_prompt_grid(models, "a red circle", "GAN")
    with pytest.raises(ValueError, match="at least one model"):
        prompt_explorer({})
    widget = prompt_explorer(models, prompt="a red circle", n=2)
    (prompt, seed, _), message, picture = parts(widget)
    before = picture.value
    seed.value = 3
    assert picture.value != before and message.value == ""
    prompt.value = "xyzzy"
    assert "vocabulary" in message.value
    prompt.value = "   "
    assert "Type a prompt" in message.value


def test_search_widget_and_figures():
    def unit(n, d, seed=0):
        return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)

    texts = ["red", "green", "blue"]
    table = {t: unit(3, 8, 5)[i] for i, t in enumerate(texts)}
    encode = lambda batch: torch.stack([table[t] for t in batch])  # noqa: E731
    search = retrieval.CrossModalSearch(encode, encode(texts), encode(texts), texts)
    images = torch.rand(3, 3, 8, 8)
    assert len(plot_text_search(search, "red", images, k=2, captions=texts).axes) == 2
    assert "empty" in plot_text_search(search, "  ", images).axes[0].texts[0].get_text()
    assert len(plot_image_search(search, table["red"], images[0], k=2).axes) == 2
    widget = search_widget(search, images, k=2, initial_query="")
    (box, _), message, picture = parts(widget)
    assert "Type a query" in message.value and not picture.value
    box.value = "red"
    assert picture.value[:4] == PNG and message.value == ""
    box.value = "   "  # an empty query: a message, never a traceback
    assert "Type a query" in message.value


def test_neighbour_explorer():
    words = ["music", "song", "piano", "stone"]
    vectors = torch.tensor([[1.0, 0.1], [0.9, 0.2], [0.8, 0.4], [0.0, 1.0]]).numpy()
    tables = {"toy": WordVectors(words, vectors)}
    fig = plot_neighbours(tables, "music", k=2)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["song", "piano"]  # best on top
    assert "not in" in plot_neighbours(tables, "zebra").axes[0].texts[0].get_text()
    widget = neighbour_explorer(tables, "music", k=2)
    (word,), message, picture = parts(widget)
    word.value = " "
    assert "Type a word" in message.value


def test_scene_explorer_draws_both_styles_and_redraws():
    from cmlib.widgets.shapes import draw_scene, scene_explorer

    fig = draw_scene("red", "triangle", "small", "top", image_size=32)
    assert len(fig.axes) == 2 and "a small red triangle at the top" in fig.texts[0].get_text()
    with pytest.raises(ValueError, match="unknown color 'pink'"):
        draw_scene("pink", "circle", "large", "left")
    widget = scene_explorer()
    (color, _, _, position), message, picture = parts(widget)
    before = picture.value
    color.value = "blue"
    assert picture.value != before and message.value == ""
    position.value = "right"
    assert picture.value[:4] == PNG


def test_translation_explorer_shows_each_panel_and_refuses_a_bad_scene():
    from cmlib.cyclegan.training import CycleGAN
    from cmlib.widgets.translation import PANELS, draw_translation, translation_explorer

    torch.manual_seed(0)
    model = CycleGAN(width=4, num_blocks=1).eval()
    photos, sketches = torch.rand(3, 3, 16, 16), torch.rand(3, 3, 16, 16)
    fig = draw_translation(model, photos, sketches, 2)
    assert [ax.get_title() for ax in fig.axes] == list(PANELS)
    assert fig._suptitle.get_text() == "test scene 2"
    # the first panel is the photo itself, the fourth the true sketch (ground truth)
    shown = [ax.get_images()[0].get_array() for ax in fig.axes]
    assert torch.allclose(torch.as_tensor(shown[0]), photos[2].permute(1, 2, 0))
    assert torch.allclose(torch.as_tensor(shown[3]), sketches[2].permute(1, 2, 0))
    with torch.no_grad():
        fake = model.g(photos[2:3]).clamp(0, 1)[0].permute(1, 2, 0)
    assert torch.allclose(torch.as_tensor(shown[1]), fake, atol=1e-6)
    with pytest.raises(ValueError, match="index"):
        draw_translation(model, photos, sketches, 3)
    widget = translation_explorer(model, photos, sketches)
    (scene,), message, picture = parts(widget)
    before = picture.value
    scene.value = 1
    assert picture.value[:4] == PNG and picture.value != before and message.value == ""


def test_caption_explorer_composes_scenes_and_shows_messages():
    from cmlib.captioning.models import AttentionCaptioner
    from cmlib.data.shapes.captioning import caption_vocab
    from cmlib.vision import ConvEncoder
    from cmlib.widgets.captioning import attention_strip, caption_explorer, composed_image

    vocab = caption_vocab()
    torch.manual_seed(0)
    encoder = ConvEncoder(image_size=32, width=2, embed_dim=4)  # 8 channels, a 4×4 grid
    model = AttentionCaptioner(len(vocab), grid_channels=8, grid_size=4, embed_dim=8, hidden_dim=16)
    image = composed_image("red", "circle", "large", "left", "blue square", "left of", 32)
    assert image.shape == (3, 32, 32) and 0 <= image.min() and image.max() <= 1
    # a red object: the red channel is the brightest somewhere in the picture
    assert (image[0] - image[1:].max(0).values).max() > 0.5
    fig = attention_strip(image, ["a", "red", "circle"], torch.full((3, 16), 1 / 16))
    assert [ax.get_title() for ax in fig.axes] == ["image", "a", "red", "circle"]
    with pytest.raises(ValueError, match="attention"):
        attention_strip(image, ["a", "red"], torch.full((3, 16), 1 / 16))
    widget = caption_explorer(model.eval(), encoder, vocab, torch.rand(4, 3, 32, 32))
    controls, message, picture = parts(widget)
    by_name = {c.description: c for c in controls}
    before = picture.value
    assert before[:4] == PNG and message.value == ""
    by_name["source"].value = "test image"
    by_name["test image"].value = 3
    assert picture.value != before and message.value == ""
    by_name["prompt"].value = "loudly"  # not a style the captioner knows: a message
    assert "style prompt" in message.value
    by_name["prompt"].value = "briefly"
    assert message.value == ""
    with pytest.raises(ValueError, match="test_images"):
        caption_explorer(model, encoder, vocab, torch.rand(0, 3, 32, 32))


def test_question_explorer_answers_typed_questions_and_names_an_unknown_word():
    from cmlib.data.reasoning import ANSWERS, ReasoningDataset, question_vocab
    from cmlib.reasoning import models, perception, symbolic
    from cmlib.widgets.reasoning import draw_question, question_explorer

    torch.manual_seed(0)
    tagger = perception.build_scene_tagger(48, 4).eval()  # untrained: any parse will do
    grid = (tagger.encoder.out_channels, tagger.encoder.grid_size)
    reasoners = {
        name: models.make_reasoner(name, len(question_vocab()), len(ANSWERS), *grid, 16, 1, 2)
        for name in ("cross_attention", "single_stream")
    }
    reasoners["film"] = models.make_reasoner("film", len(question_vocab()), len(ANSWERS), *grid)
    ns = symbolic.NeuroSymbolicReasoner(tagger, torch.device("cpu"))
    data = ReasoningDataset("test", 3)
    items = data.items(range(3))
    images = torch.from_numpy(data.images(items)).permute(0, 3, 1, 2)
    cpu = torch.device("cpu")
    fig = draw_question(images, 1, items[1].question, reasoners, ns, cpu)
    listing = fig.axes[2].texts[0].get_text()
    for label in (*reasoners, "neuro-symbolic"):
        assert f"{label}: " in listing  # every reasoner's answer
    assert "cross_attention" in fig.axes[1].get_title()  # the first one with attention maps
    with pytest.raises(ValueError, match="unknown word 'ball'"):
        draw_question(images, 0, "What colour is the ball?", reasoners, ns, cpu)
    with pytest.raises(ValueError, match="index"):
        draw_question(images, 3, items[0].question, reasoners, ns, cpu)
    with pytest.raises(ValueError, match="at least one"):
        draw_question(images, 0, items[0].question, {}, ns, cpu)
    widget = question_explorer(images, reasoners, ns, cpu, question=items[0].question)
    controls, message, picture = parts(widget)
    by_name = {c.description: c for c in controls}
    before = picture.value
    by_name["scene"].value = 2
    assert picture.value[:4] == PNG and picture.value != before and message.value == ""
    by_name["question"].value = "What colour is the ball?"
    assert "unknown word" in message.value  # a message, never a traceback
