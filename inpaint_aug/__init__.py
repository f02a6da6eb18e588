"""inpaint-aug: more varied COCO training data by redrawing labelled objects with inpainting.

The public API, used by the command line and by notebooks alike:

Example:
    >>> import inpaint_aug as ia
    >>> report = ia.run(ia.RunOptions(coco="datasets/shapes/annotations.json",
    ...                               prompts="datasets/shapes/prompts.yaml",
    ...                               model="tiny-random", out="augmented"))  # doctest: +SKIP
    >>> report.objects_edited  # doctest: +SKIP
    9
"""

from __future__ import annotations

from inpaint_aug.dataset.coco import CocoDataset, load_coco  # noqa: E402
from inpaint_aug.dataset.prompts import PromptBook, load_prompts  # noqa: E402
from inpaint_aug.errors import FatalError, InpaintAugError, ItemError  # noqa: E402
from inpaint_aug.pipeline.plan import Edit, ImageJob, PlanSettings, Skip, plan_dataset  # noqa: E402
from inpaint_aug.pipeline.run import RunOptions, RunReport, load_inputs, run  # noqa: E402
from inpaint_aug.version import __version__

__all__ = [
    "CocoDataset",
    "Edit",
    "FatalError",
    "ImageJob",
    "InpaintAugError",
    "ItemError",
    "PlanSettings",
    "PromptBook",
    "RunOptions",
    "RunReport",
    "Skip",
    "__version__",
    "load_coco",
    "load_inputs",
    "load_prompts",
    "plan_dataset",
    "run",
]
