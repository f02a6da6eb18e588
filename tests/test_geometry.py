"""Unit and property tests of inpaint_aug.geometry: boxes, segmentations, masks, windows."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import rle_encode, rle_uncompressed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

from inpaint_aug import geometry as geo

# pycocotools 2.0.x + numpy 2 warn inside mask.decode; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def full_mask(seg, height: int, width: int) -> np.ndarray:
    """The reference: pycocotools' own full-image decode."""
    return mask_utils.decode(geo.to_rle(seg, height, width)).astype(bool)


# --- boxes ----------------------------------------------------------------------------------

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
positive = st.floats(1e-3, 1e4, allow_nan=False, allow_infinity=False)


@given(x=finite, y=finite, w=positive, h=positive)
def test_box_conversions_round_trip(x, y, w, h):
    x0, y0, x1, y1 = geo.xywh_to_xyxy([x, y, w, h])
    assert (x0, y0) == (x, y) and x1 >= x0 and y1 >= y0
    back = geo.xyxy_to_xywh((x0, y0, x1, y1))
    assert back[:2] == [x, y]
    assert back[2:] == pytest.approx([w, h], rel=1e-9, abs=1e-9)


def test_box_conversions_exact_values():
    assert geo.xywh_to_xyxy([1, 2, 3, 4]) == (1.0, 2.0, 4.0, 6.0)
    assert geo.xyxy_to_xywh((1, 2, 4, 6)) == [1.0, 2.0, 3.0, 4.0]
    assert all(isinstance(v, float) for v in geo.xywh_to_xyxy([1, 2, 3, 4]))


@pytest.mark.parametrize(
    "box,expected",
    [
        pytest.param((10, 10, 20, 20), (10, 10, 20, 20), id="inside"),
        pytest.param((-5, -3, 20, 20), (0, 0, 20, 20), id="past-top-left"),
        pytest.param((90, 70, 130, 95), (90, 70, 100, 80), id="past-bottom-right"),
        pytest.param((-10, -10, 200, 200), (0, 0, 100, 80), id="covers-image"),
        pytest.param((120, 10, 130, 20), (100, 10, 100, 20), id="wholly-right-empty"),
        pytest.param((-30, -30, -10, -5), (0, 0, 0, 0), id="wholly-top-left-empty"),
    ],
)
def test_clip_xyxy(box, expected):
    assert geo.clip_xyxy(box, 100, 80) == pytest.approx(expected)


@given(box=st.tuples(finite, finite, finite, finite), w=st.integers(1, 500), h=st.integers(1, 500))
def test_clip_xyxy_stays_inside(box, w, h):
    x0, y0, x1, y1 = geo.clip_xyxy(box, w, h)
    assert 0 <= x0 <= w and 0 <= x1 <= w and 0 <= y0 <= h and 0 <= y1 <= h


@pytest.mark.parametrize(
    "box,valid",
    [
        pytest.param([0, 0, 1, 1], True, id="ints"),
        pytest.param([0.5, 1.5, 2.25, 3.75], True, id="floats"),
        pytest.param((-5, -5, 10, 10), True, id="tuple-negative-origin"),
        pytest.param([0, 0, 0, 5], False, id="zero-width"),
        pytest.param([0, 0, 5, 0], False, id="zero-height"),
        pytest.param([0, 0, -1, 5], False, id="negative-width"),
        pytest.param([0, 0, 5, -2], False, id="negative-height"),
        pytest.param([0, 0, float("nan"), 5], False, id="nan-width"),
        pytest.param([float("nan"), 0, 5, 5], False, id="nan-x"),
        pytest.param([0, 0, float("inf"), 5], False, id="inf-width"),
        pytest.param([float("-inf"), 0, 5, 5], False, id="minus-inf-x"),
        pytest.param([0, 0, True, True], False, id="bools"),
        pytest.param([0, 0, "5", "5"], False, id="strings"),
        pytest.param([0, 0, None, 5], False, id="none-inside"),
        pytest.param([0, 0, 5], False, id="three-numbers"),
        pytest.param([0, 0, 5, 5, 5], False, id="five-numbers"),
        pytest.param([], False, id="empty-list"),
        pytest.param(None, False, id="none"),
        pytest.param("0,0,5,5", False, id="string"),
        pytest.param({"x": 0}, False, id="dict"),
    ],
)
def test_box_is_valid(box, valid):
    assert geo.box_is_valid(box) is valid


