"""Plan the edits: which objects are redrawn, where, with which prompt and seed.

Planning is pure: it reads the COCO dict and the prompt book, never an image file. Each
decision not to edit something becomes a :class:`Skip` with a stable reason key.

Annotation policy:

* carried over and edited: eligible objects (at most ``max_per_image``, largest first);
* carried over, not edited: crowd regions, objects below ``min_size``, classes with
  ``skip: true`` or without a prompt, objects without a mask in ``region="mask"`` mode,
  objects that others cover (``occluded``: under ``min_coverage`` is paintable) or with
  nothing inside a ``keep_outline`` (``too-thin``);
* dropped (and reported): annotations that describe no area in the image (degenerate polygons,
  empty or non-finite boxes, boxes wholly outside the image, RLE of the wrong size) or that point
  at an unknown image or category.

Example:
    >>> derive_seed(1, 5, 9, 0) == derive_seed(1, 5, 9, 0)
    True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import partial
from typing import Any

from inpaint_aug import geometry as geo
from inpaint_aug.choices import Control, Mode, Region
from inpaint_aug.dataset.coco import CocoDataset
from inpaint_aug.dataset.prompts import PromptBook
from inpaint_aug.errors import ItemError
from inpaint_aug.options import PlanSettings
from inpaint_aug.pipeline.background import background_edit
from inpaint_aug.pipeline.balance import add_extra_copies, class_targets, shortfalls
from inpaint_aug.pipeline.carry import (  # noqa: F401 - re-exported: the plan's records
    Skip,
    check_annotation,
    check_image,
    kept_annotations,
)
from inpaint_aug.pipeline.control import ControlSpec, control_scale_for
from inpaint_aug.pipeline.regions import region_problem


@dataclass(frozen=True)
class Edit:
    """One object to redraw in one copy of one image."""

    ann_index: int
    annotation_id: Any
    category_id: int
    region: str
    window: geo.Window
    protect: tuple[int, ...]
    prompt: str
    negative_prompt: str
    seed: int
    steps: int
    guidance: float
    strength: float
    control: ControlSpec | None = None
    keep_outline: int = 0

    @property
    def settings_key(self) -> tuple[Any, ...]:
        """Edits that share this key can go through the model in one batch (and one control)."""
        key = (self.steps, self.guidance, self.strength)
        return key if self.control is None else (*key, self.control)


@dataclass(frozen=True)
class ImageJob:
    """One output image: a copy of a source image, the labels it keeps and the edits to make."""

    image: dict[str, Any]
    copy: int
    annotations: tuple[dict[str, Any], ...]
    edits: tuple[Edit, ...]


def derive_seed(seed: int, image_id: Any, annotation_id: Any, copy: int) -> int:
    """A 31-bit seed for one edit from what identifies it only: never batch size or order."""
    key = f"{seed}:{image_id}:{annotation_id}:{copy}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") & 0x7FFFFFFF


Regions = dict[tuple[Any, int], ItemError | None]
"""Why each object's region cannot be painted (``None``: it can), by (image id, index): the
same in every copy of an image, so found once (see :func:`plan_image`)."""


def plan_image(
    image: dict[str, Any],
    anns: list[dict[str, Any]],
    copy: int,
    book: PromptBook,
    settings: PlanSettings,
    classes: frozenset | None = None,
    regions: Regions | None = None,
) -> tuple[ImageJob, list[Skip]]:
    """Plan one copy of one image from its checked annotations (with ``classes``: only those).

    Objects that others cover (``occluded``) or with nothing inside their kept outline
    (``too-thin``) are skipped here, from the labels alone (:func:`.regions.region_problem`), so
    that counts, targets and progress know them before anything runs. ``regions`` keeps those
    findings across the copies of an image.
    """
    skips: list[Skip] = []
    candidates = []
    for index, ann in enumerate(anns):
        if classes is not None and ann.get("category_id") not in classes:
            continue
        why = _not_editable(ann, book, settings)
        if why:
            skips.append(_skip(image, ann, *why))
        else:
            candidates.append(index)
    edits = {i: _make_edit(image, anns, i, copy, book, settings) for i in candidates}
    for i, edit in list(edits.items()):
        err = _region_problem(image, anns, edit, settings, regions)
        if err is not None:
            skips.append(_skip(image, anns[i], err.reason, err.detail))
            del edits[i]
    chosen = _largest(list(edits), anns, image, settings, skips)
    return ImageJob(image, copy, tuple(anns), tuple(edits[i] for i in chosen)), skips


def _skip(image: dict[str, Any], ann: dict[str, Any], reason: str, detail: str) -> Skip:
    return Skip("edit", reason, detail, image.get("id"), ann.get("id"), ann.get("category_id"))


def _region_problem(
    image: dict[str, Any],
    anns: list[dict[str, Any]],
    edit: Edit,
    settings: PlanSettings,
    regions: Regions | None,
) -> ItemError | None:
    """Why the edit's region cannot be painted (``occluded``, ``too-thin``), or ``None``."""
    key = (image.get("id"), edit.ann_index)
    if regions is not None and key in regions:
        return regions[key]
    size = (int(image["width"]), int(image["height"]))
    err = region_problem(edit, tuple(anns), size, settings.dilate, settings.min_coverage)
    if regions is not None:
        regions[key] = err
    return err


