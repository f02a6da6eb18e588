"""YOLO export: write a small COCO dataset out, then parse every written file back and check it."""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from helpers import rle_encode, rle_uncompressed
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools import mask as mask_utils

from inpaint_aug import geometry as geo
from inpaint_aug.errors import OutputError
from inpaint_aug.exporters.yolo import YoloExport, export_yolo
from inpaint_aug.exporters.yolo_labels import merge_parts
from inpaint_aug.exporters.yolo_layout import build_class_map
from inpaint_aug.options import Split

# COCO ids on purpose non-contiguous, not sorted, with 0 and an unused category (3).
CATEGORIES = [
    {"id": 7, "name": "square"},
    {"id": 0, "name": "circle"},
    {"id": 3, "name": "unused"},
    {"id": 12, "name": "blob"},
]
SIZES = {1: (200, 120), 2: (90, 140), 3: (64, 48)}  # image id -> (width, height)


def _octagon(cx: float, cy: float, r: float) -> list[float]:
    angles = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    return [float(v) for a in angles for v in (cx + r * np.cos(a), cy + r * np.sin(a))]


def _rle_mask() -> np.ndarray:
    """Two separate blobs (a disc and a square): two outer contours."""
    w, h = SIZES[1]
    mask = np.zeros((h, w), dtype=np.uint8)
    cv2.circle(mask, (165, 85), 18, 1, thickness=-1)
    mask[8:30, 150:180] = 1
    return mask


def make_coco(root: Path) -> tuple[dict, Path]:
    """A COCO dict plus its image folder covering every label kind the exporter handles."""
    image_dir = root / "src"
    files = {1: "one/pic.png", 2: "two/pic.png", 3: "neg.jpg"}
    rng = np.random.default_rng(0)
    for image_id, name in files.items():
        w, h = SIZES[image_id]
        path = image_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    rle = rle_encode(_rle_mask())  # string counts, as in a JSON file
    crowd = mask_utils.frPyObjects([[10, 60, 40, 60, 40, 90, 10, 90]], 120, 200)[0]
    annotations = [
        # 1: one polygon (circle, COCO id 0)
        {
            "id": 1,
            "image_id": 1,
            "category_id": 0,
            "bbox": [20, 20, 40, 40],
            "iscrowd": 0,
            "segmentation": [_octagon(40, 40, 20)],
        },
        # 2: a three-part polygon (square, COCO id 7): two squares and a triangle
        {
            "id": 2,
            "image_id": 1,
            "category_id": 7,
            "bbox": [70, 8, 70, 77],
            "iscrowd": 0,
            "segmentation": [
                [70, 8, 95, 8, 95, 35, 70, 35],
                [110, 10, 135, 10, 135, 35, 110, 35],
                [90, 55, 130, 85, 80, 85],
            ],
        },
        # 3: RLE with string counts, two blobs (blob, COCO id 12)
        {
            "id": 3,
            "image_id": 1,
            "category_id": 12,
            "bbox": [147, 8, 36, 96],
            "iscrowd": 0,
            "segmentation": rle,
        },
        # 4: box only, reaching past the left and bottom borders
        {
            "id": 4,
            "image_id": 1,
            "category_id": 7,
            "bbox": [-10, 90, 50, 40],
            "iscrowd": 0,
            "segmentation": [],
        },
        # 5: crowd: skipped
        {
            "id": 5,
            "image_id": 1,
            "category_id": 0,
            "bbox": [10, 60, 30, 30],
            "iscrowd": 1,
            "segmentation": rle_uncompressed(mask_utils.decode(crowd)),  # size [120, 200]
        },
        # 6: unknown category: skipped
        {"id": 6, "image_id": 1, "category_id": 99, "bbox": [1, 1, 5, 5], "iscrowd": 0},
        # 7: unknown image: skipped
        {"id": 7, "image_id": 42, "category_id": 0, "bbox": [1, 1, 5, 5], "iscrowd": 0},
        # 8: box only without a segmentation key, on the second image (same stem "pic")
        {"id": 8, "image_id": 2, "category_id": 0, "bbox": [10.5, 20.25, 30, 50.5]},
        # 9: polygon on the second image, partly outside the image (clipped)
        {
            "id": 9,
            "image_id": 2,
            "category_id": 12,
            "bbox": [40, 60, 60, 70],
            "iscrowd": 0,
            "segmentation": [[40, 60, 100, 60, 100, 130, 40, 130]],
        },
    ]
    images = [
        {"id": i, "file_name": files[i], "width": SIZES[i][0], "height": SIZES[i][1]} for i in files
    ]
    coco = {"images": images, "annotations": annotations, "categories": CATEGORIES}
    return coco, image_dir


