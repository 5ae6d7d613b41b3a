"""The everyday optimisation tools of chapter 09 part 5.

* :mod:`~cmlib.optim.schedules` — constant, cosine and warm-up schedules, and one-cycle;
* :mod:`~cmlib.optim.precision` — bf16 autocast around a training step;
* :mod:`~cmlib.optim.accumulation` — gradient accumulation, and GradCache for a contrastive
  loss, whose micro-batches would otherwise see fewer negatives.

Gradient clipping needs no module: :func:`cmlib.train.fit` clips (``grad_clip``) and logs the
gradient norm before clipping (``log_grad_norm``).
"""
