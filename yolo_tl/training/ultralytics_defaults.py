"""Where yolo-tl's fine-tuning defaults differ from Ultralytics' train defaults, and why.

Ultralytics' defaults come from training YOLO on COCO (118k images, 300 epochs): a nominal batch
size ``nbs`` of 64, so with ``batch`` 16 the gradients of 4 batches are summed into one optimizer
step, and a warm-up of 3 epochs. On a few hundred photos that means 4x fewer optimizer steps in a
run that is already short (BCCD, 205 photos: 13 batches an epoch, 3 optimizer steps), and the first
epochs spent ramping the learning rate up from 0. benchmarks/RESULTS_transfer_real.md measures each
change alone from the real COCO backbone (``python -m benchmarks.bench_transfer_real``): BCCD, backbone
frozen, 5 epochs, val mAP50-95 0.310 with both changes, 0.258 with Ultralytics' warm-up, 0.172 with its
nbs 64, 0.131 with Ultralytics' two.

The defaults here are applied before ``ultralytics:`` / ``extra`` arguments, so a user's own
``nbs`` or ``warmup_epochs`` wins; run.json records what was applied.
"""

from __future__ import annotations

from typing import Any

WARMUP_EPOCHS = 0.0  # 0.310 vs 0.258 with 3 warm-up epochs (RESULTS_transfer_real.md)


def transfer_defaults(batch: int) -> dict[str, Any]:
    """Ultralytics train arguments yolo-tl sets by default: an optimizer step every batch (``nbs`` =
    ``batch``) and the warm-up above. Under AutoBatch (``batch`` < 1) the size is not known yet, so
    ``nbs`` stays Ultralytics'."""
    out: dict[str, Any] = {"warmup_epochs": WARMUP_EPOCHS}
    if batch >= 1:
        out["nbs"] = int(batch)
    return out
