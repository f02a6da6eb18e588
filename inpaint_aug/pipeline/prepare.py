"""What a worker thread does to one image before the model: read it, cut each edit's crop.

The image is read as the run reads every image (EXIF, mode fixes, the size the JSON says), each
edit's region is drawn from the labels (:func:`~inpaint_aug.pipeline.regions.paintable`) and
its crop cut at the model's resolution, with the object's box in crop coordinates for the
verifier. An unusable image stops the task; a failing edit is collected and the others go on.

Example:
    >>> prep = prepare(ds, task, plan)  # doctest: +SKIP
    >>> [edit.annotation_id for edit, _, _ in prep.crops]  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inpaint_aug.dataset.coco import CocoDataset
from inpaint_aug.dataset.images import load_image
from inpaint_aug.errors import ItemError
from inpaint_aug.options import PlanSettings
from inpaint_aug.pipeline.crops import Crop, cut
from inpaint_aug.pipeline.plan import Edit
from inpaint_aug.pipeline.records import Task
from inpaint_aug.pipeline.regions import paintable
from inpaint_aug.pipeline.verify import Box, box_in_crop


@dataclass(frozen=True)
class Prepared:
    """What a worker made of one task: its pixels and crops, or the error that stopped it."""

    task: Task
    pixels: np.ndarray | None
    crops: tuple[tuple[Edit, Crop, Box], ...] = ()
    failed: tuple[tuple[Edit, ItemError], ...] = ()
    error: ItemError | None = None


def prepare(ds: CocoDataset, task: Task, plan: PlanSettings) -> Prepared:
    """Read a task's image and cut a crop for each edit (per-edit failures collected)."""
    job = task.job
    try:
        pixels = load_image(ds.image_path(job.image), job.image["width"], job.image["height"])
    except ItemError as err:
        return Prepared(task, None, error=err)
    size = (pixels.shape[1], pixels.shape[0])
    crops, failed = [], []
    for edit in job.edits:
        try:
            region, share = paintable(edit, job.annotations, size, plan.dilate, plan.min_coverage)
        except ItemError as err:
            failed.append((edit, err))
            continue
        crop = cut(pixels, edit.window, region, plan.resolution, plan.feather, coverage=share)
        bbox = job.annotations[edit.ann_index]["bbox"] if edit.ann_index >= 0 else [0, 0, *size]
        crops.append((edit, crop, box_in_crop(bbox, edit.window.xyxy, plan.resolution)))
    return Prepared(task, pixels, tuple(crops), tuple(failed))
