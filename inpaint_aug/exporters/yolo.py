"""Export a COCO dataset for the trainers people use: Ultralytics YOLO (detect and segment).

Pure functions over a COCO dict and its image files; nothing here needs torch. The label
geometry (boxes, polygons and RLE masks as normalized numbers) is in :mod:`.polygons`; its
``merge_parts``, ``mask_polygon`` and ``DECIMALS`` are re-exported here, where they used to be.

Layout written (one call writes one split; call again with another split into the same folder
to add it, the class indices stay the same)::

    OUT/
      data.yaml                  # path, train/val/test, names {index: name}
      class_map.json             # [{"yolo_index", "coco_category_id", "name"}, ...]
      manifest_<split>.json      # task, counts, skipped items, source -> output file names
      images/<split>/<stem>.<ext>
      labels/<split>/<stem>.txt  # one per image; empty for images without objects

data.yaml follows the Ultralytics docs (https://docs.ultralytics.com/datasets/detect/,
``coco8.yaml``): ``path: ... # dataset root dir``,
``train: images/train # train images (relative to 'path')``, ``names: {0: person, ...}``.

As in Ultralytics' own COCO converter (``ultralytics/data/converter.py``, ``convert_coco``),
crowd annotations are skipped and identical label rows of one image are written once.

Example:
    >>> export_yolo(coco, Path("augmented"), Path("yolo"), task="segment")  # doctest: +SKIP
    PosixPath('yolo/data.yaml')
"""

from __future__ import annotations

import json
import shutil
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from PIL import Image, UnidentifiedImageError

from inpaint_aug.dataset.coco import save_json_atomic
from inpaint_aug.errors import OutputError
from inpaint_aug.exporters.yolo_labels import (  # noqa: F401
    DECIMALS,
    Unusable,
    label_coords,
    mask_polygon,
    merge_parts,
)
from inpaint_aug.pipeline.records import inside, safe_stem

