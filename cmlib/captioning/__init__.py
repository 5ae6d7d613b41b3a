"""Captioning (chapter 05): encoder–decoder models that write what an image shows.

* :mod:`.models` — the bottleneck and the attention captioner, the masked loss, scheduled
  sampling's rule;
* :mod:`.training` — teacher forcing on fresh captions, scheduled sampling;
* :mod:`.decoding` — greedy, beam search, temperature sampling;
* :mod:`.evaluation` — parsed meaning, hallucination, BLEU, attention on the object.
"""

from .decoding import Decoded, beam_search, caption_images, decode, greedy_decode, sample_decode
from .evaluation import (
    NearestNeighbourCaptioner,
    attention_in_object,
    caption_scores,
    corpus_bleu,
    hallucination_rate,
    nearest_neighbours,
)
from .models import (
    AttentionCaptioner,
    BottleneckCaptioner,
    Captioner,
    SlotCaptioner,
    masked_cross_entropy,
    scheduled_sampling_inputs,
)
from .training import CaptionBatches, train_captioner

__all__ = [
    "AttentionCaptioner",
    "BottleneckCaptioner",
    "CaptionBatches",
    "Captioner",
    "Decoded",
    "NearestNeighbourCaptioner",
    "nearest_neighbours",
    "SlotCaptioner",
    "attention_in_object",
    "beam_search",
    "caption_images",
    "caption_scores",
    "corpus_bleu",
    "decode",
    "greedy_decode",
    "hallucination_rate",
    "masked_cross_entropy",
    "sample_decode",
    "scheduled_sampling_inputs",
    "train_captioner",
]
