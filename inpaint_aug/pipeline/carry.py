"""What can be carried over: the checks that drop an image or annotation, and :class:`Skip`.

An annotation is dropped (and reported) when it describes no area in its image (degenerate
polygons, empty or non-finite boxes, boxes wholly outside the image, RLE of the wrong size) or
points at an unknown image or category; an image, when its size or file name is unusable.

Example:
    >>> check_image({"id": 1, "width": 0, "height": 5, "file_name": "a.jpg"}).reason
    'bad-size'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inpaint_aug import geometry as geo
from inpaint_aug.dataset.coco import CocoDataset


@dataclass(frozen=True)
class Skip:
    """Something not done, and why. ``kind`` is ``image``, ``annotation`` or ``edit``."""

    kind: str
    reason: str
    detail: str
    image_id: Any = None
    annotation_id: Any = None
    category_id: Any = None

    def line(self) -> str:
        """The log line of a skip, naming the image or the annotation it is about.

        >>> Skip("edit", "occluded", "36% is paintable", 0, 7).line()
        'skipped edit of annotation 7 (image 0): occluded: 36% is paintable'
        >>> Skip("image", "image-missing", "a.jpg does not exist", 3).line()
        'skipped image 3: image-missing: a.jpg does not exist'
        """
        what = f"{self.kind} of image {self.image_id}"
        if self.kind == "image":
            what = f"image {self.image_id}"
        elif self.annotation_id is not None:
            what = f"{self.kind} of annotation {self.annotation_id} (image {self.image_id})"
        return f"skipped {what}: {self.reason}: {self.detail}"


def _key(value: Any) -> Any:
    """An id usable as a dict key; unhashable ids (lists, dicts) match nothing."""
    return value if isinstance(value, (int, str)) else None


def _plain(value: Any) -> Any:
    """A value fit for a report (and hashable): odd ids such as lists become their repr."""
    return value if value is None or isinstance(value, (int, float, str)) else repr(value)


def check_annotation(ann: dict[str, Any], ds: CocoDataset) -> Skip | None:
    """Return a drop-``Skip`` when an annotation cannot be carried over, else ``None``."""
    image = ds.images_by_id.get(_key(ann.get("image_id")))
    ids = {
        "image_id": _plain(ann.get("image_id")),
        "annotation_id": _plain(ann.get("id")),
        "category_id": _plain(ann.get("category_id")),
    }
    if image is None:
        return Skip("annotation", "unknown-image", f"image_id {ann.get('image_id')!r}", **ids)
    if _key(ann.get("category_id")) not in ds.categories_by_id:
        cat = ann.get("category_id")
        return Skip("annotation", "unknown-category", f"category_id {cat!r}", **ids)
    width, height = int(image.get("width") or 0), int(image.get("height") or 0)
    if not geo.box_is_valid(ann.get("bbox")):
        return Skip("annotation", "bad-box", f"bbox {ann.get('bbox')!r}", **ids)
    x0, y0, x1, y1 = geo.clip_xyxy(geo.xywh_to_xyxy(ann["bbox"]), width, height)
    if x1 <= x0 or y1 <= y0:
        return Skip("annotation", "box-outside-image", f"bbox {ann['bbox']!r}", **ids)
    seg = ann.get("segmentation")
    if geo.segmentation_kind(seg) != "none":
        try:
            if geo.segmentation_area(seg, ann["bbox"], height, width) <= 0:
                return Skip("annotation", "empty-mask", "the mask has no pixels", **ids)
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            return Skip("annotation", "bad-segmentation", str(err), **ids)
    return None


def kept_annotations(
    ds: CocoDataset, image_ids: set[Any] | None = None
) -> tuple[dict[Any, list[dict[str, Any]]], list[Skip]]:
    """Annotations that can be carried over, by image id, and a drop-``Skip`` for the rest.

    Only images in ``image_ids`` are considered when it is given (unknown image ids always are).
    """
    skips: list[Skip] = []
    kept: dict[Any, list[dict[str, Any]]] = {}
    for ann in ds.annotations:
        image_id = _key(ann.get("image_id"))
        image = ds.images_by_id.get(image_id)
        if image is not None and (image_ids is not None and image_id not in image_ids):
            continue
        if image is not None and check_image(image):
            continue  # the image itself is skipped (bad size), reported once
        problem = check_annotation(ann, ds)
        if problem:
            skips.append(problem)
        else:
            kept.setdefault(image_id, []).append(ann)
    return kept, skips


def check_image(image: dict[str, Any]) -> Skip | None:
    """An image entry needs a positive integer width and height and a file name."""
    w, h = image.get("width"), image.get("height")
    ok = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (w, h))
    if not ok:
        return Skip("image", "bad-size", f"width {w!r}, height {h!r}", image.get("id"))
    if not isinstance(image.get("file_name"), str) or not image["file_name"].strip():
        return Skip("image", "no-file-name", f"file_name {image.get('file_name')!r}", image["id"])
    return None