def _largest(
    candidates: list[int],
    anns: list[dict[str, Any]],
    image: dict[str, Any],
    settings: PlanSettings,
    skips: list[Skip],
) -> list[int]:
    """At most ``max_per_image`` of the candidates, largest box first, in index order."""
    if settings.max_per_image is None or len(candidates) <= settings.max_per_image:
        return candidates
    ranked = sorted(candidates, key=lambda i: -anns[i]["bbox"][2] * anns[i]["bbox"][3])
    for i in ranked[settings.max_per_image :]:
        skips.append(
            _skip(image, anns[i], "max-per-image", f"over --max-per-image {settings.max_per_image}")
        )
    return sorted(ranked[: settings.max_per_image])


def _not_editable(ann: dict, book: PromptBook, settings: PlanSettings) -> tuple[str, str] | None:
    """Why an annotation is carried over without being redrawn, or ``None`` if it is editable."""
    spec = book.spec(ann["category_id"])
    if ann.get("iscrowd"):
        return ("crowd", "crowd regions are carried over, never inpainted")
    if spec is None:
        return ("no-prompt", "the prompts file has no entry and no default for this class")
    if spec.skip:
        return ("class-skipped", "skip: true in the prompts file")
    if min(ann["bbox"][2], ann["bbox"][3]) < settings.min_size:
        size = f"{ann['bbox'][2]:g}x{ann['bbox'][3]:g}"
        return ("too-small", f"{size} px is under --min-size {settings.min_size}")
    if settings.region is Region.mask and geo.segmentation_kind(ann.get("segmentation")) == "none":
        return ("no-mask", "--region mask and the annotation has only a box")
    return None


def _make_edit(
    image: dict[str, Any],
    anns: list[dict[str, Any]],
    index: int,
    copy: int,
    book: PromptBook,
    settings: PlanSettings,
) -> Edit:
    """Build the :class:`Edit` for annotation ``index`` of an image."""
    ann = anns[index]
    width, height = int(image["width"]), int(image["height"])
    has_mask = geo.segmentation_kind(ann.get("segmentation")) != "none"
    region = "box" if settings.region is Region.box or not has_mask else "mask"
    x0, y0, x1, y1 = geo.clip_xyxy(geo.xywh_to_xyxy(ann["bbox"]), width, height)
    grown = (x0 - settings.dilate, y0 - settings.dilate, x1 + settings.dilate, y1 + settings.dilate)
    window = geo.crop_window(grown, (width, height), settings.padding, settings.min_context)
    seed = derive_seed(settings.seed, image["id"], ann["id"], copy)
    prompt, negative = book.render(ann["category_id"], seed)
    spec = book.spec(ann["category_id"])
    assert spec is not None  # editable annotations have a spec
    return Edit(
        ann_index=index,
        annotation_id=ann["id"],
        category_id=ann["category_id"],
        region=region,
        window=window,
        protect=_overlapping(anns, index, window),
        prompt=prompt,
        negative_prompt=negative,
        seed=seed,
        steps=spec.steps or settings.steps,
        guidance=spec.guidance if spec.guidance is not None else settings.guidance,
        strength=spec.strength if spec.strength is not None else settings.strength,
        control=_control(ann, spec.control_scale, settings),
        keep_outline=settings.keep_outline,
    )