EXPORTED = {1: [1, 2, 3, 4], 2: [8, 9], 3: []}  # image id -> annotation ids that become rows


@pytest.fixture()
def dataset(tmp_path) -> tuple[dict, Path]:
    return make_coco(tmp_path)


def _read_rows(path: Path) -> list[list[str]]:
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n")
    return [line.split(" ") for line in text.splitlines()]


def _files_by_image(out: Path, split: str = "train") -> dict[int, dict]:
    manifest = json.loads((out / f"manifest_{split}.json").read_text())
    return {f["image_id"]: f for f in manifest["files"]}


def _class_to_coco(out: Path) -> dict[int, int]:
    entries = json.loads((out / "class_map.json").read_text())
    return {e["yolo_index"]: e["coco_category_id"] for e in entries}


def _coco_mask(ann: dict, width: int, height: int) -> np.ndarray:
    """The object's pixels by COCO's rules: its mask, or its box clipped to the image."""
    seg = ann.get("segmentation")
    if geo.segmentation_kind(seg) == "none":
        x0, y0, x1, y1 = geo.clip_xyxy(geo.xywh_to_xyxy(ann["bbox"]), width, height)
        seg = [[x0, y0, x1, y0, x1, y1, x0, y1]]
    return mask_utils.decode(geo.to_rle(seg, height, width)).astype(bool)


