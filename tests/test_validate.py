"""``inpaint_aug.validate`` and ``inpaint-aug validate``: every problem listed, per-item warnings,
the per-class table of what a run would edit, exit 0 only when a run would work, no model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from inpaint_aug.cli import app
from inpaint_aug.demo.synthetic import make_shapes_dataset
from inpaint_aug.inspect.validate import validate
from inpaint_aug.options import PlanSettings, RunOptions
from inpaint_aug.pipeline.backend import DiffusersInpainter
from inpaint_aug.pipeline.run import run

SETTINGS = PlanSettings(min_size=20)
PROMPTS = "default:\n  prompt: 'a {name}'\n"


@pytest.fixture(autouse=True)
def no_model(monkeypatch):
    """Validation never loads a model."""

    def refuse(*_a, **_k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(DiffusersInpainter, "load", classmethod(refuse))


@pytest.fixture()
def coco(tmp_path) -> Path:
    return make_shapes_dataset(
        tmp_path / "data", n_images=3, size=(128, 96), variety=False, objects_per_image=(2, 3)
    )


@pytest.fixture()
def prompts(tmp_path) -> Path:
    path = tmp_path / "prompts.yaml"
    path.write_text(PROMPTS, encoding="utf-8")
    return path


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def save(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data), encoding="utf-8")


def expected_table(data: dict, min_size: int) -> tuple[dict, dict]:
    """What a run would edit per class, computed from the JSON alone (all annotations valid)."""
    names = {c["id"]: c["name"] for c in data["categories"]}
    edit: Counter = Counter()
    skip: dict[str, Counter] = {}
    edited_images = set()
    for a in data["annotations"]:
        name = names[a["category_id"]]
        if min(a["bbox"][2], a["bbox"][3]) >= min_size:
            edit[name] += 1
            edited_images.add(a["image_id"])
        else:
            skip.setdefault(name, Counter())["edit/too-small"] += 1
    for im in data["images"]:
        if im["id"] not in edited_images:
            skip.setdefault("(image)", Counter())["image/nothing-to-edit"] += 1
    return dict(edit), {k: dict(v) for k, v in skip.items()}


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["validate", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def levels(report) -> Counter:
    return Counter(f.level for f in report.findings)


# --------------------------------------------------------------------------------------------


def test_a_clean_dataset_validates(coco, prompts):
    data = load(coco)
    report = validate(coco, prompts, settings=SETTINGS)
    assert report.findings == []
    assert report.ok
    assert report.images_checked == 3
    edit, skip = expected_table(data, SETTINGS.min_size)
    assert skip, "the dataset should have objects under --min-size 20 (adjust the seed)"
    assert report.would_edit == edit
    assert report.would_skip == skip


def test_the_table_matches_what_a_run_does(coco, prompts, tmp_path):
    class StandIn:
        name = "stand-in"

        def inpaint(self, batch):
            return [np.full_like(r.pixels, 128) for r in batch]

    plan = PlanSettings(min_size=20, resolution=64, steps=1)
    report = validate(coco, prompts, settings=plan)
    done = run(
        RunOptions(coco=coco, prompts=prompts, out=tmp_path / "out", plan=plan), inpainter=StandIn()
    )
    assert {k: v["edited"] for k, v in done.per_class.items() if v["edited"]} == report.would_edit
    skipped = {
        k: {f"edit/{r}": n for r, n in v["skipped"].items()}
        for k, v in done.per_class.items()
        if v["skipped"]
    }
    assert skipped == {k: v for k, v in report.would_skip.items() if k != "(image)"}
    nothing = report.would_skip.get("(image)", {}).get("image/nothing-to-edit", 0)
    assert done.skip_counts().get("image/nothing-to-edit", 0) == nothing


def test_every_structural_error_is_reported(coco, prompts):
    data = load(coco)
    data["images"][0]["id"] = "one"
    data["annotations"][2]["id"] = data["annotations"][1]["id"]
    data["categories"][1] = "square"
    save(coco, data)
    report = validate(coco, prompts)
    assert levels(report) == {"error": 3}, report.findings
    messages = " | ".join(f.message for f in report.findings)
    assert "'one'" in messages and "duplicate id" in messages and "categories[1]" in messages
    assert all(f.where == str(coco) for f in report.findings)
    assert not report.ok
    code, stdout, stderr = cli(str(coco), "--prompts", str(prompts))
    assert code == 1
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 3
    assert "3 errors" in stdout and "would NOT work" in stdout
    assert "Traceback" not in stdout + stderr


def test_per_item_problems_are_warnings(tmp_path, prompts):
    coco = make_shapes_dataset(
        tmp_path / "four", n_images=4, size=(128, 96), variety=False, objects_per_image=(2, 3)
    )
    data = load(coco)
    images = coco.parent / "images"
    (images / data["images"][0]["file_name"]).unlink()  # missing
    data["images"][1]["width"] = 200  # size mismatch
    (images / data["images"][2]["file_name"]).write_bytes(b"")  # unreadable
    data["annotations"][-1]["category_id"] = 99  # dropped
    save(coco, data)
    report = validate(coco, prompts, settings=SETTINGS)
    assert levels(report) == {"warning": 4}, report.findings
    by_reason = {f.message.split(":")[0]: f for f in report.findings}
    assert set(by_reason) == {
        "image-missing",
        "size-mismatch",
        "image-unreadable",
        "unknown-category",
    }
    assert data["images"][0]["file_name"] in by_reason["image-missing"].where
    assert "200" in by_reason["size-mismatch"].message
    assert by_reason["unknown-category"].where == f"annotation {data['annotations'][-1]['id']}"
    assert report.ok, "per-item problems only skip those items (the fourth image is fine)"
    assert report.would_skip["(image)"]["image/image-missing"] == 1
    code, stdout, stderr = cli(str(coco), "--prompts", str(prompts), "--min-size", "20")
    assert code == 0, stdout + stderr
    assert stdout.count("warning: ") == 4
    assert "0 errors, 4 warnings: a run would work" in stdout


def test_exif_rotated_image_is_not_a_size_mismatch(coco, prompts):
    data = load(coco)
    src = coco.parent / "images" / data["images"][0]["file_name"]
    with Image.open(src) as img:
        upright = img.convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    upright.transpose(Image.Transpose.ROTATE_90).save(src.with_suffix(".jpg"), exif=exif)
    data["images"][0]["file_name"] = src.with_suffix(".jpg").name
    save(coco, data)
    assert validate(coco, prompts).findings == []


def test_cli_prints_the_per_class_table(coco, prompts):
    edit, skip = expected_table(load(coco), 20)
    code, stdout, stderr = cli(str(coco), "--prompts", str(prompts), "--min-size", "20")
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[0].split() == [
        "class",
        "would",
        "edit",
        "would",
        "not",
        "edit",
        "(reason:",
        "count)",
        "[objects",
        "x",
        "copies;",
        "(image)",
        "row:",
        "images]",
    ]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:] if line.split()}
    for name in set(edit) | set(skip):
        assert rows[name][0] == str(edit.get(name, 0))
        for reason, count in skip.get(name, {}).items():
            assert f"{reason}: {count}" in " ".join(rows[name])
    redrawn = sum(edit.values())
    assert stdout.rstrip().endswith(
        f"a run would work: {redrawn} objects would be redrawn before verification"
    )


@pytest.mark.parametrize(
    "text,needles",
    [
        pytest.param("classes:\n  dragon: {prompt: x}\n", ["dragon", "circle"], id="unknown-class"),
        pytest.param("default: {prompt: 'a {hue} {name}'}\n", ["{hue}"], id="placeholder"),
        pytest.param("default: [unclosed\n", ["invalid YAML"], id="invalid-yaml"),
    ],
)
def test_prompt_errors_are_errors(coco, tmp_path, text, needles):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    report = validate(coco, bad)
    assert levels(report) == {"error": 1} and not report.ok
    (finding,) = report.findings
    assert finding.where == str(bad)
    assert all(n in finding.message for n in needles), finding.message
    code, _, stderr = cli(str(coco), "--prompts", str(bad))
    assert code == 1 and "Traceback" not in stderr


def test_json_syntax_error_is_one_error(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"images": [\n  {"id": 1,}\n]}', encoding="utf-8")
    report = validate(path)
    (finding,) = report.findings
    assert finding.level == "error" and "line 2" in finding.message and "column" in finding.message
    code, stdout, stderr = cli(str(path))
    assert code == 1 and "Traceback" not in stdout + stderr
    assert "broken.json" in stderr
    (verdict,) = stdout.strip().splitlines()  # no empty class table: nothing could be read
    assert "0 images checked, 1 errors" in verdict and "would NOT work" in verdict


def test_no_image_folder_is_an_error(coco, prompts):
    data = load(coco)
    for im in data["images"]:
        im["file_name"] = f"elsewhere/{im['file_name']}"
    save(coco, data)
    report = validate(coco, prompts)
    assert levels(report) == {"error": 1}
    assert "--images" in report.findings[0].message
    code, _, stderr = cli(str(coco), "--prompts", str(prompts))
    assert code == 1 and "--images" in stderr


def test_images_option_and_limit(coco, prompts, tmp_path):
    moved = tmp_path / "pictures"
    (coco.parent / "images").rename(moved)
    report = validate(coco, prompts, images=moved, limit=2)
    assert report.findings == [] and report.images_checked == 2
    code, stdout, _ = cli(str(coco), "--prompts", str(prompts), "--images", str(moved))
    assert code == 0 and "3 images checked" in stdout


def test_duplicated_category_name_is_a_warning_and_by_name_an_error(coco, tmp_path):
    data = load(coco)
    data["categories"][1]["name"] = data["categories"][0]["name"]
    save(coco, data)
    report = validate(coco)
    assert levels(report) == {"warning": 1} and "by id" in report.findings[0].message
    by_name = tmp_path / "by-name.yaml"
    by_name.write_text("classes:\n  circle: {prompt: 'a ball'}\n", encoding="utf-8")
    report = validate(coco, by_name)
    assert levels(report) == {"warning": 1, "error": 1}
    assert any("by its id" in f.message for f in report.findings if f.level == "error")


def test_no_prompts_means_every_class(coco):
    data = load(coco)
    report = validate(coco)
    assert report.ok
    assert sum(report.would_edit.values()) + sum(
        n for row in report.would_skip.values() for n in row.values()
    ) == len(data["annotations"])


def test_nothing_to_edit_is_explained(coco, tmp_path):
    skip_all = tmp_path / "skip.yaml"
    skip_all.write_text("default: {skip: true}\n", encoding="utf-8")
    report = validate(coco, skip_all)
    assert not report.ok
    assert report.findings, "a run that would not work must say why"


def test_unhashable_category_id_is_a_warning(coco, prompts):
    data = load(coco)
    data["annotations"][0]["category_id"] = [1]
    save(coco, data)
    report = validate(coco, prompts)
    assert levels(report) == {"warning": 1}


def test_validate_imports_no_model_library(coco, prompts):
    """The strongest form of 'no model is loaded': torch and diffusers are never imported."""
    code = (
        "import atexit, sys\n"
        "heavy = lambda: sorted({'torch', 'diffusers'} & set(sys.modules))\n"
        "atexit.register(lambda: print('heavy:', heavy()))\n"
        "from inpaint_aug.cli import app\n"
        "app()\n"
    )
    args = [sys.executable, "-c", code, "validate", str(coco), "--prompts", str(prompts)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "heavy: []" in done.stdout