@pytest.mark.parametrize(
    "seg,kind",
    [
        pytest.param([[0, 0, 4, 0, 4, 4]], "polygon", id="polygon"),
        pytest.param([[0, 0, 4, 0, 4, 4], [5, 5, 9, 5, 9, 9]], "polygon", id="multi-polygon"),
        pytest.param([0, 0, 4, 0, 4, 4], "polygon", id="flat-polygon"),
        pytest.param({"size": [4, 4], "counts": "04"}, "rle", id="rle-string"),
        pytest.param({"size": [2, 2], "counts": [0, 4]}, "rle", id="rle-list"),
        pytest.param({"counts": [0, 4]}, "none", id="rle-without-size"),
        pytest.param({"size": [2, 2]}, "none", id="rle-without-counts"),
        pytest.param([], "none", id="empty-list"),
        pytest.param(None, "none", id="none"),
        pytest.param("polygon", "none", id="string"),
        pytest.param(7, "none", id="number"),
    ],
)
def test_segmentation_kind(seg, kind):
    assert geo.segmentation_kind(seg) == kind


# --- polygons and RLE -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "seg,message",
    [
        pytest.param([[0, 0, 4, 0]], "part 0 has 4 numbers", id="four-numbers"),
        pytest.param([[0, 0, 4, 0, 4]], "part 0 has 5 numbers", id="odd-count"),
        pytest.param([[0, 0, 4, 0, 4, 4], [1, 1]], "part 1 has 2 numbers", id="second-part"),
        pytest.param([[]], "part 0 has 0 numbers", id="empty-part"),
        pytest.param([[0, 0, 4, 0, 4, 4], 5], "part 1 has int numbers", id="part-not-list"),
        pytest.param([[0, 0, "4", 0, 4, 4]], "part 0 holds a value", id="string-value"),
        pytest.param([[0, 0, None, 0, 4, 4]], "part 0 holds a value", id="none-value"),
        pytest.param([[0, 0, float("nan"), 0, 4, 4]], "not a finite number", id="nan-value"),
        pytest.param([[0, 0, float("inf"), 0, 4, 4]], "not a finite number", id="inf-value"),
        pytest.param([[0, 0, True, 0, 4, 4]], "not a finite number", id="bool-value"),
    ],
)
def test_check_polygons_errors(seg, message):
    with pytest.raises(ValueError, match=message):
        geo.check_polygons(seg)


def test_check_polygons_message_says_what_is_expected():
    with pytest.raises(ValueError, match=r"expected an even count >= 6"):
        geo.check_polygons([[0, 0, 1, 1]])


@pytest.mark.parametrize(
    "seg,parts",
    [
        pytest.param([[0, 0, 4, 0, 4, 4]], [[0.0, 0.0, 4.0, 0.0, 4.0, 4.0]], id="one-part"),
        pytest.param([0, 0, 4, 0, 4, 4], [[0.0, 0.0, 4.0, 0.0, 4.0, 4.0]], id="flat"),
        pytest.param([[0, 0, 1, 0, 1, 1], [2, 2, 3, 2, 3, 3]], 2, id="two-parts"),
    ],
)
def test_check_polygons_returns_float_parts(seg, parts):
    out = geo.check_polygons(seg)
    if isinstance(parts, int):
        assert len(out) == parts
    else:
        assert out == parts
    assert all(isinstance(v, float) for part in out for v in part)


