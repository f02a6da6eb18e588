"""Pure numpy geometry: boxes, segmentations, masks, crop windows and feathering.

One internal box format, ``xyxy`` floats in pixel coordinates; COCO's ``xywh`` is converted at
the edges. Masks are ``bool`` arrays of shape ``(height, width)``. Functions that work inside a
crop take a :class:`Window` and return arrays of the window's shape, so memory stays bounded by
the crop size even for very large images.

Example:
    >>> win = crop_window((10, 10, 30, 20), image_size=(100, 80), padding=0.5, min_side=32)
    >>> win.side
    40
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Window:
    """A square crop window in image pixels. It may reach past the image border.

    Attributes:
        x0: left column (may be negative).
        y0: top row (may be negative).
        side: width and height in pixels.
    """

    x0: int
    y0: int
    side: int

    @property
    def xyxy(self) -> tuple[int, int, int, int]:
        """The window as ``(x0, y0, x1, y1)``, exclusive at the right and bottom."""
        return (self.x0, self.y0, self.x0 + self.side, self.y0 + self.side)


def xywh_to_xyxy(box: Sequence[float]) -> Box:
    """Convert a COCO ``[x, y, w, h]`` box to ``(x0, y0, x1, y1)``.

    >>> xywh_to_xyxy([1, 2, 3, 4])
    (1.0, 2.0, 4.0, 6.0)
    """
    x, y, w, h = (float(v) for v in box)
    return (x, y, x + w, y + h)


def xyxy_to_xywh(box: Sequence[float]) -> list[float]:
    """Convert ``(x0, y0, x1, y1)`` to a COCO ``[x, y, w, h]`` list."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0, y0, x1 - x0, y1 - y0]


def clip_xyxy(box: Box, width: int, height: int) -> Box:
    """Clip a box to the image ``[0, width] x [0, height]``; the result may be empty."""
    x0, y0, x1, y1 = box
    return (
        min(max(x0, 0.0), width),
        min(max(y0, 0.0), height),
        min(max(x1, 0.0), width),
        min(max(y1, 0.0), height),
    )


def box_is_valid(box: Any) -> bool:
    """True when ``box`` is a list of four finite numbers with positive width and height."""
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        return False
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box):
        return False
    return all(math.isfinite(v) for v in box) and box[2] > 0 and box[3] > 0


def segmentation_kind(seg: Any) -> str:
    """Classify a COCO ``segmentation`` value as ``"polygon"``, ``"rle"`` or ``"none"``.

    >>> segmentation_kind([[0, 0, 4, 0, 4, 4]]), segmentation_kind([]), segmentation_kind(None)
    ('polygon', 'none', 'none')
    """
    if isinstance(seg, dict) and "counts" in seg and "size" in seg:
        return "rle"
    if isinstance(seg, list) and seg:
        return "polygon"
    return "none"


def check_polygons(seg: Any) -> list[list[float]]:
    """Return the polygon parts, or raise ``ValueError`` naming what is wrong.

    Each part needs an even number of at least 6 finite coordinates.
    """
    parts = seg if isinstance(seg[0], list) else [seg]
    for i, part in enumerate(parts):
        if not isinstance(part, list) or len(part) < 6 or len(part) % 2:
            size = len(part) if isinstance(part, list) else type(part).__name__
            raise ValueError(f"polygon part {i} has {size} numbers, expected an even count >= 6")
        if not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in part
        ):
            raise ValueError(f"polygon part {i} holds a value that is not a finite number")
    return [[float(v) for v in part] for part in parts]


def to_rle(seg: Any, height: int, width: int) -> dict[str, Any]:
    """Encode a polygon or RLE segmentation as compressed RLE for an image of this size.

    Raises:
        ValueError: malformed polygon, or an RLE whose ``size`` is not ``[height, width]`` or
            whose run lengths are not non-negative integers adding up to ``height * width``
            (pycocotools would decode such an RLE into uninitialised memory).
    """
    if segmentation_kind(seg) == "rle":
        size = list(seg["size"])
        if size != [height, width]:
            raise ValueError(f"RLE size {size} does not match the image size [{height}, {width}]")
        counts = seg["counts"]
        if isinstance(counts, list):
            _check_counts(counts, height, width)
            return mask_utils.frPyObjects(seg, height, width)
        rle = {"size": size, "counts": counts.encode() if isinstance(counts, str) else counts}
        _check_counts(rle_counts(rle), height, width)
        return rle
    parts = check_polygons(seg)
    return mask_utils.merge(mask_utils.frPyObjects(parts, height, width))


def rle_counts(rle: dict[str, Any]) -> np.ndarray:
    """The uncompressed run lengths of an RLE (list counts, or COCO's compressed string)."""
    counts = rle["counts"]
    if isinstance(counts, list):
        return np.asarray(counts)
    data = counts.encode() if isinstance(counts, str) else bytes(counts)
    out: list[int] = []
    value = shift = 0
    for byte in data:  # the inverse of pycocotools' rleToString (maskApi.c, rleFrString)
        c = byte - 48
        value |= (c & 0x1F) << shift
        shift += 5
        if c & 0x20:
            continue
        if c & 0x10:
            value -= 1 << shift
        if len(out) > 2:
            value += out[-2]
        out.append(value)
        value = shift = 0
    return np.asarray(out, dtype=np.int64)


def _check_counts(counts: Any, height: int, width: int) -> None:
    """Raise ``ValueError`` unless the run lengths are integers >= 0 summing to the image size."""
    arr = np.asarray(counts)
    ok = arr.ndim == 1 and arr.dtype.kind in "iuf" and bool(np.all(arr >= 0))
    ok = ok and bool(np.all(arr == np.round(arr))) and arr.sum() == height * width
    if not ok:
        raise ValueError(
            f"RLE counts must be integers >= 0 adding up to {height} * {width} = "
            f"{height * width}, got {len(arr)} counts adding up to "
            f"{arr.sum() if arr.dtype.kind in 'iuf' else 'no number'}"
        )