def _raster(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Rasterise a pixel-space polygon by COCO's rules (pycocotools)."""
    return _coco_mask({"segmentation": [points.reshape(-1).tolist()]}, width, height)


def _ultralytics_raster(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Rasterise as Ultralytics' ``polygon2mask`` does: truncate to int32, ``cv2.fillPoly``."""
    mask = np.zeros((height, width), dtype=np.uint8)
    cv2.fillPoly(mask, [np.asarray(points, dtype=np.int32)], 1)
    return mask.astype(bool)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / float((a | b).sum())


def test_class_map_is_contiguous_in_category_order():
    cmap = build_class_map(CATEGORIES)
    assert [(e["yolo_index"], e["coco_category_id"], e["name"]) for e in cmap] == [
        (0, 7, "square"),
        (1, 0, "circle"),
        (2, 3, "unused"),
        (3, 12, "blob"),
    ]
    with pytest.raises(ValueError, match="duplicate category id 7"):
        build_class_map([*CATEGORIES, {"id": 7, "name": "again"}])


def test_detect_rows_parse_back_to_the_clipped_coco_boxes(dataset, tmp_path):
    coco, image_dir = dataset
    out = tmp_path / "yolo"
    result = export_yolo(coco, image_dir, out, task="detect")
    assert isinstance(result, YoloExport)
    assert result.data_yaml == out.resolve() / "data.yaml"
    assert (result.task, result.split) == ("detect", "train")
    anns = {a["id"]: a for a in coco["annotations"]}
    to_coco = _class_to_coco(out)
    for image_id, entry in _files_by_image(out).items():
        w, h = SIZES[image_id]
        rows = _read_rows(out / entry["label"])
        assert len(rows) == len(EXPORTED[image_id])
        for row, ann_id in zip(rows, EXPORTED[image_id], strict=True):
            ann = anns[ann_id]
            assert len(row) == 5
            cls, values = int(row[0]), [float(v) for v in row[1:]]
            assert all(len(v.split(".")[1]) == 6 for v in row[1:])
            assert all(0.0 <= v <= 1.0 for v in values)
            assert to_coco[cls] == ann["category_id"]
            xc, yc, bw, bh = values
            got = ((xc - bw / 2) * w, (yc - bh / 2) * h, (xc + bw / 2) * w, (yc + bh / 2) * h)
            want = geo.clip_xyxy(geo.xywh_to_xyxy(ann["bbox"]), w, h)
            for g, x, size in zip(got, want, (w, h, w, h), strict=True):
                assert abs(g - x) <= 1e-4 * size


def test_segment_rows_rasterise_to_the_coco_masks(dataset, tmp_path):
    coco, image_dir = dataset
    out = tmp_path / "yolo"
    export_yolo(coco, image_dir, out, task="segment")
    anns = {a["id"]: a for a in coco["annotations"]}
    to_coco = _class_to_coco(out)
    for image_id, entry in _files_by_image(out).items():
        w, h = SIZES[image_id]
        rows = _read_rows(out / entry["label"])
        assert len(rows) == len(EXPORTED[image_id])  # multi-part objects stay on one row
        for row, ann_id in zip(rows, EXPORTED[image_id], strict=True):
            ann = anns[ann_id]
            assert len(row) % 2 == 1 and len(row) >= 7
            cls, values = int(row[0]), np.array([float(v) for v in row[1:]])
            assert to_coco[cls] == ann["category_id"]
            assert values.min() >= 0.0 and values.max() <= 1.0
            points = values.reshape(-1, 2) * np.array([w, h])
            iou = _iou(_raster(points, w, h), _coco_mask(ann, w, h))
            assert iou > 0.9, (ann_id, iou)


def test_rle_polygon_gives_back_the_mask_pixels_in_ultralytics_raster(dataset, tmp_path):
    coco, image_dir = dataset
    out = tmp_path / "yolo"
    export_yolo(coco, image_dir, out, task="segment")
    row = _read_rows(out / _files_by_image(out)[1]["label"])[EXPORTED[1].index(3)]
    w, h = SIZES[1]
    points = np.array([float(v) for v in row[1:]]).reshape(-1, 2) * np.array([w, h])
    got, want = _ultralytics_raster(points, w, h), _rle_mask().astype(bool)
    assert not (want & ~got).any()  # every mask pixel, both blobs; only the bridge is extra
    assert _iou(got, want) > 0.97


def test_box_only_object_is_its_clipped_box_corners(dataset, tmp_path):
    coco, image_dir = dataset
    out = tmp_path / "yolo"
    export_yolo(coco, image_dir, out, task="segment")
    rows = _read_rows(out / _files_by_image(out)[1]["label"])
    box_row = rows[EXPORTED[1].index(4)]
    w, h = SIZES[1]
    points = np.array([float(v) for v in box_row[1:]]).reshape(-1, 2) * np.array([w, h])
    np.testing.assert_allclose(points, [[0, 90], [40, 90], [40, 120], [0, 120]], atol=1e-3)


def test_data_yaml_and_class_map(dataset, tmp_path):
    coco, image_dir = dataset
    out = tmp_path / "yolo"
    data_yaml = export_yolo(coco, image_dir, out, task="detect", split="train").data_yaml
    text = data_yaml.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert data["names"] == {0: "square", 1: "circle", 2: "unused", 3: "blob"}
    assert all(isinstance(k, int) and isinstance(v, str) for k, v in data["names"].items())
    assert Path(data["path"]) == out.resolve()
    assert data["train"] == "images/train"
    assert data["val"] == "images/train"  # Ultralytics needs a val key; said in a comment
    assert "No 'val' split exported yet" in text
    assert "#   1 -> 0 (circle)" in text and "#   2 -> 3 (unused)" in text
    assert json.loads((out / "class_map.json").read_text()) == [
        {"yolo_index": 0, "coco_category_id": 7, "name": "square"},
        {"yolo_index": 1, "coco_category_id": 0, "name": "circle"},
        {"yolo_index": 2, "coco_category_id": 3, "name": "unused"},
        {"yolo_index": 3, "coco_category_id": 12, "name": "blob"},
    ]


def test_negative_image_gets_an_empty_label_file(dataset, tmp_path):
    coco, image_dir = dataset
    out = tmp_path / "yolo"
    export_yolo(coco, image_dir, out, task="segment")
    entry = _files_by_image(out)[3]
    assert entry["label"] == "labels/train/neg.txt" and entry["image"] == "images/train/neg.jpg"
    assert (out / entry["label"]).read_bytes() == b""
    assert (out / entry["image"]).is_file()


def test_images_are_copied_with_unique_stems_and_labels_beside(dataset, tmp_path):
    coco, image_dir = dataset
    out = tmp_path / "yolo"
    export_yolo(coco, image_dir, out)
    images = sorted(p.name for p in (out / "images" / "train").iterdir())
    labels = sorted(p.name for p in (out / "labels" / "train").iterdir())
    assert images == ["neg.jpg", "pic.png", "pic_id2.png"]
    assert labels == ["neg.txt", "pic.txt", "pic_id2.txt"]
    files = _files_by_image(out)
    for image_id, entry in files.items():
        copied = out / entry["image"]
        assert not copied.is_symlink()
        assert (
            copied.read_bytes()
            == (image_dir / coco["images"][image_id - 1]["file_name"]).read_bytes()
        )
    # Deterministic: a second export names every file the same and writes the same labels.
    again = tmp_path / "again"
    export_yolo(coco, image_dir, again)
    for entry in files.values():
        assert (again / entry["label"]).read_bytes() == (out / entry["label"]).read_bytes()
    assert _files_by_image(again) == files


def test_skipped_items_are_counted(dataset, tmp_path):
    coco, image_dir = dataset
    result = export_yolo(coco, image_dir, tmp_path / "yolo", task="segment")
    assert result.skipped == {"crowd": 1, "unknown-category": 1, "unknown-image": 1}
    assert (result.images, result.objects, result.copied) == (3, 6, 3)
    manifest = json.loads((tmp_path / "yolo" / "manifest_train.json").read_text())
    assert manifest["skip_counts"] == result.skipped
    assert {"reason": "crowd", "annotation_id": 5, "image_id": 1} in manifest["skipped"]


@pytest.mark.parametrize(
    ("task", "split", "message"),
    [
        ("classify", "train", "task must be one of detect, segment; got 'classify'"),
        ("detect", "../up", "split must be one of train, val, test; got '../up'"),
        ("detect", "", "split must be one of train, val, test; got ''"),
    ],
)
def test_bad_task_or_split_is_a_value_error(dataset, tmp_path, task, split, message):
    coco, image_dir = dataset
    with pytest.raises(ValueError, match=re.escape(message)):
        export_yolo(coco, image_dir, tmp_path / "yolo", task=task, split=split)
    assert not (tmp_path / "yolo").exists()


def test_split_enum_is_accepted_and_written_as_plain_text(dataset, tmp_path):
    coco, image_dir = dataset
    result = export_yolo(coco, image_dir, tmp_path / "yolo", split=Split.val)
    assert result.split == "val" and type(result.split) is str
    assert (tmp_path / "yolo" / "labels" / "val" / "neg.txt").is_file()
    assert json.loads((tmp_path / "yolo" / "manifest_val.json").read_text())["split"] == "val"


def test_splits_share_one_folder_and_one_class_map(dataset, tmp_path):
    coco, image_dir = dataset
    out = tmp_path / "yolo"
    export_yolo(coco, image_dir, out, split="train")
    data_yaml = export_yolo(coco, image_dir, out, split="val").data_yaml
    data = yaml.safe_load(data_yaml.read_text())
    assert (data["train"], data["val"]) == ("images/train", "images/val")
    assert "test" not in data and "not exported yet" not in data_yaml.read_text()
    assert sorted(p.name for p in (out / "labels" / "val").iterdir()) == [
        "neg.txt",
        "pic.txt",
        "pic_id2.txt",
    ]
    with pytest.raises(OutputError, match="already holds files"):
        export_yolo(coco, image_dir, out, split="val")
    with pytest.raises(OutputError, match="other classes"):
        export_yolo({**coco, "categories": CATEGORIES[:2]}, image_dir, out, split="test")
    with pytest.raises(OutputError, match="task 'detect'"):
        export_yolo(coco, image_dir, out, task="segment", split="test")


def test_labels_only_without_copying_images(dataset, tmp_path):
    coco, image_dir = dataset
    out = tmp_path / "yolo"
    result = export_yolo(coco, image_dir, out, copy_images=False)
    assert result.copied == 0
    assert list((out / "images" / "train").iterdir()) == []
    assert len(list((out / "labels" / "train").iterdir())) == 3


def test_missing_and_mismatched_images_are_skipped(dataset, tmp_path):
    coco, image_dir = dataset
    (image_dir / "neg.jpg").unlink()
    coco["images"][1]["width"] = 91
    result = export_yolo(coco, image_dir, tmp_path / "yolo")
    assert result.skipped["image-missing"] == 1 and result.skipped["size-mismatch"] == 1
    assert [p.name for p in (tmp_path / "yolo" / "labels" / "train").iterdir()] == ["pic.txt"]


def test_nothing_is_written_outside_the_output_folder(tmp_path):
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    Image.new("RGB", (20, 10)).save(tmp_path / "evil.png")
    coco = {
        "images": [{"id": 1, "file_name": "../../evil.png", "width": 20, "height": 10}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4]}],
        "categories": [{"id": 1, "name": "x"}],
    }
    before = {p for p in tmp_path.rglob("*")}
    out = tmp_path / "out"
    export_yolo(coco, deep, out)
    new = {p for p in tmp_path.rglob("*")} - before
    assert all(out in p.parents or p == out for p in new)
    assert (out / "images" / "train" / "evil.png").is_file()
    assert _read_rows(out / "labels" / "train" / "evil.txt") == [
        ["0", "0.150000", "0.300000", "0.200000", "0.400000"]
    ]