def test_to_rle_polygon_fills_the_square():
    mask = full_mask([[2, 3, 12, 3, 12, 9, 2, 9]], 20, 30)
    assert mask.shape == (20, 30)
    assert mask[3:9, 2:12].all()
    assert mask.sum() == 60  # 10 x 6 pixels, nothing else
    assert not mask[:3].any() and not mask[9:].any()


def test_to_rle_multi_part_polygon_is_the_union():
    a, b = [1, 1, 5, 1, 5, 5, 1, 5], [10, 10, 14, 10, 14, 14, 10, 14]
    both = full_mask([a, b], 20, 20)
    assert np.array_equal(both, full_mask([a], 20, 20) | full_mask([b], 20, 20))
    assert both.sum() == 32


def test_to_rle_string_counts_round_trip():
    rng = np.random.default_rng(0)
    mask = rng.random((13, 17)) > 0.6
    rle = geo.to_rle(rle_encode(mask), 13, 17)
    assert isinstance(rle["counts"], bytes)
    assert np.array_equal(mask_utils.decode(rle).astype(bool), mask)


def test_to_rle_list_counts_are_column_major():
    mask = np.zeros((3, 4), bool)
    mask[0, 1] = mask[1, 1] = mask[2, 3] = True  # column-major: 3 zeros, 2 ones, ...
    seg = {"size": [3, 4], "counts": [3, 2, 6, 1]}
    assert seg == rle_uncompressed(mask)
    assert np.array_equal(full_mask(seg, 3, 4), mask)
    assert mask_utils.area(geo.to_rle(seg, 3, 4)) == 3


def test_rle_counts_decodes_compressed_strings():
    rng = np.random.default_rng(1)
    for shape in [(1, 1), (5, 7), (64, 3), (40, 50)]:
        mask = rng.random(shape) > 0.5
        counts = geo.rle_counts(rle_encode(mask))
        assert counts.tolist() == rle_uncompressed(mask)["counts"]


@pytest.mark.parametrize(
    "seg,message",
    [
        pytest.param({"size": [4, 5], "counts": [20]}, "does not match", id="size-swapped"),
        pytest.param({"size": [10, 10], "counts": [100]}, "does not match", id="size-other"),
        pytest.param({"size": [5, 4], "counts": [5, 10]}, "adding up to", id="list-sum-short"),
        pytest.param({"size": [5, 4], "counts": [5, 20]}, "adding up to", id="list-sum-long"),
        pytest.param({"size": [5, 4], "counts": [25, -5]}, "integers >= 0", id="negative"),
        pytest.param({"size": [5, 4], "counts": [10, "a"]}, "integers >= 0", id="string-count"),
        pytest.param({"size": [5, 4], "counts": [10.5, 9.5]}, "integers >= 0", id="fraction"),
        pytest.param({"size": [5, 4], "counts": "5b13"}, "adding up to", id="string-bad-sum"),
    ],
)
def test_to_rle_rejects_malformed_rle(seg, message):
    with pytest.raises(ValueError, match=message):
        geo.to_rle(seg, 5, 4)


@pytest.mark.parametrize(
    "seg,bbox,expected",
    [
        pytest.param(None, [2, 3, 4, 5], 20.0, id="box-only"),
        pytest.param([], [2, 3, 4.5, 2], 9.0, id="empty-segmentation"),
        pytest.param(None, [-2, -2, 4, 4], 4.0, id="box-clipped"),
        pytest.param(None, [40, 40, 4, 4], 0.0, id="box-outside"),
        pytest.param([[2, 3, 12, 3, 12, 9, 2, 9]], [0, 0, 1, 1], 60.0, id="polygon-not-bbox"),
    ],
)
def test_segmentation_area_table(seg, bbox, expected):
    assert geo.segmentation_area(seg, bbox, 20, 30) == expected


