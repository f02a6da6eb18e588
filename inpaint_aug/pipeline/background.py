"""Background mode (``--mode background``): keep every labelled object, redraw the rest.

Each output copy of an image gets one edit whose window is the whole image and whose region is
the inverse of its objects:

* **window**: the image letterboxed to a square (side = its longer side, centred, so the short
  axis reaches past the border), cut edge-replicated and resized to ``--resolution``, so the
  long side is redrawn at model resolution and the aspect ratio is kept. A larger image is
  redrawn at model resolution and the result resized back up: its background loses detail,
  its objects stay exact. Every crop of a run keeps one ``R x R`` shape, so background crops
  batch like object crops (one shape, so one ``--compile``), and neither the model
  call nor the batch grouping changes. The price is the letterbox band, painted and then
  cropped away (a quarter of the pixels for a 4:3 image).
* **region** (:func:`~inpaint_aug.pipeline.regions.paintable`): the window minus the union of all
  the image's objects (each by its mask, or its box without one, crowd regions included),
  dilated by ``--dilate`` so object edges are safe; the letterbox band is in the region. The
  paste-back feathering ramps inside the region only, so every object pixel keeps its source
  value (bit for bit in PNG).
* **prompt**: from the prompts file's ``background:`` entry (templates and ``vars`` as for
  classes); its ``steps``, ``guidance`` and ``strength`` beat the command line's.

Labels are carried unchanged; the image's provenance gets ``mode: background`` and a
``background`` record (prompt, seed, schedule, coverage = the share of the image redrawn), and
``edits`` stays empty: no annotation is redrawn.

Example:
    >>> letterbox(640, 480)
    Window(x0=0, y0=-80, side=640)
"""

from __future__ import annotations

from typing import Any

from inpaint_aug import geometry as geo
from inpaint_aug.dataset.prompts import PromptBook
from inpaint_aug.options import PlanSettings

REGION = "background"
"""The ``region`` of a background edit (object edits have ``mask`` or ``box``)."""


def letterbox(width: int, height: int) -> geo.Window:
    """The square window centred on a ``width x height`` image: its longer side, no more."""
    return geo.crop_window((0.0, 0.0, float(width), float(height)), (width, height), 0.0, 1)


def background_edit(
    image: dict[str, Any], count: int, book: PromptBook, settings: PlanSettings, seed: int
) -> dict[str, Any]:
    """The fields of the one :class:`~inpaint_aug.pipeline.plan.Edit` of a background copy.

    Args:
        image: the COCO image entry.
        count: how many annotations it keeps (all are protected).
        book: the prompts, with a ``background`` entry (checked before planning).
        settings: the run's settings (the schedule when the entry sets none).
        seed: the edit's seed (from the image id and the copy).
    """
    spec = book.background
    assert spec is not None, "check_schedules refuses --mode background without the entry"
    prompt, negative = book.render(None, seed)
    return {
        "ann_index": -1,
        "annotation_id": None,
        "category_id": None,
        "region": REGION,
        "window": letterbox(int(image["width"]), int(image["height"])),
        "protect": tuple(range(count)),
        "prompt": prompt,
        "negative_prompt": negative,
        "seed": seed,
        "steps": spec.steps or settings.steps,
        "guidance": spec.guidance if spec.guidance is not None else settings.guidance,
        "strength": spec.strength if spec.strength is not None else settings.strength,
    }