def _box_coco(root: Path, names: list[str]) -> dict:
    """A COCO dict of one 40x30 JPEG per name (distinct pixels), one box each at a distinct x."""
    images, annotations = [], []
    for i, name in enumerate(names, start=1):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30), (20 * i, 0, 0)).save(path)
        images.append({"id": i, "file_name": name, "width": 40, "height": 30})
        annotations.append({"id": i, "image_id": i, "category_id": 1, "bbox": [4 * i, 2, 4, 6]})
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "x"}]}


def test_equal_names_in_different_folders_get_their_own_image_and_label(tmp_path):
    src = tmp_path / "src"
    coco = _box_coco(src, ["a/x.jpg", "b/x.jpg"])
    out = tmp_path / "yolo"
    export_yolo(coco, src, out)
    assert sorted(p.name for p in (out / "images" / "train").iterdir()) == ["x.jpg", "x_id2.jpg"]
    assert sorted(p.name for p in (out / "labels" / "train").iterdir()) == ["x.txt", "x_id2.txt"]
    entries = _files_by_image(out)
    assert (entries[1]["image"], entries[1]["label"]) == (
        "images/train/x.jpg",
        "labels/train/x.txt",
    )
    assert entries[2]["label"] == "labels/train/x_id2.txt"
    for image_id, name in ((1, "a/x.jpg"), (2, "b/x.jpg")):
        entry = entries[image_id]
        assert Path(entry["image"]).stem == Path(entry["label"]).stem
        assert (out / entry["image"]).read_bytes() == (src / name).read_bytes()
        x_center = (4 * image_id + 2) / 40  # this image's own box, nobody else's
        assert _read_rows(out / entry["label"]) == [
            ["0", f"{x_center:.6f}", "0.166667", "0.100000", "0.200000"]
        ]


