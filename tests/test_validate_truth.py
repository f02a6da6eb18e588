"""``validate`` tells the truth: the run's checks, the run's counts (per output copy), every
problem of the prompts file, and the run's verdict (a run that would redraw nothing stops too)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from typer.testing import CliRunner

from inpaint_aug.cli import app
from inpaint_aug.cli.run import class_rows
from inpaint_aug.dataset.coco import load_coco
from inpaint_aug.dataset.prompts import PromptProblems, load_prompts
from inpaint_aug.demo.synthetic import make_shapes_dataset
from inpaint_aug.inspect.validate import validate
from inpaint_aug.options import PlanSettings, RunOptions
from inpaint_aug.pipeline.backend import DiffusersInpainter
from inpaint_aug.pipeline.plan import Skip, plan_dataset
from inpaint_aug.pipeline.predict import NothingToRedraw
from inpaint_aug.pipeline.report import RunReport, per_class
from inpaint_aug.pipeline.run import run

PLAN = {"resolution": 64, "steps": 1, "min_size": 8, "min_context": 32}
PROMPTS = "default: {prompt: 'a {name}'}\n"


class StandIn:
    """A model stand-in: grey crops, fast, no torch."""

    name = "stand-in"

    def inpaint(self, batch):
        return [np.full_like(r.pixels, 128) for r in batch]


@pytest.fixture(autouse=True)
def no_model(monkeypatch):
    """No test here loads a model: the ones that get that far pass a stand-in."""

    def refuse(*_a, **_k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(DiffusersInpainter, "load", classmethod(refuse))


@pytest.fixture()
def prompts(tmp_path) -> Path:
    path = tmp_path / "prompts.yaml"
    path.write_text(PROMPTS, encoding="utf-8")
    return path


@pytest.fixture()
def coco(tmp_path) -> Path:
    """Five images; one object hidden behind another (occluded), and one image file lost."""
    path = make_shapes_dataset(
        tmp_path / "data", n_images=5, size=(128, 96), variety=False, objects_per_image=(2, 3)
    )
    data = json.loads(path.read_text(encoding="utf-8"))
    full = max(data["annotations"], key=lambda a: a["area"] / (a["bbox"][2] * a["bbox"][3]))
    x, y, w, h = full["bbox"]
    hidden = {
        "id": max(a["id"] for a in data["annotations"]) + 1,
        "image_id": full["image_id"],
        "category_id": full["category_id"],
        "bbox": [x - 1, y - 1, w + 2, h + 2],  # box only, mostly covered by `full`: occluded
        "iscrowd": 0,
    }
    data["annotations"].append(hidden)
    lost = next(im for im in data["images"][::-1] if im["id"] != full["image_id"])
    (path.parent / "images" / lost["file_name"]).unlink()
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def run_it(coco: Path, prompts: Path, out: Path, copies: int = 1):
    options = RunOptions(coco, prompts, out=out, plan=PlanSettings(**PLAN, copies=copies))
    return run(options, inpainter=StandIn())


def as_validate_rows(per: dict) -> tuple[dict, dict]:
    """A run's per-class table in validate's shape (``kind/reason`` keys, no empty rows)."""
    edited = {k: v["edited"] for k, v in per.items() if v["edited"]}
    kinds = {"occluded": "edit", "unknown-category": "annotation"}
    skipped = {
        k: {f"{kinds.get(r, 'edit')}/{r}": n for r, n in v["skipped"].items()}
        for k, v in per.items()
        if v["skipped"]
    }
    return edited, skipped


def records_of(out: Path) -> list:
    """The written images as per_class reads them."""
    data = json.loads((out / "annotations.json").read_text(encoding="utf-8"))
    return [SimpleNamespace(image=im) for im in data["images"]]


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


# --- the same counts ---------------------------------------------------------------------------


def test_counts_leave_out_missing_images_and_occluded_objects(coco, prompts, tmp_path):
    report = validate(coco, prompts, settings=PlanSettings(**PLAN))
    done = run_it(coco, prompts, tmp_path / "out")
    edited, skipped = as_validate_rows(done.per_class)
    assert report.would_edit == edited
    assert {k: v for k, v in report.would_skip.items() if k != "(image)"} == skipped
    images = {k: n for k, n in done.skip_counts().items() if k.startswith("image/")}
    assert report.would_skip["(image)"] == images
    assert images["image/image-missing"] == 1
    assert sum(row.get("edit/occluded", 0) for row in report.would_skip.values()) == 1
    ds = load_coco(coco)
    book = load_prompts(prompts, {c["id"]: c["name"] for c in ds.raw["categories"]})
    jobs, _ = plan_dataset(ds, book, PlanSettings(**PLAN))
    planned = sum(len(j.edits) for j in jobs)
    assert sum(report.would_edit.values()) == done.objects_edited < planned


def test_counts_are_per_output_copy_in_both(coco, prompts, tmp_path):
    one = validate(coco, prompts, settings=PlanSettings(**PLAN))
    report = validate(coco, prompts, settings=PlanSettings(**PLAN, copies=3))
    assert report.copies == 3
    assert report.would_edit == {k: 3 * n for k, n in one.would_edit.items()}
    for name, row in one.would_skip.items():
        if name != "(image)":  # objects x copies; the image row counts images
            assert report.would_skip[name] == {r: 3 * n for r, n in row.items()}
    assert report.would_skip["(image)"] == one.would_skip["(image)"]
    out = tmp_path / "out"
    done = run_it(coco, prompts, out, copies=3)
    per = per_class(load_coco(coco), records_of(out), list(done.skips), copies=3)
    edited, skipped = as_validate_rows(per)
    assert report.would_edit == edited
    assert {k: v for k, v in report.would_skip.items() if k != "(image)"} == skipped


def test_the_run_report_counts_per_output_copy(coco, prompts, tmp_path):
    report = validate(coco, prompts, settings=PlanSettings(**PLAN, copies=2))
    done = run_it(coco, prompts, tmp_path / "out", copies=2)
    edited, skipped = as_validate_rows(done.per_class)
    assert report.would_edit == edited
    assert {k: v for k, v in report.would_skip.items() if k != "(image)"} == skipped


def test_per_class_multiplies_only_what_is_recorded_once():
    ds = SimpleNamespace(categories_by_id={1: {"name": "cat"}})
    skips = [
        Skip("edit", "too-small", "", 1, 10, 1),  # planning: recorded for copy 0 only
        Skip("edit", "occluded", "", 1, 11, 1),  # identical in every copy: listed once
        Skip("annotation", "bad-box", "", 1, 12, 1),  # dropped from every copy
        Skip("edit", "verify-rejected", "score 0.1", 1, 13, 1),  # one copy's own
        Skip("image", "image-missing", "", 2),  # images are not per class
    ]
    records = [SimpleNamespace(image={"inpaint_aug": {"edits": [{"category_id": 1}]}})] * 3
    row = per_class(ds, records, skips, copies=3)["cat"]
    assert row["edited"] == 3 and row["rejected"] == 1
    assert row["skipped"] == {"too-small": 3, "occluded": 3, "bad-box": 3}
    assert per_class(ds, records, skips)["cat"]["skipped"]["too-small"] == 1


def test_the_run_table_names_its_unit():
    header = class_rows(RunReport(Path("o")))[0]
    assert header[:4] == ["class", "edited", "after retry", "rejected"]
    assert "objects x copies" in header[-1] and "rows: images" in header[-1]


def test_the_summary_says_verification_is_not_predicted(coco, prompts):
    code, stdout, _ = cli("validate", str(coco), "--prompts", str(prompts), "--min-size", "8")
    assert code == 0
    last = stdout.rstrip().splitlines()[-1]
    assert "a run would work" in last and "before verification" in last
    (header,) = [line for line in stdout.splitlines() if line.startswith("class ")]
    assert "objects x copies" in header


def test_validate_takes_the_run_options_that_change_counts(coco, prompts):
    base = ["validate", str(coco), "--prompts", str(prompts), "--min-size", "8"]
    _, one, _ = cli(*base)
    _, two, _ = cli(*base, "--copies", "2")
    _, strict, _ = cli(*base, "--min-coverage", "1.0", "--dilate", "0")
    redrawn = [int(text.split("work: ")[1].split()[0]) for text in (one, two)]
    assert redrawn[1] == 2 * redrawn[0]
    assert "occluded" in strict


# --- every problem of the prompts file ---------------------------------------------------------

MANY = """\
vars: {light: []}
default: {prompt: 'a {hue} {name}', strength: 2}
classes:
  dragon: {prompt: x}
  circle: {prompt: [], steps: 0, colour: red}
  square: {skip: maybe}
