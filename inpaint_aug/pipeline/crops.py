"""Crops: cut an edit's model-sized crop and region, and paste the model's result back.

Compositing goes through a feathered region mask whose weights are exactly 0 outside the
(dilated) object region, so every pixel outside it keeps its source value bit for bit.

Example:
    >>> import numpy as np
    >>> from inpaint_aug.geometry import Window
    >>> img = np.zeros((64, 64, 3), np.uint8)
    >>> alpha = np.zeros((32, 32), np.float32); alpha[8:24, 8:24] = 1
    >>> paste(img, Window(0, 0, 32), alpha, np.full((16, 16, 3), 255, np.uint8))
    >>> int(img[0, 0, 0]), int(img[16, 16, 0])
    (0, 255)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from inpaint_aug import geometry as geo
from inpaint_aug.errors import ItemError
from inpaint_aug.pipeline.plan import Edit


@dataclass(frozen=True)
class Crop:
    """A model-sized crop of one edit, and what is needed to paste its result back.

    Attributes:
        pixels: ``(R, R, 3)`` uint8 RGB crop at model resolution.
        mask: ``(R, R)`` uint8, 255 where the model may repaint.
        alpha: ``(side, side)`` float32 blend weights in window coordinates.
    """

    pixels: np.ndarray
    mask: np.ndarray
    alpha: np.ndarray


def object_mask(ann: dict[str, Any], region: str, size: tuple[int, int], window: geo.Window):
    """An annotation's pixels in window coordinates: its mask, or its box for ``region='box'``."""
    width, height = size
    seg = ann.get("segmentation")
    if region == "box" or geo.segmentation_kind(seg) == "none":
        return geo.box_mask(geo.xywh_to_xyxy(ann["bbox"]), window)
    return geo.window_mask(seg, height, width, window)


def region_mask(
    edit: Edit, anns: tuple[dict[str, Any], ...], size: tuple[int, int], dilate: int
) -> np.ndarray:
    """The pixels an edit may change: its dilated region minus every other object it meets.

    Other objects are protected by their masks when they have one (boxes otherwise), so an
    object is never painted over its occluder, nor its occluder over it.

    Raises:
        ItemError: ``occluded`` when nothing is left to repaint.
    """
    region = geo.dilate(object_mask(anns[edit.ann_index], edit.region, size, edit.window), dilate)
    for i in edit.protect:
        region &= ~object_mask(anns[i], "auto", size, edit.window)
    region &= _inside_image(edit.window, size)
    if not region.any():
        raise ItemError("occluded", "other objects cover the whole region")
    return region


def _inside_image(window: geo.Window, size: tuple[int, int]) -> np.ndarray:
    """Window-shaped mask of the pixels that lie inside the image."""
    return geo.box_mask((0.0, 0.0, float(size[0]), float(size[1])), window)


def cut(
    image: np.ndarray, window: geo.Window, region: np.ndarray, resolution: int, feather: int = 3
) -> Crop:
    """Cut a window (edge-replicated past the border) and resize it to ``resolution``.

    Args:
        image: the source pixels.
        window: the square crop window, in image coordinates (may pass the border).
        region: the window-shaped mask the model may repaint.
        resolution: the model's crop size.
        feather: paste-back edge softening, in window pixels (weights stay 0 outside region).
    """
    res = resolution
    height, width = image.shape[:2]
    x0, y0, x1, y1 = window.xyxy
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    patch = image[sy0:sy1, sx0:sx1]
    if (sx0, sy0, sx1, sy1) != (x0, y0, x1, y1):
        patch = cv2.copyMakeBorder(
            patch, sy0 - y0, y1 - sy1, sx0 - x0, x1 - sx1, cv2.BORDER_REPLICATE
        )
    pixels = resize(patch, res)
    mask_small = cv2.resize(region.astype(np.float32), (res, res), interpolation=cv2.INTER_AREA)
    mask = np.where(mask_small > 0, 255, 0).astype(np.uint8)
    return Crop(pixels=pixels, mask=mask, alpha=geo.feather(region, feather))


def resize(pixels: np.ndarray, side: int) -> np.ndarray:
    """Resize a square RGB array to ``side`` (area filter down, cubic up)."""
    if pixels.shape[0] == side and pixels.shape[1] == side:
        return np.ascontiguousarray(pixels)
    shrink = pixels.shape[0] > side
    interp = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return cv2.resize(pixels, (side, side), interpolation=interp)


def paste(image: np.ndarray, window: geo.Window, alpha: np.ndarray, result: np.ndarray) -> None:
    """Blend a model result into ``image`` in place, through ``alpha``, inside the window.

    Pixels where ``alpha`` is 0 are not written at all.
    """
    height, width = image.shape[:2]
    x0, y0, x1, y1 = window.xyxy
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    big = resize(result, window.side)[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0]
    a = alpha[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0]
    target = image[sy0:sy1, sx0:sx1]
    where = a > 0
    a3 = a[where][:, None]
    blended = target[where].astype(np.float32) * (1.0 - a3) + big[where].astype(np.float32) * a3
    target[where] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