def test_a_taken_id_name_gets_a_count(tmp_path):
    """``x_id2`` is a source name already: the second ``x`` with id 2 becomes ``x_id2_2``."""
    coco = _box_coco(tmp_path, ["x_id2.JPG", "x.jpg", "b/x.jpg"])
    for image, ann, image_id in zip(coco["images"], coco["annotations"], (5, 6, 2), strict=True):
        image["id"] = ann["image_id"] = image_id
    export_yolo(coco, tmp_path, tmp_path / "yolo", copy_images=False)
    labels = {e["source"]: e["label"] for e in _files_by_image(tmp_path / "yolo").values()}
    assert labels == {
        "x_id2.JPG": "labels/train/x_id2.txt",
        "x.jpg": "labels/train/x.txt",
        "b/x.jpg": "labels/train/x_id2_2.txt",
    }
    images = {e["source"]: e["image"] for e in _files_by_image(tmp_path / "yolo").values()}
    assert images["x_id2.JPG"] == "images/train/x_id2.jpg"  # the suffix is lowercased


def _no_nan(text: str) -> object:
    def refuse(name: str) -> object:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_written_json_is_strict_even_for_non_finite_source_values(tmp_path):
    """The class map and manifests carry no extra keys; ids are carried, and may be NaN."""
    coco = _box_coco(tmp_path, ["x.jpg"])
    coco["images"].append({"id": float("nan"), "file_name": "gone.jpg", "width": 4, "height": 4})
    coco["annotations"][0]["id"] = float("inf")
    coco["annotations"][0]["iscrowd"] = 1  # skipped, so its id is written to the manifest
    out = tmp_path / "yolo"
    result = export_yolo(coco, tmp_path, out)
    assert result.skipped == {"crowd": 1, "image-missing": 1}
    written = sorted(out.glob("*.json"))
    assert [p.name for p in written] == ["class_map.json", "manifest_train.json"]
    manifest = _no_nan((out / "manifest_train.json").read_text(encoding="utf-8"))
    assert {"reason": "crowd", "annotation_id": None, "image_id": 1} in manifest["skipped"]
    assert _no_nan((out / "class_map.json").read_text(encoding="utf-8"))


