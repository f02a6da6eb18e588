"""Tests of the synthetic COCO scene generator (inpaint_aug.synthetic)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from inpaint_aug.demo.synthetic import CATEGORIES, make_shapes_dataset

SAMPLE = Path(__file__).resolve().parents[1] / "datasets" / "shapes"
# pycocotools 2.0.x + numpy 2 warn inside mask.decode; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _form(ann: dict) -> str:
    """Classify an annotation's segmentation form."""
    if "segmentation" not in ann:
        return "absent"
    seg = ann["segmentation"]
    if seg == []:
        return "empty"
    if isinstance(seg, list):
        return "polygon" if len(seg) == 1 else "multipolygon"
    return "rle_str" if isinstance(seg["counts"], str) else "rle_list"


def _decode(ann: dict, h: int, w: int) -> np.ndarray:
    """The annotation's mask, decoded with pycocotools."""
    seg = ann["segmentation"]
    if isinstance(seg, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
    elif isinstance(seg["counts"], list):
        rle = mask_utils.frPyObjects(seg, h, w)
    else:
        rle = seg
    return mask_utils.decode(rle)


def _check_dataset(path: Path) -> dict:
    """Invariants every generated dataset must satisfy; returns the parsed JSON."""
    data = _load(path)
    images = {im["id"]: im for im in data["images"]}
    cat_ids = {c["id"] for c in data["categories"]}
    ann_ids = [a["id"] for a in data["annotations"]]
    assert len(images) == len(data["images"]) and min(images) == 1
    assert len(set(ann_ids)) == len(ann_ids) and all(i > 0 for i in ann_ids)
    masks: dict[int, list[np.ndarray]] = {}
    for ann in data["annotations"]:
        im = images[ann["image_id"]]
        h, w = im["height"], im["width"]
        assert ann["category_id"] in cat_ids and ann["iscrowd"] in (0, 1)
        x, y, bw, bh = ann["bbox"]
        assert all(isinstance(v, float) for v in ann["bbox"]) and isinstance(ann["area"], float)
        assert x >= 0 and y >= 0 and bw > 0 and bh > 0 and x + bw <= w and y + bh <= h
        if _form(ann) in ("absent", "empty"):
            assert ann["area"] == bw * bh
            continue
        mask = _decode(ann, h, w)
        assert int(mask.sum()) == ann["area"]  # exact, polygons included
        assert mask_utils.toBbox(mask_utils.encode(np.asfortranarray(mask))).tolist() == ann["bbox"]
        masks.setdefault(ann["image_id"], []).append(mask)
    for image_masks in masks.values():  # visible parts only: no two masks share a pixel
        assert np.sum(image_masks, axis=0).max() <= 1
    return data


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    path = make_shapes_dataset(tmp_path_factory.mktemp("sample"))
    return path, _check_dataset(path)


def test_layout_and_metadata(sample: tuple[Path, dict]) -> None:
    path, data = sample
    assert path.name == "annotations.json"
    assert data["categories"] == CATEGORIES
    assert [c["id"] for c in data["categories"]] == [1, 3, 7]  # non-contiguous ids
    assert data["x_generator"] == {"name": "inpaint_aug.synthetic", "seed": 0}
    assert len(data["licenses"]) == 1 and "CC0" in data["licenses"][0]["name"] and data["info"]
    for im in data["images"]:
        pixels = cv2.imdecode(np.fromfile(path.parent / "images" / im["file_name"], np.uint8), 1)
        assert pixels.shape == (im["height"], im["width"], 3) == (240, 320, 3)
        assert im["license"] == 1
    names = [im["file_name"] for im in data["images"]]
    assert "scène 003.png" in names and all(n.endswith(".png") for n in names)


def test_every_segmentation_form_present(sample: tuple[Path, dict]) -> None:
    _, data = sample
    anns = data["annotations"]
    forms = Counter(_form(a) for a in anns)
    assert set(forms) == {"polygon", "multipolygon", "rle_str", "rle_list", "empty", "absent"}
    assert all(a["iscrowd"] == (_form(a) == "rle_list") for a in anns)
    assert any("attributes" in a for a in anns)
    annotated = {a["image_id"] for a in anns}
    assert [im["id"] for im in data["images"] if im["id"] not in annotated] == [5]
    split = [a for a in anns if _form(a) == "multipolygon"]
    assert any(a["image_id"] == 2 and a["category_id"] == 7 for a in split)


def test_deterministic(tmp_path: Path) -> None:
    runs = [make_shapes_dataset(tmp_path / name, n_images=6, seed=5) for name in "ab"]
    assert runs[0].read_bytes() == runs[1].read_bytes()
    for image in (tmp_path / "a" / "images").iterdir():
        assert image.read_bytes() == (tmp_path / "b" / "images" / image.name).read_bytes()
    other = make_shapes_dataset(tmp_path / "c", n_images=6, seed=6)
    assert other.read_bytes() != runs[0].read_bytes()


def test_jpg_pixels_deterministic(tmp_path: Path) -> None:
    runs = [make_shapes_dataset(tmp_path / n, n_images=2, image_format="jpg") for n in "ab"]
    for im in _load(runs[0])["images"]:
        assert im["file_name"].endswith(".jpg")
        files = [p.parent / "images" / im["file_name"] for p in runs]
        a, b = (cv2.imdecode(np.fromfile(f, np.uint8), cv2.IMREAD_COLOR) for f in files)
        assert a.shape == (240, 320, 3) and np.array_equal(a, b)


def test_image_depends_only_on_its_index(tmp_path: Path) -> None:
    short = _load(make_shapes_dataset(tmp_path / "a", n_images=2, variety=False))
    longer = _load(make_shapes_dataset(tmp_path / "b", n_images=3, variety=False))
    assert longer["annotations"][: len(short["annotations"])] == short["annotations"]


def test_pycocotools_loads(sample: tuple[Path, dict]) -> None:
    path, data = sample
    coco = COCO(str(path))
    assert sorted(coco.getCatIds()) == [1, 3, 7]
    assert len(coco.getAnnIds()) == len(data["annotations"])
    for ann in coco.loadAnns(coco.getAnnIds()):
        if ann.get("segmentation"):
            assert coco.annToMask(ann).sum() == ann["area"]


def test_variety_false_gives_only_polygons(tmp_path: Path) -> None:
    data = _check_dataset(make_shapes_dataset(tmp_path, n_images=8, variety=False))
    assert data["annotations"] and all(a["iscrowd"] == 0 for a in data["annotations"])
    assert {_form(a) for a in data["annotations"]} <= {"polygon", "multipolygon"}
    assert not any("attributes" in a for a in data["annotations"])
    assert all(im["file_name"].startswith("scene_") for im in data["images"])


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**32),
    width=st.integers(96, 200),
    height=st.integers(96, 200),
    lo=st.integers(0, 4),
    extra=st.integers(0, 3),
    variety=st.booleans(),
)
def test_invariants_hold_for_any_arguments(
    tmp_path: Path, seed: int, width: int, height: int, lo: int, extra: int, variety: bool
) -> None:
    out = tmp_path / f"{seed}_{width}_{height}_{lo}_{extra}_{variety}"
    path = make_shapes_dataset(out, 3, (width, height), seed, "png", (lo, lo + extra), variety)
    assert len(_check_dataset(path)["images"]) == 3


