"""Write the output dataset: safe file names, carried-over labels, provenance, atomic JSON.

Nothing is written outside the output folder: output names are derived from the source name's
last component only, cleaned, and checked to stay inside ``OUT/images``.

Example:
    >>> safe_stem("../../etc/pass wd.jpg")
    'pass_wd'
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from inpaint_aug import geometry as geo
from inpaint_aug.dataset.coco import save_json_atomic
from inpaint_aug.errors import OutputError
from inpaint_aug.pipeline.plan import Edit, ImageJob

IMAGES_DIR = "images"


@dataclass(frozen=True)
class ImageRecord:
    """A finished output image: its COCO entry and labels, before final ids are assigned."""

    out_image_id: int
    image: dict[str, Any]
    annotations: tuple[dict[str, Any], ...]
    edited_ann_indexes: tuple[int, ...] = field(default=())


def safe_stem(file_name: str) -> str:
    """A file-system-safe stem from the last component of a source ``file_name``."""
    last = PureWindowsPath(PurePosixPath(str(file_name)).name).name
    stem = unicodedata.normalize("NFC", last.rsplit(".", 1)[0] if "." in last else last)
    stem = re.sub(r"[^\w\-.]+", "_", stem).strip("._")
    # Cap by bytes, not characters: file names are limited to 255 bytes, and the output name
    # adds a suffix and a temporary prefix.
    stem = stem.encode("utf-8")[:100].decode("utf-8", errors="ignore")
    return stem or "image"


def output_names(jobs: list[ImageJob], formats: list[str]) -> list[str]:
    """Unique relative output paths (``images/<stem>_c<copy>.<ext>``), one per job, stable."""
    names: list[str] = []
    seen: set[str] = set()
    for job, fmt in zip(jobs, formats, strict=True):
        base = f"{safe_stem(job.image.get('file_name', ''))}_c{job.copy}"
        name = f"{IMAGES_DIR}/{base}.{fmt}"
        if name.lower() in seen:
            name = f"{IMAGES_DIR}/{base}_id{job.image['id']}.{fmt}"
        seen.add(name.lower())
        names.append(name)
    return names


def inside(out: Path, relative: str) -> Path:
    """Resolve ``relative`` under ``out`` and refuse anything that would land outside it."""
    root = out.resolve()
    target = (root / relative).resolve()
    if root not in target.parents:
        raise OutputError(f"{relative}: refusing to write outside the output folder {out}")
    return target


def carry_annotation(ann: dict[str, Any], width: int, height: int) -> dict[str, Any]:
    """Copy a source annotation: every key kept, bbox clipped, area recomputed from the mask."""
    out = dict(ann)
    x0, y0, x1, y1 = geo.clip_xyxy(geo.xywh_to_xyxy(ann["bbox"]), width, height)
    out["bbox"] = [round(v, 3) for v in geo.xyxy_to_xywh((x0, y0, x1, y1))]
    area = geo.segmentation_area(ann.get("segmentation"), out["bbox"], height, width)
    out["area"] = float(area)
    return out


def edit_provenance(edit: Edit) -> dict[str, Any]:
    """The provenance entry of one edit (``annotation_id`` is filled when ids are final)."""
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


def make_record(
    job: ImageJob, out_image_id: int, file_name: str, model: str, done: list[Edit]
) -> ImageRecord:
    """Build the output record of a finished job from the edits that were actually made."""
    width, height = int(job.image["width"]), int(job.image["height"])
    image = dict(job.image)
    image.update(id=out_image_id, file_name=file_name, width=width, height=height)
    image["inpaint_aug"] = {
        "source_image_id": job.image["id"],
        "source_file_name": job.image.get("file_name"),
        "copy": job.copy,
        "model": model,
        "edits": [edit_provenance(e) for e in done],
    }
    anns = tuple(carry_annotation(a, width, height) for a in job.annotations)
    return ImageRecord(out_image_id, image, anns, tuple(e.ann_index for e in done))


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
        prov["edits"] = [
            {**e, "annotation_id": new_ids[i]}
            for e, i in zip(prov["edits"], rec.edited_ann_indexes, strict=True)
        ]
        image["inpaint_aug"] = prov
        images.append(image)
    out["images"], out["annotations"] = images, annotations
    out.setdefault("categories", raw.get("categories", []))
    return out


def write_dataset(out: Path, raw: dict[str, Any], records: list[ImageRecord]) -> Path:
    """Write ``OUT/annotations.json`` atomically and return its path."""
    path = out / "annotations.json"
    save_json_atomic(assemble(raw, records), path)
    return path