def _temporary_files(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize("failing", [".txt", ".jpg"])
def test_a_full_disk_is_an_output_error_naming_the_file(tmp_path, monkeypatch, failing):
    coco = _box_coco(tmp_path / "src", ["x.jpg"])
    out = tmp_path / "yolo"
    real_replace = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        if str(dst).endswith(failing):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OutputError) as caught:
        export_yolo(coco, tmp_path / "src", out)
    folder = "labels" if failing == ".txt" else "images"
    target = out.resolve() / folder / "train" / f"x{failing}"
    assert str(target) in str(caught.value) and "No space left on device" in str(caught.value)
    assert not target.exists() and _temporary_files(out) == []


def test_a_labels_folder_that_is_a_file_is_an_output_error(tmp_path):
    coco = _box_coco(tmp_path / "src", ["x.jpg"])
    out = tmp_path / "yolo"
    (out / "labels").mkdir(parents=True)
    (out / "labels" / "train").write_text("in the way", encoding="utf-8")
    with pytest.raises(OutputError, match=re.escape(str(out / "labels" / "train"))):
        export_yolo(coco, tmp_path / "src", out)
    assert _temporary_files(out) == []
    assert not (out / "data.yaml").exists()


def _union_of(parts: list[np.ndarray], size: int) -> np.ndarray:
    rles = mask_utils.frPyObjects([p.reshape(-1).tolist() for p in parts], size, size)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


@settings(max_examples=60, deadline=None)
@given(
    cells=st.lists(
        st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=6, unique=True
    ),
    shifts=st.lists(st.integers(0, 3), min_size=6, max_size=6),
    flips=st.lists(st.booleans(), min_size=6, max_size=6),
)
def test_merged_parts_fill_exactly_their_union(cells, shifts, flips):
    """Disjoint squares, any start vertex and direction: one polygon, same pixels as the parts."""
    parts = []
    for (cx, cy), shift, flip in zip(cells, shifts, flips, strict=False):
        x, y = 4 + 20 * cx, 4 + 20 * cy
        square = np.array([[x, y], [x + 12, y], [x + 12, y + 12], [x, y + 12]], float)
        square = np.roll(square[::-1] if flip else square, shift, axis=0)
        parts.append(square)
    merged = merge_parts(parts)
    if len(parts) > 1:  # every loop closed (+1 point), every part but the first re-entered (+1)
        assert len(merged) == sum(len(p) for p in parts) + 2 * len(parts) - 2
    got = mask_utils.decode(
        mask_utils.merge(mask_utils.frPyObjects([merged.reshape(-1).tolist()], 110, 110))
    ).astype(bool)
    assert np.array_equal(got, _union_of(parts, 110))


