"""Export a COCO dataset for the trainers people use: Ultralytics YOLO (detect and segment).

Pure functions over a COCO dict and its image files; nothing here needs torch. The label
geometry (boxes, polygons and RLE masks as normalized numbers) is in :mod:`.yolo_labels`; the
class map, ``data.yaml`` and the checks of an existing output folder are in :mod:`.yolo_layout`.
Every file is written atomically, inside the output folder, through :mod:`inpaint_aug.files`;
with ``link=True`` an image is a hard link to the file it exports (no second copy of the bytes;
a copy where the file system cannot link), see :func:`.yolo_layout.place_image`.

Layout written (one call writes one split; call again with another split into the same folder
to add it, the class indices stay the same)::

    OUT/
      data.yaml                  # path, train/val/test, names {index: name}
      class_map.json             # [{"yolo_index", "coco_category_id", "name"}, ...]
      manifest_<split>.json      # task, counts, skipped items, source -> output file names
      images/<split>/<stem>.<ext>
      labels/<split>/<stem>.txt  # one per image, same stem; empty for images without objects

File names follow :func:`inpaint_aug.files.unique_name`: the source name's last component,
cleaned, with its extension lowercased; equal stems (``a/x.jpg`` and ``b/x.jpg``) get
``_id<image id>``, then ``_2``, ``_3``...

As in Ultralytics' own COCO converter (``ultralytics/data/converter.py``, ``convert_coco``),
crowd annotations are skipped and identical label rows of one image are written once.

Example:
    >>> result = export_yolo(coco, Path("augmented"), Path("yolo"), "segment")  # doctest: +SKIP
    >>> result.data_yaml, result.images, result.skipped  # doctest: +SKIP
    (PosixPath('/abs/yolo/data.yaml'), 120, {'crowd': 3})
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image, UnidentifiedImageError

from inpaint_aug import files
from inpaint_aug.choices import Split
from inpaint_aug.exporters.yolo_labels import Unusable, label_coords
from inpaint_aug.exporters.yolo_layout import (
    SPLITS,
    build_class_map,
    check_out_dir,
    place_image,
    warn_single_split,
    write_layout,
)

TASKS = ("detect", "segment")
# Image suffixes Ultralytics loads (ultralytics.data.utils.IMG_FORMATS); others it ignores.
IMG_FORMATS = frozenset(
    {"bmp", "dng", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm", "heic"}
)
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class YoloExport:
    """What :func:`export_yolo` wrote.

    Attributes:
        data_yaml: the ``data.yaml`` path (absolute).
        task: ``"detect"`` or ``"segment"``.
        split: the split written.
        images: label files written (one per exported image, empty ones included).
        objects: label rows written.
        copied: image files copied.
        skipped: counts by reason (``crowd``, ``unknown-category``, ``image-missing``...).
        linked: image files hard-linked instead (``link=True``).
    """

    data_yaml: Path
    task: str
    split: str
    images: int
    objects: int
    copied: int
    skipped: dict[str, int] = field(default_factory=dict)
    linked: int = 0


@dataclass
class _Split:
    """One split being written: where, how, and what was skipped so far."""

    out: Path
    split: str
    task: str
    image_root: Path
    copy_images: bool
    index_of: dict[Any, int]
    link: bool = False
    linked: int = 0
    used: set[str] = field(default_factory=set)  # names given so far (files.unique_name)
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
    link: bool = False,
) -> YoloExport:
    """Write one split of an Ultralytics YOLO dataset and report what was written and skipped.

    Args:
        coco: a COCO dict (``images``, ``annotations``, ``categories``).
        image_dir: the folder that the images' ``file_name`` values resolve against.
        out_dir: the dataset root; may already hold other splits exported with the same classes.
        task: ``"detect"`` (boxes) or ``"segment"`` (polygons).
        split: ``"train"``, ``"val"`` or ``"test"`` (a :class:`~inpaint_aug.choices.Split`).
        copy_images: put each image in ``images/<split>``. Without it only labels are
            written; ``manifest_<split>.json`` names the file each source image must be copied to.
        link: put a hard link there instead of a copy of the bytes, where the file system
            allows it (a copy otherwise: another file system, or links not supported). A link is
            the same file under two names: a tool that rewrites one in place changes both.

    With one split exported so far, ``data.yaml`` points ``val`` at it; that is said in the
    file and logged as a warning.

    Class indices are COCO categories in ``coco["categories"]`` order, unused ones included, so
    every split of one dataset gets the same indices.

    Raises:
        ValueError: unknown task or split, a COCO dict without its lists, or duplicate
            category ids.
        OutputError: the split already holds files, ``out_dir`` holds a split exported with
            other classes or another task, or a file cannot be written.
    """
    task, split = _check_args(coco, task, split)
    class_map = build_class_map(coco["categories"])
    out = Path(out_dir)
    check_out_dir(out, split, task, class_map)
    files.make_dirs(out / "images" / split)
    files.make_dirs(out / "labels" / split)
    index_of = {entry["coco_category_id"]: entry["yolo_index"] for entry in class_map}
    state = _Split(out, split, task, Path(image_dir), copy_images, index_of, link)
    image_ids = {im.get("id") for im in coco["images"]}
    anns_by_image: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for ann in coco["annotations"]:
        if ann.get("image_id") not in image_ids:
            state.skip("unknown-image", ann)
        else:
            anns_by_image[ann["image_id"]].append(ann)
    entries = (
        _export_image(state, im, anns_by_image.get(im.get("id"), [])) for im in coco["images"]
    )
    return _finish(state, class_map, [e for e in entries if e is not None])


def _check_args(coco: dict, task: str, split: str) -> tuple[str, str]:
    """The task and split as plain strings.

    Raises:
        ValueError: an unknown task or split (the message names it and the allowed ones), or a
            COCO dict without its lists.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}; got {task!r}")
    try:
        split = Split(split).value
    except ValueError:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise ValueError(f"the COCO dict needs a '{key}' list")
    return TASKS[TASKS.index(task)], split


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
    folder = f"images/{state.split}"
    image_rel = files.unique_name(folder, name, "", suffix[1:], image.get("id"), state.used)
    label_rel = f"labels/{state.split}/{PurePosixPath(image_rel).name[: -len(suffix)]}.txt"
    files.write_text(files.inside(state.out, label_rel), "".join(f"{r}\n" for r in rows))
    if state.copy_images:
        state.linked += place_image(src, files.inside(state.out, image_rel), state.link)
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
    state: _Split, class_map: list[dict[str, Any]], written: list[dict[str, Any]]
) -> YoloExport:
    """Write the manifest, class_map.json and data.yaml; say what was written."""
    n_objects = sum(f["objects"] for f in written)
    n_copied = len(written) - state.linked if state.copy_images else 0
    skipped = dict(sorted(state.counts.items()))
    manifest = {
        "task": state.task,
        "split": state.split,
        "images": len(written),
        "objects": n_objects,
        "copied_images": n_copied,
        "linked_images": state.linked,
        "skip_counts": skipped,
        "skipped": state.details,
        "files": written,
    }
    data_yaml = write_layout(state.out, state.split, state.task, class_map, manifest)
    warn_single_split(data_yaml)
    return YoloExport(
        data_yaml, state.task, state.split, len(written), n_objects, n_copied, skipped, state.linked
    )


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
