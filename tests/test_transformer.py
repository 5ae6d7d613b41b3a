"""Tests for cmlib.transformer: attention against PyTorch's, the blocks, the multimodal models."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from cmlib.transformer import (
    CrossAttentionTransformer,
    FeedForward,
    MultiHeadAttention,
    PatchEmbedding,
    SingleStreamTransformer,
    TokenEmbedding,
    TransformerBlock,
    TransformerEncoder,
    load_from_torch,
    load_into_torch,
    merge_heads,
    scaled_dot_product_attention,
    split_heads,
)

TOL = dict(atol=1e-5, rtol=1e-5)
B, H, LQ, LK, D = 2, 3, 5, 7, 4
VOCAB, ANSWERS = 12, 5
MODELS = [SingleStreamTransformer, CrossAttentionTransformer]


def _qkv(lq=LQ, lk=LK, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, n, D, generator=g, requires_grad=True) for n in (lq, lk, lk)]


def _padding(lk=LK):
    """Right padding: example 0 keeps every key, example 1 its first three."""
    mask = torch.zeros(B, lk, dtype=torch.bool)
    mask[1, 3:] = True
    return mask


def _random_block(shape, seed=1):
    """A random bool mask (True = blocked) that never blocks key 0, so no row is empty."""
    mask = torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < 0.4
    mask[..., 0] = False
    return mask


# (key_padding_mask, attn_mask, Lk) for each case; masks use cmlib's convention, True = blocked
MASK_CASES = {
    "none": lambda: (None, None, LK),
    "padding": lambda: (_padding(), None, LK),
    "causal": lambda: (None, torch.ones(LQ, LQ, dtype=torch.bool).triu(1), LQ),
    "bool 2-D": lambda: (None, _random_block((LQ, LK)), LK),
    "bool 3-D and padding": lambda: (_padding(), _random_block((B, LQ, LK)), LK),
    "bool 4-D": lambda: (None, _random_block((B, H, LQ, LK)), LK),
}


def _torch_mask(key_padding_mask, attn_mask, lk):
    """The same masks in F.scaled_dot_product_attention's convention: True = takes part."""
    if key_padding_mask is None and attn_mask is None:
        return None
    blocked = torch.zeros(B, H, LQ, lk, dtype=torch.bool)
    if key_padding_mask is not None:
        blocked = blocked | key_padding_mask[:, None, None, :]
    if attn_mask is not None:
        blocked = blocked | (attn_mask[:, None] if attn_mask.ndim == 3 else attn_mask)
    return ~blocked


# ---------------------------------------------------------------- scaled dot-product attention
@pytest.mark.parametrize("case", list(MASK_CASES))
def test_attention_and_its_gradients_equal_pytorchs(case):
    key_padding_mask, attn_mask, lk = MASK_CASES[case]()
    q, k, v = _qkv(lk=lk)
    out, weights = scaled_dot_product_attention(q, k, v, key_padding_mask, attn_mask)
    q2, k2, v2 = (t.detach().clone().requires_grad_() for t in (q, k, v))
    expected = F.scaled_dot_product_attention(
        q2, k2, v2, attn_mask=_torch_mask(key_padding_mask, attn_mask, lk)
    )
    torch.testing.assert_close(out, expected, **TOL)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, H, LQ), **TOL)
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(2))
    (out * upstream).sum().backward()
    (expected * upstream).sum().backward()
    for ours, theirs in zip((q, k, v), (q2, k2, v2)):
        torch.testing.assert_close(ours.grad, theirs.grad, **TOL)


def test_blocked_keys_get_exactly_zero_weight():
    q, k, v = _qkv()
    _, weights = scaled_dot_product_attention(q, k, v, key_padding_mask=_padding())
    assert torch.all(weights[1, :, :, 3:] == 0) and torch.all(weights[0] > 0)