polygon = st.lists(
    st.tuples(st.floats(-5, 45, allow_nan=False), st.floats(-5, 35, allow_nan=False)),
    min_size=3,
    max_size=8,
).map(lambda pts: [v for p in pts for v in p])
decimal_polygon = st.lists(
    st.tuples(st.integers(-50, 450), st.integers(-50, 350)), min_size=3, max_size=8
).map(lambda pts: [v / 10 for p in pts for v in p])  # one decimal, as COCO exports write them
segmentation = st.one_of(
    st.lists(polygon, min_size=1, max_size=3),
    st.lists(decimal_polygon, min_size=1, max_size=2),
)


@FAST
@given(seg=segmentation)
def test_segmentation_area_is_the_decoded_mask_sum(seg):
    area = geo.segmentation_area(seg, [0, 0, 1, 1], 30, 40)
    assert area == full_mask(seg, 30, 40).sum()
    as_rle = rle_encode(full_mask(seg, 30, 40))
    assert geo.segmentation_area(as_rle, [0, 0, 1, 1], 30, 40) == area


# --- masks in windows -----------------------------------------------------------------------


@FAST
@given(
    seg=segmentation,
    x0=st.integers(-60, 45),
    y0=st.integers(-60, 35),
    side=st.integers(1, 90),
    as_rle=st.booleans(),
)
def test_window_mask_is_the_full_mask_sliced(seg, x0, y0, side, as_rle):
    height, width = 30, 40
    full = full_mask(seg, height, width)
    if as_rle:
        seg = rle_encode(full)
    window = geo.Window(x0, y0, side)
    got = geo.window_mask(seg, height, width, window)
    assert got.shape == (side, side) and got.dtype == bool
    assert np.array_equal(got, geo.slice_window(full, window))


@pytest.mark.parametrize(
    "window",
    [
        pytest.param(geo.Window(-10, -10, 50), id="past-every-border"),
        pytest.param(geo.Window(30, 15, 20), id="past-bottom-right"),
        pytest.param(geo.Window(-5, 0, 10), id="past-left"),
    ],
)
def test_window_mask_is_empty_outside_the_image(window):
    seg = [[-5, -5, 30, -5, 30, 30, -5, 30]]  # covers the whole 25 x 20 image and more
    got = geo.window_mask(seg, 20, 25, window)
    inside = geo.box_mask((0, 0, 25, 20), window)
    assert np.array_equal(got, inside)


def test_window_mask_uncompressed_rle():
    mask = np.zeros((6, 8), bool)
    mask[1:4, 2:7] = True
    got = geo.window_mask(rle_uncompressed(mask), 6, 8, geo.Window(1, -1, 8))
    assert np.array_equal(got, geo.slice_window(mask, geo.Window(1, -1, 8)))
    assert got.sum() == 15


def test_slice_window_fills_outside_with_false():
    full = np.ones((4, 5), bool)
    out = geo.slice_window(full, geo.Window(-2, 3, 4))
    assert out.shape == (4, 4)
    assert out.sum() == 2  # rows 3 only, columns 0..1
    assert out[0, 2:].all() and not out[1:].any() and not out[:, :2].any()


@pytest.mark.parametrize(
    "box,window,rows,cols",
    [
        pytest.param((2, 3, 5, 4), geo.Window(0, 0, 8), (3, 4), (2, 5), id="integer-box"),
        pytest.param((2.2, 3.5, 4.1, 4.0), geo.Window(0, 0, 8), (3, 4), (2, 5), id="float-covers"),
        pytest.param((2, 3, 5, 4), geo.Window(1, 1, 8), (2, 3), (1, 4), id="shifted-window"),
        pytest.param((-5, -5, 2, 2), geo.Window(0, 0, 4), (0, 2), (0, 2), id="clipped-start"),
        pytest.param((3, 3, 50, 50), geo.Window(0, 0, 4), (3, 4), (3, 4), id="clipped-end"),
        pytest.param((10, 10, 12, 12), geo.Window(0, 0, 4), (0, 0), (0, 0), id="outside"),
    ],
)
def test_box_mask(box, window, rows, cols):
    got = geo.box_mask(box, window)
    expected = np.zeros((window.side, window.side), bool)
    expected[rows[0] : rows[1], cols[0] : cols[1]] = True
    assert np.array_equal(got, expected)


