"""Helpers shared by several test files (``from helpers import ...``: tests/ is on sys.path)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from inpaint_aug import geometry as geo
from inpaint_aug.pipeline.plan import Edit

WINDOW = geo.Window(0, 0, 8)


def rle_encode(mask: np.ndarray) -> dict:
    """Compressed RLE with ``str`` counts, as COCO JSON stores it."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}


def rle_uncompressed(mask: np.ndarray) -> dict:
    """Uncompressed RLE (column-major run lengths starting with a run of zeros)."""
    flat = mask.astype(np.uint8).flatten(order="F")
    counts, value, run = [], 0, 0
    for px in flat:
        if px == value:
            run += 1
        else:
            counts.append(run)
            value, run = px, 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


def make_edit(
    ann_index: int = 0,
    ann_id: int | None = None,
    *,
    window: geo.Window = WINDOW,
    region: str = "mask",
    protect: Iterable[int] = (),
    seed: int = 11,
) -> Edit:
    """An edit of annotation ``ann_index`` (id ``ann_id``, by default ``ann_index + 1``).

    The prompt, negative prompt and model settings are fixed, distinct values (``prompt {id}``,
    ``neg``, 3 steps, guidance 2.5, strength 0.5) that provenance tests can recognise.
    """
    ann_id = ann_index + 1 if ann_id is None else ann_id
    return Edit(
        ann_index=ann_index,
        annotation_id=ann_id,
        category_id=1,
        region=region,
        window=window,
        protect=tuple(protect),
        prompt=f"prompt {ann_id}",
        negative_prompt="neg",
        seed=seed,
        steps=3,
        guidance=2.5,
        strength=0.5,
    )


class CrashAfter:
    """The tiny model, but the run 'dies' (an exception) on call number ``calls + 1``."""

    def __init__(self, inner, calls: int) -> None:
        self.inner, self.name, self.left = inner, inner.name, calls

    def inpaint(self, batch):
        if self.left == 0:
            raise RuntimeError("simulated crash")
        self.left -= 1
        return self.inner.inpaint(batch)


def changed_pixels(images: Path, out_dir: Path, image: dict[str, Any]) -> np.ndarray:
    """Where an output image differs from its source (``images``: the source image folder).

    Asserts first that the output has the source's size and three channels.
    """
    source = images / image["inpaint_aug"]["source_file_name"]
    before = np.asarray(Image.open(source))[..., :3]
    after = np.asarray(Image.open(out_dir / image["file_name"]))
    assert after.shape == before.shape, (after.shape, before.shape)
    return (before != after).any(axis=2)
