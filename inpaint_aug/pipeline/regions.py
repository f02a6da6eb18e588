"""Regions: which pixels an edit may repaint, from the annotations alone (pure numpy).

Occlusion order (:func:`paintable`): an object whose pixels lie at least :data:`NESTED` (80 %)
inside another object's pixels (a window on a wall, a wheel on a car) is *in front of* that
container, unless the container is as much inside it (near-duplicates are peers). An edit
repaints its own dilated pixels minus every other labelled object, except the containers it
stands in front of: a container is cut around the objects nested in it, a nested object is not
cut by its container, and peers that merely overlap cut each other. Crowd regions are never
repainted. Masks are the segmentation where there is one, the box otherwise. The share of the
object's own pixels that is left paintable is its *coverage*; under ``min_coverage`` the edit
is skipped as ``occluded``.

The region depends on the labels and the settings only, never on pixels or the copy, so the
planner (:mod:`~inpaint_aug.pipeline.plan`) skips occluded objects before anything runs, and
the crop stage (:mod:`~inpaint_aug.pipeline.crops`) cuts the same region again.

Example:
    >>> from inpaint_aug.geometry import Window
    >>> ann = {"bbox": [4, 4, 8, 8], "segmentation": []}
    >>> int(object_mask(ann, "auto", (32, 32), Window(0, 0, 16)).sum())
    64
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from inpaint_aug import geometry as geo
from inpaint_aug.errors import ItemError
from inpaint_aug.pipeline.background import REGION as BACKGROUND

NESTED = 0.8
"""An object with at least this share of its pixels inside another's is in front of it."""


class RegionEdit(Protocol):
    """What a region needs of an edit (a :class:`~inpaint_aug.pipeline.plan.Edit`, a dataclass)."""

    ann_index: int
    region: str
    window: geo.Window
    protect: tuple[int, ...]
    keep_outline: int


def object_mask(ann: dict[str, Any], region: str, size: tuple[int, int], window: geo.Window):
    """An annotation's pixels in window coordinates: its mask, or its box for ``region='box'``."""
    width, height = size
    seg = ann.get("segmentation")
    if region == "box" or geo.segmentation_kind(seg) == "none":
        return geo.box_mask(geo.xywh_to_xyxy(ann["bbox"]), window)
    return geo.window_mask(seg, height, width, window)


def region_mask(
    edit: RegionEdit, anns: tuple[dict[str, Any], ...], size: tuple[int, int], dilate: int
) -> np.ndarray:
    """The pixels an edit may change: :func:`paintable` without a coverage floor.

    Raises:
        ItemError: ``occluded`` when no pixel of the object itself is left to repaint.
    """
    return paintable(edit, anns, size, dilate, 0.0)[0]


def paintable(
    edit: RegionEdit,
    anns: tuple[dict[str, Any], ...],
    size: tuple[int, int],
    dilate: int,
    min_coverage: float,
) -> tuple[np.ndarray, float]:
    """The pixels an edit may change, in window coordinates, and its coverage.

    The region is the object's dilated mask (its box for ``edit.region == "box"``), inside the
    image, minus each object in ``edit.protect`` that the edit does not stand in front of (see
    the module docstring). Coverage is the share of the undilated own mask the region keeps.
    With ``edit.keep_outline`` PX, the mask is not dilated but eroded by PX (not from the image
    border: the object goes on past it), so a band along its silhouette keeps its pixels.

    A background edit (``--mode background``) gets :func:`background_region` instead.

    Raises:
        ItemError: ``occluded`` when the coverage is under ``min_coverage``, or 0; ``too-thin``
            when nothing of the object is left inside its kept outline.
    """
    if edit.region == BACKGROUND:
        return background_region(edit, anns, size, dilate)
    inside = _inside_image(edit.window, size)
    shape = object_mask(anns[edit.ann_index], edit.region, size, edit.window)
    own = shape & inside
    region = geo.dilate(shape, 0 if edit.keep_outline else dilate) & inside
    for i in edit.protect:
        other = object_mask(anns[i], "auto", size, edit.window) & inside
        if anns[i].get("iscrowd") or not in_front(own, other):
            region &= ~other
    share = coverage(region, own)
    if share <= 0.0:
        raise ItemError("occluded", "no pixel of the object is paintable: others cover it")
    if share < min_coverage:
        shown = f"{math.floor(share * 1000) / 10:g}%"
        detail = f"{shown} of the object is paintable, under --min-coverage {min_coverage:g}"
        raise ItemError("occluded", detail)
    if edit.keep_outline:
        region &= geo.erode(shape | ~inside, edit.keep_outline)
        if not region.any():
            detail = f"no pixel is left inside a {edit.keep_outline} px outline (--keep-outline)"
            raise ItemError("too-thin", detail)
    return region, share


