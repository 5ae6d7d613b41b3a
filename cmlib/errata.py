"""Errata (勘误): the article's ten code listings, exactly as printed, and one way to run them.

None of the article's listings runs as printed. Each chapter shows a listing failing, then
runs it once more with the missing pieces supplied — to show what it computes even then —
and then uses the working model from cmlib. The listings below are the article's code,
character for character, Chinese comments included; only this module is exempt from the
course's lint rules, for them (undefined names, old-style ``super``).

:func:`build` is the one way to instantiate a listing with its undefined names supplied::

    fusion = build("AdversarialFusion", vis_model, lang_model, names={"vis_dim": 4, "lang_dim": 4})
    cvae = build("CVAE", 4, 3, attributes={"embed": nn.Identity()})

``names`` become globals of a private copy of the listing's methods (nothing in this module or
anywhere else is patched); ``attributes`` are set on the instance after ``__init__``.
:data:`LISTINGS` says, for each listing, where it is printed, what fails, what replaces it and
which chapter shows it; the book's errata page is generated from it.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn


# ---------------------------------------------------------------- §2.1.1.1 卷积神经网络（CNN）
# CNN模型伪代码
class CNN(nn.Module):
    def __init__(self):
        super(CNN, self).__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)  # 3x3卷积核，输入通道3，输出通道32
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2, 2)  # 2x2最大池化
        self.fc = nn.Linear(32 * 7 * 7, 10)  # 全连接层，输入维度32*7*7，输出维度10

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = x.view(-1, 32 * 7 * 7)
        x = self.fc(x)
        return x


# ---------------------------------------------------------------- §2.1.1.2 图像嵌入模型
# 图像嵌入模型伪代码
class ImageEmbedder(nn.Module):
    def __init__(self):
        super(ImageEmbedder, self).__init__()
        self.encoder = CNN()  # 使用卷积神经网络进行编码
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(32, 3, 3),
            nn.Sigmoid()
        )  # 使用卷积转置层进行解码

    def forward(self, x):
        z = self.encoder(x)
        x_recon = self.decoder(z)
        return z, x_recon


# ---------------------------------------------------------------- §2.2.1.1 词嵌入
# Word2Vec模型伪代码
class Word2Vec(nn.Module):
    def __init__(self, embedding_dim):
        super(Word2Vec, self).__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)

    def forward(self, sentences):
        embedded_sentences = self.embedding(sentences)
        return embedded_sentences


# ---------------------------------------------------------------- §2.2.1.2 序列模型
# LSTM模型伪代码
class LSTM(nn.Module):
    def __init__(self, input_dim, hidden_dim):
        super(LSTM, self).__init__()
        self.lstm = nn.LSTM(input_dim, hidden_dim)

    def forward(self, x):
        hidden, cell = self.lstm(x)
        return hidden, cell


# ---------------------------------------------------------------- §2.3.1 基于特征融合的方法
# 加法融合模型伪代码
class FeatureFusion(nn.Module):
    def __init__(self, vis_dim, lang_dim):
        super(FeatureFusion, self).__init__()
        self.add = nn.Linear(vis_dim + lang_dim, vis_dim)

    def forward(self, vis_feature, lang_feature):
        fused_feature = self.add(torch.cat([vis_feature, lang_feature], dim=1))
        return fused_feature


# ---------------------------------------------------------------- §2.3.2 基于模型融合的方法
# 对抗性训练模型伪代码
class AdversarialFusion(nn.Module):
    def __init__(self, vis_model, lang_model):
        super(AdversarialFusion, self).__init__()
        self.vis_model = vis_model
        self.lang_model = lang_model
        self.discriminator = nn.Sequential(
            nn.Linear(vis_dim + lang_dim, 1),
            nn.Sigmoid()
        )

    def forward(self, vis_data, lang_data):
        vis_feature = self.vis_model(vis_data)
        lang_feature = self.lang_model(lang_data)
        fusion_feature = torch.cat([vis_feature, lang_feature], dim=1)
        discrimination = self.discriminator(fusion_feature)
        return discrimination


# ---------------------------------------------------------------- §3.2.1.1 GANs在跨模态学习中的应用
# GAN模型伪代码
class GAN(nn.Module):
    def __init__(self, vis_dim, lang_dim):
        super(GAN, self).__init__()
        self.generator = nn.Sequential(
            nn.Linear(lang_dim, vis_dim),
            nn.ReLU(),
            nn.Linear(vis_dim, vis_dim * 2),
            nn.ReLU(),
            nn.Linear(vis_dim * 2, vis_dim * 4),
            nn.ReLU(),
            nn.Linear(vis_dim * 4, 1)  # 生成图像
        )
        self.discriminator = nn.Sequential(
            nn.Linear(vis_dim + lang_dim, 1),
            nn.ReLU(),
            nn.Linear(1, 1),
            nn.Sigmoid()
        )

    def forward(self, text, vis_data=None):
        if vis_data is not None:
            return self.discriminator(torch.cat([vis_data, self.generator(text)], dim=1))
        else:
            return self.generator(text)


# ---------------------------------------------------------------- §3.2.1.2 条件VAEs在跨模态学习中的应用
# 条件VAE模型伪代码
class CVAE(nn.Module):
    def __init__(self, vis_dim, lang_dim):
        super(CVAE, self).__init__()
        self.encoder = nn.Sequential(
            nn.Linear(vis_dim + lang_dim, 20),
            nn.ReLU(),
            nn.Linear(20, 10),
            nn.ReLU(),
            nn.Linear(10, 2)  # 编码器的隐变量
        )
        self.decoder = nn.Sequential(
            nn.Linear(2, 10),
            nn.ReLU(),
            nn.Linear(10, 20),
            nn.ReLU(),
            nn.Linear(20, vis_dim)  # 解码器的输出
        )

    def forward(self, text, vis_data):
        z = self.encoder(torch.cat([vis_data, self.embed(text)], dim=1))
        x_recon = self.decoder(z)
        return x_recon, z


# ---------------------------------------------------------------- §3.2.2.1 序列到序列学习
# Seq2Seq模型伪代码
class Seq2Seq(nn.Module):
    def __init__(self, vis_dim, lang_dim):
        super(Seq2Seq, self).__init__()
        self.encoder = nn.Sequential(
            nn.Linear(vis_dim + lang_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, hidden_dim * 2),
            nn.ReLU(),
            nn.Linear(hidden_dim * 2, hidden_dim * 4),
            nn.ReLU(),
            nn.Linear(hidden_dim * 4, latent_dim)  # 编码器的隐变量
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim * 4),
            nn.ReLU(),
            nn.Linear(hidden_dim * 4, hidden_dim * 2),
            nn.ReLU(),
            nn.Linear(hidden_dim * 2, vis_dim)  # 解码器的输出
        )

    def forward(self, text, vis_data):
        latent = self.encoder(torch.cat([vis_data, self.embed(text)], dim=1))
        recon = self.decoder(latent)
        return recon


# ---------------------------------------------------------------- §3.2.2.2 跨模态序列生成
# 跨模态序列生成模型伪代码
class CrossModalSeqGen(nn.Module):
    def __init__(self, vis_dim, lang_dim):
        super(CrossModalSeqGen, self).__init__()
        self.encoder = nn.Sequential(
            nn.Linear(vis_dim + lang_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, hidden_dim * 2),
            nn.ReLU(),
            nn.Linear(hidden_dim * 2, hidden_dim * 4),
            nn.ReLU(),
            nn.Linear(hidden_dim * 4, latent_dim)  # 编码器的隐变量
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim * 4),
            nn.ReLU(),
            nn.Linear(hidden_dim * 4, hidden_dim * 2),
            nn.ReLU(),
            nn.Linear(hidden_dim * 2, vis_dim)  # 解码器的输出
        )

    def forward(self, text, vis_sequence):
        latent = self.encoder(torch.cat([vis_sequence, self.embed(text)], dim=1))
        recon_sequence = self.decoder(latent)
        return recon_sequence


# ---------------------------------------------------------------- what each listing gets wrong
@dataclass(frozen=True)
class Listing:
    """One of the article's listings and what the course says about it.

    Attributes:
        name: the class name, as printed.
        section: the article section, e.g. ``"§2.3.1 基于特征融合的方法"``.
        title: the listing's own title comment, e.g. ``"加法融合模型伪代码"``.
        chapter: the chapter that shows the failure and the fix (a notebook stem).
        fails: what goes wrong, in a sentence or two.
        fix: the working cmlib replacement.
    """

    name: str
    section: str
    title: str
    chapter: str
    fails: str
    fix: str

    @property
    def cls(self) -> type[nn.Module]:
        """The listing's class, as printed."""
        return globals()[self.name]

    @property
    def source(self) -> str:
        """The listing's code, as printed."""
        return inspect.getsource(self.cls)


