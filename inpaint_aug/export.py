"""Export a COCO dataset for the trainers people use: Ultralytics YOLO (detect and segment).

Pure functions over a COCO dict and its image files; nothing here needs torch.

Layout written (one call writes one split; call again with another split into the same folder
to add it, the class indices stay the same)::

    OUT/
      data.yaml                  # path, train/val/test, names {index: name}
      class_map.json             # [{"yolo_index", "coco_category_id", "name"}, ...]
      manifest_<split>.json      # task, counts, skipped items, source -> output file names
      images/<split>/<stem>.<ext>
      labels/<split>/<stem>.txt  # one per image; empty for images without objects

Label formats, from the Ultralytics docs:

* detect (https://docs.ultralytics.com/datasets/detect/): "The ``*.txt`` file should be
  formatted with one row per object in ``class x_center y_center width height`` format. Box
  coordinates must be in normalized xywh format (from 0 to 1). [...] Class numbers should be
  zero-indexed (start with 0)."
* segment (https://docs.ultralytics.com/datasets/segment/): "The format for a single row in the
  segmentation dataset file is as follows: ``<class-index> <x1> <y1> <x2> <y2> ... <xn> <yn>``
  [...] are the normalized polygon coordinates of the object's segmentation mask (values are in
  [0, 1] relative to image width and height)." and "Each segmentation label must have a
  minimum of 3 xy points".
* data.yaml (same pages, ``coco8.yaml``): ``path: ... # dataset root dir``,
  ``train: images/train # train images (relative to 'path')``, ``names: {0: person, ...}``.

Conversion choices follow Ultralytics' own COCO converter (``ultralytics/data/converter.py``,
``convert_coco``): crowd annotations are skipped, a multi-part polygon becomes one polygon whose
parts are joined by zero-width bridges between their closest points (``merge_multi_segment``),
and identical label rows of one image are written once. RLE masks become polygons through
``cv2.findContours`` (outer contours, all of them, joined the same way; holes are not
representable). Box-only objects become their box's four corners in segment mode.

Example:
    >>> export_yolo(coco, Path("augmented"), Path("yolo"), task="segment")  # doctest: +SKIP
    PosixPath('yolo/data.yaml')
"""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from PIL import Image, UnidentifiedImageError
from pycocotools import mask as mask_utils

from . import geometry as geo
from .coco import save_json_atomic
from .errors import OutputError
from .writer import inside, safe_stem