def test_parts_of_opposite_orientation_or_outside_the_image(tmp_path):
    """Opposite windings must not cancel out; a part wholly outside the image is dropped."""
    Image.new("RGB", (100, 50)).save(tmp_path / "im.png")
    cw = [10, 10, 30, 10, 30, 30, 10, 30]
    ccw = [60, 10, 60, 30, 80, 30, 80, 10]
    outside = [120, 10, 140, 10, 140, 30]
    coco = {
        "images": [{"id": 1, "file_name": "im.png", "width": 100, "height": 50}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [cw, ccw, outside]},
            {"id": 2, "image_id": 1, "category_id": 1, "segmentation": [outside]},
        ],
        "categories": [{"id": 1, "name": "x"}],
    }
    result = export_yolo(coco, tmp_path, tmp_path / "out", task="segment")
    assert result.skipped == {"empty-mask": 1} and result.objects == 1
    row = _read_rows(tmp_path / "out" / "labels" / "train" / "im.txt")[0]
    points = np.array([float(v) for v in row[1:]]).reshape(-1, 2) * np.array([100, 50])
    want = _coco_mask({"segmentation": [cw, ccw]}, 100, 50)
    assert want.sum() == 800 and _iou(_raster(points, 100, 50), want) == 1.0


# --- hard links, one dataset from several runs, the single-split warning ----------------------


def test_images_can_be_hard_links_not_copies(dataset, tmp_path):
    coco, image_dir = dataset
    out = tmp_path / "yolo"
    result = export_yolo(coco, image_dir, out, link=True)
    assert (result.linked, result.copied) == (3, 0)
    manifest = json.loads((out / "manifest_train.json").read_text())
    assert (manifest["linked_images"], manifest["copied_images"]) == (3, 0)
    for entry in _files_by_image(out).values():
        source = image_dir / next(
            im["file_name"] for im in coco["images"] if im["id"] == entry["image_id"]
        )
        assert os.path.samefile(out / entry["image"], source), "a link, not a second copy"
    assert not [p for p in (out / "images" / "train").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("code", [errno.EXDEV, errno.EPERM, errno.EEXIST])
def test_a_link_that_fails_falls_back_to_a_copy(dataset, tmp_path, monkeypatch, code):
    coco, image_dir = dataset

    def refuse(*_a, **_k):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "link", refuse)
    out = tmp_path / "yolo"
    result = export_yolo(coco, image_dir, out, link=True)
    assert (result.linked, result.copied) == (0, 3)
    for entry in _files_by_image(out).values():
        assert os.stat(out / entry["image"]).st_nlink == 1


def test_one_split_says_so_in_data_yaml_and_in_the_log(dataset, tmp_path, caplog):
    coco, image_dir = dataset
    out = tmp_path / "yolo"
    with caplog.at_level("WARNING"):
        export_yolo(coco, image_dir, out, split="train")
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "no 'val' split exported yet" in warned[0]
    assert "--split val --yolo-dir" in warned[0] and str(out) in warned[0]
    assert "the same images" in (out / "data.yaml").read_text()
    caplog.clear()
    with caplog.at_level("WARNING"):
        export_yolo(coco, image_dir, out, split="val")
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_a_taken_split_is_refused_before_any_work(dataset, tmp_path):
    from inpaint_aug.exporters.yolo_layout import check_target

    coco, image_dir = dataset
    out = tmp_path / "yolo"
    check_target(out, "train", "detect", coco["categories"])  # a new folder is fine
    assert not out.exists(), "checking writes nothing"
    export_yolo(coco, image_dir, out, split="train")
    with pytest.raises(OutputError, match="already holds files"):
        check_target(out, "train", "detect", coco["categories"])
    check_target(out, "val", "detect", coco["categories"])
    with pytest.raises(OutputError, match="task 'detect'"):
        check_target(out, "val", "segment", coco["categories"])


