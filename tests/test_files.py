"""files.py: atomic writes, strict JSON, one naming rule; and what a run writes with them."""

from __future__ import annotations

import errno
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from inpaint_aug.demo.synthetic import make_shapes_dataset
from inpaint_aug.errors import OutputError
from inpaint_aug.files import (
    copy_file,
    dumps_json,
    output_errors,
    unique_name,
    write_bytes,
    write_json,
    write_text,
)
from inpaint_aug.options import PlanSettings, RunOptions
from inpaint_aug.pipeline.run import run


def strict_load(text: str) -> object:
    """Parse JSON as JavaScript, Go and Rust do: NaN and Infinity are errors."""

    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


# --- atomic writes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "write,payload,read",
    [
        pytest.param(write_bytes, b"\x00\x01", Path.read_bytes, id="bytes"),
        pytest.param(write_text, "scène ✓\n", lambda p: p.read_text("utf-8"), id="text"),
        pytest.param(write_json, {"a": [1, 2.5]}, lambda p: json.loads(p.read_text()), id="json"),
    ],
)
def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path, write, payload, read):
    path = tmp_path / "f"
    path.write_bytes(b"old")
    write(path, payload)
    assert read(path) == payload
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_full_disk_is_an_output_error_and_the_old_file_survives(tmp_path, monkeypatch):
    path = tmp_path / "annotations.json"
    path.write_text("old", encoding="utf-8")

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OutputError) as caught:
        write_json(path, {"a": 1})
    assert str(caught.value) == f"cannot write {path}: No space left on device"
    assert path.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["annotations.json"]


def test_copy_file_copies_bytes(tmp_path):
    src = tmp_path / "a.jpg"
    src.write_bytes(b"\xff\xd8 jpeg bytes")
    copy_file(src, tmp_path / "b.jpg")
    assert (tmp_path / "b.jpg").read_bytes() == src.read_bytes()
    assert not (tmp_path / "b.jpg").is_symlink()


def test_output_errors_names_the_file(tmp_path):
    expected = r"cannot write .*x\.png: Permission denied"
    with pytest.raises(OutputError, match=expected), output_errors(tmp_path / "x.png"):
        raise PermissionError(errno.EACCES, "Permission denied")


# --- strict JSON -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value,expected",
    [
        pytest.param(float("nan"), None, id="nan"),
        pytest.param(float("inf"), None, id="inf"),
        pytest.param(-math.inf, None, id="minus-inf"),
        pytest.param(
            [1.5, float("nan"), {"k": (float("inf"),)}], [1.5, None, {"k": [None]}], id="nested"
        ),
        pytest.param({"s": "NaN", "n": 0}, {"s": "NaN", "n": 0}, id="untouched"),
    ],
)
def test_dumps_json_is_strict(value, expected):
    assert strict_load(dumps_json({"v": value})) == {"v": expected}


@settings(max_examples=60, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
        lambda kids: st.lists(kids) | st.dictionaries(st.text(), kids),
    )
)
def test_dumps_json_always_parses_strictly(value):
    strict_load(dumps_json(value))


# --- one naming rule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sources,names",
    [
        pytest.param(["a/x.jpg", "b/x.jpg"], ["x_orig.jpg", "x_orig_id2.jpg"], id="two-folders"),
        pytest.param(["x.jpg", "X.jpg"], ["x_orig.jpg", "X_orig_id2.jpg"], id="case-only"),
        pytest.param(["x.png", "x.jpg"], ["x_orig.png", "x_orig_id2.jpg"], id="stem-not-ext"),
        pytest.param(
            ["x.jpg", "x.jpg", "x.jpg"],
            ["x_orig.jpg", "x_orig_id2.jpg", "x_orig_id3.jpg"],
            id="duplicates",
        ),
        pytest.param(["../../etc/p w.jpg"], ["p_w_orig.jpg"], id="escape"),
    ],
)
def test_unique_name_table(sources, names):
    taken: set[str] = set()
    ext = [s.rsplit(".", 1)[1] for s in sources]
    got = [
        unique_name("images", s, "_orig", e, i, taken)
        for i, (s, e) in enumerate(zip(sources, ext, strict=True), 1)
    ]
    assert got == [f"images/{n}" for n in names]


