"""Output records: one naming rule, labels carried over, provenance, final ids."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
from helpers import make_edit, rle_encode
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

from inpaint_aug import geometry as geo
from inpaint_aug.errors import OutputError
from inpaint_aug.files import inside, safe_stem, write_json
from inpaint_aug.pipeline.plan import ImageJob
from inpaint_aug.pipeline.records import (
    IMAGES_DIR,
    ImageRecord,
    assemble,
    carry_annotation,
    edit_provenance,
    make_record,
    original_record,
    output_tasks,
)

SAFE = re.compile(r"[\w\-.]+")
NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "file_name,stem",
    [
        pytest.param("../../etc/passwd", "passwd", id="posix-traversal"),
        pytest.param("C:\\x\\y.png", "y", id="windows-absolute"),
        pytest.param("a\\..\\..\\b.png", "b", id="windows-traversal"),
        pytest.param("/abs/dir/img.jpg", "img", id="posix-absolute"),
        pytest.param("scène 003.png", "scène_003", id="unicode-and-space"),
        pytest.param("e\u0301te\u0301.png", "\u00e9t\u00e9", id="nfc-normalised"),
        pytest.param("", "image", id="empty"),
        pytest.param(".", "image", id="dot"),
        pytest.param("..", "image", id="dotdot"),
        pytest.param("my  file name.jpg", "my_file_name", id="spaces"),
        pytest.param(" lead and trail .png", "lead_and_trail", id="outer-spaces"),
        pytest.param("tab\tnew\nline.png", "tab_new_line", id="control-chars"),
        pytest.param("nul\x00byte.png", "nul_byte", id="nul-byte"),
        pytest.param("a/b/c.tar.gz", "c.tar", id="two-suffixes"),
        pytest.param("noext", "noext", id="no-suffix"),
        pytest.param("x" * 150 + ".png", "x" * 100, id="long"),
    ],
)
def test_safe_stem(file_name, stem):
    assert safe_stem(file_name) == stem


@pytest.mark.parametrize("file_name", [".hidden", "..png", "...", ".hidden.png", "-rf.png"])
def test_safe_stem_never_hidden_nor_empty(file_name):
    stem = safe_stem(file_name)
    assert stem and SAFE.fullmatch(stem) and not stem.startswith(".")


@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=300))
def test_safe_stem_is_always_one_safe_component(name):
    stem = safe_stem(name)
    assert SAFE.fullmatch(stem), stem
    assert stem not in (".", "..") and not stem.startswith(".") and "/" not in stem
    assert 1 <= len(stem) <= 100


@pytest.mark.parametrize(
    "file_name",
    [
        pytest.param("猫" * 120 + ".png", id="cjk-3-bytes"),
        pytest.param("한" * 90 + ".jpg", id="hangul-3-bytes"),
        pytest.param("\U00020000" * 70 + ".jpg", id="cjk-ext-b-4-bytes"),
    ],
)
def test_output_file_names_fit_the_file_system(file_name):
    job = ImageJob({"id": 123456, "file_name": file_name, "width": 4, "height": 4}, 12, (), ())
    (name,) = output_names([job], "png")
    last = name.split("/")[-1]
    assert len(last.encode("utf-8")) <= NAME_MAX
    assert len(f".{last}.tmp".encode()) <= NAME_MAX  # the temporary name of atomic saves


def jobs_for(*names_ids_copies):
    return [
        ImageJob({"id": i, "file_name": n, "width": 4, "height": 4}, c, (), ())
        for n, i, c in names_ids_copies
    ]


def output_names(jobs: list[ImageJob], image_format: str = "auto") -> list[str]:
    return [t.file_name for t in output_tasks(jobs, [], image_format)[0]]


def test_output_names_unique_for_same_stem_in_different_folders():
    jobs = jobs_for(
        ("a/img.png", 1, 0), ("b/img.png", 2, 0), ("c/IMG.png", 3, 0), ("img.png", 4, 1)
    )
    names = output_names(jobs)
    assert names == [
        "images/img_c0.png",
        "images/img_c0_id2.png",
        "images/IMG_c0_id3.png",  # differs only in case: unique on case-insensitive disks too
        "images/img_c1.png",
    ]


def test_output_names_are_stable_and_use_formats():
    jobs = jobs_for(("x.jpg", 7, 0), ("x.jpg", 7, 1), ("y.png", 8, 0))
    assert output_names(jobs) == ["images/x_c0.jpg", "images/x_c1.jpg", "images/y_c0.png"]
    assert output_names(jobs, "png") == ["images/x_c0.png", "images/x_c1.png", "images/y_c0.png"]
    assert output_names(jobs) == output_names(jobs)


def test_numbers_are_the_output_ids_copies_first_then_originals():
    jobs = jobs_for(("a/x.jpg", 1, 0), ("b/x.jpg", 2, 0))
    images = [job.image for job in jobs] + [{"id": 3, "file_name": "x.JPG"}]
    tasks, originals = output_tasks(jobs, images, "auto")
    assert [t.number for t in tasks] == [1, 2]
    assert [o.number for o in originals] == [3, 4, 5]
    assert [o.file_name for o in originals] == [
        "images/x_orig.jpg",
        "images/x_orig_id2.jpg",  # a/x.jpg and b/x.jpg: two files, never one
        "images/x_orig_id3.jpg",
    ]
    every = [t.file_name for t in tasks] + [o.file_name for o in originals]
    assert len({n.lower() for n in every}) == len(every)


names = st.sampled_from(["a.png", "A.png", "a", "a_c0.png", "a_c0_id2.png", "d/a.png", "../a.png"])


@settings(max_examples=100, deadline=None)
@given(files=st.lists(st.tuples(names, st.integers(0, 2)), max_size=12))
def test_output_names_always_unique(files):
    jobs = jobs_for(*[(n, i, c) for i, (n, c) in enumerate(files, start=1)])
    out = output_names(jobs, "png")
    assert len({n.lower() for n in out}) == len(out)
    assert all(n.startswith(f"{IMAGES_DIR}/") and n.count("/") == 1 for n in out)


@pytest.mark.parametrize(
    "relative",
    [
        pytest.param("../x.png", id="parent"),
        pytest.param("images/../../x.png", id="nested-parent"),
        pytest.param("/etc/passwd", id="absolute"),
        pytest.param("", id="empty"),
        pytest.param(".", id="the-folder-itself"),
        pytest.param("images/../..", id="above"),
    ],
)
def test_inside_refuses_escapes(tmp_path, relative):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OutputError, match="refusing to write outside"):
        inside(out, relative)


def test_inside_accepts_names_under_the_folder(tmp_path):
    out = tmp_path / "out"
    (out / "images").mkdir(parents=True)
    assert inside(out, "images/a_c0.png") == (out / "images" / "a_c0.png").resolve()
    assert inside(out, "images/../annotations.json") == (out / "annotations.json").resolve()


def test_inside_refuses_symlink_escape(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", out / "images")
    with pytest.raises(OutputError):
        inside(out, "images/a.png")


# --- carried-over labels ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "ann,bbox,area",
    [
        pytest.param({"bbox": [2, 3, 4, 5]}, [2, 3, 4, 5], 20.0, id="box-inside"),
        pytest.param(
            {"bbox": [-5, -5, 10, 10], "segmentation": []}, [0, 0, 5, 5], 25.0, id="box-clipped"
        ),
        pytest.param({"bbox": [15, 10, 10, 20]}, [15, 10, 5, 10], 50.0, id="box-past-corner"),
        pytest.param({"bbox": [1.23456, 2, 3, 4]}, [1.235, 2, 3, 4], 12.0, id="rounded"),
        pytest.param(
            {"bbox": [0, 0, 10, 10], "segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]], "area": 7},
            [0, 0, 10, 10],
            100.0,
            id="polygon-area-from-mask",
        ),
        pytest.param(
            {"bbox": [10, 10, 20, 20], "segmentation": [[10, 10, 30, 10, 30, 30, 10, 30]]},
            [10, 10, 10, 10],
            100.0,
            id="polygon-clipped",
        ),
        pytest.param(
            {"bbox": [0, 0, 4, 4], "segmentation": [[0, 0, 4, 0, 0, 4]], "area": 16},
            [0, 0, 4, 4],
            None,
            id="triangle-not-box-area",
        ),
    ],
)
def test_carry_annotation_clips_bbox_and_recomputes_area(ann, bbox, area):
    src = {"id": 5, "image_id": 2, "category_id": 3, "iscrowd": 0, "x_extra": {"k": [1]}, **ann}
    out = carry_annotation(src, 20, 20)
    assert out["bbox"] == pytest.approx(bbox)
    if area is None:  # the mask's pixel count, whatever the file said
        area = float(mask_utils.area(geo.to_rle(src["segmentation"], 20, 20)))
        assert area not in (16.0, 8.0)
    assert out["area"] == area and isinstance(out["area"], float)
    for key in ("id", "image_id", "category_id", "iscrowd", "x_extra"):
        assert out[key] == src[key]
    assert out.get("segmentation") == src.get("segmentation")
    assert "area" not in ann or src["area"] == ann["area"]  # the source is not mutated
    assert src["bbox"] == ann["bbox"]


def test_carry_annotation_rle_area():
    mask = np.zeros((20, 20), np.uint8)
    mask[2:5, 3:10] = 1
    seg = rle_encode(mask)
    out = carry_annotation({"bbox": [3, 2, 7, 3], "segmentation": seg, "iscrowd": 1}, 20, 20)
    assert out["area"] == 21.0 and out["segmentation"] is seg and out["iscrowd"] == 1


# --- records, provenance, final ids ----------------------------------------------------------


def source_job(image_id, ann_ids, copy=0):
    image = {"id": image_id, "file_name": f"src/{image_id}.png", "width": 20, "height": 10}
    image["x_meta"] = "kept"
    anns = tuple(
        {"id": a, "image_id": image_id, "category_id": 1, "bbox": [1, 1, 4, 4], "note": a}
        for a in ann_ids
    )
    return ImageJob(image, copy, anns, ())


def test_make_record():
    job = source_job(7, [70, 71, 72], copy=1)
    done = [make_edit(2, 72), make_edit(0, 70)]
    rec = make_record(job, 3, "images/7_c1.png", "tiny-random", done)
    assert rec.out_image_id == 3 and rec.edited_ann_indexes == (2, 0)
    assert rec.image["id"] == 3 and rec.image["file_name"] == "images/7_c1.png"
    assert (rec.image["width"], rec.image["height"]) == (20, 10) and rec.image["x_meta"] == "kept"
    prov = rec.image["inpaint_aug"]
    assert prov["source_image_id"] == 7 and prov["source_file_name"] == "src/7.png"
    assert prov["copy"] == 1 and prov["model"] == "tiny-random"
    assert [e["source_annotation_id"] for e in prov["edits"]] == [72, 70]
    assert prov["edits"][0] == edit_provenance(done[0])
    assert [a["id"] for a in rec.annotations] == [70, 71, 72]  # ids are final only in assemble
    assert job.image["id"] == 7 and job.image["file_name"] == "src/7.png"  # source untouched


def test_source_urls_move_into_the_provenance_of_an_augmented_copy():
    job = source_job(7, [70], copy=0)
    urls = {"coco_url": "http://x/7.jpg", "flickr_url": "http://f/7.jpg"}
    job = ImageJob({**job.image, **urls}, job.copy, job.annotations, job.edits)
    rec = make_record(job, 1, "images/7_c0.png", "m", [make_edit(0, 70)])
    assert "coco_url" not in rec.image and "flickr_url" not in rec.image
    prov = rec.image["inpaint_aug"]
    assert prov["source_coco_url"] == urls["coco_url"]
    assert prov["source_flickr_url"] == urls["flickr_url"]


def test_original_record_has_provenance_and_keeps_its_urls():
    job = source_job(7, [70, 71], copy=0)
    image = {**job.image, "coco_url": "http://x/7.jpg"}
    _tasks, originals = output_tasks([], [image], "auto")
    rec = original_record(originals[0], list(job.annotations))
    assert rec.image["inpaint_aug"] == {
        "source_image_id": 7,
        "source_file_name": "src/7.png",
        "original": True,
        "edits": [],
    }
    assert rec.image["coco_url"] == "http://x/7.jpg"  # the original is the source photo
    assert rec.image["file_name"] == "images/7_orig.png" and rec.out_image_id == 1
    assert [a["category_id"] for a in rec.annotations] == [
        a["category_id"] for a in job.annotations
    ]


def test_edit_provenance_fields():
    prov = edit_provenance(make_edit(0, 5, seed=99))
    assert prov == {
        "source_annotation_id": 5,
        "annotation_id": None,
        "category_id": 1,
        "prompt": "prompt 5",
        "negative_prompt": "neg",
        "seed": 99,
        "region": "mask",
        "steps": 3,
        "guidance": 2.5,
        "strength": 0.5,
    }


def records():
    first = make_record(source_job(1, [0, 10]), 2, "images/b.png", "m", [make_edit(1, 10)])
    second = make_record(source_job(4, [40, 41, 42]), 1, "images/a.png", "m", [make_edit(2, 42)])
    third = make_record(source_job(5, []), 3, "images/c.png", "m", [])
    return [first, second, third]


RAW = {
    "info": {"v": 1},
    "licenses": [{"id": 1}],
    "categories": [{"id": 1, "name": "thing"}],
    "x_top": [1, 2],
    "images": ["source images are replaced"],
    "annotations": ["source annotations are replaced"],
}


def test_assemble_gives_unique_positive_ids_from_one():
    out = assemble(RAW, records())
    ids = [a["id"] for a in out["annotations"]]
    assert ids == [1, 2, 3, 4, 5]
    assert [im["id"] for im in out["images"]] == [1, 2, 3]  # in output-image order
    # annotations follow their image, keep their order and get the output image id
    assert [(a["image_id"], a["note"]) for a in out["annotations"]] == [
        (1, 40),
        (1, 41),
        (1, 42),
        (2, 0),  # source id 0 is renumbered too
        (2, 10),
    ]


def test_assemble_fills_provenance_annotation_id():
    out = assemble(RAW, records())
    by_id = {a["id"]: a for a in out["annotations"]}
    for image in out["images"]:
        for edit in image["inpaint_aug"]["edits"]:
            new = by_id[edit["annotation_id"]]
            assert new["image_id"] == image["id"]
            assert new["note"] == edit["source_annotation_id"]
    assert [e["annotation_id"] for e in out["images"][0]["inpaint_aug"]["edits"]] == [3]
    assert [e["annotation_id"] for e in out["images"][1]["inpaint_aug"]["edits"]] == [5]
    assert out["images"][2]["inpaint_aug"]["edits"] == []


def test_assemble_keeps_top_level_keys_and_does_not_mutate():
    recs = records()
    before = [json.dumps(r.image, sort_keys=True) for r in recs]
    out = assemble(RAW, recs)
    assert {k: out[k] for k in ("info", "licenses", "categories", "x_top")} == {
        k: RAW[k] for k in ("info", "licenses", "categories", "x_top")
    }
    assert out["images"] != RAW["images"] and RAW["images"] == ["source images are replaced"]
    assert [json.dumps(r.image, sort_keys=True) for r in recs] == before
    assert all(e["annotation_id"] is None for r in recs for e in r.image["inpaint_aug"]["edits"])


def test_assemble_empty():
    out = assemble({"images": [], "annotations": [], "categories": []}, [])
    assert out == {"images": [], "annotations": [], "categories": []}


def test_assemble_rejects_provenance_mismatch():
    rec = records()[0]
    broken = ImageRecord(rec.out_image_id, rec.image, rec.annotations, ())
    with pytest.raises(ValueError):
        assemble(RAW, [broken])


def test_written_dataset_is_the_assembled_one(tmp_path):
    path = tmp_path / "annotations.json"
    write_json(path, assemble(RAW, records()))
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data == json.loads(json.dumps(assemble(RAW, records())))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotations.json"]
