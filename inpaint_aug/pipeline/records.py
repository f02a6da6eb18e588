"""Output records: what each output file is called, its COCO entry, labels and provenance.

* :func:`output_tasks` is the one place that numbers output images (augmented copies
  ``1..N`` in plan order, then originals) and names their files (by :func:`files.unique_name`).
* :func:`make_record` and :func:`original_record` carry every label over (same category and
  geometry, bbox clipped, area recomputed) and record what really happened.
* :func:`assemble` renumbers annotations and fills each edit's new annotation id.

Example:
    >>> job = ImageJob({"id": 7, "file_name": "a/x.jpg", "width": 4, "height": 4}, 0, (), ())
    >>> [t.file_name for t in output_tasks([job], [], "auto")[0]]
    ['images/x_c0.jpg']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from inpaint_aug import geometry as geo
from inpaint_aug.choices import ImageFormat, ModelFamily
from inpaint_aug.dataset.images import output_format
from inpaint_aug.files import unique_name
from inpaint_aug.model_family import model_family
from inpaint_aug.pipeline.background import REGION as BACKGROUND
from inpaint_aug.pipeline.plan import Edit, ImageJob

IMAGES_DIR = "images"
SOURCE_URL_KEYS = ("coco_url", "flickr_url")
BACKGROUND_KEYS = ("prompt", "negative_prompt", "seed", "steps", "guidance", "strength")
family_of_model = lru_cache(maxsize=16)(model_family)  # read once per model, not per image


@dataclass(frozen=True)
class ImageRecord:
    """A finished output image: its COCO entry and labels, before final ids are assigned."""

    out_image_id: int
    image: dict[str, Any]
    annotations: tuple[dict[str, Any], ...]
    edited_ann_indexes: tuple[int, ...] = field(default=())
    rejected_ann_indexes: tuple[int, ...] = field(default=())

    @property
    def redraws(self) -> int:
        """Model redraws kept: objects edited, or 1 for a background (``--mode background``)."""
        return len(self.edited_ann_indexes) + ("background" in self.image.get("inpaint_aug", {}))


@dataclass(frozen=True)
class MadeEdit:
    """An edit as it was really made: the seed used, its coverage and its verifier's verdict.

    Attributes:
        edit: the edit, with the seed that made the kept result.
        coverage: the share of the object the model could repaint (``None``: not measured).
        verify: the verdict as recorded (``verifier``, ``score``, ``source_score``,
            ``threshold``, ``attempts``), or ``None`` without verification.
    """

    edit: Edit
    coverage: float | None = None
    verify: dict[str, Any] | None = None


@dataclass(frozen=True)
class Task:
    """One augmented output image to make: its number (= output image id), job and file."""

    number: int
    job: ImageJob
    file_name: str
    image_format: ImageFormat


@dataclass(frozen=True)
class Original:
    """A source image copied unchanged into OUT (``--include-originals``)."""

    number: int
    image: dict[str, Any]
    file_name: str


def output_tasks(
    jobs: list[ImageJob], originals: list[dict[str, Any]], image_format: ImageFormat | str
) -> tuple[list[Task], list[Original]]:
    """Number and name every output image by the one naming rule (collision-free).

    Copies come first, as ``images/<stem>_c<copy>.<ext>``, then originals, as
    ``images/<stem>_orig.<ext>``.

    Originals are numbered after the copies by their position in ``originals``, so a resumed
    run gives every image the same id and file.
    """
    taken: set[str] = set()
    tasks = []
    for index, job in enumerate(jobs):
        source = job.image.get("file_name", "")
        fmt = output_format(source, image_format)
        tag = f"_c{job.copy}"
        name = unique_name(IMAGES_DIR, source, tag, fmt.value, job.image.get("id"), taken)
        tasks.append(Task(index + 1, job, name, fmt))
    copies = []
    for offset, image in enumerate(originals):
        source = str(image.get("file_name", ""))
        ext = Path(source).suffix.lower().lstrip(".")
        name = unique_name(IMAGES_DIR, source, "_orig", ext, image.get("id"), taken)
        copies.append(Original(len(jobs) + 1 + offset, image, name))
    return tasks, copies


def carry_annotation(ann: dict[str, Any], width: int, height: int) -> dict[str, Any]:
    """Copy a source annotation: every key kept, bbox clipped, area recomputed from the mask."""
    out = dict(ann)
    x0, y0, x1, y1 = geo.clip_xyxy(geo.xywh_to_xyxy(ann["bbox"]), width, height)
    out["bbox"] = [round(v, 3) for v in geo.xyxy_to_xywh((x0, y0, x1, y1))]
    area = geo.segmentation_area(ann.get("segmentation"), out["bbox"], height, width)
    out["area"] = float(area)
    return out


def edit_provenance(edit: Edit | MadeEdit) -> dict[str, Any]:
    """The provenance entry of one edit (``annotation_id`` is filled when ids are final)."""
    made = edit if isinstance(edit, MadeEdit) else MadeEdit(edit)
    entry = _provenance(made.edit)
    if made.edit.control is not None:
        control = made.edit.control
        entry["control"] = {
            "mode": control.mode,
            "controlnet": control.controlnet,
            "scale": control.scale,
        }
    if made.edit.keep_outline:
        entry["keep_outline"] = made.edit.keep_outline
    if made.coverage is not None:
        entry["coverage"] = round(made.coverage, 4)
    if made.verify is not None:
        entry["verify"] = made.verify
    return entry


def _provenance(edit: Edit) -> dict[str, Any]:
    return {
        "source_annotation_id": edit.annotation_id,
        "annotation_id": None,
        "category_id": edit.category_id,
        "prompt": edit.prompt,
        "negative_prompt": edit.negative_prompt,
        "seed": edit.seed,
        "region": edit.region,
        "steps": edit.steps,
        "guidance": edit.guidance,
        "strength": edit.strength,
    }


def _background(made: MadeEdit) -> dict[str, Any]:
    """The provenance of a background redraw: its prompt, seed, schedule and the share redrawn."""
    entry = {k: v for k, v in _provenance(made.edit).items() if k in BACKGROUND_KEYS}
    if made.coverage is not None:
        entry["coverage"] = round(made.coverage, 4)
    return entry


def make_record(
    job: ImageJob,
    out_image_id: int,
    file_name: str,
    model: str,
    done: Sequence[Edit | MadeEdit],
    rejected: Sequence[MadeEdit] = (),
) -> ImageRecord:
    """Build the output record of a finished job from the edits that were actually made.

    Redraws the verifier rejected (and reverted) are listed under ``rejected``, not ``edits``.
    A background redraw (``--mode background``) is no annotation edit: it is recorded as
    ``mode: background`` and ``background: {prompt, seed, ...}``, with ``edits`` empty.
    The source's ``coco_url``/``flickr_url`` point at the source photo, not the new image, so
    they move into the provenance (``source_coco_url``, ``source_flickr_url``).
    """
    made = [d if isinstance(d, MadeEdit) else MadeEdit(d) for d in done]
    background = [m for m in made if m.edit.region == BACKGROUND]  # --mode background
    made = [m for m in made if m.edit.region != BACKGROUND]
    width, height = int(job.image["width"]), int(job.image["height"])
    image = {k: v for k, v in job.image.items() if k not in SOURCE_URL_KEYS}
    image.update(id=out_image_id, file_name=file_name, width=width, height=height)
    image["inpaint_aug"] = {
        "source_image_id": job.image["id"],
        "source_file_name": job.image.get("file_name"),
        **{f"source_{k}": job.image[k] for k in SOURCE_URL_KEYS if k in job.image},
        "copy": job.copy,
        "model": model,
        "edits": [edit_provenance(m) for m in made],
    }
    if rejected:
        image["inpaint_aug"]["rejected"] = [edit_provenance(m) for m in rejected]
    flux = family_of_model(model) is ModelFamily.flux  # FLUX Fill takes no negative prompt
    if flux:
        for entry in image["inpaint_aug"]["edits"] + image["inpaint_aug"].get("rejected", []):
            entry["negative_prompt"] = None
    if background:
        record = _background(background[0])
        if flux:
            record["negative_prompt"] = None
        image["inpaint_aug"].update(mode="background", background=record)
    anns = tuple(carry_annotation(a, width, height) for a in job.annotations)
    indexes = tuple(m.edit.ann_index for m in made)
    return ImageRecord(
        out_image_id, image, anns, indexes, tuple(m.edit.ann_index for m in rejected)
    )


def original_record(original: Original, annotations: list[dict[str, Any]]) -> ImageRecord:
    """The record of an unchanged source image copied into OUT, with its labels."""
    image = original.image
    entry = {**image, "id": original.number, "file_name": original.file_name}
    entry["inpaint_aug"] = {
        "source_image_id": image["id"],
        "source_file_name": image.get("file_name"),
        "original": True,
        "edits": [],
    }
    anns = tuple(carry_annotation(a, image["width"], image["height"]) for a in annotations)
    return ImageRecord(original.number, entry, anns, ())


def assemble(raw: dict[str, Any], records: list[ImageRecord]) -> dict[str, Any]:
    """The output COCO dict: source top-level keys kept, images and annotations renumbered.

    Annotation ids run from 1 in image order; every edit's provenance gets its new id.
    """
    out = {k: v for k, v in raw.items() if k not in ("images", "annotations")}
    images, annotations = [], []
    next_id = 1
    for rec in sorted(records, key=lambda r: r.out_image_id):
        image = dict(rec.image)
        prov = dict(image["inpaint_aug"])
        new_ids = {}
        for index, ann in enumerate(rec.annotations):
            annotations.append({**ann, "id": next_id, "image_id": rec.out_image_id})
            new_ids[index] = next_id
            next_id += 1
        prov["edits"] = _with_ids(prov["edits"], rec.edited_ann_indexes, new_ids)
        if "rejected" in prov:
            prov["rejected"] = _with_ids(prov["rejected"], rec.rejected_ann_indexes, new_ids)
        image["inpaint_aug"] = prov
        images.append(image)
    out["images"], out["annotations"] = images, annotations
    out.setdefault("categories", raw.get("categories", []))
    return out


def _with_ids(
    entries: list[dict[str, Any]], indexes: tuple[int, ...], new_ids: dict[int, int]
) -> list[dict[str, Any]]:
    """Provenance entries with the final ``annotation_id`` of the object each one is about."""
    return [{**e, "annotation_id": new_ids[i]} for e, i in zip(entries, indexes, strict=True)]