def test_a_yolo_dir_that_cannot_be_written_is_refused_before_any_work(
    dataset, tmp_path, monkeypatch
):
    from inpaint_aug.exporters.yolo_layout import check_target

    coco, _ = dataset
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder", encoding="utf-8")
    with pytest.raises(OutputError, match=f"{re.escape(str(a_file))} is not a folder"):
        check_target(a_file / "yolo", "train", "detect", coco["categories"])
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != read_only and real_access(p, mode))
    with pytest.raises(OutputError, match=f"{re.escape(str(read_only))} is not writable"):
        check_target(read_only / "yolo", "train", "detect", coco["categories"])
    check_target(tmp_path / "yolo", "train", "detect", coco["categories"])  # writable: fine


def test_runs_of_two_splits_build_one_yolo_dataset(shapes, prompts_file, tmp_path, tiny_inpainter):
    from dataclasses import replace

    from inpaint_aug.options import PlanSettings, RunOptions
    from inpaint_aug.pipeline.run import _export, run

    plan = PlanSettings(resolution=64, steps=2, min_size=8, min_context=32)
    shared = tmp_path / "dataset"  # outside both OUT folders: the user's choice
    for split in ("train", "val"):
        options = RunOptions(
            coco=shapes,
            prompts=prompts_file,
            out=tmp_path / f"out_{split}",
            format="yolo-seg",
            split=split,
            yolo_dir=shared,
            plan=plan,
        )
        report = run(options, inpainter=tiny_inpainter)
        assert report.exported == str((shared / "data.yaml").resolve())
        manifest = json.loads((shared / f"manifest_{split}.json").read_text())
        assert manifest["linked_images"] == manifest["images"] > 0
        for entry in manifest["files"]:
            assert os.path.samefile(shared / entry["image"], options.out / entry["source"])
    data = yaml.safe_load((shared / "data.yaml").read_text())
    assert (data["train"], data["val"]) == ("images/train", "images/val")
    assert not (tmp_path / "out_train" / "yolo").exists()
    # The check a run makes before any slow work: this split is taken, the test split is not.
    source = json.loads(shapes.read_text(encoding="utf-8"))
    with pytest.raises(OutputError, match="already holds files"):
        _export(source, tmp_path / "new", options, check=True)
    assert _export(source, tmp_path / "new", replace(options, split="test"), check=True) is None
    assert not (shared / "images" / "test").exists() and not (tmp_path / "new").exists()


def test_yolo_dir_needs_a_yolo_format():
    from inpaint_aug.errors import OptionsError
    from inpaint_aug.options import RunOptions

    with pytest.raises(OptionsError, match="--yolo-dir: needs --format yolo"):
        RunOptions("a.json", "p.yaml", yolo_dir="ds")
    with pytest.raises(OptionsError, match="--yolo-dir"):
        RunOptions("a.json", "p.yaml", format="yolo", yolo_dir="")
    assert (
        RunOptions("a.json", "p.yaml", format="yolo", yolo_dir="ds").to_dict()["yolo_dir"] == "ds"
    )


def test_run_with_a_yolo_dir_under_a_file_stops_before_the_model(shapes, prompts_file, tmp_path):
    from typer.testing import CliRunner

    from inpaint_aug.cli import app

    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder", encoding="utf-8")
    out = tmp_path / "out"
    args = ["run", str(shapes), "--prompts", str(prompts_file), "--out", str(out)]
    args += ["--model", "tiny-random", "--resolution", "64", "--steps", "2", "--format", "yolo"]
    args += ["--yolo-dir", str(a_file / "yolo")]
    result = CliRunner().invoke(app, args)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and "is not a folder" in lines[0], lines
    assert not out.exists()