def background_region(
    edit: RegionEdit, anns: tuple[dict[str, Any], ...], size: tuple[int, int], dilate: int
) -> tuple[np.ndarray, float]:
    """The window minus every object (mask, else box) dilated by ``dilate``; the share redrawn.

    The window's part past the image (the letterbox band) is in the region: the model paints it
    and :func:`paste` never writes it. The share is that of the image's own pixels.

    Raises:
        ItemError: ``no-background`` when the objects cover the whole image.
    """
    keep = np.zeros((edit.window.side, edit.window.side), bool)
    for ann in anns:
        keep |= object_mask(ann, "auto", size, edit.window)
    region = ~geo.dilate(keep, dilate)
    inside = _inside_image(edit.window, size)
    share = coverage(region, inside)
    if share <= 0.0:
        raise ItemError("no-background", "the objects cover the whole image")
    return region, share


def in_front(a: np.ndarray, b: np.ndarray, share: float = NESTED) -> bool:
    """Whether object ``a`` stands in front of object ``b``: ``a`` is nested in ``b``.

    True when at least ``share`` of ``a``'s pixels lie inside ``b`` and ``b`` is not as much
    inside ``a``, so at most one of two objects is in front of the other.

    >>> a = np.zeros((4, 4), bool); a[1:3, 1:3] = True
    >>> in_front(a, np.ones((4, 4), bool)), in_front(np.ones((4, 4), bool), a), in_front(a, a)
    (True, False, False)
    """
    both = int(np.count_nonzero(a & b))
    a_size, b_size = int(np.count_nonzero(a)), int(np.count_nonzero(b))
    a_in_b = a_size > 0 and both >= share * a_size
    b_in_a = b_size > 0 and both >= share * b_size
    return a_in_b and not b_in_a


def coverage(region: np.ndarray, own: np.ndarray) -> float:
    """The share of ``own``'s pixels that ``region`` covers (0 for an empty ``own``).

    >>> own = np.zeros((4, 4), bool); own[:2] = True
    >>> coverage(own & (np.arange(4) < 1), own)
    0.25
    """
    total = int(np.count_nonzero(own))
    return int(np.count_nonzero(region & own)) / total if total else 0.0


def _inside_image(window: geo.Window, size: tuple[int, int]) -> np.ndarray:
    """Window-shaped mask of the pixels that lie inside the image."""
    return geo.box_mask((0.0, 0.0, float(size[0]), float(size[1])), window)


def extent(ann: dict[str, Any]) -> geo.Box:
    """A box that holds every pixel of an annotation: its bbox, widened to its polygon points.

    Real exports carry boxes that do not quite hold their polygons, hence the points. An RLE
    gives no extent without decoding: the whole plane (it touches everything).

    >>> extent({"bbox": [2, 2, 4, 4], "segmentation": [[1, 2, 7, 2, 7, 6]]})
    (0.0, 1.0, 8.0, 7.0)
    """
    x0, y0, x1, y1 = geo.xywh_to_xyxy(ann["bbox"])
    seg = ann.get("segmentation")
    kind = geo.segmentation_kind(seg)
    if kind == "rle":
        return (-math.inf, -math.inf, math.inf, math.inf)
    if kind == "polygon":
        parts = seg if isinstance(seg[0], list) else [seg]
        xs = [float(v) for part in parts for v in part[0::2]]
        ys = [float(v) for part in parts for v in part[1::2]]
        x0, y0, x1, y1 = min(x0, *xs), min(y0, *ys), max(x1, *xs), max(y1, *ys)
    return (x0 - 1.0, y0 - 1.0, x1 + 1.0, y1 + 1.0)  # a pixel of rasterisation either side


def region_problem(
    edit: RegionEdit,
    anns: tuple[dict[str, Any], ...],
    size: tuple[int, int],
    dilate: int,
    min_coverage: float,
) -> ItemError | None:
    """What :func:`paintable` would raise for this edit (``None``: nothing), found cheaply.

    Coverage and the kept outline count the object's own pixels only, so only the protected
    objects whose :func:`extent` meets the object's can change them: the others are left out,
    and with none left (and no ``keep_outline``) the whole object is paintable and no mask is
    drawn at all. This is what planning calls for every object. (Broken labels whose mask
    lies outside its own box's window are still caught when the crop is cut.)
    """
    own = extent(anns[edit.ann_index])
    near = tuple(i for i in edit.protect if _meet(own, extent(anns[i])))
    if not near and not edit.keep_outline:
        return None
    try:
        paintable(replace(edit, protect=near), anns, size, dilate, min_coverage)
    except ItemError as err:
        return err
    return None


def _meet(a: geo.Box, b: geo.Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
