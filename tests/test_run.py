"""End to end: the labels-are-sacred invariants, pixels, determinism, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import changed_pixels
from PIL import Image
from typer.testing import CliRunner

from inpaint_aug import geometry as geo
from inpaint_aug.cli import app
from inpaint_aug.options import PlanSettings, RunOptions
from inpaint_aug.pipeline.run import run

SMALL = PlanSettings(resolution=64, steps=2, min_size=8, min_context=32)


def full_mask(ann: dict, width: int, height: int) -> np.ndarray:
    """An annotation's mask at image size (box when it has no segmentation)."""
    window = geo.Window(0, 0, max(width, height))
    seg = ann.get("segmentation")
    if geo.segmentation_kind(seg) == "none":
        m = geo.box_mask(geo.xywh_to_xyxy(ann["bbox"]), window)
    else:
        m = geo.window_mask(seg, height, width, window)
    return m[:height, :width]


def run_small(shapes: Path, prompts: Path, out: Path, inpainter, **kw) -> dict:
    options = RunOptions(
        coco=shapes, prompts=prompts, out=out, model="tiny-random", plan=kw.pop("plan", SMALL), **kw
    )
    run(options, inpainter=inpainter)
    return json.loads((out / "annotations.json").read_text(encoding="utf-8"))


def test_labels_carried_over_exactly(shapes, prompts_file, tmp_path, tiny_inpainter):
    src = json.loads(shapes.read_text(encoding="utf-8"))
    out = run_small(shapes, prompts_file, tmp_path / "out", tiny_inpainter)
    assert out["categories"] == src["categories"]
    assert out["info"] == src["info"] and out["licenses"] == src["licenses"]
    assert {k for k in src if k not in ("images", "annotations")} <= set(out)
    ids = [a["id"] for a in out["annotations"]]
    assert len(ids) == len(set(ids)) and min(ids) > 0
    assert len({im["id"] for im in out["images"]}) == len(out["images"])
    for image in out["images"]:
        prov = image["inpaint_aug"]
        source = [a for a in src["annotations"] if a["image_id"] == prov["source_image_id"]]
        mine = [a for a in out["annotations"] if a["image_id"] == image["id"]]
        assert len(mine) == len(source)
        for a, b in zip(source, mine, strict=True):
            assert b["category_id"] == a["category_id"]
            assert b.get("segmentation") == a.get("segmentation")
            assert b["iscrowd"] == a["iscrowd"]
            assert np.allclose(b["bbox"], a["bbox"], atol=1e-3)  # sample boxes lie inside
            assert {k for k in a if k not in ("id", "image_id", "area")} <= set(b)
        edited = {e["annotation_id"] for e in prov["edits"]}
        assert edited <= {a["id"] for a in mine} and prov["edits"]
        for e in prov["edits"]:
            assert e["prompt"] and isinstance(e["seed"], int) and e["region"] in ("mask", "box")


def test_pixels_change_only_inside_regions(shapes, prompts_file, tmp_path, tiny_inpainter):
    src = json.loads(shapes.read_text(encoding="utf-8"))
    out_dir = tmp_path / "out"
    out = run_small(shapes, prompts_file, out_dir, tiny_inpainter)
    src_anns = {a["id"]: a for a in src["annotations"]}
    for image in out["images"]:
        prov = image["inpaint_aug"]
        w, h = image["width"], image["height"]
        changed = changed_pixels(shapes.parent / "images", out_dir, image)
        anns = [a for a in src["annotations"] if a["image_id"] == prov["source_image_id"]]
        masks = {a["id"]: full_mask(a, w, h) for a in anns}
        allowed = np.zeros((h, w), bool)
        for e in prov["edits"]:
            own = geo.dilate(masks[e["source_annotation_id"]], SMALL.dilate)
            others = [m for k, m in masks.items() if k != e["source_annotation_id"]]
            allowed |= own & ~np.any(others, axis=0) if others else own
            core = masks[e["source_annotation_id"]] & ~np.any(others, axis=0)
            assert changed[core].mean() > 0.5, "the object itself was not redrawn"
        assert not (changed & ~allowed).any(), "a pixel outside every edit region changed"
        assert src_anns  # the source had labels to compare with


