"""Tests of the occlusion order in inpaint_aug.pipeline.crops: who may repaint which pixels.

Scenes are synthetic rectangles (and ellipses) given as polygons, RLE or bare boxes, in a
64 x 64 image edited through a window that covers it, so window and image coordinates agree.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import cv2
import numpy as np
import pytest
from helpers import make_edit, rle_encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inpaint_aug import geometry as geo
from inpaint_aug.errors import ItemError
from inpaint_aug.pipeline.regions import (
    NESTED,
    coverage,
    extent,
    in_front,
    object_mask,
    paintable,
    region_mask,
    region_problem,
)

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SIZE = (64, 64)
WINDOW = geo.Window(0, 0, 64)
FORMS = ("polygon", "rle", "box")
FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def rect(x, y, w, h, form="polygon", crowd=False):
    """An annotation of the rectangle ``[x, y, w, h]`` as a polygon, an RLE or a bare box."""
    ann = {"bbox": [x, y, w, h], "category_id": 1, "iscrowd": int(crowd)}
    if form == "polygon":
        ann["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    elif form == "rle":
        full = np.zeros((SIZE[1], SIZE[0]), bool)
        full[y : y + h, x : x + w] = True
        ann["segmentation"] = rle_encode(full)
    return ann


def pixels(x, y, w, h):
    """The rectangle as a window mask."""
    return geo.box_mask(geo.xywh_to_xyxy([x, y, w, h]), WINDOW)


def run(anns, index, dilate=0, min_coverage=0.0, region="mask"):
    """``paintable`` for ``anns[index]`` with every other annotation as a candidate."""
    others = [i for i in range(len(anns)) if i != index]
    edit = make_edit(index, window=WINDOW, region=region, protect=others)
    return paintable(edit, tuple(anns), SIZE, dilate, min_coverage)


# --- in_front and coverage -------------------------------------------------------------------


@pytest.mark.parametrize(
    "a,b,expected",
    [
        pytest.param((20, 20, 10, 10), (10, 10, 40, 40), True, id="nested-in-front"),
        pytest.param((10, 10, 40, 40), (20, 20, 10, 10), False, id="container-behind"),
        pytest.param((10, 10, 10, 10), (10, 10, 10, 10), False, id="identical-peers"),
        pytest.param((10, 10, 10, 10), (11, 10, 10, 10), False, id="near-duplicates"),
        pytest.param((0, 0, 10, 10), (20, 20, 10, 10), False, id="apart"),
        pytest.param((10, 10, 20, 20), (20, 10, 20, 20), False, id="half-overlap"),
        pytest.param((10, 10, 10, 10), (12, 0, 30, 30), True, id="exactly-0.8-inside"),
        pytest.param((10, 10, 10, 10), (13, 0, 30, 30), False, id="0.7-inside"),
    ],
)
def test_in_front(a, b, expected):
    assert in_front(pixels(*a), pixels(*b)) is expected


def test_in_front_never_both_ways_and_empty_is_behind():
    empty = np.zeros((64, 64), bool)
    some = pixels(5, 5, 4, 4)
    assert not in_front(empty, some) and not in_front(some, empty) and not in_front(empty, empty)
    assert NESTED == 0.8


@pytest.mark.parametrize(
    "region,own,expected",
    [
        pytest.param((0, 0, 64, 64), (10, 10, 10, 10), 1.0, id="all"),
        pytest.param((10, 10, 5, 10), (10, 10, 10, 10), 0.5, id="half"),
        pytest.param((10, 10, 10, 1), (10, 10, 10, 10), 0.1, id="one-row"),
        pytest.param((30, 30, 5, 5), (10, 10, 10, 10), 0.0, id="none"),
        pytest.param((5, 5, 10, 10), (10, 10, 10, 10), 0.25, id="ring-does-not-count"),
    ],
)
def test_coverage(region, own, expected):
    assert coverage(pixels(*region), pixels(*own)) == pytest.approx(expected)


def test_coverage_of_nothing_is_zero():
    assert coverage(np.ones((4, 4), bool), np.zeros((4, 4), bool)) == 0.0


# --- nested objects --------------------------------------------------------------------------


@pytest.mark.parametrize("inner_form", FORMS)
@pytest.mark.parametrize("outer_form", FORMS)
def test_nested_object_keeps_its_region_and_the_container_excludes_it(outer_form, inner_form):
    anns = [rect(10, 10, 40, 40, outer_form), rect(20, 20, 10, 10, inner_form)]
    inner, share = run(anns, 1, dilate=2)
    assert share == 1.0
    assert np.array_equal(inner, geo.dilate(pixels(20, 20, 10, 10), 2))  # not cut at all
    outer, share = run(anns, 0, dilate=2)
    assert not (outer & pixels(20, 20, 10, 10)).any()
    assert np.array_equal(outer, geo.dilate(pixels(10, 10, 40, 40), 2) & ~pixels(20, 20, 10, 10))
    assert share == pytest.approx(1 - 100 / 1600)


def test_nested_ellipse_in_a_polygon_wall():
    wall = rect(4, 4, 56, 40)
    window = np.zeros((64, 64), np.uint8)
    cv2.ellipse(window, (30, 24), (8, 5), 0, 0, 360, 1, -1)
    pane = {"bbox": [22, 19, 17, 11], "category_id": 1, "segmentation": rle_encode(window > 0)}
    region, share = run([wall, pane], 1, dilate=3)
    assert share == 1.0 and region[24, 30] and region[24, 39]  # its dilated edge paints the wall
    wall_region, share = run([wall, pane], 0)
    assert not (wall_region & (window > 0)).any()
    assert share == pytest.approx(1 - window.sum() / (56 * 40))


def test_objects_nested_two_deep():
    anns = [rect(0, 0, 60, 60), rect(10, 10, 40, 40), rect(20, 20, 10, 10)]
    shares = [run(anns, i)[1] for i in range(3)]
    assert shares == pytest.approx([1 - 1600 / 3600, 1 - 100 / 1600, 1.0])
    middle, _ = run(anns, 1)
    assert not (middle & pixels(20, 20, 10, 10)).any() and middle[12, 12]


def test_peers_inside_one_container_cut_each_other_not_the_container():
    anns = [rect(0, 0, 64, 64, "box"), rect(10, 10, 20, 20, "box"), rect(20, 10, 20, 20, "box")]
    left, share = run(anns, 1)
    assert share == pytest.approx(0.5) and np.array_equal(left, pixels(10, 10, 10, 20))


def test_box_region_of_a_nested_object_uses_its_box():
    tri = {"bbox": [20, 20, 10, 10], "category_id": 1, "segmentation": [[20, 20, 30, 20, 20, 30]]}
    anns = [rect(10, 10, 40, 40), tri]
    region, share = run(anns, 1, region="box")
    assert share == 1.0 and np.array_equal(region, pixels(20, 20, 10, 10))


# --- peers and occlusion ---------------------------------------------------------------------


@pytest.mark.parametrize("form_b", FORMS)
@pytest.mark.parametrize("form_a", FORMS)
def test_overlapping_peers_exclude_each_other(form_a, form_b):
    anns = [rect(10, 10, 20, 20, form_a), rect(20, 10, 20, 20, form_b)]
    a, share_a = run(anns, 0, dilate=1)
    b, share_b = run(anns, 1, dilate=1)
    assert not (a & object_mask(anns[1], "auto", SIZE, WINDOW)).any()
    assert not (b & object_mask(anns[0], "auto", SIZE, WINDOW)).any()
    assert share_a == share_b == pytest.approx(0.5)


@pytest.mark.parametrize(
    "boxes,expected",
    [
        pytest.param([(10, 10, 20, 20), (25, 10, 20, 20)], 0.75, id="quarter-overlap"),
        pytest.param([(10, 10, 20, 20), (10, 25, 20, 20)], 0.75, id="below"),
        pytest.param([(10, 10, 20, 20), (20, 20, 20, 20)], 0.75, id="corner"),
        pytest.param([(10, 10, 20, 20), (25, 5, 10, 10), (5, 25, 10, 10)], 1 - 50 / 400, id="two"),
        pytest.param([(10, 10, 20, 20), (40, 40, 10, 10)], 1.0, id="apart"),
    ],
)
def test_box_only_neighbours_overlap(boxes, expected):
    anns = [rect(*b, "box") for b in boxes]
    region, share = run(anns, 0)
    assert share == pytest.approx(expected)
    for other in boxes[1:]:
        assert not (region & pixels(*other)).any()


def test_object_behind_two_peers_is_occluded():
    anns = [rect(10, 10, 20, 20), rect(5, 5, 17, 30), rect(18, 5, 17, 30)]  # 0.6 of it each
    assert not in_front(pixels(10, 10, 20, 20), pixels(5, 5, 17, 30))
    with pytest.raises(ItemError) as err:
        run(anns, 0, dilate=2)
    assert err.value.reason == "occluded" and "no pixel" in err.value.detail
    with pytest.raises(ItemError):
        region_mask(make_edit(0, window=WINDOW, protect=(1, 2)), tuple(anns), SIZE, 2)


def test_mostly_hidden_object_is_skipped_under_min_coverage():
    anns = [rect(10, 10, 20, 20, "box"), rect(15, 5, 30, 30, "box")]  # hides 0.75 of it
    with pytest.raises(ItemError) as err:
        run(anns, 0, min_coverage=0.5)
    assert err.value.reason == "occluded"
    assert err.value.detail == "25% of the object is paintable, under --min-coverage 0.5"
    region, share = run(anns, 0, min_coverage=0.25)
    assert share == 0.25 and region.sum() == 100


def test_identical_boxes_are_peers_and_both_occluded():
    anns = [rect(10, 10, 20, 20, "box"), rect(10, 10, 20, 20)]
    for i in (0, 1):
        with pytest.raises(ItemError, match="occluded"):
            run(anns, i)


@pytest.mark.parametrize("form", ["rle", "polygon"])
def test_crowd_regions_are_always_protected(form):
    anns = [rect(20, 20, 10, 10), rect(10, 10, 40, 40, form, crowd=True)]
    with pytest.raises(ItemError, match="occluded"):
        run(anns, 0)
    anns = [rect(10, 10, 40, 40), rect(20, 20, 10, 10, form, crowd=True)]
    region, share = run(anns, 0)
    assert not (region & pixels(20, 20, 10, 10)).any() and share == pytest.approx(15 / 16)


def test_only_protected_candidates_count():
    anns = (rect(10, 10, 20, 20), rect(20, 10, 20, 20))
    edit = make_edit(0, window=WINDOW, protect=())
    region, share = paintable(edit, anns, SIZE, 0, 0.5)
    assert share == 1.0 and region.sum() == 400


def test_coverage_counts_only_pixels_inside_the_image():
    window = geo.Window(-16, -16, 48)
    anns = (rect(-8, -8, 20, 20, "box"), rect(6, -8, 10, 30, "box"))  # in image: 12 x 12
    edit = make_edit(0, window=window, protect=(1,))
    region, share = paintable(edit, anns, SIZE, 2, 0.0)
    assert share == pytest.approx(6 * 12 / (12 * 12))
    assert not region[:16, :].any() and not region[:, :16].any()


# --- properties ------------------------------------------------------------------------------


@st.composite
def scene(draw):
    """2-4 objects: rectangles or ellipses, as polygons, RLE or bare boxes; maybe a crowd."""
    anns = []
    for k in range(draw(st.integers(2, 4))):
        x, y = draw(st.integers(-4, 56)), draw(st.integers(-4, 56))
        w, h = draw(st.integers(2, 40)), draw(st.integers(2, 40))
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, 64), min(y + h, 64)
        if x1 - x0 < 2 or y1 - y0 < 2:
            x0, y0, x1, y1 = 0, 0, 4, 4
        form = draw(st.sampled_from(["polygon", "rle", "box", "ellipse"]))
        crowd = k > 0 and draw(st.integers(0, 5)) == 0
        if form == "ellipse":
            full = np.zeros((64, 64), np.uint8)
            centre, axes = ((x0 + x1) // 2, (y0 + y1) // 2), ((x1 - x0) // 2, (y1 - y0) // 2)
            cv2.ellipse(full, centre, axes, 0, 0, 360, 1, -1)
            box = geo.mask_to_xyxy(full > 0)
            ann = {"bbox": geo.xyxy_to_xywh(box), "category_id": 1, "iscrowd": int(crowd)}
            ann["segmentation"] = rle_encode(full > 0)
        else:
            ann = rect(x0, y0, x1 - x0, y1 - y0, form, crowd)
        anns.append(ann)
    return tuple(anns), draw(st.integers(0, 3)), draw(st.sampled_from(["mask", "box"]))


def regions(anns, dilate, mode):
    """Each object's region and coverage (``None`` when occluded), and each object's mask."""
    masks = [object_mask(a, "auto", SIZE, WINDOW) for a in anns]
    out = []
    for i in range(len(anns)):
        edit = make_edit(i, window=WINDOW, region=mode, protect=set(range(len(anns))) - {i})
        try:
            out.append(paintable(edit, anns, SIZE, dilate, 0.0))
        except ItemError as err:
            assert err.reason == "occluded"
            out.append(None)
    return out, masks


@FAST
@given(case=scene())
def test_regions_respect_the_order(case):
    anns, dilate, mode = case
    found, masks = regions(anns, dilate, mode)
    for i, got in enumerate(found):
        own = object_mask(anns[i], mode, SIZE, WINDOW)
        if got is None:
            continue
        region, share = got
        assert not (region & ~geo.dilate(own, dilate)).any()  # never past its dilated mask
        assert 0.0 < share <= 1.0 and share == coverage(region, own)
        for j, other in enumerate(masks):
            if j != i and (anns[j]["iscrowd"] or not in_front(own, other)):
                assert not (region & other).any()
        nested = all(in_front(own, m) for j, m in enumerate(masks) if j != i and (own & m).any())
        if nested and not any(a["iscrowd"] for a in anns):
            assert share == 1.0
    if mode == "mask":  # of two objects, at most one repaints pixels of the other
        for i, j in itertools.combinations(range(len(anns)), 2):
            if found[i] is not None and found[j] is not None:
                assert not ((found[i][0] & masks[j]).any() and (found[j][0] & masks[i]).any())


def _reason(call):
    try:
        call()
    except ItemError as err:
        return err.reason
    return None


@FAST
@given(
    case=scene(),
    shrink=st.integers(0, 12),
    min_coverage=st.sampled_from([0.0, 0.3, 0.5, 0.9, 1.0]),
    outline=st.integers(0, 3),
)
def test_the_planning_check_agrees_with_the_region(case, shrink, min_coverage, outline):
    anns, dilate, mode = case
    # real exports: boxes that do not quite hold their polygons
    anns = tuple({**a, "bbox": [a["bbox"][0] + shrink, a["bbox"][1], *a["bbox"][2:]]} for a in anns)
    for i in range(len(anns)):
        if anns[i]["iscrowd"]:
            continue
        edit = make_edit(i, window=WINDOW, region=mode, protect=set(range(len(anns))) - {i})
        edit = replace(edit, keep_outline=outline)
        full = _reason(lambda e=edit: paintable(e, anns, SIZE, dilate, min_coverage))
        found = region_problem(edit, anns, SIZE, dilate, min_coverage)
        assert (found.reason if found else None) == full


def test_extent_holds_every_pixel_of_the_object():
    ann = {"bbox": [20, 20, 4, 4], "segmentation": [[10, 12, 30, 12, 30, 28, 10, 28]]}
    mask = object_mask(ann, "auto", SIZE, WINDOW)
    x0, y0, x1, y1 = extent(ann)
    ys, xs = np.nonzero(mask)
    assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1
    assert extent({"bbox": [1, 1, 2, 2], "segmentation": rle_encode(mask)})[0] == -np.inf