LISTINGS: dict[str, Listing] = {listing.name: listing for listing in (
    Listing("CNN", "§2.1.1.1 卷积神经网络（CNN）", "CNN模型伪代码", "01_visual_features",
            "The hard-coded 32 * 7 * 7 fits only 16×16 (or 17×17) RGB inputs, a size the article "
            "never states; x.view(-1, ...) silently folds other sizes into the batch whenever the "
            "element count happens to divide.",
            "cmlib.vision.CNNClassifier (padded convolutions, the classifier's input size computed "
            "from image_size, inputs checked)"),
    Listing("ImageEmbedder", "§2.1.1.2 图像嵌入模型", "图像嵌入模型伪代码", "01_visual_features",
            "The decoder's ConvTranspose2d(32, 3, 3) receives the encoder's (B, 10) class scores, "
            "not a (B, 32, H, W) map: forward raises a RuntimeError.",
            "cmlib.vision.ConvAutoencoder (strided convolutions down to a code z, transposed "
            "convolutions back), trained on reconstruction"),
    Listing("Word2Vec", "§2.2.1.1 词嵌入", "Word2Vec模型伪代码", "02_language_features",
            "vocab_size is undefined (NameError); supplied, the model only looks vectors up: "
            "there is no training objective, so nothing makes similar words' vectors close.",
            "cmlib.embeddings.SkipGram with negative sampling, trained by train_skipgram"),
    Listing("LSTM", "§2.2.1.2 序列模型", "LSTM模型伪代码", "02_language_features",
            "nn.LSTM returns output, (h_n, c_n): the listing's 'hidden' is the per-step output and "
            "its 'cell' the tuple (h_n, c_n); it also expects time-first input.",
            "cmlib.sequence.FixedLSTM, and cmlib.sequence.TextEncoder for sentences"),
    Listing("FeatureFusion", "§2.3.1 基于特征融合的方法", "加法融合模型伪代码", "03_fusion",
            "Titled additive fusion, it concatenates the two features and applies a linear layer: "
            "its output is not a function of v + l.",
            "cmlib.fusion.AdditiveFusion (and ConcatFusion, which is what the listing is)"),
    Listing("AdversarialFusion", "§2.3.2 基于模型融合的方法", "对抗性训练模型伪代码", "03_fusion_models",
            "vis_dim and lang_dim are undefined (NameError); supplied, the 'discriminator' sees both "
            "modalities concatenated, so it has nothing to tell apart, and no loss, label or "
            "reversed gradient makes it an adversary.",
            "cmlib.alignment.AdversarialAligner with a ModalityDiscriminator and grad_reverse"),
    Listing("GAN", "§3.2.1.1 GANs在跨模态学习中的应用", "GAN模型伪代码", "04_prompt_generation_gan",
            "The generator has no noise input and outputs one number; the discriminator sees the "
            "image concatenated with the generator's output instead of the condition, through a "
            "one-unit bottleneck.",
            "cmlib.generation.gan.GlyphGenerator and ProjectionDiscriminator, trained by "
            "gan_training.train_cgan"),
    Listing("CVAE", "§3.2.1.2 条件VAEs在跨模态学习中的应用", "条件VAE模型伪代码",
            "04_prompt_generation",
            "self.embed is never defined; the encoder emits 2 numbers with no mean/log-variance "
            "split, so there is no sampling and no KL term; the decoder never sees the prompt.",
            "cmlib.generation.cvae.CVAE, trained on the ELBO by train_cvae"),
    Listing("Seq2Seq", "§3.2.2.1 序列到序列学习", "Seq2Seq模型伪代码", "05_captioning",
            "hidden_dim, latent_dim and self.embed are undefined; supplied, it is an MLP that maps "
            "one vector to one vector: no tokens, no decoder loop, no sequence.",
            "cmlib.captioning: an image encoder and a recurrent decoder that emits tokens"),
    Listing("CrossModalSeqGen", "§3.2.2.2 跨模态序列生成", "跨模态序列生成模型伪代码", "05_captioning",
            "The same network as Seq2Seq under another name: undefined names, and once they are "
            "supplied one vector in, one vector out — no sequence is generated.",
            "cmlib.captioning's decoders, in both directions (image → caption, prompt → image tokens)"),
)}