def decoded(folder: Path, data: dict) -> list[np.ndarray]:
    return [np.asarray(Image.open(folder / im["file_name"])) for im in data["images"]]


def test_same_seed_same_files(shapes, prompts_file, tmp_path, tiny_inpainter):
    a = run_small(shapes, prompts_file, tmp_path / "a", tiny_inpainter, batch_size=3)
    b = run_small(shapes, prompts_file, tmp_path / "b", tiny_inpainter, batch_size=3)
    assert a == b
    for pa, pb in zip(decoded(tmp_path / "a", a), decoded(tmp_path / "b", b), strict=True):
        assert np.array_equal(pa, pb)


def test_batch_size_changes_labels_not_at_all_pixels_by_rounding(
    shapes, prompts_file, tmp_path, tiny_inpainter
):
    a = run_small(shapes, prompts_file, tmp_path / "a", tiny_inpainter, batch_size=1)
    b = run_small(shapes, prompts_file, tmp_path / "b", tiny_inpainter, batch_size=5)
    assert a == b  # same prompts, seeds, labels and file names
    for pa, pb in zip(decoded(tmp_path / "a", a), decoded(tmp_path / "b", b), strict=True):
        assert np.abs(pa.astype(int) - pb).max() <= 2  # float rounding of batched kernels


def test_other_seed_other_pixels(shapes, prompts_file, tmp_path, tiny_inpainter):
    a = run_small(shapes, prompts_file, tmp_path / "a", tiny_inpainter)
    plan = PlanSettings(**{**SMALL.__dict__, "seed": 7})
    run_small(shapes, prompts_file, tmp_path / "b", tiny_inpainter, plan=plan)
    name = a["images"][0]["file_name"]
    assert not np.array_equal(
        np.asarray(Image.open(tmp_path / "a" / name)), np.asarray(Image.open(tmp_path / "b" / name))
    )


def test_copies_make_distinct_images(shapes, prompts_file, tmp_path, tiny_inpainter):
    plan = PlanSettings(**{**SMALL.__dict__, "copies": 2})
    out = run_small(shapes, prompts_file, tmp_path / "o", tiny_inpainter, plan=plan)
    copies = [im["inpaint_aug"]["copy"] for im in out["images"]]
    assert copies.count(0) == copies.count(1) > 0
    assert len({im["file_name"] for im in out["images"]}) == len(out["images"])