def test_a_fully_masked_row_gives_zeros_and_no_nan_or_nan_gradient():
    q, k, v = _qkv()
    padding = torch.zeros(B, LK, dtype=torch.bool)
    padding[1] = True  # example 1 has no keys at all
    attn_mask = torch.zeros(LQ, LK, dtype=torch.bool)
    attn_mask[2] = True  # query 2 may attend to nothing, in every example
    out, weights = scaled_dot_product_attention(q, k, v, padding, attn_mask)
    assert not out.isnan().any() and not weights.isnan().any()
    assert torch.all(out[1] == 0) and torch.all(weights[1] == 0)
    assert torch.all(out[:, :, 2] == 0) and torch.all(weights[:, :, 2] == 0)
    # the rows that can attend are untouched
    rows = [0, 1, 3, 4]
    expected = F.scaled_dot_product_attention(q[:1], k[:1], v[:1])[:, :, rows]
    torch.testing.assert_close(out[:1, :, rows], expected, **TOL)
    out.sum().backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all()
    assert torch.all(q.grad[1] == 0) and torch.all(q.grad[:, :, 2] == 0)


def test_dropout_acts_in_training_only_and_weights_are_taken_before_it():
    q, k, v = _qkv()
    torch.manual_seed(0)
    out, weights = scaled_dot_product_attention(q, k, v, dropout_p=0.5, training=True)
    plain, plain_weights = scaled_dot_product_attention(q, k, v, dropout_p=0.5, training=False)
    torch.testing.assert_close(weights, plain_weights)
    assert not torch.allclose(out, plain)
    torch.testing.assert_close(plain, F.scaled_dot_product_attention(q, k, v), **TOL)


def test_split_heads_and_merge_heads_round_trip():
    x = torch.randn(2, 5, 12)
    heads = split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    torch.testing.assert_close(heads[:, 1], x[..., 4:8], rtol=0, atol=0)
    torch.testing.assert_close(merge_heads(heads), x, rtol=0, atol=0)


# ---------------------------------------------------------------- multi-head attention
def _pair(embed_dim=12, num_heads=3, bias=True, seed=0):
    """nn.MultiheadAttention with random biases, and a MultiHeadAttention with its weights."""
    torch.manual_seed(seed)
    theirs = nn.MultiheadAttention(embed_dim, num_heads, bias=bias, batch_first=True).eval()
    if bias:
        with torch.no_grad():
            theirs.in_proj_bias.normal_()
            theirs.out_proj.bias.normal_()
    ours = MultiHeadAttention(embed_dim, num_heads, bias=bias).eval()
    load_from_torch(ours, theirs)
    return ours, theirs


@pytest.mark.parametrize("lk", [LQ, LK], ids=["self", "cross"])
@pytest.mark.parametrize("masked", [False, True], ids=["no mask", "padding mask"])
def test_multi_head_attention_equals_pytorchs(lk, masked):
    ours, theirs = _pair()
    query = torch.randn(B, LQ, 12)
    memory = query if lk == LQ else torch.randn(B, lk, 12)
    padding = _padding(lk) if masked else None
    out, weights = ours(query, memory, memory, key_padding_mask=padding)
    expected, per_head = theirs(
        query, memory, memory, key_padding_mask=padding, average_attn_weights=False
    )
    _, averaged = theirs(query, memory, memory, key_padding_mask=padding)
    assert out.shape == (B, LQ, 12) and weights.shape == (B, 3, LQ, lk)
    torch.testing.assert_close(out, expected, **TOL)
    torch.testing.assert_close(weights, per_head, **TOL)
    torch.testing.assert_close(weights.mean(dim=1), averaged, **TOL)


def test_multi_head_attention_with_a_causal_mask_and_without_biases_equals_pytorchs():
    ours, theirs = _pair(bias=False)
    x = torch.randn(B, LQ, 12)
    causal = torch.ones(LQ, LQ, dtype=torch.bool).triu(1)  # nn.MultiheadAttention: True = blocked
    out, weights = ours(x, x, x, attn_mask=causal)
    expected, per_head = theirs(x, x, x, attn_mask=causal, average_attn_weights=False)
    torch.testing.assert_close(out, expected, **TOL)
    torch.testing.assert_close(weights, per_head, **TOL)
    assert ours(x, x, x, need_weights=False)[1] is None


def test_load_into_torch_is_the_reverse_of_load_from_torch():
    ours = MultiHeadAttention(8, 2).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.normal_()
    theirs = nn.MultiheadAttention(8, 2, batch_first=True).eval()
    load_into_torch(ours, theirs)
    x = torch.randn(B, 4, 8)
    torch.testing.assert_close(ours(x, x, x)[0], theirs(x, x, x)[0], **TOL)


