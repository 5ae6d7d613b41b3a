"""Prompt-driven generation (提示词驱动的生成), chapters 04 and 05: a prompt in, images out.

* :mod:`~cmlib.generation.prompts` — prompt encoders: a prompt becomes a condition vector;
* :mod:`~cmlib.generation.decoders` — the image decoders the generators share;
* :mod:`~cmlib.generation.cvae` — the conditional VAE, its trainer and chapter 04's recipe;
* :mod:`~cmlib.generation.gan` — the conditional GAN and its trainer;
* :mod:`~cmlib.generation.codebook` — an image vocabulary by vector quantisation (chapter 05);
* :mod:`~cmlib.generation.autoregressive` — a PixelCNN over image tokens (chapter 05);
* :mod:`~cmlib.generation.token_recipe` — chapter 05 part 4's token model, written once, in the
  model registry for part 5;
* :mod:`~cmlib.generation.generative` — ``generate`` from any of them, ``fidelity_over`` (the
  judge's score over a prompt set), and chapter 04's cGAN in the model registry.

How faithful generated images are is judged by :mod:`cmlib.judge`, which sits below this
package: generators import the judge, never the other way round.
"""
