"""inpaint-aug: more varied COCO training data by redrawing labelled objects with inpainting.

The public API, used by the command line and by notebooks alike:

Example:
    >>> import inpaint_aug as ia
    >>> options = ia.RunOptions(coco="datasets/shapes/annotations.json",
    ...                         prompts="datasets/shapes/prompts.yaml",
    ...                         model="tiny-random", out="augmented", preset="fast")
    >>> options.plan.steps
    4
    >>> report = ia.run(options)  # doctest: +SKIP
    >>> report.objects_edited  # doctest: +SKIP
    9
"""

from __future__ import annotations

from inpaint_aug.choices import Device, Dtype, ExportFormat, ImageFormat, Preset, Region, Split
from inpaint_aug.dataset.coco import CocoDataset, load_coco
from inpaint_aug.dataset.prompts import PromptBook, load_prompts
from inpaint_aug.errors import FatalError, InpaintAugError, ItemError, OptionsError
from inpaint_aug.options import ModelOptions, PlanSettings, RunOptions
from inpaint_aug.pipeline.plan import Edit, ImageJob, Skip, plan_dataset
from inpaint_aug.pipeline.report import RunReport
from inpaint_aug.pipeline.run import load_inputs, run
from inpaint_aug.version import __version__

__all__ = [
    "CocoDataset",
    "Device",
    "Dtype",
    "Edit",
    "ExportFormat",
    "FatalError",
    "ImageFormat",
    "ImageJob",
    "InpaintAugError",
    "ItemError",
    "ModelOptions",
    "OptionsError",
    "PlanSettings",
    "Preset",
    "PromptBook",
    "Region",
    "RunOptions",
    "RunReport",
    "Skip",
    "Split",
    "__version__",
    "load_coco",
    "load_inputs",
    "load_prompts",
    "plan_dataset",
    "run",
]