# ---------------------------------------------------------------- blocks
def test_blocks_keep_shapes_and_their_attention():
    x, memory = torch.randn(B, 6, 16), torch.randn(B, 9, 16)
    assert FeedForward(16, 32)(x).shape == x.shape
    block = TransformerBlock(16, 4, cross=True)
    assert block(x, memory=memory).shape == x.shape
    assert block.last_attention.shape == (B, 4, 6, 6)
    assert block.last_cross_attention.shape == (B, 4, 6, 9)
    assert not block.last_attention.requires_grad
    encoder = TransformerEncoder(16, depth=3, num_heads=2)
    assert encoder(x).shape == x.shape
    assert [m.shape for m in encoder.attention_maps()] == [(B, 2, 6, 6)] * 3


def test_an_encoder_ignores_its_padding_tokens():
    torch.manual_seed(0)
    encoder = TransformerEncoder(16, depth=2, num_heads=4).eval()
    x = torch.randn(B, 6, 16)
    padded = torch.cat([x, torch.randn(B, 3, 16)], dim=1)
    padding = torch.zeros(B, 9, dtype=torch.bool)
    padding[:, 6:] = True
    torch.testing.assert_close(encoder(padded, key_padding_mask=padding)[:, :6], encoder(x), **TOL)


def test_padding_the_memory_with_its_mask_equals_truncating_it():
    torch.manual_seed(0)
    encoder = TransformerEncoder(16, depth=2, num_heads=4, cross=True).eval()
    x, memory = torch.randn(B, 5, 16), torch.randn(B, 10, 16)
    lengths = (7, 9)  # example 0 has 7 real memory tokens, example 1 has 9
    mask = torch.arange(10)[None, :] >= torch.tensor(lengths)[:, None]
    out = encoder(x, memory=memory, memory_padding_mask=mask)
    maps = encoder.cross_attention_maps()
    for b, length in enumerate(lengths):
        alone = encoder(x[b : b + 1], memory=memory[b : b + 1, :length])
        torch.testing.assert_close(out[b : b + 1], alone, **TOL)
        assert all(torch.all(m[b, ..., length:] == 0) for m in maps)
    # the test can fail: without the mask the padding changes the output
    assert not torch.allclose(encoder(x, memory=memory), out, **TOL)


def test_projections_start_as_in_nn_multihead_attention():
    """Xavier on the stacked (3E, E) in_proj: each of q, k, v gets the bound √(6 / 4E); out_proj
    keeps nn.Linear's default (bound 1/√E); biases start at zero."""
    e = 64
    torch.manual_seed(0)
    ours, theirs = MultiHeadAttention(e, 4), nn.MultiheadAttention(e, 4)
    bound = math.sqrt(6 / (4 * e))
    for ours_w, theirs_w in zip(
        (ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight, ours.out_proj.weight),
        (*theirs.in_proj_weight.chunk(3), theirs.out_proj.weight),
    ):
        assert ours_w.abs().max() <= theirs_w.abs().max() * 1.02 + 1e-6
        assert abs(ours_w.std() / theirs_w.std() - 1) < 0.05  # uniform: std = bound / √3
    assert bound / math.sqrt(3) == pytest.approx(ours.q_proj.weight.std().item(), rel=0.05)
    assert all(
        torch.all(p.bias == 0) for p in (ours.q_proj, ours.k_proj, ours.v_proj, ours.out_proj)
    )


# ---------------------------------------------------------------- the multimodal models
def _batch(batch=3, length=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, 48, 48, generator=g)  # the models' default image size
    questions = torch.randint(1, VOCAB, (batch, length), generator=g)
    questions[1, 4:] = 0  # a shorter question, right-padded
    return images, questions