TASKS = ("detect", "segment")
SPLITS = ("train", "val", "test")
# Image suffixes Ultralytics loads (ultralytics.data.utils.IMG_FORMATS); others it ignores.
IMG_FORMATS = frozenset(
    {"bmp", "dng", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm", "heic"}
)
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class YoloExport:
    """What :func:`write_yolo` wrote.

    Attributes:
        data_yaml: the ``data.yaml`` path.
        task: ``"detect"`` or ``"segment"``.
        split: the split written.
        images: label files written (one per exported image, empty ones included).
        objects: label rows written.
        copied: image files copied.
        skipped: counts by reason (``crowd``, ``unknown-category``, ``image-missing``...).
    """

    data_yaml: Path
    task: str
    split: str
    images: int
    objects: int
    copied: int
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass
class _Split:
    """One split being written: where, how, and what was skipped so far."""

    out: Path
    split: str
    task: str
    image_root: Path
    copy_images: bool
    index_of: dict[Any, int]
    used: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    details: list[dict[str, Any]] = field(default_factory=list)

    def skip(
        self,
        reason: str,
        ann: dict[str, Any] | None = None,
        image: dict[str, Any] | None = None,
        detail: str = "",
    ) -> None:
        """Count a skipped annotation or image under ``reason`` and note which it was."""
        self.counts[reason] += 1
        item: dict[str, Any] = {"reason": reason}
        if ann is not None:
            item.update(annotation_id=ann.get("id"), image_id=ann.get("image_id"))
        if image is not None:
            item.update(image_id=image.get("id"), file_name=image.get("file_name"))
        if detail:
            item["detail"] = detail
        self.details.append(item)


def export_yolo(
    coco: dict,
    image_dir: Path,
    out_dir: Path,
    task: str = "detect",
    split: str = "train",
    copy_images: bool = True,
) -> Path:
    """Write an Ultralytics YOLO dataset; return the data.yaml path.

    See :func:`write_yolo` for the details; this returns only its ``data_yaml``.
    """
    return write_yolo(coco, image_dir, out_dir, task, split, copy_images).data_yaml


def write_yolo(
    coco: dict,
    image_dir: Path,
    out_dir: Path,
    task: str = "detect",
    split: str = "train",
    copy_images: bool = True,
) -> YoloExport:
    """Write one split of an Ultralytics YOLO dataset and report what was written and skipped.

    Args:
        coco: a COCO dict (``images``, ``annotations``, ``categories``).
        image_dir: the folder that the images' ``file_name`` values resolve against.
        out_dir: the dataset root; may already hold other splits exported with the same classes.
        task: ``"detect"`` (boxes) or ``"segment"`` (polygons).
        split: ``"train"``, ``"val"`` or ``"test"``.
        copy_images: copy each image (``shutil.copy2``, never a link) to ``images/<split>``.
            Without it only labels are written; ``manifest_<split>.json`` names the file each
            source image must be copied to.

    Class indices are COCO categories in ``coco["categories"]`` order, unused ones included, so
    every split of one dataset gets the same indices.

    Raises:
        ValueError: unknown task or split, a COCO dict without its lists, or duplicate
            category ids.
        OutputError: the split already holds files, or ``out_dir`` holds a split exported with
            other classes or another task.
    """
    _check_args(coco, task, split)
    class_map = build_class_map(coco["categories"])
    out = Path(out_dir)
    _check_out_dir(out, split, task, class_map)
    (out / "images" / split).mkdir(parents=True, exist_ok=True)
    (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    index_of = {entry["coco_category_id"]: entry["yolo_index"] for entry in class_map}
    state = _Split(out, split, task, Path(image_dir), copy_images, index_of)
    image_ids = {im.get("id") for im in coco["images"]}
    anns_by_image: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for ann in coco["annotations"]:
        if ann.get("image_id") not in image_ids:
            state.skip("unknown-image", ann)
        else:
            anns_by_image[ann["image_id"]].append(ann)
    files = [_export_image(state, im, anns_by_image.get(im.get("id"), [])) for im in coco["images"]]
    return _finish(state, class_map, [f for f in files if f is not None])


def _check_args(coco: dict, task: str, split: str) -> None:
    """Raise ValueError for an unknown task or split, or a COCO dict without its lists."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise ValueError(f"the COCO dict needs a '{key}' list")


def _export_image(
    state: _Split, image: dict[str, Any], anns: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """Write one image's label file (and copy the image); its manifest entry, None if skipped."""
    name = str(image.get("file_name", ""))
    src = Path(name) if Path(name).is_absolute() else state.image_root / name
    suffix = Path(name).suffix.lower()
    if suffix.lstrip(".") not in IMG_FORMATS:
        state.skip("unsupported-format", image=image, detail=suffix or name)
        return None
    try:
        width, height = _image_size(image, src, state.copy_images)
    except Unusable as err:
        state.skip(err.reason, image=image, detail=err.detail)
        return None
    rows = _label_rows(state, anns, width, height)
    stem = _unique_stem(safe_stem(name), image.get("id"), state.used)
    label_rel = f"labels/{state.split}/{stem}.txt"
    inside(state.out, label_rel).write_text("".join(f"{r}\n" for r in rows), encoding="utf-8")
    image_rel = f"images/{state.split}/{stem}{suffix}"
    if state.copy_images:
        shutil.copy2(src, inside(state.out, image_rel))
    return {
        "image_id": image.get("id"),
        "source": name,
        "image": image_rel,
        "label": label_rel,
        "objects": len(rows),
    }


def _label_rows(state: _Split, anns: list[dict[str, Any]], width: int, height: int) -> list[str]:
    """One image's label rows: crowd, unknown-class, unusable and duplicate objects skipped."""
    rows: list[str] = []
    seen_rows: set[str] = set()
    for ann in anns:
        if ann.get("iscrowd"):
            state.skip("crowd", ann)
            continue
        if ann.get("category_id") not in state.index_of:
            state.skip("unknown-category", ann)
            continue
        try:
            coords = label_coords(ann, state.task, width, height)
        except Unusable as err:
            state.skip(err.reason, ann, detail=err.detail)
            continue
        row = " ".join([str(state.index_of[ann["category_id"]]), *coords])
        if row in seen_rows:
            state.skip("duplicate", ann)
            continue
        seen_rows.add(row)
        rows.append(row)
    return rows


def _finish(
    state: _Split, class_map: list[dict[str, Any]], files: list[dict[str, Any]]
) -> YoloExport:
    """Write the manifest, class_map.json and data.yaml; say what was written."""
    n_objects = sum(f["objects"] for f in files)
    n_copied = len(files) if state.copy_images else 0
    skipped = dict(sorted(state.counts.items()))
    manifest = {
        "task": state.task,
        "split": state.split,
        "images": len(files),
        "objects": n_objects,
        "copied_images": n_copied,
        "skip_counts": skipped,
        "skipped": state.details,
        "files": files,
    }
    out = state.out
    save_json_atomic(manifest, inside(out, f"manifest_{state.split}.json"))
    save_json_atomic(class_map, inside(out, "class_map.json"))
    data_yaml = inside(out, "data.yaml")
    _write_text_atomic(data_yaml, data_yaml_text(out, class_map, _exported_splits(out), state.task))
    return YoloExport(data_yaml, state.task, state.split, len(files), n_objects, n_copied, skipped)


def _image_size(image: dict[str, Any], src: Path, must_exist: bool) -> tuple[int, int]:
    """The image's ``(width, height)``, from COCO and, when the file is needed, checked on it.

    The file's size is taken after EXIF orientation, as Ultralytics loads it.
    """
    w, h = image.get("width"), image.get("height")
    known = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (w, h))
    if known and not must_exist:
        return int(w), int(h)
    if not src.is_file():
        raise Unusable("image-missing", str(src))
    try:
        with Image.open(src) as im:
            fw, fh = im.size
            if im.getexif().get(_EXIF_ORIENTATION) in (5, 6, 7, 8):
                fw, fh = fh, fw
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise Unusable("image-unreadable", f"{src}: {err}") from None
    if known and (fw, fh) != (w, h):
        raise Unusable("size-mismatch", f"COCO says {w}x{h}, the file is {fw}x{fh}")
    return fw, fh


def build_class_map(categories: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Contiguous YOLO indices ``0..K-1`` for COCO categories, in file order, none dropped.

    >>> build_class_map([{"id": 7, "name": "b"}, {"id": 0, "name": "a"}])[1]
    {'yolo_index': 1, 'coco_category_id': 0, 'name': 'a'}

    Raises:
        ValueError: a category without an id, or two categories with the same id.
    """
    out: list[dict[str, Any]] = []
    seen: set[Any] = set()
    for i, cat in enumerate(categories):
        if not isinstance(cat, dict) or "id" not in cat:
            raise ValueError(f"categories[{i}] has no 'id'")
        cid = cat["id"]
        if cid in seen:
            raise ValueError(f"duplicate category id {cid!r} (categories[{i}])")
        seen.add(cid)
        name = cat.get("name")
        out.append(
            {
                "yolo_index": i,
                "coco_category_id": cid,
                "name": str(name) if name is not None else f"class_{cid}",
            }
        )
    return out


def data_yaml_text(
    out: Path, class_map: list[dict[str, Any]], splits: Sequence[str], task: str
) -> str:
    """The ``data.yaml`` text: comments with the class mapping, then the YAML itself.

    Ultralytics requires both ``train`` and ``val``; one that was not exported points at an
    exported split (said in a comment) so the file loads as it is.
    """
    body: dict[str, Any] = {"path": str(out.resolve())}
    fallback = next(s for s in SPLITS if s in splits)
    notes = []
    for key in SPLITS:
        if key in splits:
            body[key] = f"images/{key}"
        elif key in ("train", "val"):
            body[key] = f"images/{fallback}"
            notes.append(f"# No '{key}' split exported yet: '{key}' points at '{fallback}'.")
    body["names"] = {e["yolo_index"]: e["name"] for e in class_map}
    header = [
        f"# Ultralytics YOLO {task} dataset written by inpaint-aug.",
        "# 'path' is absolute; delete that line to use the folder holding this file instead.",
        *notes,
        "# YOLO class index -> COCO category id (also in class_map.json):",
        *(f"#   {e['yolo_index']} -> {e['coco_category_id']!r} ({e['name']})" for e in class_map),
    ]
    dumped = yaml.safe_dump(body, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return "\n".join(header) + "\n" + dumped


def _unique_stem(stem: str, image_id: Any, used: set[str]) -> str:
    """A stem not used yet (compared case-insensitively): ``stem``, ``stem_id<id>``, ``..._2``."""
    candidate = stem
    if candidate.lower() in used:
        candidate = f"{stem}_id{safe_stem(str(image_id))}"
    n = 2
    base = candidate
    while candidate.lower() in used:
        candidate = f"{base}_{n}"
        n += 1
    used.add(candidate.lower())
    return candidate


def _exported_splits(out: Path) -> list[str]:
    return [s for s in SPLITS if (out / f"manifest_{s}.json").is_file()]


def _check_out_dir(out: Path, split: str, task: str, class_map: list[dict[str, Any]]) -> None:
    """Refuse to mix into ``out`` a split that exists, other classes, or another task."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder")
    for sub in (out / "images" / split, out / "labels" / split):
        if sub.is_dir() and any(sub.iterdir()):
            raise OutputError(
                f"{sub}: already holds files (split '{split}' was exported before); "
                "use a new output folder or another split"
            )
    existing = out / "class_map.json"
    if existing.is_file():
        try:
            old = json.loads(existing.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise OutputError(f"{existing}: cannot read it ({err})") from None
        if old != class_map:
            raise OutputError(
                f"{existing}: this folder holds splits exported with other classes; "
                "export every split of one dataset with the same categories list"
            )
    for other in _exported_splits(out):
        path = out / f"manifest_{other}.json"
        try:
            other_task = json.loads(path.read_text(encoding="utf-8")).get("task")
        except (OSError, ValueError, AttributeError) as err:
            raise OutputError(f"{path}: cannot read it ({err})") from None
        if other_task != task and other != split:
            raise OutputError(
                f"{out}: split '{other}' was exported for task '{other_task}', not '{task}'"
            )


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
