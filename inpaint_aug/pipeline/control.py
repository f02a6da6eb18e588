"""Shape control, the pure part: the edge map of a source crop and the small-object rule.

``--control canny`` hands the ControlNet an edge map of each source crop, computed with
OpenCV's Canny detector (no preprocessor weights): a pixel is an edge when its gradient
magnitude is above :data:`CANNY_HIGH`, or above :data:`CANNY_LOW` and connected to one that
is (the thresholds the SD 1.5 canny ControlNet was shown in its examples).

Small objects get a lower conditioning scale, as Kupyn & Rupprecht (ECCV'24) do: a box whose
shorter side is under :data:`FULL_SCALE_SIDE` source pixels is upscaled a lot to the model's
resolution, and its edge map is mostly blur and JPEG noise, so following it strictly draws
that noise. The scale is multiplied by ``min(1, side / 64)`` rounded down to a quarter
(:data:`FACTOR_STEP`): 16-31 px get a quarter of it, 32-47 px half, 48-63 px three quarters,
so there are at most four scales per class and edits of similar size share a batch.

Example:
    >>> control_scale_for(1.0, 40)
    0.5
    >>> control_scale_for(0.8, 200)
    0.8
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CANNY_LOW = 100
CANNY_HIGH = 200
FULL_SCALE_SIDE = 64  # source pixels: boxes at least this large on their shorter side
FACTOR_STEP = 0.25


@dataclass(frozen=True)
class ControlSpec:
    """How one edit is shape-controlled: the mode, the ControlNet and the scale used."""

    mode: str
    controlnet: str
    scale: float


def edge_map(pixels: np.ndarray, low: int = CANNY_LOW, high: int = CANNY_HIGH) -> np.ndarray:
    """The Canny edge map of an RGB crop, as the ControlNet's 3-channel image.

    Args:
        pixels: ``(H, W, 3)`` uint8 RGB.
        low: the hysteresis threshold an edge pixel connected to a strong one must pass.
        high: the threshold of a strong edge pixel.

    Returns:
        ``(H, W, 3)`` uint8, 255 on edges and 0 elsewhere, the same in every channel.

    Example:
        >>> crop = np.zeros((16, 16, 3), np.uint8); crop[:, 8:] = 255
        >>> edge_map(crop)[8, 6:9].tolist()
        [[0, 0, 0], [255, 255, 255], [0, 0, 0]]
    """
    gray = cv2.cvtColor(np.ascontiguousarray(pixels, dtype=np.uint8), cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(gray, low, high)
    return np.repeat(edges[:, :, None], 3, axis=2)


def control_scale_for(scale: float, side: float, full: int = FULL_SCALE_SIDE) -> float:
    """The conditioning scale of an object whose box has ``side`` pixels on its shorter side.

    ``scale`` itself from ``full`` pixels up; below, ``scale`` times ``side / full`` rounded
    down to a multiple of :data:`FACTOR_STEP` (0 under a quarter of ``full``).

    Args:
        scale: the class's (or the run's) ``control_scale``.
        side: the shorter side of the object's box, in source pixels.
        full: the side from which the whole scale applies.
    """
    if side >= full:
        return scale
    quarters = int(max(0.0, float(side)) / full / FACTOR_STEP + 1e-9)
    return round(scale * quarters * FACTOR_STEP, 4)
