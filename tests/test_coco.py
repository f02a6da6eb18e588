"""Tests of inpaint_aug.coco: reading, structure checks, image-root discovery, round trip."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from inpaint_aug.dataset.coco import (
    candidate_roots,
    find_image_root,
    load_coco,
    read_json,
)
from inpaint_aug.errors import DatasetError
from inpaint_aug.pipeline.plan import ImageJob
from inpaint_aug.pipeline.records import assemble, make_record

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "datasets" / "shapes" / "annotations.json"


def dataset(**extra) -> dict:
    """A small valid COCO dict with unknown keys at every level."""
    data = {
        "info": {"description": "test", "version": "2.1", "contributor": "me"},
        "licenses": [{"id": 1, "name": "CC0", "url": "https://example.org"}],
        "x_custom": {"nested": [1, 2, {"deep": True}]},
        "images": [
            {"id": 1, "file_name": "a.png", "width": 40, "height": 30, "x_meta": "keep"},
            {"id": 2, "file_name": "b.png", "width": 40, "height": 30, "date_captured": "x"},
        ],
        "annotations": [
            {
                "id": 10,
                "image_id": 1,
                "category_id": 3,
                "bbox": [2, 3, 10, 8],
                "segmentation": [[2, 3, 12, 3, 12, 11, 2, 11]],
                "area": 999.0,
                "iscrowd": 0,
                "attributes": {"occluded": False, "score": 0.5},
            },
            {
                "id": 11,
                "image_id": 2,
                "category_id": 5,
                "bbox": [20, 10, 12, 9],
                "segmentation": [],
                "iscrowd": 0,
                "track_id": 7,
            },
        ],
        "categories": [
            {"id": 3, "name": "cat", "supercategory": "animal", "keypoints": []},
            {"id": 5, "name": "dog", "supercategory": "animal"},
        ],
    }
    data.update(extra)
    return data


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def touch_images(folder: Path, names=("a.png", "b.png")) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"not decoded here")


# --- round trip ------------------------------------------------------------------------------


def test_lossless_round_trip_through_writer_assemble(tmp_path):
    src = dataset()
    path = write(tmp_path / "annotations.json", src)
    touch_images(tmp_path)
    ds = load_coco(path)
    assert ds.raw == src  # the parsed dict is the data model, unchanged
    records = []
    for n, image in enumerate(ds.images, start=1):
        job = ImageJob(image, 0, tuple(ds.anns_by_image.get(image["id"], [])), ())
        records.append(make_record(job, n, f"images/{n}.png", "tiny-random", []))
    out = assemble(ds.raw, records)
    for key in ("info", "licenses", "categories", "x_custom"):
        assert out[key] == src[key]
    assert set(src) == set(out)
    assert out["images"][0]["x_meta"] == "keep" and out["images"][1]["date_captured"] == "x"
    by_source = {a["id"]: a for a in src["annotations"]}
    assert len(out["annotations"]) == len(src["annotations"])
    for new, old in zip(out["annotations"], by_source.values(), strict=True):
        for key in set(old) - {"id", "image_id", "area", "bbox"}:
            assert new[key] == old[key], key
    assert out["annotations"][0]["attributes"] == {"occluded": False, "score": 0.5}
    assert out["annotations"][1]["track_id"] == 7
    assert ds.raw == src  # assembling did not mutate the source


def test_bundled_sample_round_trips(tmp_path):
    ds = load_coco(SAMPLE)
    src = json.loads(SAMPLE.read_text(encoding="utf-8"))
    assert ds.raw == src and ds.image_root == SAMPLE.parent / "images"
    assert ds.category_names() == [c["name"] for c in src["categories"]]
    records = [
        make_record(ImageJob(im, 0, tuple(ds.anns_by_image.get(im["id"], [])), ()), i, "x", "m", [])
        for i, im in enumerate(ds.images, start=1)
    ]
    out = assemble(ds.raw, records)
    assert out["x_generator"] == src["x_generator"]
    assert out["categories"] == src["categories"] and out["info"] == src["info"]
    assert len(out["annotations"]) == len(src["annotations"])


def test_indexes(tmp_path):
    data = dataset()
    data["annotations"].append(dict(data["annotations"][0], id=12))
    path = write(tmp_path / "annotations.json", data)
    touch_images(tmp_path)
    ds = load_coco(path)
    assert [a["id"] for a in ds.anns_by_image[1]] == [10, 12]
    assert [a["id"] for a in ds.anns_by_image[2]] == [11]
    assert set(ds.categories_by_id) == {3, 5} and set(ds.images_by_id) == {1, 2}
    assert ds.category_names() == ["cat", "dog"]
    assert ds.images is ds.raw["images"] and ds.annotations is ds.raw["annotations"]
    assert ds.warnings == ()


def test_annotation_with_unhashable_image_id_does_not_crash_loading(tmp_path):
    data = dataset()
    data["annotations"][1]["image_id"] = [2]
    path = write(tmp_path / "annotations.json", data)
    touch_images(tmp_path)
    ds = load_coco(path)
    assert [a["id"] for a in ds.anns_by_image[1]] == [10]
    assert 2 not in ds.anns_by_image


# --- read_json -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content,message",
    [
        pytest.param(None, "file not found", id="missing"),
        pytest.param("", "the file is empty", id="empty"),
        pytest.param("  \n\t", "the file is empty", id="whitespace"),
        pytest.param(
            '{"images": [\n  1,\n  2,,\n]}', "invalid JSON at line 3, column", id="syntax"
        ),
        pytest.param('{"a": 1', "invalid JSON at line 1, column", id="truncated"),
        pytest.param("[1, 2]", "expected a JSON object at the top, got list", id="list"),
        pytest.param('"text"', "expected a JSON object at the top, got str", id="string"),
        pytest.param("null", "got NoneType", id="null"),
        pytest.param(b"\xff\xfe{", "cannot read the file", id="not-utf8"),
    ],
)
def test_read_json_errors(tmp_path, content, message):
    path = tmp_path / "ann.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError, match=message) as err:
        read_json(path)
    assert str(path) in str(err.value)


def test_read_json_accepts_a_bom(tmp_path):
    path = tmp_path / "ann.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"a": 1}).encode())
    assert read_json(path) == {"a": 1}


def test_read_json_directory(tmp_path):
    with pytest.raises(DatasetError, match="cannot read the file"):
        read_json(tmp_path)


# --- structure -------------------------------------------------------------------------------


def broken(mutate) -> dict:
    data = dataset()
    mutate(data)
    return data


@pytest.mark.parametrize(
    "data,message",
    [
        pytest.param(
            broken(lambda d: d.pop("images")),
            r"missing top-level key\(s\) \['images'\]",
            id="no-images",
        ),
        pytest.param(
            broken(lambda d: (d.pop("annotations"), d.pop("categories"))),
            r"\['annotations', 'categories'\]",
            id="no-anns-no-cats",
        ),
        pytest.param(
            broken(lambda d: d.update(images={})),
            "'images' must be a list, got dict",
            id="images-dict",
        ),
        pytest.param(
            broken(lambda d: d.update(categories=None)),
            "'categories' must be a list",
            id="cats-null",
        ),
        pytest.param(
            broken(lambda d: d["images"].append(5)),
            r"images\[2\] must be an object",
            id="image-int",
        ),
        pytest.param(
            broken(lambda d: d["images"][1].update(id="2")),
            r"images\[1\] has id '2', expected an integer",
            id="image-id-string",
        ),
        pytest.param(
            broken(lambda d: d["annotations"][0].update(id="10")),
            r"annotations\[0\] has id '10', expected an integer",
            id="ann-id-string",
        ),
        pytest.param(
            broken(lambda d: d["categories"][0].update(id="3")),
            r"categories\[0\] has id '3'",
            id="category-id-string",
        ),
        pytest.param(
            broken(lambda d: d["images"][0].pop("id")), r"images\[0\] has id None", id="image-no-id"
        ),
        pytest.param(
            broken(lambda d: d["images"][0].update(id=1.0)), r"has id 1.0", id="image-id-float"
        ),
        pytest.param(
            broken(lambda d: d["images"][0].update(id=True)), r"has id True", id="image-id-bool"
        ),
        pytest.param(
            broken(lambda d: d["images"][1].update(id=1)),
            r"duplicate id 1 in 'images' \(at index 1\)",
            id="duplicate-image-id",
        ),
        pytest.param(
            broken(lambda d: d["annotations"][1].update(id=10)),
            r"duplicate id 10 in 'annotations' \(at index 1\)",
            id="duplicate-annotation-id",
        ),
        pytest.param(
            broken(lambda d: d["categories"][1].update(id=3)),
            r"duplicate id 3 in 'categories'",
            id="duplicate-category-id",
        ),
    ],
)
def test_structural_errors(tmp_path, data, message):
    path = write(tmp_path / "annotations.json", data)
    touch_images(tmp_path)
    with pytest.raises(DatasetError, match=message) as err:
        load_coco(path)
    assert str(path) in str(err.value)


def test_missing_keys_message_names_what_a_coco_file_needs(tmp_path):
    path = write(tmp_path / "a.json", {"images": []})
    with pytest.raises(DatasetError, match=r"needs \['images', 'annotations', 'categories'\]"):
        load_coco(path)


@pytest.mark.parametrize(
    "key,index,value",
    [
        pytest.param("images", 0, 0, id="image-id-0"),
        pytest.param("annotations", 1, 0, id="annotation-id-0"),
        pytest.param("categories", 0, -4, id="category-id-negative"),
    ],
)
def test_id_zero_or_negative_allowed_with_a_warning(tmp_path, key, index, value):
    data = dataset()
    old = data[key][index]["id"]
    data[key][index]["id"] = value
    if key == "images":
        data["annotations"][0]["image_id"] = value
    if key == "categories":
        for ann in data["annotations"]:
            if ann["category_id"] == old:
                ann["category_id"] = value
    path = write(tmp_path / "annotations.json", data)
    touch_images(tmp_path)
    ds = load_coco(path)
    assert len(ds.warnings) == 1
    assert f"{key} id {value} is not positive" in ds.warnings[0]
    lookup = {"images": ds.images_by_id, "categories": ds.categories_by_id}
    if key in lookup:
        assert value in lookup[key]


def test_empty_lists_are_valid(tmp_path):
    path = write(tmp_path / "a.json", {"images": [], "annotations": [], "categories": []})
    ds = load_coco(path)
    assert ds.images == [] and ds.image_root == tmp_path and ds.warnings == ()


# --- image-root discovery --------------------------------------------------------------------


@pytest.mark.parametrize(
    "json_path,image_dir",
    [
        pytest.param("export/_annotations.coco.json", "export", id="roboflow-beside"),
        pytest.param("ds/annotations.json", "ds/images", id="images-beside"),
        pytest.param("ds/annotations/instances_val.json", "ds/val", id="coco-val"),
        pytest.param("ds/annotations/instances_val2017.json", "ds/val2017", id="coco-val2017"),
        pytest.param("ds/annotations/instances_val.json", "ds/images", id="coco-images"),
        pytest.param(
            "ds/annotations/instances_train.json", "ds/images/train", id="coco-images-split"
        ),
        pytest.param("ds/annotations/custom.json", "ds/images", id="parent-images"),
        pytest.param("ds/labels/custom.json", "ds", id="parent"),
    ],
)
def test_image_root_discovery(tmp_path, json_path, image_dir):
    path = write(tmp_path / json_path, dataset())
    touch_images(tmp_path / image_dir)
    ds = load_coco(path)
    assert ds.image_root == tmp_path / image_dir
    assert ds.image_path(ds.images[0]) == tmp_path / image_dir / "a.png"
    assert ds.image_path(ds.images[0]).is_file()


def test_image_root_prefers_the_folder_with_most_images(tmp_path):
    path = write(tmp_path / "ds" / "annotations.json", dataset())
    touch_images(tmp_path / "ds", names=("a.png",))  # a stray copy beside the JSON
    touch_images(tmp_path / "ds" / "images")  # the real folder, with both images
    assert load_coco(path).image_root == tmp_path / "ds" / "images"


def test_image_root_tie_prefers_the_first_candidate(tmp_path):
    path = write(tmp_path / "ds" / "annotations.json", dataset())
    touch_images(tmp_path / "ds")
    touch_images(tmp_path / "ds" / "images")
    assert load_coco(path).image_root == tmp_path / "ds"


def test_candidate_roots_order_for_coco_layout(tmp_path):
    here = tmp_path / "annotations"
    roots = candidate_roots(here / "instances_val.json")
    assert roots[:3] == [here, tmp_path / "val", tmp_path / "images" / "val"]
    assert tmp_path / "images" in roots
    assert candidate_roots(here / "x.json")[0] == here


def test_no_image_root_mentions_images_option(tmp_path):
    path = write(tmp_path / "ds" / "annotations.json", dataset())
    with pytest.raises(DatasetError, match="pass --images DIR") as err:
        load_coco(path)
    message = str(err.value)
    assert "'a.png'" in message and str(path) in message
    assert str(tmp_path / "ds" / "images") in message  # says where it looked


def test_images_option_overrides_discovery(tmp_path):
    path = write(tmp_path / "ds" / "annotations.json", dataset())
    touch_images(tmp_path / "ds")  # would be found automatically ...
    elsewhere = tmp_path / "pics"
    touch_images(elsewhere)
    ds = load_coco(path, images=elsewhere)  # ... but the option wins
    assert ds.image_root == elsewhere
    assert ds.image_path(ds.images[1]) == elsewhere / "b.png"


def test_images_option_must_be_a_folder(tmp_path):
    path = write(tmp_path / "annotations.json", dataset())
    with pytest.raises(DatasetError, match="--images is not a folder"):
        load_coco(path, images=tmp_path / "nope")


def test_absolute_file_names(tmp_path):
    pics = tmp_path / "somewhere"
    touch_images(pics)
    data = dataset()
    for im in data["images"]:
        im["file_name"] = str(pics / im["file_name"])
    path = write(tmp_path / "json" / "annotations.json", data)
    ds = load_coco(path)  # no candidate folder holds them, and none is needed
    assert ds.image_path(ds.images[0]) == pics / "a.png"
    assert ds.image_path(ds.images[0]).is_file()


def test_file_names_in_subfolders(tmp_path):
    data = dataset()
    data["images"][0]["file_name"] = "sub/a.png"
    data["images"][1]["file_name"] = "sub/b.png"
    path = write(tmp_path / "annotations.json", data)
    touch_images(tmp_path / "images" / "sub")
    ds = load_coco(path)
    assert ds.image_root == tmp_path / "images"
    assert ds.image_path(ds.images[0]) == tmp_path / "images" / "sub" / "a.png"


def test_find_image_root_samples_the_first_images(tmp_path):
    images = [{"file_name": f"{i}.png"} for i in range(30)]
    touch_images(tmp_path / "images", names=[f"{i}.png" for i in range(20)])
    assert find_image_root(tmp_path / "a.json", images, sample=20) == tmp_path / "images"


def test_load_does_not_mutate_or_copy_input(tmp_path):
    src = dataset()
    path = write(tmp_path / "annotations.json", src)
    touch_images(tmp_path)
    before = copy.deepcopy(src)
    ds = load_coco(path)
    assert ds.raw == before and ds.path == path
