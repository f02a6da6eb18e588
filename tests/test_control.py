"""Shape control: the edge map, the small-object rule, the options, and the tiny ControlNet run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from family_checks import check_control, check_labels_and_pixels, run_cli
from typer.testing import CliRunner

from inpaint_aug.cli import app
from inpaint_aug.dataset.prompts import PromptProblems, parse_prompts
from inpaint_aug.errors import ModelError, OptionsError
from inpaint_aug.options import DEFAULT_CONTROLNET, PlanSettings, RunOptions
from inpaint_aug.pipeline.control import ControlSpec, control_scale_for, edge_map
from inpaint_aug.pipeline.loading import check_controlnet


@pytest.mark.parametrize(
    ("scale", "side", "expected"),
    [
        (1.0, 64, 1.0),  # from 64 px on a side: the whole scale
        (1.0, 500, 1.0),
        (0.33, 100, 0.33),  # never rounded at full size
        (1.0, 63.9, 0.75),  # side / 64 rounded down to a quarter
        (1.0, 48, 0.75),
        (1.0, 47, 0.5),
        (1.0, 32, 0.5),
        (1.0, 31, 0.25),
        (0.8, 16, 0.2),
        (0.8, 40, 0.4),
        (2.0, 50, 1.5),
        (1.0, 15, 0.0),  # under a quarter of 64 px: no control
        (1.0, 0, 0.0),
        (0.0, 20, 0.0),
    ],
)
def test_small_objects_get_a_lower_scale(scale, side, expected):
    assert control_scale_for(scale, side) == pytest.approx(expected)


def test_edge_map_marks_a_step_edge_only():
    crop = np.zeros((32, 32, 3), np.uint8)
    crop[:, 16:] = 200
    edges = edge_map(crop)
    assert edges.shape == (32, 32, 3) and edges.dtype == np.uint8
    assert set(np.unique(edges)) == {0, 255}
    assert (edges[..., 0] == edges[..., 2]).all()
    columns = np.flatnonzero(edges[:, :, 0].any(axis=0))
    assert set(columns) <= {15, 16}
    assert not edge_map(np.full((32, 32, 3), 90, np.uint8)).any()


def test_edge_map_thresholds():
    crop = np.zeros((32, 32, 3), np.uint8)
    crop[:, 16:] = 20  # a faint edge: its gradient stays under the default thresholds
    assert not edge_map(crop).any()
    assert edge_map(crop, low=10, high=20).any()


def test_control_scale_per_class_in_the_prompts_file():
    data = {
        "default": {"prompt": "a {name}", "control_scale": 0.6},
        "classes": {"cat": {"control_scale": 1.2}, "dog": {}},
    }
    book = parse_prompts(data, "p.yaml", {1: "cat", 2: "dog", 3: "fox"})
    assert book.spec(1).control_scale == 1.2
    assert book.spec(2).control_scale == 0.6 == book.spec(3).control_scale
    with pytest.raises(PromptProblems, match=r"classes.cat.control_scale is 3"):
        parse_prompts(
            {"classes": {"cat": {"prompt": "a", "control_scale": 3}}}, "p.yaml", {1: "cat"}
        )


def test_plan_carries_the_control_and_batches_by_it(shapes):
    from inpaint_aug.dataset.coco import load_coco
    from inpaint_aug.pipeline.plan import plan_dataset

    ds = load_coco(shapes)
    names = {c["id"]: c["name"] for c in ds.raw["categories"]}
    first = names[min(names)]
    data = {"default": {"prompt": "a {name}"}, "classes": {first: {"control_scale": 0.5}}}
    book = parse_prompts(data, "p.yaml", names)
    plan = PlanSettings(min_size=8, control="canny", control_scale=0.9, controlnet="cn")
    jobs, _ = plan_dataset(ds, book, plan)
    edits = [e for j in jobs for e in j.edits]
    for edit in edits:
        ann = ds.annotations[[a["id"] for a in ds.annotations].index(edit.annotation_id)]
        base = 0.5 if edit.category_id == min(names) else 0.9
        side = min(ann["bbox"][2], ann["bbox"][3])
        assert edit.control == ControlSpec("canny", "cn", control_scale_for(base, side))
        assert edit.settings_key[-1] == edit.control
    plain, _ = plan_dataset(ds, book, PlanSettings(min_size=8))
    assert all(e.control is None and len(e.settings_key) == 3 for j in plain for e in j.edits)


def test_control_options_are_checked(tmp_path):
    assert PlanSettings().control == "none" and PlanSettings().controlnet == DEFAULT_CONTROLNET
    with pytest.raises(OptionsError, match=r"--control-scale 2\.5"):
        PlanSettings(control_scale=2.5)
    with pytest.raises(OptionsError, match="--control 'depth'"):
        PlanSettings(control="depth")
    flux = tmp_path / "flux"
    flux.mkdir()
    (flux / "model_index.json").write_text('{"_class_name": "FluxFillPipeline"}')
    with pytest.raises(OptionsError, match=r"--control canny: shape control needs an SD 1\.5"):
        RunOptions("a.json", "p.yaml", model=str(flux), plan=PlanSettings(control="canny"))
    on = RunOptions("a.json", "p.yaml", plan=PlanSettings(control="canny", controlnet="a/b"))
    assert on.model_options().controlnet == "a/b"
    assert RunOptions("a.json", "p.yaml").model_options().controlnet is None


def test_a_controlnet_that_cannot_load_is_one_line(tmp_path):
    with pytest.raises(ModelError, match="no such folder"):
        check_controlnet(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"no config\.json"):
        check_controlnet(str(tmp_path / "empty"))
    with pytest.raises(ModelError) as err:
        check_controlnet("nobody/no-such-controlnet")  # the hub is off in the tests
    message = str(err.value)
    assert "not in the local Hugging Face cache" in message and "--controlnet DIR" in message
    assert "\n" not in message
    assert check_controlnet(None) is False


def test_controlnet_run_keeps_labels_pixels_and_is_deterministic(
    shapes, prompts_file, tmp_path, tiny_controlnet_dir
):
    control = ["--model", "tiny-random", "--control", "canny"]
    control += ["--controlnet", str(tiny_controlnet_dir), "--control-scale", "0.8"]
    a = run_cli(shapes, prompts_file, tmp_path / "a", *control)
    check_labels_and_pixels(shapes, tmp_path / "a", a)
    check_control(a, tiny_controlnet_dir, 0.8)
    settings = json.loads((tmp_path / "a" / "run.json").read_text())["settings"]["plan"]
    assert (settings["control"], settings["control_scale"]) == ("canny", 0.8)
    b = run_cli(shapes, prompts_file, tmp_path / "b", *control)
    assert a == b
    for image in a["images"]:
        name = image["file_name"]
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    plain = run_cli(shapes, prompts_file, tmp_path / "plain", "--model", "tiny-random")
    assert all("control" not in e for im in plain["images"] for e in im["inpaint_aug"]["edits"])
    name = a["images"][0]["file_name"]
    assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "plain" / name).read_bytes()


def test_cli_missing_controlnet_folder_fails_before_anything_is_written(
    shapes, prompts_file, tmp_path
):
    out, missing = tmp_path / "out", tmp_path / "no-such-controlnet"
    args = ["run", str(shapes), "--prompts", str(prompts_file), "--out", str(out), "--model"]
    args.append("tiny-random")
    result = CliRunner().invoke(app, [*args, "--control", "canny", "--controlnet", str(missing)])
    assert result.exit_code == 1 and not out.exists()
    assert (
        result.stderr.strip()
        == f"error: ControlNet {missing}: no such folder, and not a hub id like 'org/name'"
    )


def test_a_resume_with_another_control_is_refused(shapes, prompts_file):
    from inpaint_aug.pipeline.journal import fingerprint

    def key(**plan):
        return fingerprint(RunOptions(shapes, prompts_file, plan=PlanSettings(**plan)))

    base = key(control="canny")
    assert (base["plan.control"], base["plan.control_scale"]) == ("canny", 1.0)
    assert base != key(control="canny", control_scale=0.5)
    assert base != key(control="canny", controlnet="other/net")
    assert base != key()