"""


def test_every_prompts_problem_is_its_own_finding(coco, tmp_path):
    bad = tmp_path / "many.yaml"
    bad.write_text(MANY, encoding="utf-8")
    with pytest.raises(PromptProblems) as err:
        load_prompts(bad, {1: "circle", 3: "square", 7: "triangle"})
    problems = err.value.problems
    assert len(problems) == 8, problems
    report = validate(coco, bad)
    assert [f.message for f in report.findings if f.level == "error"] == list(problems)
    assert all(f.where == str(bad) for f in report.findings if f.level == "error")
    assert report.images_checked == 5, "the images are checked all the same"
    assert [f.message.split(":")[0] for f in report.findings if f.level == "warning"] == [
        "image-missing"
    ]
    code, stdout, stderr = cli("validate", str(coco), "--prompts", str(bad))
    assert code == 1 and stderr.count("error: ") == 8 and "8 errors" in stdout
    out = tmp_path / "out"
    code, _, stderr = cli("run", str(coco), "--prompts", str(bad), "--out", str(out))
    assert code == 1 and "Traceback" not in stderr
    (line,) = stderr.strip().splitlines()
    assert line.startswith(f"error: {bad}: 8 problems: ") and line.endswith("to list them")
    assert not out.exists()


def test_every_class_schedule_problem_is_listed(coco, tmp_path):
    bad = tmp_path / "steps.yaml"
    text = "default: {prompt: x}\nclasses:\n  circle: {strength: 0.1}\n  square: {steps: 1}\n"
    bad.write_text(text, encoding="utf-8")
    report = validate(coco, bad, settings={"steps": 5, "strength": 0.5})
    errors = [f.message for f in report.findings if f.level == "error"]
    assert len(errors) == 2 and not report.ok
    assert errors[0].startswith("class 'circle': steps 5 x strength 0.1")
    assert errors[1].startswith("class 'square': steps 1 x strength 0.5")


# --- the same verdict --------------------------------------------------------------------------


def both_verdicts(coco: Path, prompts: Path, out: Path) -> tuple[str, str]:
    """validate's error line and run's, for a dataset where nothing would be redrawn."""
    report = validate(coco, prompts, settings=PlanSettings(**PLAN))
    assert not report.ok
    (mine,) = [f.message for f in report.findings if f.level == "error"]
    code, _, stderr = cli("validate", str(coco), "--prompts", str(prompts), "--min-size", "8")
    assert code == 1 and "a run would NOT work" in _
    with pytest.raises(NothingToRedraw) as err:
        run(RunOptions(coco, prompts, out=out, plan=PlanSettings(**PLAN)), inpainter=StandIn())
    assert not out.exists(), "it stops before anything is written"
    args = ["run", str(coco), "--prompts", str(prompts), "--out", str(out), "--min-size", "8"]
    code, _, stderr = cli(*args, "--model", "tiny-random")
    assert code == 1 and not out.exists()
    (line,) = stderr.strip().splitlines()
    assert line == f"error: {err.value}"
    return mine, str(err.value)


def test_every_class_skipped_fails_validate_and_run_alike(coco, tmp_path):
    skip_all = tmp_path / "skip.yaml"
    skip_all.write_text("default: {skip: true}\n", encoding="utf-8")
    mine, theirs = both_verdicts(coco, skip_all, tmp_path / "out")
    assert mine == theirs
    assert mine.startswith("nothing would be redrawn in the 5 image(s)")
    assert "class-skipped: " in mine and "check the prompts file" in mine


def test_no_readable_image_fails_validate_and_run_alike(coco, prompts, tmp_path):
    for image in (coco.parent / "images").iterdir():
        image.write_bytes(b"")
    mine, theirs = both_verdicts(coco, prompts, tmp_path / "out")
    assert mine == theirs and "image-unreadable: 4" in mine and "the image files" in mine


def test_a_default_with_only_a_negative_redraws_listed_classes_only(coco, tmp_path):
    path = tmp_path / "negative.yaml"
    path.write_text(
        "default: {negative: 'blurry'}\nclasses:\n  circle: {prompt: 'a ball'}\n", encoding="utf-8"
    )
    report = validate(coco, path, settings=PlanSettings(**PLAN))
    assert set(report.would_edit) <= {"circle"}
    for name in ("square", "triangle"):
        if name in report.would_skip:
            assert set(report.would_skip[name]) == {"edit/no-prompt"}