def _control(
    ann: dict[str, Any], scale: float | None, settings: PlanSettings
) -> ControlSpec | None:
    """The shape control of an edit: the class's scale (else the run's), small objects lower."""
    if settings.control is Control.none:
        return None
    base = scale if scale is not None else settings.control_scale
    side = min(ann["bbox"][2], ann["bbox"][3])
    return ControlSpec(settings.control.value, settings.controlnet, control_scale_for(base, side))


def _overlapping(anns: list[dict[str, Any]], index: int, window: geo.Window) -> tuple[int, ...]:
    """Indexes of the other annotations whose box meets the window (for regions.paintable)."""
    wx0, wy0, wx1, wy1 = window.xyxy
    hits = []
    for i, ann in enumerate(anns):
        x0, y0, x1, y1 = geo.xywh_to_xyxy(ann["bbox"])
        if i != index and x0 < wx1 and x1 > wx0 and y0 < wy1 and y1 > wy0:
            hits.append(i)
    return tuple(hits)


def plan_dataset(
    ds: CocoDataset, book: PromptBook, settings: PlanSettings, limit: int | None = None
) -> tuple[list[ImageJob], list[Skip]]:
    """Plan every copy of the first ``limit`` images; return the jobs and everything skipped.

    Jobs without edits are not returned: an unedited copy adds nothing to a training set. They
    are reported as ``nothing-to-edit``. Classes with a target get extra copies (see
    :mod:`~inpaint_aug.pipeline.balance`); one that cannot reach it is a ``below-target`` skip.
    """
    images = ds.images[:limit]
    kept, skips = kept_annotations(ds, {im["id"] for im in images})
    jobs: list[ImageJob] = []
    regions: Regions = {}  # occlusion, found once per object for every copy
    for image in images:
        bad = check_image(image)
        if bad:
            skips.append(bad)
            continue
        for copy in range(settings.copies):
            if settings.mode is Mode.background:  # one edit: all but the objects
                jobs.append(_background_job(image, kept.get(image["id"], []), copy, book, settings))
                continue
            anns = kept.get(image["id"], [])
            job, job_skips = plan_image(image, anns, copy, book, settings, regions=regions)
            skips += job_skips if copy == 0 else [s for s in job_skips if s.kind != "edit"]
            if job.edits:
                jobs.append(job)
            elif copy == 0:
                skips.append(Skip("image", "nothing-to-edit", "no eligible object", image["id"]))
    targets = class_targets(book, settings)
    if targets:  # per-class targets: extra copies (pipeline.balance)
        plan_copy = partial(plan_image, book=book, settings=settings, regions=regions)
        jobs = add_extra_copies(jobs, images, kept, targets, settings, plan_copy)
        for cid, why in shortfalls(jobs, kept, targets, settings, book.names):
            skips.append(Skip("class", "below-target", why, category_id=cid))
    return jobs, skips


def _background_job(image: dict, anns: list, copy: int, book: PromptBook, settings: PlanSettings):
    """A ``--mode background`` copy (see :mod:`~inpaint_aug.pipeline.background`)."""
    seed = derive_seed(settings.seed, image["id"], "background", copy)
    edit = Edit(**background_edit(image, len(anns), book, settings, seed))
    return ImageJob(image, copy, tuple(anns), (edit,))