@pytest.mark.parametrize(
    "mask,box",
    [
        pytest.param(np.zeros((4, 4), bool), None, id="empty"),
        pytest.param(np.eye(4, dtype=bool), (0.0, 0.0, 4.0, 4.0), id="diagonal"),
        pytest.param(np.pad(np.ones((2, 3), bool), ((1, 2), (4, 0))), (4.0, 1.0, 7.0, 3.0), id="r"),
    ],
)
def test_mask_to_xyxy(mask, box):
    assert geo.mask_to_xyxy(mask) == box


# --- crop windows ---------------------------------------------------------------------------


def test_crop_window_docstring_example():
    win = geo.crop_window((10, 10, 30, 20), image_size=(100, 80), padding=0.5, min_side=32)
    assert win == geo.Window(0, 0, 40)  # centred at y0 = -5, then shifted inside


@st.composite
def window_case(draw):
    width, height = draw(st.integers(1, 400)), draw(st.integers(1, 400))
    x0 = draw(st.floats(-50, width + 50, allow_nan=False))
    y0 = draw(st.floats(-50, height + 50, allow_nan=False))
    w = draw(st.floats(0, 500, allow_nan=False))
    h = draw(st.floats(0, 500, allow_nan=False))
    padding = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]) | st.floats(0, 2))
    min_side = draw(st.integers(1, 600))
    return (x0, y0, x0 + w, y0 + h), (width, height), padding, min_side


@settings(max_examples=150, deadline=None)
@given(case=window_case())
def test_crop_window_invariants(case):
    box, (width, height), padding, min_side = case
    win = geo.crop_window(box, (width, height), padding, min_side)
    longest = max(box[2] - box[0], box[3] - box[1], 1.0)
    # never empty, never longer than the image's longer side, at least min_side if it fits
    assert isinstance(win.side, int) and win.side >= 1
    assert win.side <= max(width, height)
    assert win.side >= min(min_side, max(width, height))
    assert win.side >= min(longest, max(width, height))
    for start, extent, lo, hi in (
        (win.x0, width, box[0], box[2]),
        (win.y0, height, box[1], box[3]),
    ):
        end = start + win.side
        if win.side <= extent:  # inside the image along every axis long enough for it
            assert start >= 0 and end <= extent
        else:  # too short an axis: the window covers it entirely
            assert start <= 0 and end >= extent
        # contains the part of the box inside the image ...
        clo, chi = min(max(lo, 0), extent), min(max(hi, 0), extent)
        if win.side >= longest + 1 or win.side == max(width, height):
            assert start <= clo and chi <= end
        else:  # ... up to the rounding of its start, when padding leaves under a pixel
            assert start <= clo + 0.5 and chi <= end + 0.5


def test_crop_window_centred_when_room():
    win = geo.crop_window((40, 40, 60, 60), (200, 200), padding=0.5, min_side=8)
    assert win == geo.Window(30, 30, 40)


def test_crop_window_shifted_inside_at_the_corner():
    win = geo.crop_window((0, 0, 10, 10), (200, 100), padding=0.5, min_side=64)
    assert win == geo.Window(0, 0, 64)
    win = geo.crop_window((190, 90, 200, 100), (200, 100), padding=0.5, min_side=64)
    assert win == geo.Window(136, 36, 64)


def test_crop_window_small_image_is_centred_and_covered():
    win = geo.crop_window((2, 2, 8, 4), (30, 10), padding=0.5, min_side=96)
    assert win.side == 30  # the longer image side
    assert (win.x0, win.y0) == (0, -10)  # covers the 10-pixel-high image, centred


# --- dilate and feather ---------------------------------------------------------------------


masks = st.integers(0, 2**32 - 1).map(lambda s: np.random.default_rng(s).random((24, 24)) > 0.93)