@pytest.mark.skipif(not (SAMPLE / "annotations.json").exists(), reason="no committed sample")
def test_committed_sample_is_up_to_date(tmp_path: Path) -> None:
    fresh = make_shapes_dataset(tmp_path)  # the defaults of datasets/make_sample.py
    assert (SAMPLE / "annotations.json").read_bytes() == fresh.read_bytes()
    assert sorted(p.name for p in (SAMPLE / "images").iterdir()) == sorted(
        p.name for p in (tmp_path / "images").iterdir()
    )
    book = yaml.safe_load((SAMPLE / "prompts.yaml").read_text(encoding="utf-8"))
    assert set(book) == {"vars", "default", "classes"}
    assert set(book["classes"]) <= {c["name"] for c in CATEGORIES}
    allowed = {"prompt", "negative", "vars", "strength", "guidance", "steps", "skip"}
    assert all(set(spec) <= allowed for spec in [book["default"], *book["classes"].values()])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_images": 0}, "n_images"),
        ({"n_images": 2.0}, "n_images"),
        ({"n_images": True}, "n_images"),
        ({"size": (320,)}, "size"),
        ({"size": (50, 240)}, "size"),
        ({"size": "320x240"}, "size"),
        ({"seed": -1}, "seed"),
        ({"seed": "0"}, "seed"),
        ({"image_format": "jpeg"}, "image_format"),
        ({"image_format": "PNG"}, "image_format"),
        ({"objects_per_image": (5, 2)}, "objects_per_image"),
        ({"objects_per_image": (-1, 2)}, "objects_per_image"),
        ({"objects_per_image": 3}, "objects_per_image"),
        ({"variety": "yes"}, "variety"),
    ],
)
def test_bad_arguments_raise_value_error(tmp_path: Path, kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name} must be .*, got "):
        make_shapes_dataset(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()  # nothing is written for bad arguments
