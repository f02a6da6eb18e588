"""Crops: cut an edit's model-sized crop and region, and paste the model's result back.

Compositing goes through a feathered region mask whose weights are exactly 0 outside the
(dilated) object region, so every pixel outside it keeps its source value bit for bit.

Which pixels an edit may repaint (occlusion order, coverage) is decided in
:mod:`~inpaint_aug.pipeline.regions`.

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

import cv2
import numpy as np

from inpaint_aug import geometry as geo


@dataclass(frozen=True)
class Crop:
    """A model-sized crop of one edit, and what is needed to paste its result back.

    Attributes:
        pixels: ``(R, R, 3)`` uint8 RGB crop at model resolution.
        mask: ``(R, R)`` uint8, 255 where the model may repaint.
        alpha: ``(side, side)`` float32 blend weights in window coordinates.
        coverage: the share of the object's own pixels (in the image) the region covers.
    """

    pixels: np.ndarray
    mask: np.ndarray
    alpha: np.ndarray
    coverage: float = 1.0


def cut(
    image: np.ndarray,
    window: geo.Window,
    region: np.ndarray,
    resolution: int,
    feather: int = 3,
    coverage: float = 1.0,
) -> Crop:
    """Cut a window (edge-replicated past the border) and resize it to ``resolution``.

    Args:
        image: the source pixels.
        window: the square crop window, in image coordinates (may pass the border).
        region: the window-shaped mask the model may repaint.
        resolution: the model's crop size.
        feather: paste-back edge softening, in window pixels (weights stay 0 outside region).
        coverage: the region's coverage of its object (from :func:`paintable`), kept on the crop.
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
    alpha = geo.feather(region, feather)
    return Crop(pixels=pixels, mask=mask, alpha=alpha, coverage=coverage)


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