@FAST
@given(mask=masks, pixels=st.integers(0, 4))
def test_dilate_grows_and_contains(mask, pixels):
    grown = geo.dilate(mask, pixels)
    assert grown.dtype == bool and grown.shape == mask.shape
    assert not (mask & ~grown).any()
    assert grown.sum() >= mask.sum()
    if pixels == 0:
        assert np.array_equal(grown, mask) and grown is not mask
    # nothing farther than `pixels` (Chebyshev bound of the elliptic kernel) is added
    ys, xs = np.nonzero(mask)
    for y, x in zip(*np.nonzero(grown & ~mask), strict=True):
        assert (np.maximum(abs(ys - y), abs(xs - x)) <= pixels).any()


def test_dilate_single_pixel_radius():
    mask = np.zeros((9, 9), bool)
    mask[4, 4] = True
    grown = geo.dilate(mask, 2)
    assert grown[4, 2] and grown[2, 4] and grown[4, 6] and grown[6, 4]
    assert not grown[4, 1] and not grown[1, 4] and not grown[0, 0]


@FAST
@given(mask=masks, pixels=st.integers(0, 5))
def test_feather_weights(mask, pixels):
    region = geo.dilate(mask, 2)
    alpha = geo.feather(region, pixels)
    assert alpha.dtype == np.float32 and alpha.shape == region.shape
    assert (alpha[~region] == 0).all()  # exactly zero outside: those pixels are never written
    assert (alpha >= 0).all() and (alpha <= 1).all()
    assert (alpha[region] > 0).all()
    if pixels == 0:
        assert np.array_equal(alpha, region.astype(np.float32))


def test_feather_ramps_from_the_boundary_to_one():
    region = np.zeros((40, 40), bool)
    region[5:35, 5:35] = True
    alpha = geo.feather(region, 4)
    assert alpha[20, 20] == 1.0  # deep inside
    assert alpha[5:35, 9:31][4:-4].min() == 1.0  # >= 4 pixels from every edge
    assert 0 < alpha[20, 5] < alpha[20, 6] < alpha[20, 7] < 1.0  # ramp
    assert alpha[20, 4] == 0.0 and alpha[0, 0] == 0.0


def test_feather_window_edge_is_not_a_boundary():
    region = np.zeros((20, 20), bool)
    region[:, :10] = True  # touches the window's left, top and bottom edges
    alpha = geo.feather(region, 3)
    assert alpha[10, 0] == 1.0 and alpha[0, 0] == 1.0
    assert alpha[10, 9] < 1.0 and alpha[10, 10] == 0.0


def test_feather_full_window_is_all_one():
    assert (geo.feather(np.ones((8, 8), bool), 3) == 1.0).all()


def test_window_xyxy():
    assert geo.Window(-3, 4, 10).xyxy == (-3, 4, 7, 14)


@pytest.mark.parametrize(
    "box,pixels",
    [
        pytest.param((1.0, 2.0, 3.0, 4.0), (1, 2, 3, 4), id="integers"),
        pytest.param((1.5, 2.1, 3.2, 4.9), (1, 2, 4, 5), id="fractions"),
        pytest.param((-1.5, -0.1, 0.1, 0.0), (-2, -1, 1, 0), id="negative"),
    ],
)
def test_box_pixels(box, pixels):
    assert geo.box_pixels(box) == pixels
    assert all(isinstance(v, int) for v in geo.box_pixels(box))


def test_segmentation_area_handles_huge_images_without_full_decode():
    # a window on a 20000 x 20000 image: run lengths only, the mask is never decoded at full size
    seg = [[100, 100, 19900, 150, 19000, 19800, 300, 19000]]
    window = geo.Window(10000, 10000, 64)
    got = geo.window_mask(seg, 20000, 20000, window)
    assert got.all()
    assert math.isclose(geo.segmentation_area(seg, [0, 0, 1, 1], 20000, 20000), 3.6e8, rel_tol=0.1)