TASKS = ("detect", "segment")
SPLITS = ("train", "val", "test")
# Image suffixes Ultralytics loads (ultralytics.data.utils.IMG_FORMATS); others it ignores.
IMG_FORMATS = frozenset(
    {"bmp", "dng", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm", "heic"}
)
DECIMALS = 6
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
    if task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise ValueError(f"the COCO dict needs a '{key}' list")
    class_map = build_class_map(coco["categories"])
    out = Path(out_dir)
    _check_out_dir(out, split, task, class_map)
    image_root = Path(image_dir)
    images_dir, labels_dir = out / "images" / split, out / "labels" / split
    images_dir.mkdir(parents=True, exist_ok=True)
    labels_dir.mkdir(parents=True, exist_ok=True)

    index_of = {entry["coco_category_id"]: entry["yolo_index"] for entry in class_map}
    image_ids = {im.get("id") for im in coco["images"]}
    skipped: Counter[str] = Counter()
    details: list[dict[str, Any]] = []
    anns_by_image: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for ann in coco["annotations"]:
        if ann.get("image_id") not in image_ids:
            _skip(skipped, details, "unknown-image", ann)
        else:
            anns_by_image[ann["image_id"]].append(ann)

    used: set[str] = set()
    files: list[dict[str, Any]] = []
    n_objects = n_copied = 0
    for image in coco["images"]:
        name = str(image.get("file_name", ""))
        src = Path(name) if Path(name).is_absolute() else image_root / name
        suffix = Path(name).suffix.lower()
        if suffix.lstrip(".") not in IMG_FORMATS:
            _skip(skipped, details, "unsupported-format", image=image, detail=suffix or name)
            continue
        try:
            width, height = _image_size(image, src, copy_images)
        except _Skip as err:
            _skip(skipped, details, err.reason, image=image, detail=err.detail)
            continue
        rows: list[str] = []
        seen_rows: set[str] = set()
        for ann in anns_by_image.get(image.get("id"), []):
            if ann.get("iscrowd"):
                _skip(skipped, details, "crowd", ann)
                continue
            if ann.get("category_id") not in index_of:
                _skip(skipped, details, "unknown-category", ann)
                continue
            try:
                coords = _object_coords(ann, task, width, height)
            except _Skip as err:
                _skip(skipped, details, err.reason, ann, detail=err.detail)
                continue
            row = " ".join([str(index_of[ann["category_id"]]), *coords])
            if row in seen_rows:
                _skip(skipped, details, "duplicate", ann)
                continue
            seen_rows.add(row)
            rows.append(row)
        stem = _unique_stem(safe_stem(name), image.get("id"), used)
        label_path = inside(out, f"labels/{split}/{stem}.txt")
        label_path.write_text("".join(f"{r}\n" for r in rows), encoding="utf-8")
        image_rel = f"images/{split}/{stem}{suffix}"
        if copy_images:
            shutil.copy2(src, inside(out, image_rel))
            n_copied += 1
        n_objects += len(rows)
        files.append(
            {
                "image_id": image.get("id"),
                "source": name,
                "image": image_rel,
                "label": f"labels/{split}/{stem}.txt",
                "objects": len(rows),
            }
        )

    manifest = {
        "task": task,
        "split": split,
        "images": len(files),
        "objects": n_objects,
        "copied_images": n_copied,
        "skip_counts": dict(sorted(skipped.items())),
        "skipped": details,
        "files": files,
    }
    save_json_atomic(manifest, inside(out, f"manifest_{split}.json"))
    save_json_atomic(class_map, inside(out, "class_map.json"))
    data_yaml = inside(out, "data.yaml")
    _write_text_atomic(data_yaml, data_yaml_text(out, class_map, _exported_splits(out), task))
    return YoloExport(
        data_yaml=data_yaml,
        task=task,
        split=split,
        images=len(files),
        objects=n_objects,
        copied=n_copied,
        skipped=dict(sorted(skipped.items())),
    )


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


def merge_parts(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Join polygon parts into one polygon, as Ultralytics' ``merge_multi_segment`` does.

    Consecutive parts are linked at their closest pair of points by a bridge that the walk
    crosses once each way, so it encloses no area: the filled result is the union of the parts.
    Each part is walked as a closed loop, the next part's loop spliced in at the bridge.

    >>> a = np.array([[0, 0], [2, 0], [2, 2], [0, 2]], float)
    >>> merge_parts([a, a + 10]).shape  # 4 + 1 points per closed loop, the start not repeated
    (10, 2)
    """
    parts = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in parts]
    if len(parts) == 1:
        return parts[0]
    links = [_closest_pair(parts[i], parts[i + 1]) for i in range(len(parts) - 1)]

    def loop(i: int, start: int) -> np.ndarray:
        part = np.roll(parts[i], -start, axis=0)
        return np.concatenate([part, part[:1]])

    merged = loop(len(parts) - 1, links[-1][1])
    for i in range(len(parts) - 2, -1, -1):
        start = links[i - 1][1] if i > 0 else links[0][0]
        ring = loop(i, start)
        k = (links[i][0] - start) % len(parts[i])
        merged = np.concatenate([ring[: k + 1], merged, ring[k:]])
    return merged[:-1]  # the walk ends where it began; the polygon closes itself


def mask_polygon(mask: np.ndarray) -> np.ndarray | None:
    """One polygon for a binary mask: its outer contours, joined (see :func:`merge_parts`).

    Vertices are the centres of the boundary pixels (pixel ``i`` spans ``[i, i + 1)``, as in
    COCO), so truncating them to integers, as Ultralytics does before ``cv2.fillPoly``, gives
    back the boundary pixels themselves. Contours of fewer than 3 points (single pixels, thin
    lines) are dropped; ``None`` when nothing is left.
    """
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    parts = [c.reshape(-1, 2) + 0.5 for c in contours if len(c) >= 3]  # pixel centres
    return merge_parts(parts) if parts else None


class _Skip(Exception):
    """An item that is not exported, with a stable reason key."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason, self.detail = reason, detail


def _skip(
    counts: Counter[str],
    details: list[dict[str, Any]],
    reason: str,
    ann: dict[str, Any] | None = None,
    image: dict[str, Any] | None = None,
    detail: str = "",
) -> None:
    counts[reason] += 1
    item: dict[str, Any] = {"reason": reason}
    if ann is not None:
        item.update(annotation_id=ann.get("id"), image_id=ann.get("image_id"))
    if image is not None:
        item.update(image_id=image.get("id"), file_name=image.get("file_name"))
    if detail:
        item["detail"] = detail
    details.append(item)


def _image_size(image: dict[str, Any], src: Path, must_exist: bool) -> tuple[int, int]:
    """The image's ``(width, height)``, from COCO and, when the file is needed, checked on it.

    The file's size is taken after EXIF orientation, as Ultralytics loads it.
    """
    w, h = image.get("width"), image.get("height")
    known = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (w, h))
    if known and not must_exist:
        return int(w), int(h)
    if not src.is_file():
        raise _Skip("image-missing", str(src))
    try:
        with Image.open(src) as im:
            fw, fh = im.size
            if im.getexif().get(_EXIF_ORIENTATION) in (5, 6, 7, 8):
                fw, fh = fh, fw
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise _Skip("image-unreadable", f"{src}: {err}") from None
    if known and (fw, fh) != (w, h):
        raise _Skip("size-mismatch", f"COCO says {w}x{h}, the file is {fw}x{fh}")
    return fw, fh


def _object_coords(ann: dict[str, Any], task: str, width: int, height: int) -> list[str]:
    """The normalized numbers of one label row (without the class index)."""
    seg = ann.get("segmentation")
    kind = geo.segmentation_kind(seg)
    if task == "detect" or kind == "none":
        box = ann.get("bbox")
        if not geo.box_is_valid(box):
            raise _Skip("bad-box", f"bbox {box!r}")
        x0, y0, x1, y1 = geo.clip_xyxy(geo.xywh_to_xyxy(box), width, height)
        if x1 <= x0 or y1 <= y0:
            raise _Skip("box-outside-image", f"bbox {box!r}")
        if task == "detect":
            values = [(x0 + x1) / 2 / width, (y0 + y1) / 2 / height]
            values += [(x1 - x0) / width, (y1 - y0) / height]
            return [_fmt(v) for v in values]
        poly = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
    else:
        poly = _segmentation_polygon(seg, kind, width, height)
    norm = poly / np.array([width, height], dtype=np.float64)
    return [_fmt(v) for v in norm.reshape(-1)]


def _segmentation_polygon(seg: Any, kind: str, width: int, height: int) -> np.ndarray:
    """One polygon in pixel coordinates, inside the image, for a COCO polygon or RLE.

    Polygon parts are clamped to the image; a part left with no area (wholly outside, or
    degenerate) is dropped before the parts are joined.
    """
    limits = [float(width), float(height)]
    try:
        if kind == "polygon":
            parts = [np.clip(np.reshape(p, (-1, 2)), 0.0, limits) for p in geo.check_polygons(seg)]
            parts = [p for p in parts if abs(_shoelace(p)) > 0.0]
            if not parts:
                raise _Skip("empty-mask", "the polygon encloses no area inside the image")
            return merge_parts(parts)
        mask = mask_utils.decode(geo.to_rle(seg, height, width))
    except (ValueError, TypeError, IndexError, KeyError) as err:
        raise _Skip("bad-segmentation", str(err)) from None
    poly = mask_polygon(mask)
    if poly is None:
        if not mask.any():
            raise _Skip("empty-mask", "the RLE mask is empty")
        x0, y0, x1, y1 = geo.mask_to_xyxy(mask.astype(bool))
        poly = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
    return poly


def _closest_pair(a: np.ndarray, b: np.ndarray, chunk: int = 2048) -> tuple[int, int]:
    """Indexes ``(i, j)`` of the closest points ``a[i]``, ``b[j]`` (memory bounded by chunks)."""
    best, pair = math.inf, (0, 0)
    for s in range(0, len(a), chunk):
        d = ((a[s : s + chunk, None, :] - b[None, :, :]) ** 2).sum(-1)
        i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        if d[i, j] < best:
            best, pair = float(d[i, j]), (s + int(i), int(j))
    return pair


def _shoelace(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _fmt(value: float) -> str:
    text = f"{min(max(value, 0.0), 1.0):.{DECIMALS}f}"
    return "0.000000" if text == "-0.000000" else text


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
