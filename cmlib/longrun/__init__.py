"""Long-run models shipped with the course (``models/``), for targets 3 minutes cannot reach.

* :mod:`~cmlib.longrun.base` — what a recipe is (:class:`~cmlib.longrun.base.Recipe`);
* :mod:`~cmlib.longrun.store` — the safetensors file and its JSON manifest, written atomically,
  checked on reading;
* :mod:`~cmlib.longrun.recipes` — train a recipe and ship it (``make models``), load it back, or
  train it live in the gpu profile (:func:`~cmlib.longrun.recipes.long_run`);
* one module per recipe: :mod:`~cmlib.longrun.judge` (chapter 04's reference judge),
  :mod:`~cmlib.longrun.cgan` (chapter 04 part 3's cGAN),
  :mod:`~cmlib.longrun.token_prior` (chapter 05's PixelCNN over image tokens),
  :mod:`~cmlib.longrun.referees` (chapter 06's referees) and :mod:`~cmlib.longrun.cyclegan`
  (chapter 06 part 1's CycleGAN).

This file imports nothing: :mod:`cmlib.cyclegan.referees` reads the shipped referees through
:mod:`~cmlib.longrun.store` while the recipes import :mod:`cmlib.cyclegan`, and importing the
recipes here would close that loop.
"""