def test_cli_end_to_end_with_model_folder(
    shapes, prompts_file, tmp_path, tiny_model_dir, tiny_clip_dir
):
    out = tmp_path / "cli-out"
    args = [
        "run",
        "--verifier-model",
        str(tiny_clip_dir),
        str(shapes),
        "--prompts",
        str(prompts_file),
        "--out",
        str(out),
        "--model",
        str(tiny_model_dir),
        "--device",
        "cpu",
        "--resolution",
        "64",
        "--steps",
        "2",
        "--min-size",
        "8",
        "--batch-size",
        "3",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "objects redrawn" in result.output
    data = json.loads((out / "annotations.json").read_text(encoding="utf-8"))
    verified = [e["verify"] for im in data["images"] for e in im["inpaint_aug"]["edits"]]
    assert verified and all(v["verifier"] == f"clip:{tiny_clip_dir}" for v in verified)
    assert data["images"] and all((out / im["file_name"]).is_file() for im in data["images"])
    report = json.loads((out / "run.json").read_text())
    assert report["counts"]["images_written"] == len(data["images"])
    assert data["images"][0]["inpaint_aug"]["model"] == str(tiny_model_dir)


def test_cli_refuses_non_empty_output(shapes, prompts_file, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    args = [
        "run",
        str(shapes),
        "--prompts",
        str(prompts_file),
        "--out",
        str(out),
        "--model",
        "tiny-random",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "not empty" in result.output and "Traceback" not in result.output
    assert (out / "keep.txt").read_text() == "user data"


@pytest.mark.parametrize(
    "flag,value",
    [("--region", "blob"), ("--resolution", "100"), ("--image-format", "gif"), ("--device", "tpu")],
)
def test_cli_usage_errors_exit_2(shapes, prompts_file, flag, value):
    result = CliRunner().invoke(
        app, ["run", str(shapes), "--prompts", str(prompts_file), flag, value]
    )
    assert result.exit_code == 2


def run_with_originals(shapes: Path, prompts: Path, out: Path, inpainter) -> tuple:
    """A small run with ``--include-originals --format yolo``: its report and annotations."""
    options = RunOptions(
        coco=shapes,
        prompts=prompts,
        out=out,
        model="tiny-random",
        include_originals=True,
        format="yolo",
        plan=SMALL,
    )
    report = run(options, inpainter=inpainter)
    return report, json.loads((out / "annotations.json").read_text(encoding="utf-8"))


def test_originals_and_yolo_export(shapes, prompts_file, tmp_path, tiny_inpainter):
    out = tmp_path / "o"
    report, data = run_with_originals(shapes, prompts_file, out, tiny_inpainter)
    src = json.loads(shapes.read_text(encoding="utf-8"))
    originals = [im for im in data["images"] if im["inpaint_aug"].get("original")]
    assert len(originals) == len(src["images"]) == report.originals_written
    for im in originals:
        source = next(s for s in src["images"] if s["id"] == im["inpaint_aug"]["source_image_id"])
        assert (out / im["file_name"]).read_bytes() == (
            shapes.parent / "images" / source["file_name"]
        ).read_bytes()
        n_src = sum(a["image_id"] == source["id"] for a in src["annotations"])
        assert sum(a["image_id"] == im["id"] for a in data["annotations"]) == n_src
    assert len({im["id"] for im in data["images"]}) == len(data["images"])
    labels = list((out / "yolo" / "labels" / "train").glob("*.txt"))
    assert report.exported and len(labels) == len(data["images"])


def test_originals_the_edits_cannot_use_are_not_copied(
    shapes, prompts_file, tmp_path, tiny_inpainter
):
    """A corrupt source, or one not the size the JSON says, is no training image either."""
    src = json.loads(shapes.read_text(encoding="utf-8"))
    corrupt, wrong = src["images"][0], src["images"][1]
    (shapes.parent / "images" / corrupt["file_name"]).write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 64)
    wrong["width"] += 8
    shapes.write_text(json.dumps(src), encoding="utf-8")
    out = tmp_path / "o"
    report, data = run_with_originals(shapes, prompts_file, out, tiny_inpainter)
    sources = {im["inpaint_aug"]["source_image_id"] for im in data["images"]}
    assert corrupt["id"] not in sources and wrong["id"] not in sources
    reasons = {(s.reason, s.image_id) for s in report.skips}
    assert ("original-unreadable", corrupt["id"]) in reasons
    assert ("original-size-mismatch", wrong["id"]) in reasons
    assert report.originals_written == len(src["images"]) - 2
    assert len(list((out / "yolo" / "labels" / "train").glob("*.txt"))) == len(data["images"])


def test_model_that_cannot_load_leaves_no_output(shapes, prompts_file, tmp_path):
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    out = tmp_path / "out"
    args = [
        "run",
        str(shapes),
        "--prompts",
        str(prompts_file),
        "--out",
        str(out),
        "--model",
        str(not_a_model),
        "--device",
        "cpu",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "not a diffusers model folder" in result.output and "Traceback" not in result.output
    assert not out.exists()  # a rerun after fixing --model needs no --resume
