"""cmlib.generation: codebook (patch tokens) and autoregressive (prompt → image tokens)."""

import pytest
import torch

from cmlib.generation.autoregressive import PromptPixelCNN, train_prompt_pixelcnn
from cmlib.generation.codebook import PatchCodebook, from_patches, kmeans, to_patches


def test_patches_round_trip():
    images = torch.rand(3, 3, 16, 16)
    patches = to_patches(images, 4)
    assert patches.shape == (3, 16, 48)
    assert torch.equal(from_patches(patches, 3, 4), images)
    assert torch.equal(patches[0, 1], images[0, :, 0:4, 4:8].flatten())  # raster order
    with pytest.raises(ValueError, match="divide"):
        to_patches(images, 5)


def test_kmeans_finds_well_separated_clusters():
    torch.manual_seed(0)
    truth = torch.tensor([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]])
    points = torch.cat([c + 0.1 * torch.randn(50, 2) for c in truth])
    centres = kmeans(points, 3, seed=1)
    assert torch.cdist(truth, centres).min(1).values.max() < 0.2
    with pytest.raises(ValueError):
        kmeans(points, 1000)


def test_codebook_encodes_and_decodes_exactly_its_own_centres():
    torch.manual_seed(0)
    images = torch.rand(20, 3, 8, 8)
    book = PatchCodebook.fit(images, num_codes=8, patch=4, seed=0)
    tokens = book.encode(images)
    assert tokens.shape == (20, 4) and tokens.max() < 8
    decoded = book.decode(tokens)
    assert torch.equal(book.encode(decoded), tokens)  # a centre's nearest centre is itself
    with pytest.raises(ValueError, match="tokens must be in"):
        book.decode(torch.full((1, 4), 8))


@pytest.mark.parametrize("kernel", [3, 5])
def test_pixelcnn_sees_only_earlier_tokens(kernel):
    torch.manual_seed(0)
    model = PromptPixelCNN(
        num_codes=7, grid_size=5, cond_dim=3, channels=8, depth=3, kernel=kernel
    ).eval()
    tokens, c = torch.randint(0, 7, (1, 5, 5)), torch.randn(1, 3)
    base = model(tokens, c)
    for position in range(25):
        i, j = divmod(position, 5)
        changed = tokens.clone()
        changed[0, i, j] = (changed[0, i, j] + 1) % 7
        diff = (model(changed, c) - base).abs().sum(1)[0].flatten()
        assert diff[: position + 1].max() < 1e-6, f"position {position} leaks"  # causal
        # …and the next token on the right and the one below do see it (no blind spot)
        if j < 4:
            assert diff[position + 1] > 0
        if i < 4:
            assert diff[position + 5] > 0
    with pytest.raises(ValueError, match="odd"):
        PromptPixelCNN(7, 5, 3, kernel=4)


def test_pixelcnn_learns_a_prompted_pattern_and_samples_it():
    from cmlib.generation import prompts
    from cmlib.text import Vocab

    torch.manual_seed(0)
    vocab = Vocab(["red", "blue"])
    text = prompts.BagOfWordsEncoder(vocab, 4)
    model = PromptPixelCNN(num_codes=5, grid_size=3, cond_dim=4, channels=8, depth=2)
    grids = torch.stack([torch.full((3, 3), 1), torch.full((3, 3), 3)]).repeat(16, 1, 1)
    words = ["red", "blue"] * 16

    def prompt_fn(idx):
        return [words[i] for i in idx.tolist()]

    history = train_prompt_pixelcnn(
        model,
        text,
        grids,
        prompt_fn,
        40,
        torch.device("cpu"),
        batch_size=32,
        lr=2e-2,
        progress=False,
    )
    assert history.train_loss[-1] < 0.1
    drawn = model.sample(
        text(["red", "blue"]), temperature=0.5, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(drawn, grids[:2])
    with pytest.raises(ValueError):
        model.sample(text(["red"]), temperature=0)


def test_token_image_generator_draws_images_through_generate():
    from cmlib.generation import prompts
    from cmlib.generation.autoregressive import TokenImageGenerator
    from cmlib.generation.generative import generate
    from cmlib.text import Vocab

    torch.manual_seed(0)
    centres = torch.rand(5, 3 * 2 * 2)
    book = PatchCodebook(centres, channels=3, patch=2)
    prior = PromptPixelCNN(num_codes=5, grid_size=3, cond_dim=4, channels=8, depth=2)
    text = prompts.BagOfWordsEncoder(Vocab(["red", "blue"]), 4)
    model = TokenImageGenerator(prior, book)
    images = generate(model, text, "red", 6, seed=1)
    assert images.shape == (6, 3, 6, 6)
    # every 2x2 patch of every image is one of the codebook's centres
    patches = to_patches(images, 2).flatten(0, 1)
    # (exact distances: cdist's matrix-product shortcut rounds a zero distance up to ~1e-3)
    distances = torch.cdist(patches, centres, compute_mode="donot_use_mm_for_euclid_dist")
    assert distances.min(1).values.max() < 1e-5
    assert torch.equal(images, generate(model, text, "red", 6, seed=1))  # seeded: reproducible
    with pytest.raises(ValueError, match="codes"):
        TokenImageGenerator(PromptPixelCNN(7, 3, 4, channels=8, depth=1), book)
