"""What a run will redraw, found without a model: the plan minus what its stages will skip.

After planning (which already leaves out objects that others cover, ``occluded``), a run skips
an image whose file is missing, unreadable or not the size the JSON says. That is found here
from image headers (no pixel is decoded), with the run's own checks. What cannot be predicted:
the verifier's verdicts, invalid model output, and an image whose header reads but whose pixels
do not (a truncated file).

``inpaint-aug validate`` counts with :func:`predict`; :func:`require_redraw` is the one rule
both it and ``run`` apply: when nothing would be redrawn, the run fails before a model loads.

Example:
    >>> [copies_of(Skip("edit", reason, ""), 3) for reason in ("too-small", "verify-rejected")]
    [3, 1]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, UnidentifiedImageError

from inpaint_aug.dataset.coco import CocoDataset
from inpaint_aug.dataset.prompts import PromptBook
from inpaint_aug.errors import FatalError, ItemError
from inpaint_aug.options import PlanSettings
from inpaint_aug.pipeline.balance import ClassBalance, class_balance, class_targets
from inpaint_aug.pipeline.plan import Edit, ImageJob, Skip, kept_annotations

ROTATED = {5, 6, 7, 8}  # EXIF orientations that swap width and height
SAME_IN_EVERY_COPY = frozenset(
    {"crowd", "no-prompt", "class-skipped", "too-small", "no-mask", "max-per-image", "occluded"}
    | {"too-thin", "no-background"}
)
"""Edit-skip reasons that are the same in every copy of an image, so recorded once: planning
records copy 0 only, and a run lists the identical skips of several copies once."""
DERIVED = frozenset({"nothing-to-edit", "no-edit-left"})  # follow from the other skips
HINTS = {
    "no-prompt": "the prompts file",
    "class-skipped": "the prompts file",
    "too-small": "--min-size",
    "no-mask": "--region",
    "occluded": "--min-coverage",
    "too-thin": "--keep-outline",
    "image-missing": "the image folder (--images)",
    "image-unreadable": "the image files",
    "size-mismatch": "the images' width and height in the JSON",
}


class NothingToRedraw(FatalError):
    """No object would be redrawn: a run would only copy labels, so it stops before the model."""


def copies_of(skip: Skip, copies: int) -> int:
    """How many output copies one recorded skip stands for (the unit of the per-class tables).

    ``copies`` for a dropped annotation and for an edit skip that is the same in every copy
    (:data:`SAME_IN_EVERY_COPY`); 1 for the rest (recorded per copy) and for image skips.
    """
    same = skip.kind == "annotation" or (skip.kind == "edit" and skip.reason in SAME_IN_EVERY_COPY)
    return copies if same else 1


def image_problem(ds: CocoDataset, image: dict[str, Any]) -> ItemError | None:
    """Why a run would skip this image, from its file's header: the checks of ``load_image``."""
    path = ds.image_path(image)
    if not path.is_file():
        return ItemError("image-missing", f"{path} does not exist")
    try:
        with Image.open(path) as img:
            width, height = img.size
            if img.getexif().get(0x0112) in ROTATED:
                width, height = height, width
    except Image.DecompressionBombError as err:
        return ItemError("image-too-large", f"{path}: {err}")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        return ItemError("image-unreadable", f"{path}: {err}")
    says = (image.get("width"), image.get("height"))
    if (width, height) != says:
        detail = f"{path} is {width}x{height} (upright), the JSON says {says[0]}x{says[1]}"
        return ItemError("size-mismatch", detail)
    return None


@dataclass
class Prediction:
    """The planned edits a run would make (before verification) and the image skips it would add.

    Skips are listed as a run lists them: an image's skip once, whatever its copies.
    """

    edits: list[tuple[ImageJob, Edit]] = field(default_factory=list)
    skips: dict[Skip, None] = field(default_factory=dict)  # an ordered set

    def skip_image(self, err: ItemError, image_id: Any) -> None:
        """Add one predicted image skip, as the run would record it."""
        self.skips[Skip("image", err.reason, err.detail, image_id)] = None


def predict(
    ds: CocoDataset,
    jobs: Iterable[ImageJob],
    problems: Mapping[Any, ItemError | None] | None = None,
    first: bool = False,
) -> Prediction:
    """Which planned edits a run would make, and what its stages would skip.

    Args:
        ds: the dataset.
        jobs: the planned jobs (:func:`.plan.plan_dataset`).
        problems: image problems already found, by image id (the headers of others are read).
        first: stop at the first edit that would be made (enough to know a run has work).
    """
    found = dict(problems or {})
    result = Prediction()
    for job in jobs:
        image_id = job.image["id"]
        if image_id not in found:
            found[image_id] = image_problem(ds, job.image)
        if found[image_id] is not None:
            result.skip_image(found[image_id], image_id)
        elif first:
            return Prediction([(job, job.edits[0])], result.skips)
        else:
            result.edits += [(job, edit) for edit in job.edits]
    return result


def nothing_redrawn(skips: Iterable[Skip], images: int) -> str:
    """The one-line explanation shared by ``validate`` and ``run``: why nothing is redrawn."""
    counts = Counter(s.reason for s in dict.fromkeys(skips) if s.reason not in DERIVED)
    if not counts:
        return f"nothing would be redrawn: the {images} image(s) have no object to redraw"
    listed = ", ".join(f"{reason}: {n}" for reason, n in sorted(counts.items()))
    hints = sorted({HINTS[r] for r in counts if r in HINTS})
    check = f"; check {', '.join(hints)}" if hints else ""
    return (
        f"nothing would be redrawn in the {images} image(s), skipped (reason: count): {listed}"
        f"{check}; `inpaint-aug validate` lists every problem"
    )


def require_redraw(
    ds: CocoDataset,
    jobs: list[ImageJob],
    skips: list[Skip],
    limit: int | None = None,
) -> None:
    """Stop a run that would redraw nothing, before its model loads (what ``validate`` says).

    Reads image headers until the first edit that would be made (one, usually).

    Raises:
        NothingToRedraw: no planned edit would be made; the message says why, per reason.
    """
    predicted = predict(ds, jobs, first=True)
    if not predicted.edits:
        images = len(ds.images[:limit])
        raise NothingToRedraw(nothing_redrawn([*skips, *predicted.skips], images))


def balance_plan(
    ds: CocoDataset,
    book: PromptBook,
    settings: PlanSettings,
    jobs: list[ImageJob],
    limit: int | None = None,
) -> list[ClassBalance]:
    """The plan of each class with a target (``[]`` without targets), as ``validate`` shows it."""
    targets = class_targets(book, settings)
    if not targets:
        return []
    kept, _ = kept_annotations(ds, {image["id"] for image in ds.images[:limit]})
    anns = [a for image_anns in kept.values() for a in image_anns]
    return class_balance(jobs, anns, targets, settings.copies)