def test_unique_name_counts_when_the_id_name_is_taken():
    taken: set[str] = set()
    first = [unique_name("f", n, "", "txt", i, taken) for n, i in [("x_id2", 9), ("x", 1)]]
    assert first == ["f/x_id2.txt", "f/x.txt"]
    assert unique_name("f", "x", "", "txt", 2, taken) == "f/x_id2_2.txt"


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a.png", "A.PNG", "d/a.png", "a_c0.png", "a"]), st.integers(0, 3)
        ),
        max_size=10,
    )
)
def test_unique_name_never_repeats(items):
    taken: set[str] = set()
    names = [unique_name("images", n, "_c0", "png", i, taken) for n, i in items]
    assert len({n.lower() for n in names}) == len(names)


# --- what a run writes -----------------------------------------------------------------------


class Invert:
    """A stand-in model that inverts each crop."""

    name = "invert"

    def inpaint(self, batch):
        return [(255 - r.pixels) | 16 for r in batch]


PLAN = PlanSettings(resolution=64, min_size=8, min_context=32)


def two_folders_same_name(tmp_path: Path) -> Path:
    """Two images called x.png in folders a/ and b/, of different sizes."""
    coco = make_shapes_dataset(tmp_path / "data", n_images=2, size=(128, 96), seed=4)
    data = json.loads(coco.read_text(encoding="utf-8"))
    root = coco.parent / "images"
    for folder, image in zip(("a", "b"), data["images"], strict=True):
        src = root / image["file_name"]
        pixels = Image.open(src)
        if folder == "b":  # another size: labels on the wrong file would show at once
            pixels = pixels.transpose(Image.Transpose.TRANSPOSE)
            image["width"], image["height"] = image["height"], image["width"]
            for ann in data["annotations"]:
                if ann["image_id"] == image["id"]:
                    x, y, w, h = ann["bbox"]
                    ann["bbox"], ann["segmentation"] = [y, x, h, w], []
        (root / folder).mkdir()
        pixels.save(root / folder / "x.png")
        src.unlink()
        image["file_name"] = f"{folder}/x.png"
    data["images"][0]["flickr_url"] = "http://example.com/x.png"
    data["categories"][0]["x_score"] = float("nan")
    coco.write_text(json.dumps(data), encoding="utf-8")
    return coco


def test_originals_with_equal_names_get_two_files_with_their_own_labels(tmp_path, prompts_file):
    coco = two_folders_same_name(tmp_path)
    out = tmp_path / "out"
    options = RunOptions(coco, prompts_file, out=out, include_originals=True, plan=PLAN)
    report = run(options, inpainter=Invert())
    assert report.originals_written == 2
    data = strict_load((out / "annotations.json").read_text(encoding="utf-8"))
    originals = [im for im in data["images"] if im["inpaint_aug"].get("original")]
    assert len({im["file_name"] for im in originals}) == 2
    source = json.loads(coco.read_text(encoding="utf-8"))
    by_id = {im["id"]: im for im in source["images"]}
    for image in originals:
        prov = image["inpaint_aug"]
        src = by_id[prov["source_image_id"]]
        assert prov == {
            "source_image_id": src["id"],
            "source_file_name": src["file_name"],
            "original": True,
            "edits": [],
        }
        with Image.open(out / image["file_name"]) as pixels:
            assert pixels.size == (image["width"], image["height"])
        assert (out / image["file_name"]).read_bytes() == (
            coco.parent / "images" / src["file_name"]
        ).read_bytes()
        anns = [a for a in data["annotations"] if a["image_id"] == image["id"]]
        want = [a for a in source["annotations"] if a["image_id"] == src["id"]]
        assert [a["bbox"] for a in anns] == [a["bbox"] for a in want]


def test_augmented_copies_move_urls_into_provenance_and_json_is_strict(tmp_path, prompts_file):
    coco = two_folders_same_name(tmp_path)
    out = tmp_path / "out"
    run(RunOptions(coco, prompts_file, out=out, plan=PLAN), inpainter=Invert())
    text = (out / "annotations.json").read_text(encoding="utf-8")
    data = strict_load(text)
    assert data["categories"][0]["x_score"] is None  # NaN in, null out
    first = next(im for im in data["images"] if im["inpaint_aug"]["source_image_id"] == 1)
    assert "flickr_url" not in first
    assert first["inpaint_aug"]["source_flickr_url"] == "http://example.com/x.png"
    strict_load((out / "run.json").read_text(encoding="utf-8"))
    for line in (out / ".inpaint_aug" / "journal.jsonl").read_text(encoding="utf-8").splitlines():
        strict_load(line)
    assert np.asarray(Image.open(out / first["file_name"])).shape[2] == 3
