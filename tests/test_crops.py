"""Tests of inpaint_aug.render: image loading, crops at borders, region masks, paste, saving."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from helpers import make_edit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from inpaint_aug import geometry as geo
from inpaint_aug.dataset.images import encode_image, load_image, output_format, to_rgb_array
from inpaint_aug.errors import ItemError
from inpaint_aug.files import write_bytes as write_atomic
from inpaint_aug.pipeline.crops import Crop, cut, paste, resize
from inpaint_aug.pipeline.regions import object_mask, paintable, region_mask

# pycocotools 2.0.x + numpy 2 warn inside mask.decode; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def square(x, y, w, h):
    """An annotation whose polygon is exactly its box."""
    return {
        "bbox": [x, y, w, h],
        "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
        "category_id": 1,
    }


def gradient(h, w) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 5 % 256, yy * 7 % 256, (xx + yy) % 256], axis=2).astype(np.uint8)


# --- load_image ------------------------------------------------------------------------------


def save(img: Image.Image, path: Path, **kw) -> Path:
    img.save(path, **kw)
    return path


def test_load_palette_png(tmp_path):
    img = Image.new("P", (6, 4))
    img.putpalette([0, 0, 0, 200, 10, 20] + [0] * 762)
    img.putpixel((1, 2), 1)
    arr = load_image(save(img, tmp_path / "p.png"), 6, 4)
    assert arr.shape == (4, 6, 3) and arr.dtype == np.uint8
    assert tuple(arr[2, 1]) == (200, 10, 20) and tuple(arr[0, 0]) == (0, 0, 0)


def test_load_palette_png_with_transparency(tmp_path):
    img = Image.new("P", (4, 4))
    img.putpalette([10, 20, 30, 200, 10, 20] + [0] * 762)
    img.putpixel((0, 0), 1)
    img.info["transparency"] = 0
    arr = load_image(save(img, tmp_path / "p.png", transparency=0), 4, 4)
    assert tuple(arr[0, 0]) == (200, 10, 20) and tuple(arr[3, 3]) == (10, 20, 30)


@pytest.mark.parametrize(
    "mode,value,expected",
    [
        pytest.param("L", 77, (77, 77, 77), id="gray"),
        pytest.param("LA", (77, 0), (77, 77, 77), id="gray-alpha"),
        pytest.param("1", 1, (255, 255, 255), id="bilevel"),
        pytest.param("RGBA", (10, 20, 30, 0), (10, 20, 30), id="rgba-transparent"),
        pytest.param("RGBA", (10, 20, 30, 255), (10, 20, 30), id="rgba-opaque"),
        pytest.param("RGB", (1, 2, 3), (1, 2, 3), id="rgb"),
    ],
)
def test_load_png_modes(tmp_path, mode, value, expected):
    arr = load_image(save(Image.new(mode, (5, 3), value), tmp_path / "x.png"), 5, 3)
    assert arr.shape == (3, 5, 3) and arr.dtype == np.uint8
    assert (arr.reshape(-1, 3) == expected).all()


def test_load_16_bit_png(tmp_path):
    data = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    path = save(Image.fromarray(data), tmp_path / "g16.png")
    assert Image.open(path).mode.startswith("I")
    arr = load_image(path, 4, 1)
    assert arr.shape == (1, 4, 3)
    assert arr[0, :, 0].tolist() == [0, 1, 128, 255]  # scaled, not clipped or wrapped
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()


@pytest.mark.parametrize(
    "mode,values,expected",
    [
        pytest.param("I;16", [[0, 65535]], [0, 255], id="I;16"),
        pytest.param("I", [[0, 255]], [0, 255], id="I-8-bit-range"),
        pytest.param("I", [[0, 65535]], [0, 255], id="I-16-bit-range"),
        pytest.param("F", [[0.4, 254.6]], [0, 255], id="F"),
    ],
)
def test_to_rgb_array_wide_modes(mode, values, expected):
    dtype = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
    img = Image.fromarray(np.array(values, dtype=dtype), mode=mode if mode != "I;16" else None)
    arr = to_rgb_array(img)
    assert arr.dtype == np.uint8 and arr.shape == (1, 2, 3)
    assert arr[0, :, 0].tolist() == expected


def test_load_cmyk_jpeg(tmp_path):
    path = save(Image.new("CMYK", (16, 8), (0, 255, 255, 0)), tmp_path / "c.jpg", quality=95)
    assert Image.open(path).mode == "CMYK"
    arr = load_image(path, 16, 8)
    assert arr.shape == (8, 16, 3)
    r, g, b = arr[4, 8].astype(int)
    assert r > 240 and g < 15 and b < 15  # red, not inverted


def exif_rotated(path: Path) -> Path:
    """A 32 x 16 JPEG stored sideways: left half green, right half red; orientation 6."""
    img = Image.new("RGB", (32, 16), (255, 0, 0))
    img.paste((0, 255, 0), (0, 0, 16, 16))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(path, exif=exif.tobytes(), quality=95)
    return path


def test_load_exif_rotated_jpeg_upright(tmp_path):
    arr = load_image(exif_rotated(tmp_path / "r.jpg"), 16, 32)  # the JSON has the upright size
    assert arr.shape == (32, 16, 3)
    top, bottom = arr[4, 8].astype(int), arr[28, 8].astype(int)
    assert top[1] > 200 and top[0] < 60  # the stored left (green) is now on top
    assert bottom[0] > 200 and bottom[1] < 60


def test_load_exif_rotated_jpeg_with_stored_size_mismatches(tmp_path):
    with pytest.raises(ItemError) as err:
        load_image(exif_rotated(tmp_path / "r.jpg"), 32, 16)  # JSON size of the stored pixels
    assert err.value.reason == "size-mismatch"
    assert "16x32 (upright)" in err.value.detail and "32x16" in err.value.detail


def test_load_without_size_check(tmp_path):
    arr = load_image(save(Image.new("RGB", (3, 2)), tmp_path / "a.png"))
    assert arr.shape == (2, 3, 3)


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def truncated_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(gradient(64, 64)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()[: len(buf.getvalue()) // 2]


@pytest.mark.parametrize(
    "name,data,reason",
    [
        pytest.param("missing.png", None, "image-missing", id="missing"),
        pytest.param("empty.png", b"", "image-unreadable", id="zero-bytes"),
        pytest.param("cut.jpg", truncated_jpeg(), "image-unreadable", id="truncated-jpeg"),
        pytest.param(
            "text.jpg", b"hello, I am not a picture\n" * 20, "image-unreadable", id="text"
        ),
        pytest.param(
            "png.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 30, "image-unreadable", id="bad-png"
        ),
    ],
)
def test_load_image_errors(tmp_path, name, data, reason):
    path = tmp_path / name if data is None else write_bytes(tmp_path / name, data)
    with pytest.raises(ItemError) as err:
        load_image(path, 64, 64)
    assert err.value.reason == reason
    assert str(path) in err.value.detail


def test_load_directory_is_missing(tmp_path):
    with pytest.raises(ItemError, match="image-missing"):
        load_image(tmp_path)


# --- cut -------------------------------------------------------------------------------------


def test_cut_inside_without_resize():
    image = gradient(40, 50)
    window = geo.Window(10, 5, 16)
    region = np.zeros((16, 16), bool)
    region[4:12, 4:12] = True
    crop = cut(image, window, region, 16, feather=0)
    assert np.array_equal(crop.pixels, image[5:21, 10:26])
    assert np.array_equal(crop.mask, np.where(region, 255, 0))
    assert np.array_equal(crop.alpha, region.astype(np.float32))


@pytest.mark.parametrize(
    "window",
    [
        pytest.param(geo.Window(-8, -6, 32), id="top-left"),
        pytest.param(geo.Window(30, 14, 32), id="bottom-right"),
        pytest.param(geo.Window(-10, -5, 56), id="larger-than-image"),
    ],
)
def test_cut_at_borders(window):
    height, width = 30, 40
    image = gradient(height, width)
    ann = square(-20, -20, 100, 100)  # covers everything, image and beyond
    size = (width, height)
    edit = make_edit(window=window)
    region = region_mask(edit, (ann,), size, 0)
    inside = geo.box_mask((0, 0, width, height), window)
    assert np.array_equal(region, inside)  # the region never leaves the image
    res = window.side
    crop = cut(image, edit.window, region, res, feather=2)
    assert crop.pixels.shape == (res, res, 3) and crop.pixels.dtype == np.uint8
    assert crop.mask.shape == (res, res) and crop.mask.dtype == np.uint8
    assert (crop.mask[~inside] == 0).all() and (crop.mask[inside] == 255).all()
    assert (crop.alpha[~inside] == 0).all()
    # pixels outside the image are the nearest edge pixel (edge replication)
    ys, xs = np.mgrid[0:res, 0:res]
    src_y = np.clip(ys + window.y0, 0, height - 1)
    src_x = np.clip(xs + window.x0, 0, width - 1)
    assert np.array_equal(crop.pixels, image[src_y, src_x])


def test_cut_at_border_with_resize_keeps_mask_off_outside_pixels():
    height, width = 30, 40
    window = geo.Window(-24, -24, 48)  # half the window lies outside the image
    edit = make_edit(window=window)
    region = region_mask(edit, (square(0, 0, 40, 30),), (width, height), 3)
    crop = cut(gradient(height, width), edit.window, region, 32, feather=2)
    assert crop.pixels.shape == (32, 32, 3) and crop.mask.shape == (32, 32)
    assert crop.alpha.shape == (48, 48)
    # model pixel k covers window pixels [1.5 k, 1.5 (k + 1)): wholly outside for k < 16
    assert (crop.mask[:15, :] == 0).all() and (crop.mask[:, :15] == 0).all()
    assert (crop.mask[17:, 17:] == 255).all()


def test_cut_of_a_tiny_object():
    image = gradient(20, 20)
    ann = square(9, 9, 1, 1)
    window = geo.crop_window((9, 9, 10, 10), (20, 20), padding=0.5, min_side=1)
    assert window.side == 2
    edit = make_edit(window=window, region="mask")
    region = region_mask(edit, (ann,), (20, 20), 0)
    assert region.sum() == 1
    crop = cut(image, edit.window, region, 16, feather=3)
    assert crop.pixels.shape == (16, 16, 3) and crop.mask.any()
    assert crop.alpha.shape == (2, 2) and crop.alpha.max() > 0


def test_cut_downscales_with_area_filter():
    image = np.zeros((64, 64, 3), np.uint8)
    image[:, 32:] = 200
    window = geo.Window(0, 0, 64)
    region = np.zeros((64, 64), bool)
    region[0, 0] = True  # one pixel still shows in the smaller mask
    crop = cut(image, window, region, 16)
    assert crop.mask[0, 0] == 255 and crop.mask.sum() == 255
    assert (crop.pixels[:, :8] == 0).all() and (crop.pixels[:, 8:] == 200).all()


# --- region_mask -----------------------------------------------------------------------------


def test_region_mask_excludes_other_objects_masks():
    anns = (square(10, 10, 20, 20), square(25, 10, 10, 10), square(0, 35, 4, 4))
    window = geo.Window(0, 0, 40)
    edit = make_edit(window=window, ann_index=0, protect=(1, 2))
    region = region_mask(edit, anns, (40, 40), 2)
    own = geo.dilate(object_mask(anns[0], "mask", (40, 40), window), 2)
    other = object_mask(anns[1], "auto", (40, 40), window)
    assert not (region & other).any()
    assert np.array_equal(region, own & ~other)  # anns[2] does not meet the dilated region
    assert region[15, 15] and not region[12, 27] and region[31, 15]


def test_region_mask_protects_by_box_when_no_mask():
    anns = (square(10, 10, 20, 20), {"bbox": [20, 20, 5, 5], "category_id": 1})
    edit = make_edit(window=geo.Window(0, 0, 40), protect=(1,))
    region = region_mask(edit, anns, (40, 40), 0)
    assert not region[20:25, 20:25].any() and region[10:20, 10:30].all()


def test_region_mask_box_region_uses_the_box():
    ann = {"bbox": [10, 10, 10, 10], "segmentation": [[10, 10, 20, 10, 10, 20]], "category_id": 1}
    window = geo.Window(0, 0, 32)
    box_region = region_mask(make_edit(window=window, region="box"), (ann,), (32, 32), 0)
    mask_region = region_mask(make_edit(window=window), (ann,), (32, 32), 0)
    assert box_region.sum() == 100 and mask_region.sum() < 100
    assert (mask_region & ~box_region).sum() == 0


def test_region_mask_of_an_object_nested_in_another_is_not_cut():
    # Before the occlusion order, the container's mask was cut out of this object: "occluded".
    anns = (square(10, 10, 5, 5), square(5, 5, 20, 20))
    window = geo.Window(0, 0, 32)
    region = region_mask(make_edit(window=window, protect=(1,)), anns, (32, 32), 2)
    assert np.array_equal(region, geo.dilate(object_mask(anns[0], "mask", (32, 32), window), 2))
    container = region_mask(make_edit(1, window=window, protect=(0,)), anns, (32, 32), 2)
    assert not container[10:15, 10:15].any() and container[5:10, 5:25].all()


def test_region_mask_fully_occluded_raises():
    anns = (square(10, 10, 5, 5), square(10, 10, 5, 5))  # a duplicate: peers, each hides the other
    edit = make_edit(window=geo.Window(0, 0, 32), protect=(1,))
    with pytest.raises(ItemError) as err:
        region_mask(edit, anns, (32, 32), 2)
    assert err.value.reason == "occluded"


def test_paintable_gives_the_coverage_and_cut_keeps_it():
    anns = (square(10, 10, 20, 20), square(25, 10, 10, 10))  # hides 50 of its 400 pixels
    edit = make_edit(window=geo.Window(0, 0, 40), protect=(1,))
    region, share = paintable(edit, anns, (40, 40), 2, 0.5)
    assert share == pytest.approx(350 / 400)
    assert np.array_equal(region, region_mask(edit, anns, (40, 40), 2))
    crop = cut(gradient(40, 40), edit.window, region, 32, feather=2, coverage=share)
    assert crop.coverage == share
    assert cut(gradient(40, 40), edit.window, region, 32).coverage == 1.0
    assert Crop(crop.pixels, crop.mask, crop.alpha).coverage == 1.0  # positional, as before
    with pytest.raises(ItemError, match="occluded") as err:
        paintable(edit, anns, (40, 40), 2, 0.9)
    assert err.value.detail == "87.5% of the object is paintable, under --min-coverage 0.9"


# --- paste -----------------------------------------------------------------------------------


@st.composite
def paste_case(draw):
    height, width = draw(st.integers(4, 30)), draw(st.integers(4, 30))
    side = draw(st.integers(2, 40))
    x0 = draw(st.integers(-side + 1, width - 1))
    y0 = draw(st.integers(-side + 1, height - 1))
    seed = draw(st.integers(0, 2**32 - 1))
    return height, width, geo.Window(x0, y0, side), seed


@FAST
@given(case=paste_case())
def test_paste_touches_only_alpha_pixels(case):
    height, width, window, seed = case
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    before = image.copy()
    side = window.side
    alpha = rng.choice(np.array([0.0, 0.0, 1.0, 0.25, 0.75], np.float32), (side, side))
    result = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    paste(image, window, alpha, result)
    full_alpha = np.zeros((height, width), np.float32) - 1  # -1: outside the window
    full_result = np.zeros((height, width, 3), np.uint8)
    x0, y0, x1, y1 = window.xyxy
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    full_alpha[sy0:sy1, sx0:sx1] = alpha[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0]
    full_result[sy0:sy1, sx0:sx1] = result[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0]
    keep = full_alpha <= 0
    assert np.array_equal(image[keep], before[keep])  # bit for bit
    one = full_alpha == 1
    assert np.array_equal(image[one], full_result[one])
    part = (full_alpha > 0) & (full_alpha < 1)
    lo = np.minimum(before, full_result)[part].astype(int)
    hi = np.maximum(before, full_result)[part].astype(int)
    assert ((image[part] >= lo) & (image[part] <= hi)).all()


def test_paste_resizes_the_result_to_the_window():
    image = np.zeros((20, 20, 3), np.uint8)
    alpha = np.ones((10, 10), np.float32)
    paste(image, geo.Window(5, 5, 10), alpha, np.full((64, 64, 3), 99, np.uint8))
    assert (image[5:15, 5:15] == 99).all()
    assert image.sum() == 99 * 3 * 100


def test_paste_blends_half():
    image = np.full((4, 4, 3), 100, np.uint8)
    alpha = np.full((4, 4), 0.5, np.float32)
    paste(image, geo.Window(0, 0, 4), alpha, np.full((4, 4, 3), 201, np.uint8))
    assert (image == 150).all() or (image == 151).all()


def test_resize_keeps_same_size_and_changes_others():
    px = gradient(8, 8)
    assert np.array_equal(resize(px, 8), px)
    assert resize(px, 16).shape == (16, 16, 3) and resize(px, 4).shape == (4, 4, 3)


# --- output ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,choice,fmt",
    [
        pytest.param("a.jpg", "auto", "jpg", id="jpg"),
        pytest.param("a.JPEG", "auto", "jpg", id="JPEG-upper"),
        pytest.param("dir.png/a.jpeg", "auto", "jpg", id="jpeg-in-dir"),
        pytest.param("a.png", "auto", "png", id="png"),
        pytest.param("a.tif", "auto", "png", id="tif"),
        pytest.param("a.webp", "auto", "png", id="webp"),
        pytest.param("a", "auto", "png", id="no-suffix"),
        pytest.param("a.jpg.png", "auto", "png", id="double-suffix"),
        pytest.param("a.jpg", "png", "png", id="forced-png"),
        pytest.param("a.png", "jpg", "jpg", id="forced-jpg"),
    ],
)
def test_output_format(name, choice, fmt):
    assert output_format(name, choice) == fmt


def save_image(pixels: np.ndarray, path: Path, fmt: str) -> None:
    """How the engine writes an output image: encode, then an atomic write."""
    write_atomic(path, encode_image(pixels, fmt))


@pytest.mark.parametrize("fmt,pil", [("png", "PNG"), ("jpg", "JPEG")])
def test_save_image_atomic(tmp_path, fmt, pil):
    pixels = gradient(12, 10)
    path = tmp_path / f"out.{fmt}"
    path.write_bytes(b"old content")
    save_image(pixels, path, fmt)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left
    with Image.open(path) as img:
        assert img.format == pil and img.size == (10, 12)
        back = np.asarray(img.convert("RGB"))
    if fmt == "png":
        assert np.array_equal(back, pixels)  # lossless
    else:
        assert np.abs(back.astype(int) - pixels).mean() < 8
