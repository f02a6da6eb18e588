"""Options are checked by the library when built, before any file is read or a model loaded."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inpaint_aug.cli import app
from inpaint_aug.errors import OptionsError, PromptError
from inpaint_aug.options import (
    LCM_LORA,
    ExportFormat,
    ImageFormat,
    ModelOptions,
    PlanSettings,
    Preset,
    Region,
    RunOptions,
    Split,
)
from inpaint_aug.pipeline.run import run

MISSING = "/nonexistent/annotations.json"  # never read: options fail first


@pytest.mark.parametrize(
    "values,option,shown",
    [
        pytest.param({"steps": 0}, "--steps", "0", id="steps-zero"),
        pytest.param({"steps": 2.5}, "--steps", "2.5", id="steps-float"),
        pytest.param({"steps": True}, "--steps", "True", id="steps-bool"),
        pytest.param({"strength": 0.0}, "--strength", "0.0", id="strength-zero"),
        pytest.param({"strength": 1.5}, "--strength", "1.5", id="strength-over-one"),
        pytest.param({"strength": float("nan")}, "--strength", "nan", id="strength-nan"),
        pytest.param({"guidance": -1.0}, "--guidance", "-1.0", id="guidance-negative"),
        pytest.param({"resolution": 100}, "--resolution", "100", id="resolution-not-x8"),
        pytest.param({"resolution": 0}, "--resolution", "0", id="resolution-zero"),
        pytest.param({"copies": 0}, "--copies", "0", id="copies-zero"),
        pytest.param({"seed": -1}, "--seed", "-1", id="seed-negative"),
        pytest.param({"dilate": -2}, "--dilate", "-2", id="dilate-negative"),
        pytest.param({"min_size": -1}, "--min-size", "-1", id="min-size-negative"),
        pytest.param({"max_per_image": 0}, "--max-per-image", "0", id="max-per-image-zero"),
        pytest.param({"region": "bogus"}, "--region", "'bogus'", id="region-bogus"),
        pytest.param({"steps": 1, "strength": 0.9}, "--steps 1", "--strength 0.9", id="1x0.9"),
        pytest.param({"steps": 4, "strength": 0.2}, "--steps 4", "--strength 0.2", id="4x0.2"),
    ],
)
def test_plan_settings_refuse_bad_values(values, option, shown):
    with pytest.raises(OptionsError) as caught:
        PlanSettings(**values)
    message = str(caught.value)
    assert message.startswith(option) and shown in message and "\n" not in message


@pytest.mark.parametrize("value", [0.0, 1.5, -0.5, float("nan")])
def test_every_bad_strength_says_what_is_allowed(value):
    """0 is refused too: 'between 0 and 1' would be wrong for it and for 1.5 alike."""
    with pytest.raises(OptionsError, match=re.escape("expected a number > 0 and <= 1")):
        PlanSettings(strength=value)


@pytest.mark.parametrize(
    "values,option,allowed",
    [
        pytest.param({"batch_size": 0}, "--batch-size", ">= 1", id="batch-size"),
        pytest.param({"workers": 0}, "--workers", ">= 1", id="workers"),
        pytest.param({"limit": 0}, "--limit", ">= 1", id="limit"),
        pytest.param({"image_format": "webp"}, "--image-format", "auto, png, jpg", id="webp"),
        pytest.param({"format": "voc"}, "--format", "coco, yolo, yolo-seg", id="format"),
        pytest.param({"split": "training"}, "--split", "train, val, test", id="split"),
        pytest.param({"device": "tpu"}, "--device", "auto, cpu, cuda, mps", id="device"),
        pytest.param({"dtype": "fp8"}, "--dtype", "auto, fp16, bf16, fp32", id="dtype"),
        pytest.param({"preset": "turbo"}, "--preset", "quality, fast", id="preset"),
        pytest.param({"model": ""}, "--model", "hub id", id="model-empty"),
        pytest.param({"resume": "yes"}, "--resume", "true or false", id="resume-str"),
        pytest.param({"executor": "spark"}, "--executor", "local, ray", id="executor"),
        pytest.param({"executor": "ray", "ray_actors": 0}, "--ray-actors", ">= 1", id="ray-actors"),
        pytest.param(
            {"executor": "ray", "ray_address": " "}, "--ray-address", "HOST:PORT", id="address"
        ),
        pytest.param(
            {"ray_address": "auto"}, "--ray-address", "needs --executor ray", id="address-local"
        ),
    ],
)
def test_run_options_refuse_bad_values_before_reading_anything(values, option, allowed):
    with pytest.raises(OptionsError) as caught:
        RunOptions(MISSING, MISSING, **values)
    assert str(caught.value).startswith(option) and allowed in str(caught.value)


def test_choices_accept_strings_and_members_alike():
    a = RunOptions("a.json", "p.yaml", image_format="png", format="yolo-seg", split="val")
    b = RunOptions(
        "a.json",
        "p.yaml",
        image_format=ImageFormat.png,
        format=ExportFormat.yolo_seg,
        split=Split.val,
    )
    assert a == b and a.format is ExportFormat.yolo_seg and a.split == "val"
    assert PlanSettings(region="mask").region is Region.mask


def test_fast_preset_from_python():
    options = RunOptions("a.json", "p.yaml", preset="fast")
    assert options.preset is Preset.fast
    assert (options.plan.steps, options.plan.guidance, options.lcm_lora) == (4, 1.0, LCM_LORA)
    mine = RunOptions("a.json", "p.yaml", preset=Preset.fast, lcm_lora="my/lora")
    assert mine.lcm_lora == "my/lora"
    assert RunOptions("a.json", "p.yaml").plan.steps == PlanSettings().steps


def test_fast_preset_is_checked_with_the_strength():
    with pytest.raises(OptionsError, match=re.escape("--steps 4 with --strength 0.2")):
        RunOptions("a.json", "p.yaml", preset="fast", plan=PlanSettings(strength=0.2))


def test_replace_checks_again():
    options = RunOptions("a.json", "p.yaml")
    with pytest.raises(OptionsError, match="--batch-size"):
        replace(options, batch_size=-3)
    with pytest.raises(OptionsError, match="--steps"):
        replace(options.plan, steps=0)


def test_to_dict_and_back():
    options = RunOptions(
        Path("a.json"),
        "p.yaml",
        image_format="jpg",
        format="yolo",
        limit=3,
        plan=PlanSettings(region="box", seed=9),
    )
    plain = options.to_dict()
    assert plain["image_format"] == "jpg" and plain["plan"]["region"] == "box"
    assert plain["coco"] == "a.json"
    again = RunOptions.from_dict({**plain, "from_a_newer_version": 1})
    assert again.to_dict() == plain


def test_model_options_checked_too():
    with pytest.raises(OptionsError, match="--dtype 'fp4'"):
        ModelOptions("tiny-random", dtype="fp4")
    assert RunOptions("a", "p", device="cpu").model_options().device == "cpu"


# --- per-class overrides, found before any slow work -----------------------------------------


def prompts_with(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text("default:\n  prompt: 'a {name}'\nclasses:\n" + body, encoding="utf-8")
    return path


def test_class_override_that_gives_no_step_fails_before_the_model(shapes, tmp_path):
    prompts = prompts_with(tmp_path, "  circle:\n    strength: 0.3\n")
    out = tmp_path / "out"
    options = RunOptions(shapes, prompts, out=out, model="tiny-random", plan=PlanSettings(steps=3))
    t0 = time.perf_counter()
    with pytest.raises(PromptError) as caught:
        run(options)
    assert time.perf_counter() - t0 < 5  # no model was loaded
    assert "'circle'" in str(caught.value) and "steps 3 x strength 0.3" in str(caught.value)
    assert "raise its strength: in the prompts file, or --steps" in str(caught.value)
    assert str(prompts) in str(caught.value)
    assert not out.exists()


def test_class_steps_override_counts_too(shapes, tmp_path):
    prompts = prompts_with(tmp_path, "  square:\n    steps: 1\n")
    options = RunOptions(shapes, prompts, out=tmp_path / "o", plan=PlanSettings(strength=0.5))
    with pytest.raises(PromptError, match=re.escape("'square': steps 1 x strength 0.5")) as err:
        run(options)
    assert "raise its steps: in the prompts file, or --strength" in str(err.value)


def test_class_steps_and_strength_overrides_name_only_the_prompts_file(shapes, tmp_path):
    prompts = prompts_with(tmp_path, "  square:\n    steps: 2\n    strength: 0.4\n")
    options = RunOptions(shapes, prompts, out=tmp_path / "o")
    with pytest.raises(
        PromptError, match="raise its steps: or strength: in the prompts file so that"
    ):
        run(options)


# --- the command line: exit 2, one line, nothing written ------------------------------------


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stderr


SAMPLE = ("datasets/shapes/annotations.json", "--prompts", "datasets/shapes/prompts.yaml")


@pytest.mark.parametrize(
    "args,needle,exit_code",
    [
        # the sample's prompts give circles strength 0.9: the prompts file is at fault (exit 1)
        pytest.param(["--steps", "1"], "class 'circle': steps 1 x strength 0.9", 1, id="steps-1"),
        pytest.param(["--steps", "4", "--strength", "0.2"], "--strength 0.2", 2, id="strength"),
        pytest.param(["--resolution", "100"], "--resolution 100", 2, id="resolution"),
        pytest.param(["--batch-size", "0"], "--batch-size 0", 2, id="batch-size"),
        pytest.param(["--copies", "0"], "--copies 0", 2, id="copies"),
        pytest.param(["--limit", "0"], "--limit 0", 2, id="limit"),
    ],
)
def test_cli_bad_option_fails_before_any_work(tmp_path, args, needle, exit_code):
    out = tmp_path / "o"
    code, stderr = cli("run", *SAMPLE, "--model", "tiny-random", "--out", str(out), *args)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == exit_code and len(lines) == 1 and needle in lines[0], stderr
    assert "Traceback" not in stderr and not out.exists()


@pytest.mark.parametrize(
    "flag,value",
    [
        ("--split", "training"),
        ("--image-format", "webp"),
        ("--region", "bogus"),
        ("--device", "tpu"),
    ],
)
def test_cli_bad_choice_is_a_usage_error(tmp_path, flag, value):
    out = tmp_path / "o"
    code, stderr = cli("run", *SAMPLE, "--format", "yolo", "--out", str(out), flag, value)
    assert code == 2 and value in stderr and not out.exists()


def test_cli_class_override_is_a_failure_naming_the_class(tmp_path, shapes):
    prompts = prompts_with(tmp_path, "  circle:\n    strength: 0.9\n")
    out = tmp_path / "o"
    code, stderr = cli(
        "run",
        str(shapes),
        "--prompts",
        str(prompts),
        "--model",
        "tiny-random",
        "--steps",
        "1",
        "--strength",
        "1.0",
        "--out",
        str(out),
    )
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and "'circle'" in lines[0], stderr
    assert not out.exists()
    fixed = ["--steps", "2", "--resolution", "64", "--limit", "1", "--out", str(out)]
    code, stderr = cli(
        "run", str(shapes), "--prompts", str(prompts), "--model", "tiny-random", *fixed
    )
    assert code == 0, stderr  # the same OUT takes a plain rerun once the settings work


def test_validate_reports_option_problems_with_the_rest(tmp_path, shapes):
    prompts = prompts_with(tmp_path, "  circle:\n    strength: 0.2\n")
    result = CliRunner().invoke(
        app, ["validate", str(shapes), "--prompts", str(prompts), "--steps", "4"]
    )
    assert result.exit_code == 1
    assert "'circle': steps 4 x strength 0.2" in result.stderr
    result = CliRunner().invoke(app, ["validate", str(shapes), "--min-size", "-1"])
    assert result.exit_code == 1 and "--min-size -1" in result.stderr
    assert "images checked" in result.stdout  # the rest was still checked and reported
