"""ShapesWorld throughput on one thread: batch rendering, item access, and a plain DataLoader.

Writes benchmarks/results/shapes.json. Targets: at least 10,000 images/s at 32x32 on one thread
for batch rendering (``render_all``) and through ``DataLoader(ds, batch_size=256)``, which
fetches each batch with ``ShapesWorld.__getitems__`` (one vectorised render per batch).
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from cmlib.data.shapes import ShapesWorld

RESULTS = Path(__file__).resolve().parent / "results"


def best_rate(fn, count: int, repeats: int = 3) -> float:
    """The best of ``repeats`` runs, as items per second."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return count / best


def main() -> None:
    torch.set_num_threads(1)
    rows = []
    for style in ("photo", "sketch", "mixed"):
        for image_size in (32, 64):
            n = 20_000 if image_size == 32 else 5_000
            ds = ShapesWorld("train", size=n, image_size=image_size, style=style)
            ds.render_all(batch_size=256)  # warm-up: texture bank, grids
            batch = best_rate(ds.render_all, n)
            items = best_rate(lambda ds=ds: [ds[i] for i in range(2_000)], 2_000, repeats=2)
            loader = best_rate(lambda ds=ds: [b for b in DataLoader(ds, batch_size=256)], n)
            rows.append(
                {
                    "style": style,
                    "image_size": image_size,
                    "batch_images_per_s": round(batch),
                    "item_access_per_s": round(items),
                    "dataloader_images_per_s": round(loader),
                }
            )
            print(
                f"{style:7s} {image_size:3d}px  batch {batch:9,.0f} img/s   "
                f"ds[i] {items:7,.0f} items/s   DataLoader {loader:9,.0f} img/s"
            )
    target = min(r["batch_images_per_s"] for r in rows if r["image_size"] == 32)
    through_loader = min(r["dataloader_images_per_s"] for r in rows if r["image_size"] == 32)
    result = {
        "benchmark": "shapes",
        "threads": 1,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "rows": rows,
        "target_images_per_s_32px": 10_000,
        "min_batch_images_per_s_32px": target,
        "min_dataloader_images_per_s_32px": through_loader,
        "meets_target": target >= 10_000 and through_loader >= 10_000,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "shapes.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"32px minimum: batch {target:,} img/s, DataLoader {through_loader:,} img/s "
        f"(target 10,000) -> {RESULTS / 'shapes.json'}"
    )


if __name__ == "__main__":
    main()
