"""The verification stage: does each redrawn object still look like its label?

Runs between the model and the paste-back, on the model's device, batched: a
:class:`Verifier` scores the redrawn crop and the source crop of each object against its class
and returns a :class:`Verdict`. Verifiers are calibrated against the source object's own score,
so a class the verifier barely knows (blood cells, aerial cars) does not reject every redraw.

This module holds the interface and the records only; the torch-facing verifiers (CLIP, OWLv2)
live in :mod:`inpaint_aug.pipeline.verifiers`. Any object with a ``name`` and a ``verify``
method is a verifier, a user's own detector included.

Example:
    >>> class Always:
    ...     name = "always"
    ...     def verify(self, batch):
    ...         return [Verdict(1.0, 1.0, 0.5, True) for _ in batch]
    >>> Always().verify([None])[0].passed
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class VerifyRequest:
    """One redrawn object to check.

    Attributes:
        result: ``(R, R, 3)`` uint8, the model's output crop.
        source: ``(R, R, 3)`` uint8, the source crop (same window, same size).
        box: the object's box ``(x0, y0, x1, y1)`` in crop pixels (may be clipped).
        label: the class name, as the verifier's text query.
    """

    result: np.ndarray
    source: np.ndarray
    box: Box
    label: str


@dataclass(frozen=True)
class Verdict:
    """A verifier's answer for one object.

    Attributes:
        score: how well the redrawn object matches its label.
        source_score: the same measure on the source object (the calibration).
        threshold: the bar ``score`` had to clear, in the verifier's own units.
        passed: whether it cleared it.
    """

    score: float
    source_score: float
    threshold: float
    passed: bool


class Verifier(Protocol):
    """Anything that checks a batch of redrawn objects against their labels."""

    name: str

    def verify(self, batch: Sequence[VerifyRequest]) -> list[Verdict]:
        """Return one verdict per request, in order."""
        ...


def box_in_crop(bbox: Sequence[float], window_xyxy: Sequence[int], resolution: int) -> Box:
    """A COCO ``[x, y, w, h]`` box in the pixel coordinates of a window's model-sized crop.

    >>> box_in_crop([10, 10, 20, 20], (0, 0, 64, 64), 32)
    (5.0, 5.0, 15.0, 15.0)
    """
    x0, y0, x1, _y1 = window_xyxy
    scale = resolution / float(x1 - x0)
    bx, by, bw, bh = (float(v) for v in bbox)
    corners = ((bx - x0) * scale, (by - y0) * scale, (bx + bw - x0) * scale, (by + bh - y0) * scale)
    return tuple(min(max(c, 0.0), float(resolution)) for c in corners)  # type: ignore[return-value]


def box_crop(pixels: np.ndarray, box: Box, min_side: int = 4) -> np.ndarray:
    """The pixels inside ``box`` (at least ``min_side`` on a side, kept inside the crop)."""
    height, width = pixels.shape[:2]
    x0, y0, x1, y1 = (round(v) for v in box)
    if x1 - x0 < min_side:
        x0 = max(0, min(width - min_side, (x0 + x1 - min_side) // 2))
        x1 = x0 + min_side
    if y1 - y0 < min_side:
        y0 = max(0, min(height - min_side, (y0 + y1 - min_side) // 2))
        y1 = y0 + min_side
    return pixels[max(0, y0) : min(height, y1), max(0, x0) : min(width, x1)]