def _model(cls, **kwargs):
    torch.manual_seed(0)
    options = dict(dim=32, num_heads=4, dropout=0.0) | kwargs
    return cls(VOCAB, ANSWERS, **options)


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("patch_size", [8, 16])
def test_models_give_logits_and_attention_maps_of_the_documented_shapes(cls, patch_size):
    model = _model(cls, patch_size=patch_size)
    images, questions = _batch()
    assert model(images, questions).shape == (3, ANSWERS)
    n, g = (48 // patch_size) ** 2, 48 // patch_size
    maps = model.attention_maps()
    if cls is SingleStreamTransformer:
        assert [m.shape for m in maps["self"]] == [(3, 4, 1 + n + 6, 1 + n + 6)] * 2
    else:
        assert [m.shape for m in maps["image"]] == [(3, 4, n, n)] * 2
        assert [m.shape for m in maps["question"]] == [(3, 4, 6, 6)] * 2
        assert [m.shape for m in maps["cross"]] == [(3, 4, 6, n)] * 2
        torch.testing.assert_close(model.patch_attention().sum((2, 3)), torch.ones(3, 4))
    assert model.patch_attention(0).shape == (3, 4, g, g)


def test_the_default_image_is_the_reasoning_datasets_48_pixels_in_a_6_by_6_grid():
    for cls in MODELS:
        model = cls(VOCAB, ANSWERS)
        assert (model.patches.image_size, model.patches.patch_size) == (48, 8)
        assert model.patches.grid_size == 6 and model.patches.num_patches == 36


def test_single_stream_patch_attention_is_the_cls_rows_weights_on_the_patches():
    model = _model(SingleStreamTransformer).eval()
    images, questions = _batch()  # example 1 is padded after 4 words
    with torch.no_grad():
        model(images, questions)
    g = model.patches.grid_size
    n = g * g
    for layer in (0, 1, -1):
        weights = model.attention_maps()["self"][layer]  # (B, H, T, T): [CLS], patches, words
        grid = model.patch_attention(layer)
        for row in range(g):
            for col in range(g):  # patch row * g + col sits at position 1 + row * g + col
                expected = weights[:, :, 0, 1 + row * g + col]
                torch.testing.assert_close(grid[:, :, row, col], expected, rtol=0, atol=0)
        # the rest of [CLS]'s weight went to itself and the real words, none to the padding
        cls_row = weights[:, :, 0]
        rest = cls_row[:, :, 0] + cls_row[:, :, 1 + n :].sum(-1)
        torch.testing.assert_close(grid.sum((2, 3)) + rest, torch.ones(3, 4), **TOL)
        assert torch.all(cls_row[1, :, 1 + n + 4 :] == 0)


def test_cross_attention_patch_attention_is_the_mean_over_the_real_words():
    model = _model(CrossAttentionTransformer).eval()
    images, questions = _batch()  # example 1 is padded after 4 words
    with torch.no_grad():
        model(images, questions)
    g = model.patches.grid_size
    for layer in (0, 1, -1):
        cross = model.attention_maps()["cross"][layer]  # (B, H, L, N)
        grid = model.patch_attention(layer)
        for b in range(3):
            real = [t for t in range(questions.shape[1]) if questions[b, t] != 0]
            expected = cross[b, :, real].mean(dim=1).reshape(-1, g, g)
            torch.testing.assert_close(grid[b], expected, **TOL)
    # the test can fail: example 1's padding rows differ from its words' rows, so a mean that
    # let them in would differ
    everything = cross[1].mean(dim=1).reshape(-1, g, g)
    assert not torch.allclose(grid[1], everything, **TOL)


@pytest.mark.parametrize("cls", MODELS)
def test_extra_padding_does_not_change_the_answer(cls):
    model = _model(cls, dropout=0.1).eval()
    images, questions = _batch()
    longer = torch.cat([questions, torch.zeros(3, 5, dtype=torch.long)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(images, longer), model(images, questions), **TOL)
        # while a real token does change it
        changed = questions.clone()
        changed[0, 0] = 1 + changed[0, 0] % (VOCAB - 1)
        assert not torch.allclose(model(images, changed)[0], model(images, questions)[0])


def test_an_all_padding_question_gives_finite_logits():
    images, _ = _batch()
    for cls in MODELS:
        assert torch.isfinite(_model(cls)(images, torch.zeros(3, 4, dtype=torch.long))).all()


@pytest.mark.parametrize("cls", MODELS)
def test_a_model_overfits_one_small_batch(cls):
    model = _model(cls, dim=32, patch_size=8)
    images, questions = _batch(batch=8, seed=1)
    answers = torch.arange(8) % ANSWERS
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        loss = F.cross_entropy(model(images, questions), answers)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_patch_embedding_is_a_linear_map_of_each_patch():
    embed = PatchEmbedding(image_size=16, patch_size=4, channels=3, dim=8)
    images = torch.randn(2, 3, 16, 16)
    patch = images[:, :, 4:8, 8:12].flatten(1)  # row 1, column 2: patch 1 * 4 + 2 = 6
    expected = patch @ embed.proj.weight.flatten(1).T + embed.proj.bias + embed.position[0, 6]
    assert embed.num_patches == 16
    torch.testing.assert_close(embed(images)[:, 6], expected, **TOL)


# ---------------------------------------------------------------- bad inputs
def test_attention_rejects_bad_inputs_with_clear_messages():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match=r"expected q \(B, H, Lq, D\), got a tensor of shape"):
        scaled_dot_product_attention(q[0], k, v)
    with pytest.raises(TypeError, match="q must be a float tensor"):
        scaled_dot_product_attention(q.long(), k, v)
    with pytest.raises(ValueError, match="same head size"):
        scaled_dot_product_attention(q, k[..., :2], v)
    with pytest.raises(TypeError, match=r"key_padding_mask must be a bool tensor.*float32"):
        scaled_dot_product_attention(q, k, v, key_padding_mask=_padding().float())
    with pytest.raises(ValueError, match=r"key_padding_mask of shape \(2, 7\), got \(2, 5\)"):
        scaled_dot_product_attention(q, k, v, key_padding_mask=_padding(LQ))
    with pytest.raises(ValueError, match=r"attn_mask of shape \(5, 7\) or"):
        scaled_dot_product_attention(q, k, v, attn_mask=torch.zeros(LK, LQ, dtype=torch.bool))
    with pytest.raises(ValueError, match="divisible by num_heads"):
        split_heads(torch.randn(2, 5, 10), 3)


def test_layers_reject_bad_sizes_with_clear_messages():
    with pytest.raises(ValueError, match="embed_dim=10 and num_heads=3"):
        MultiHeadAttention(10, 3)
    with pytest.raises(TypeError, match="num_heads must be an int"):
        MultiHeadAttention(12, 3.0)
    with pytest.raises(ValueError, match=r"expected query \(B, Lq, 12\)"):
        MultiHeadAttention(12, 3)(*[torch.randn(2, 5, 8)] * 3)
    with pytest.raises(ValueError, match="image_size=30 and patch_size=8"):
        PatchEmbedding(image_size=30, patch_size=8)
    with pytest.raises(ValueError, match="pass memory"):
        TransformerBlock(8, 2, cross=True)(torch.randn(1, 3, 8))
    with pytest.raises(ValueError, match="no cross-attention"):
        TransformerBlock(8, 2)(torch.randn(1, 3, 8), memory=torch.randn(1, 2, 8))
    with pytest.raises(RuntimeError, match="run a forward pass first"):
        TransformerEncoder(8, 1, 2).attention_maps()
    with pytest.raises(ValueError, match=r"\(embed_dim, num_heads, bias\) is \(8, 2, True\)"):
        load_from_torch(MultiHeadAttention(8, 2), nn.MultiheadAttention(8, 4))


def test_models_reject_bad_images_and_questions_with_clear_messages():
    model = _model(SingleStreamTransformer, max_question_len=8)
    images, questions = _batch()
    with pytest.raises(ValueError, match=r"expected images \(B, 3, 48, 48\), got .*28, 28\)"):
        model(images[..., :28, :28], questions)
    with pytest.raises(TypeError, match="question tokens must be int64 or int32 ids, got dtype"):
        model(images, questions.float())
    torch.testing.assert_close(model(images, questions.int()), model(images, questions))
    with pytest.raises(ValueError, match="same batch size"):
        model(images[:2], questions)
    with pytest.raises(ValueError, match="at most max_len=8 tokens"):
        model(images, torch.ones(3, 9, dtype=torch.long))
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 11\]"):
        model(images, questions + VOCAB)
    with pytest.raises(ValueError, match="padding_idx must be an int in"):
        TokenEmbedding(VOCAB, padding_idx=VOCAB)