def _with_names(cls: type, names: Mapping[str, object]) -> type:
    """A subclass of ``cls`` whose own methods see ``names`` as extra globals."""
    namespace = {**vars(inspect.getmodule(cls)), **names}
    methods = {}
    for attr, value in vars(cls).items():
        if isinstance(value, types.FunctionType):
            methods[attr] = types.FunctionType(value.__code__, namespace, value.__name__,
                                               value.__defaults__, value.__closure__)
    return type(cls.__name__, (cls,), {**methods, "__qualname__": cls.__qualname__,
                                       "__module__": cls.__module__})


def build(listing: str | type, *args, names: Mapping[str, object] | None = None,
          attributes: Mapping[str, object] | None = None, **kwargs) -> nn.Module:
    """Instantiate a listing, with the names it leaves undefined supplied.

    Args:
        listing: a name in :data:`LISTINGS` (``"CVAE"``) or the class itself.
        *args, **kwargs: the listing's own constructor arguments.
        names: undefined global names the listing uses (``{"vis_dim": 4}``); its methods see
            them, nothing else does.
        attributes: attributes set on the instance after ``__init__`` (``{"embed": ...}`` for a
            ``self.embed`` the listing never defines).

    Returns:
        The instance (of a private subclass of the listing when ``names`` are given).

    Raises:
        ValueError: for an unknown listing name.
        NameError: if the listing still uses a name nobody supplied (as printed, most do).
    """
    if isinstance(listing, str):
        if listing not in LISTINGS:
            raise ValueError(f"unknown listing {listing!r}; the article's are {list(LISTINGS)}")
        cls = LISTINGS[listing].cls
    elif isinstance(listing, type) and listing.__name__ in LISTINGS \
            and LISTINGS[listing.__name__].cls is listing:
        cls = listing
    else:
        raise TypeError(f"listing must be a name in LISTINGS or one of their classes, got "
                        f"{listing!r}")
    if names:
        cls = _with_names(cls, names)
    model = cls(*args, **kwargs)
    for key, value in (attributes or {}).items():
        setattr(model, key, value)
    return model


__all__ = ["LISTINGS", "AdversarialFusion", "CNN", "CVAE", "CrossModalSeqGen", "FeatureFusion",
           "GAN", "ImageEmbedder", "LSTM", "Listing", "Seq2Seq", "Word2Vec", "build"]
