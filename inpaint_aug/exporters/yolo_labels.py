"""The geometry of YOLO labels: COCO boxes, polygons and RLE masks as normalized label numbers.

Pure numpy/cv2 (and pycocotools for RLE decoding); no files are read or written here.

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

Conversion choices follow Ultralytics' own COCO converter (``ultralytics/data/converter.py``,
``convert_coco``): a multi-part polygon becomes one polygon whose parts are joined by zero-width
bridges between their closest points (``merge_multi_segment``). RLE masks become polygons through
``cv2.findContours`` (outer contours, all of them, joined the same way; holes are not
representable). Box-only objects become their box's four corners in segment mode.

Example:
    >>> label_coords({"bbox": [10, 20, 30, 40]}, "detect", 100, 100)
    ['0.250000', '0.400000', '0.300000', '0.400000']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from inpaint_aug import geometry as geo

DECIMALS = 6


class Unusable(Exception):
    """An item that is not exported, with a stable reason key.

    Attributes:
        reason: the key skipped items are counted under (``bad-box``, ``empty-mask``...).
        detail: a free-form explanation, possibly empty.

    Example:
        >>> Unusable("bad-box", "bbox None").reason
        'bad-box'
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason, self.detail = reason, detail


def label_coords(ann: dict[str, Any], task: str, width: int, height: int) -> list[str]:
    """The normalized numbers of one label row (without the class index).

    Args:
        ann: a COCO annotation (``bbox`` and, for ``segment``, ``segmentation``).
        task: ``"detect"`` (``x_center y_center width height``) or ``"segment"`` (a polygon).
        width: the image's width in pixels.
        height: the image's height in pixels.

    Returns:
        The numbers as text with :data:`DECIMALS` decimals, clamped to ``[0, 1]``.

    Raises:
        Unusable: a bad or outside box, a bad segmentation, or one with no area in the image.

    Example:
        >>> label_coords({"bbox": [0, 0, 10, 10]}, "segment", 10, 10)[:4]
        ['0.000000', '0.000000', '1.000000', '0.000000']
    """
    seg = ann.get("segmentation")
    kind = geo.segmentation_kind(seg)
    if task == "detect" or kind == "none":
        box = ann.get("bbox")
        if not geo.box_is_valid(box):
            raise Unusable("bad-box", f"bbox {box!r}")
        x0, y0, x1, y1 = geo.clip_xyxy(geo.xywh_to_xyxy(box), width, height)
        if x1 <= x0 or y1 <= y0:
            raise Unusable("box-outside-image", f"bbox {box!r}")
        if task == "detect":
            values = [(x0 + x1) / 2 / width, (y0 + y1) / 2 / height]
            values += [(x1 - x0) / width, (y1 - y0) / height]
            return [_fmt(v) for v in values]
        poly = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
    else:
        poly = segmentation_polygon(seg, kind, width, height)
    norm = poly / np.array([width, height], dtype=np.float64)
    return [_fmt(v) for v in norm.reshape(-1)]


def segmentation_polygon(seg: Any, kind: str, width: int, height: int) -> np.ndarray:
    """One polygon in pixel coordinates, inside the image, for a COCO polygon or RLE.

    Polygon parts are clamped to the image; a part left with no area (wholly outside, or
    degenerate) is dropped before the parts are joined.

    Args:
        seg: the annotation's ``segmentation``.
        kind: ``geometry.segmentation_kind(seg)``: ``"polygon"`` or an RLE kind.
        width: the image's width in pixels.
        height: the image's height in pixels.

    Returns:
        An ``(N, 2)`` float64 array of ``x, y`` points.

    Raises:
        Unusable: ``bad-segmentation`` (it cannot be read) or ``empty-mask`` (no area).

    Example:
        >>> segmentation_polygon([[0, 0, 4, 0, 4, 4]], "polygon", 8, 8).shape
        (3, 2)
    """
    limits = [float(width), float(height)]
    try:
        if kind == "polygon":
            parts = [np.clip(np.reshape(p, (-1, 2)), 0.0, limits) for p in geo.check_polygons(seg)]
            parts = [p for p in parts if abs(_shoelace(p)) > 0.0]
            if not parts:
                raise Unusable("empty-mask", "the polygon encloses no area inside the image")
            return merge_parts(parts)
        mask = mask_utils.decode(geo.to_rle(seg, height, width))
    except (ValueError, TypeError, IndexError, KeyError) as err:
        raise Unusable("bad-segmentation", str(err)) from None
    poly = mask_polygon(mask)
    if poly is None:
        if not mask.any():
            raise Unusable("empty-mask", "the RLE mask is empty")
        x0, y0, x1, y1 = geo.mask_to_xyxy(mask.astype(bool))
        poly = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
    return poly


def merge_parts(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Join polygon parts into one polygon, as Ultralytics' ``merge_multi_segment`` does.

    Consecutive parts are linked at their closest pair of points by a bridge that the walk
    crosses once each way, so it encloses no area: the filled result is the union of the parts.
    Each part is walked as a closed loop, the next part's loop spliced in at the bridge.

    Args:
        parts: polygons, each anything that reshapes to ``(N, 2)``.

    Returns:
        One ``(M, 2)`` float64 polygon.

    Example:
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

    Args:
        mask: an ``(H, W)`` array, nonzero inside.

    Returns:
        An ``(N, 2)`` float64 polygon, or ``None``.

    Example:
        >>> mask_polygon(np.ones((4, 4), np.uint8)).tolist()[0]
        [0.5, 0.5]
    """
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    parts = [c.reshape(-1, 2) + 0.5 for c in contours if len(c) >= 3]  # pixel centres
    return merge_parts(parts) if parts else None


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
    """The signed area of a polygon (the shoelace formula)."""
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _fmt(value: float) -> str:
    """``value`` clamped to ``[0, 1]`` as text with :data:`DECIMALS` decimals, never ``-0``."""
    text = f"{min(max(value, 0.0), 1.0):.{DECIMALS}f}"
    return "0.000000" if text == "-0.000000" else text