def segmentation_area(seg: Any, bbox: Sequence[float], height: int, width: int) -> float:
    """Pixel area of an object: of its mask if it has one, else of its box clipped to the image."""
    if segmentation_kind(seg) == "none":
        x0, y0, x1, y1 = clip_xyxy(xywh_to_xyxy(bbox), width, height)
        return float(max(x1 - x0, 0.0) * max(y1 - y0, 0.0))
    return float(mask_utils.area(to_rle(seg, height, width)))


def box_pixels(box: Box) -> tuple[int, int, int, int]:
    """The smallest integer pixel rectangle covering a float box (exclusive upper bounds)."""
    x0, y0, x1, y1 = box
    return (math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1))


def box_mask(box: Box, window: Window) -> np.ndarray:
    """Rasterise a float ``xyxy`` box into a boolean mask in window coordinates."""
    out = np.zeros((window.side, window.side), dtype=bool)
    x0, y0, x1, y1 = box_pixels(box)
    x0, x1 = np.clip([x0 - window.x0, x1 - window.x0], 0, window.side)
    y0, y1 = np.clip([y0 - window.y0, y1 - window.y0], 0, window.side)
    out[y0:y1, x0:x1] = True
    return out


def window_mask(seg: Any, height: int, width: int, window: Window) -> np.ndarray:
    """Decode a polygon or RLE segmentation into a boolean mask in window coordinates.

    The result is exactly the full-image mask (as pycocotools rasterises and decodes it)
    sliced at the window, ``False`` outside the image. Only the window's pixels are looked up
    in the run lengths, so a small window on a huge image costs little.
    """
    ends = np.cumsum(rle_counts(to_rle(seg, height, width)))
    out = np.zeros((window.side, window.side), dtype=bool)
    x0, y0, x1, y1 = window.xyxy
    cols = np.arange(max(x0, 0), min(x1, width), dtype=np.int64)
    rows = np.arange(max(y0, 0), min(y1, height), dtype=np.int64)
    if cols.size and rows.size:
        runs = np.searchsorted(ends, cols[None, :] * height + rows[:, None], side="right")
        out[rows[0] - y0 : rows[-1] + 1 - y0, cols[0] - x0 : cols[-1] + 1 - x0] = runs % 2 == 1
    return out


def slice_window(full: np.ndarray, window: Window) -> np.ndarray:
    """Cut ``window`` out of a full-image mask, filling outside the image with ``False``."""
    out = np.zeros((window.side, window.side), dtype=full.dtype)
    height, width = full.shape[:2]
    x0, y0, x1, y1 = window.xyxy
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = full[sy0:sy1, sx0:sx1]
    return out


def mask_to_xyxy(mask: np.ndarray) -> Box | None:
    """Tight box of the ``True`` pixels as ``(x0, y0, x1, y1)``; ``None`` for an empty mask."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def crop_window(box: Box, image_size: tuple[int, int], padding: float, min_side: int) -> Window:
    """Plan a square context window around a box.

    The side is the box's longer side times ``1 + 2 * padding``, at least ``min_side`` and at
    most the image's longer side. The window is centred on the box, then shifted to lie inside
    the image along every axis the image is long enough for; it is never empty.

    Args:
        box: the object box, ``xyxy`` in pixels.
        image_size: ``(width, height)`` of the image.
        padding: context on each side, as a fraction of the box's longer side.
        min_side: the smallest window side in pixels.
    """
    width, height = image_size
    x0, y0, x1, y1 = box
    longest = max(x1 - x0, y1 - y0, 1.0)
    side = math.ceil(longest * (1.0 + 2.0 * padding))
    side = int(max(1, min(max(side, min_side), max(width, height))))
    return Window(_place(0.5 * (x0 + x1), side, width), _place(0.5 * (y0 + y1), side, height), side)


def _place(centre: float, side: int, extent: int) -> int:
    """Start of a span of length ``side`` centred on ``centre``, kept inside ``[0, extent]``."""
    start = round(centre - side / 2.0)
    if side <= extent:
        return int(min(max(start, 0), extent - side))
    return int(-((side - extent) // 2))


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow a boolean mask by ``pixels`` with an elliptical kernel (no-op for ``pixels <= 0``)."""
    return _morph(cv2.dilate, mask, pixels)


def erode(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Shrink a boolean mask by ``pixels`` with an elliptical kernel (no-op for ``pixels <= 0``).

    The array's edge does not erode (pixels past it count as inside the mask).

    >>> int(erode(np.ones((5, 5), bool) & (np.arange(5) > 0), 1).sum())
    15
    """
    return _morph(cv2.erode, mask, pixels)


def _morph(op: Any, mask: np.ndarray, pixels: int) -> np.ndarray:
    if pixels <= 0:
        return mask.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return op(mask.astype(np.uint8), kernel).astype(bool)


def feather(region: np.ndarray, pixels: int) -> np.ndarray:
    """Blend weights in ``[0, 1]``: 0 outside ``region``, ramping to 1 within ``pixels`` inside.

    Pixels outside the region get exactly 0, so compositing through these weights leaves them
    untouched.
    """
    if pixels <= 0:
        return region.astype(np.float32)
    padded = np.pad(region.astype(np.uint8), 1, mode="edge")  # the window edge is not a boundary
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
    return np.clip(dist / float(pixels), 0.0, 1.0).astype(np.float32) * region
