"""What a run tells its user: progress anywhere, fast and clear model failures, true messages.

* Progress: plain lines when stderr is a pipe or a file, a bar or nothing from Python.
* A hub model that is not cached fails in about a second when the hub is off or out of reach,
  in one line that says what to do; a cached one loads without network retries.
* Warnings and errors say what really happens (ids <= 0, plan-time skips, damaged weights,
  fp16 on the CPU).
* ``--device cuda:N``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inpaint_aug.choices import Device, Dtype
from inpaint_aug.cli import app
from inpaint_aug.dataset.coco import load_coco
from inpaint_aug.demo.synthetic import make_shapes_dataset
from inpaint_aug.errors import ModelError, OptionsError
from inpaint_aug.options import ModelOptions, PlanSettings, RunOptions
from inpaint_aug.pipeline import progress as progress_module
from inpaint_aug.pipeline.plan import Skip
from inpaint_aug.pipeline.progress import (
    BarProgress,
    LineProgress,
    format_duration,
    log_plan_skips,
    resolve_progress,
)
from inpaint_aug.pipeline.run import run

SMALL = PlanSettings(resolution=64, steps=2, min_size=8, min_context=32)
FAST = ["--resolution", "64", "--steps", "2", "--min-size", "8", "--verify", "off"]
LINE = re.compile(r"^inpainting: \d+/\d+ objects \(\d+%\), [\d.?]+ objects/s, (ETA|done in) \S+$")


def child_env(**changes: str | None) -> dict[str, str]:
    """The environment of a CLI subprocess: offline, one thread, plus ``changes`` (None: unset)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def cli_process(args: list[str], env: dict[str, str], stderr: Path) -> tuple[int, float]:
    """Run ``inpaint-aug ARGS`` with stderr to a file (no terminal); return (code, seconds)."""
    started = time.monotonic()
    with stderr.open("w", encoding="utf-8") as err:
        done = subprocess.run(
            [sys.executable, "-c", "from inpaint_aug.cli import app; app()", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            timeout=300,
            check=False,
        )
    return done.returncode, time.monotonic() - started


def lines_of(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --- 5. progress ------------------------------------------------------------------------------


class Clock:
    """A fake monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_line_progress_prints_at_the_interval_and_once_at_the_end():
    out, clock = io.StringIO(), Clock()
    report = LineProgress(out, interval=30.0, clock=clock)
    for second, done in ((10, 2), (20, 4), (40, 8), (50, 10), (75, 20)):
        clock.now = 100.0 + second
        report(done, 20)
    report.close()  # the end was printed already: nothing more
    lines = out.getvalue().splitlines()
    assert lines == [
        "inpainting: 8/20 objects (40%), 0.20 objects/s, ETA 1m00s",
        "inpainting: 20/20 objects (100%), 0.28 objects/s, done in 1m15s",
    ]
    assert all(LINE.match(line) for line in lines)


def test_line_progress_has_a_rate_from_the_second_call_and_is_silent_after_close():
    out, clock = io.StringIO(), Clock()
    report = LineProgress(out, interval=1.0, clock=clock)
    clock.now += 5
    report(3, 10)  # the first call: no rate yet (the model loading came before it)
    assert out.getvalue() == "" and report.line().endswith("? objects/s, ETA ?")
    clock.now += 10
    report(5, 10)
    report.close()  # a run that stops early: its error line is the last word
    clock.now += 10
    report(10, 10)
    expected = "inpainting: 5/10 objects (50%), 0.20 objects/s, ETA 25s"
    assert out.getvalue().splitlines() == [expected]


def test_the_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("INPAINT_AUG_PROGRESS_INTERVAL", "0.2")
    assert LineProgress().interval == 0.2
    monkeypatch.setenv("INPAINT_AUG_PROGRESS_INTERVAL", "soon")
    assert LineProgress().interval == progress_module.INTERVAL == 30.0
    assert [format_duration(s) for s in (4.4, 324, 3 * 3600 + 7 * 60)] == ["4s", "5m24s", "3h07m"]


def test_cli_prints_progress_lines_when_stderr_is_a_file(tmp_path, monkeypatch):
    coco = make_shapes_dataset(tmp_path / "data", n_images=2, size=(128, 96), seed=1)
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text("default:\n  prompt: 'a {name}'\n", encoding="utf-8")
    args = ["run", str(coco), "--prompts", str(prompts), "--model", "tiny-random", *FAST]
    args += ["--device", "cpu", "--batch-size", "1", "--workers", "1"]
    env = child_env(INPAINT_AUG_PROGRESS_INTERVAL="0.2")
    code, _ = cli_process([*args, "--out", str(tmp_path / "a")], env, tmp_path / "a.txt")
    text = (tmp_path / "a.txt").read_text(encoding="utf-8")
    assert code == 0, text
    assert "\r" not in text  # no bar
    progress = [line for line in lines_of(tmp_path / "a.txt") if line.startswith("inpainting:")]
    assert len(progress) >= 2, text
    assert all(LINE.match(line) and "objects/s" in line for line in progress), progress
    assert any("ETA" in line for line in progress[:-1]), progress
    assert "done in" in progress[-1]
    assert re.match(r"inpainting: (\d+)/\1 objects \(100%\)", progress[-1]), progress
    monkeypatch.setenv("INPAINT_AUG_PROGRESS_INTERVAL", "0")  # in-process: no terminal either
    quiet = CliRunner().invoke(app, [*args, "--limit", "1", "--out", str(tmp_path / "b"), "-q"])
    assert quiet.exit_code == 0 and quiet.stderr == ""  # --quiet: no progress


def test_run_from_python_shows_progress_unless_switched_off(
    shapes, prompts_file, tmp_path, tiny_inpainter, capsys
):
    def options(name: str) -> RunOptions:
        out = tmp_path / name
        return RunOptions(shapes, prompts_file, out, model="tiny-random", plan=SMALL, limit=1)

    run(options("a"), inpainter=tiny_inpainter)  # stderr is no terminal here: plain lines
    assert re.search(r"inpainting: (\d+)/\1 objects \(100%\)", capsys.readouterr().err)
    run(options("b"), inpainter=tiny_inpainter, progress=False)
    assert "inpainting" not in capsys.readouterr().err
    seen: list[tuple[int, int]] = []
    run(options("c"), inpainter=tiny_inpainter, progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1] and "inpainting" not in capsys.readouterr().err


def test_resolve_progress(monkeypatch):
    assert resolve_progress(False) is None
    callback = print
    assert resolve_progress(callback) is callback
    assert isinstance(resolve_progress(None), LineProgress)  # pytest's stderr is no terminal
    monkeypatch.setattr(progress_module, "in_notebook", lambda: True)
    assert isinstance(resolve_progress(None), BarProgress)
    assert isinstance(resolve_progress(True), BarProgress)
    with pytest.raises(OptionsError, match="progress"):
        resolve_progress("yes")


def test_bar_progress_draws_and_closes_itself():
    out = io.StringIO()
    bar = BarProgress(out, leave=True)
    bar(1, 4)
    bar(4, 4)
    assert bar.bar is None and "4/4" in out.getvalue()
    bar.close()


# --- 6. a hub model without the hub ----------------------------------------------------------


def shapes_run_args(tmp_path: Path) -> list[str]:
    coco = make_shapes_dataset(tmp_path / "data", n_images=2, size=(128, 96), seed=2)
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text("default:\n  prompt: 'a {name}'\n", encoding="utf-8")
    return ["run", str(coco), "--prompts", str(prompts), "--out", str(tmp_path / "out")]


@pytest.mark.parametrize(
    "env,reason",
    [
        pytest.param({"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE", id="offline-mode"),
        pytest.param(
            {"HF_HUB_OFFLINE": None, "HF_ENDPOINT": "http://127.0.0.1:9"},
            "does not answer",
            id="hub-unreachable",
        ),
    ],
)
def test_default_model_not_cached_fails_fast_in_one_line(tmp_path, env, reason):
    env = child_env(HF_HOME=str(tmp_path / "hf"), TRANSFORMERS_OFFLINE=None, **env)
    code, seconds = cli_process(shapes_run_args(tmp_path), env, tmp_path / "err.txt")
    lines = lines_of(tmp_path / "err.txt")
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith("error: model 'stable-diffusion-v1-5/stable-diffusion-inpainting'")
    assert reason in lines[0] and "--model tiny-random" in lines[0]
    assert "--model DIR (a local diffusers folder)" in lines[0] and "network access" in lines[0]
    assert seconds < 10
    assert not (tmp_path / "out").exists()


def test_cached_hub_model_loads_without_network_retries(tmp_path, tiny_model_dir):
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf" / "hub" / "models--someone--tiny-inpaint"
    shutil.copytree(tiny_model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    env = child_env(HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE=None, TRANSFORMERS_OFFLINE=None)
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"  # nothing answers: the cache must do
    args = [*shapes_run_args(tmp_path), "--model", "someone/tiny-inpaint", *FAST, "--device", "cpu"]
    code, _ = cli_process([*args, "--limit", "1", "-q"], env, tmp_path / "err.txt")
    assert code == 0 and lines_of(tmp_path / "err.txt") == []


def test_lcm_lora_not_cached_fails_before_the_model_loads(monkeypatch):
    from inpaint_aug.pipeline import backend

    def no_torch(_choice):
        raise AssertionError("the device was resolved (torch loaded) before the LoRA check")

    monkeypatch.setattr(backend, "pick_device", no_torch)
    options = ModelOptions("tiny-random", device="cpu", lcm_lora="nobody/no-lora")
    with pytest.raises(ModelError) as caught:
        backend.DiffusersInpainter.load(options)
    message = str(caught.value)
    assert message.startswith("LCM-LoRA 'nobody/no-lora' is not in the local Hugging Face cache")
    assert "--lcm-lora DIR" in message and "\n" not in message


@pytest.mark.parametrize("quiet,expected", [(False, 1), (True, 0)])
def test_huggingface_hub_lines_print_once_and_obey_quiet(quiet, expected):
    code = (
        "import logging; from inpaint_aug.cli.common import setup_logging;"
        f"setup_logging({quiet});"
        "logging.getLogger('huggingface_hub.utils._http').warning('Retrying in 1s [Retry 1/5].')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.splitlines() == ["Retrying in 1s [Retry 1/5]."] * expected


# --- 8. messages ------------------------------------------------------------------------------


def test_id_zero_messages_say_what_the_output_does(tmp_path, prompts_file, tiny_inpainter):
    coco = make_shapes_dataset(tmp_path / "data", n_images=2, size=(128, 96), seed=4)
    data = json.loads(coco.read_text(encoding="utf-8"))
    old = data["categories"][0]["id"]
    data["categories"][0]["id"] = 0
    for ann in data["annotations"]:
        ann["category_id"] = 0 if ann["category_id"] == old else ann["category_id"]
    data["images"][0]["id"], data["annotations"][0]["id"] = 0, 0
    for ann in data["annotations"]:
        ann["image_id"] = 0 if ann["image_id"] == 1 else ann["image_id"]
    coco.write_text(json.dumps(data), encoding="utf-8")
    warnings = load_coco(coco).warnings
    assert len(warnings) == 3 and not any("provenance only" in w for w in warnings)
    by_key = {w.split()[0]: w for w in warnings}
    assert "renumbers images from 1" in by_key["images"]
    assert "renumbers annotations from 1" in by_key["annotations"]
    assert "kept as it is in the output" in by_key["categories"]
    out = tmp_path / "out"
    options = RunOptions(coco, prompts_file, out, model="tiny-random", plan=SMALL, format="yolo")
    run(options, inpainter=tiny_inpainter, progress=False)
    result = json.loads((out / "annotations.json").read_text(encoding="utf-8"))
    assert result["categories"][0]["id"] == 0  # kept, as the message says
    assert min(im["id"] for im in result["images"]) == 1
    assert min(a["id"] for a in result["annotations"]) == 1
    assert 0 in {a["category_id"] for a in result["annotations"]}
    class_map = json.loads((out / "yolo" / "class_map.json").read_text(encoding="utf-8"))
    assert class_map[0]["coco_category_id"] == 0 and class_map[0]["yolo_index"] == 0


def test_run_time_skips_name_the_image_or_the_annotation(
    tmp_path, prompts_file, tiny_inpainter, caplog
):
    coco = make_shapes_dataset(tmp_path / "data", n_images=2, size=(128, 96), seed=4)
    data = json.loads(coco.read_text(encoding="utf-8"))
    missing = data["images"][0]
    (coco.parent / "images" / missing["file_name"]).unlink()
    options = RunOptions(coco, prompts_file, tmp_path / "out", model="tiny-random", plan=SMALL)
    with caplog.at_level(logging.WARNING):
        run(options, inpainter=tiny_inpainter, progress=False)
    lines = [m for m in caplog.messages if m.startswith("skipped")]
    assert lines and lines[0].startswith(f"skipped image {missing['id']}: image-missing: "), lines
    assert Skip("edit", "occluded", "36%", 5, 9).line() == (
        "skipped edit of annotation 9 (image 5): occluded: 36%"
    )


def test_plan_skips_are_logged_one_line_per_kind(caplog):
    skips = [Skip("edit", "too-small", "")] * 13 + [Skip("edit", "crowd", "")]
    skips += [Skip("annotation", "bad-box", ""), Skip("image", "nothing-to-edit", "")]
    with caplog.at_level(logging.WARNING):
        log_plan_skips(skips, "out/run.json")
        log_plan_skips([])
    assert [r.levelno for r in caplog.records] == [logging.WARNING] * 3
    assert caplog.messages == [
        "annotations dropped: bad-box 1 (see out/run.json)",
        "not redrawn: too-small 13, crowd 1 (see out/run.json)",
        "images not written: nothing-to-edit 1 (see out/run.json)",
    ]


def damaged_copy(source: Path, target: Path, part: str) -> Path:
    """A copy of a saved model whose ``part`` weights are cut in half."""
    shutil.copytree(source, target)
    weights = next((target / part).glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return target


@pytest.mark.parametrize("part", ["unet", "text_encoder"])
def test_damaged_weights_are_one_line(tmp_path, tiny_model_dir, part):
    from inpaint_aug.pipeline.backend import DiffusersInpainter

    folder = damaged_copy(tiny_model_dir, tmp_path / "model", part)
    with pytest.raises(ModelError) as caught:
        DiffusersInpainter.load(str(folder), device="cpu")
    message = str(caught.value)
    assert "\n" not in message and str(folder) in message
    assert "missing or damaged" in message and "ffline" not in message


def test_damaged_weights_on_the_command_line(tmp_path, tiny_model_dir):
    folder = damaged_copy(tiny_model_dir, tmp_path / "model", "text_encoder")
    args = [*shapes_run_args(tmp_path), "--model", str(folder), "--device", "cpu"]
    result = CliRunner().invoke(app, args)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot load model") and "Traceback" not in result.stderr


def test_fp16_on_the_cpu_is_refused(tmp_path):
    from inpaint_aug.pipeline.backend import DiffusersInpainter

    with pytest.raises(OptionsError) as caught:
        DiffusersInpainter.load(ModelOptions("tiny-random", device="cpu", dtype="fp16"))
    assert "--dtype fp16" in str(caught.value) and "--device" in str(caught.value)
    args = [*shapes_run_args(tmp_path), "--model", "tiny-random", "--device", "cpu"]
    result = CliRunner().invoke(app, [*args, "--dtype", "fp16"])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "--dtype fp16" in lines[0], lines
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args,named",
    [
        (["--split", "training"], "'training' is not one of 'train', 'val', 'test'"),
        (["--region", "blob"], "'--region'"),
        (["--steps", "abc"], "'--steps'"),
        (["--no-such-flag"], "--no-such-flag"),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(tmp_path, args, named):
    """Choices and types the command line parses itself read as every other error does."""
    result = CliRunner().invoke(app, [*shapes_run_args(tmp_path), *args])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: ") and named in lines[0], lines
    assert "run --help'" in lines[0] and "Value error" not in lines[0]
    assert not (tmp_path / "out").exists()


def test_a_missing_option_or_command_is_one_line(tmp_path):
    coco = make_shapes_dataset(tmp_path / "data", n_images=1, size=(96, 96), seed=2)
    for args, named in (
        (["run", "x.json"], "'--prompts'"),
        (["preview", str(coco)], "--prompts"),
        (["nosuch"], "'nosuch'"),
    ):
        result = CliRunner().invoke(app, args)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1 and named in lines[0], (args, lines)


@pytest.mark.parametrize("command", ["run", "validate", "preview"])
def test_help_reads_well_at_80_columns(command):
    """Rich keeps a docstring's line breaks and wraps what is longer than the terminal: a
    description line longer than 78 characters breaks into a fragment at 80 columns."""
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=80)
    assert result.exit_code == 0
    text = result.stdout.split("╭")[0]  # the usage and the description, before the panels
    assert "COCO_JSON" in text.splitlines()[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    paragraph_ends = (".", ":", ")", "html")
    assert all(line.endswith(paragraph_ends) or len(line) > 70 for line in lines[1:]), lines


def test_the_readme_synopsis_lists_every_option_of_each_command():
    import typer

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    synopsis = readme.split("## Command line", 1)[1].split("```", 2)[1]
    commands = typer.main.get_command(app).commands
    for name in ("run", "validate"):
        block = synopsis.split(f"inpaint-aug {name} ", 1)[1].split("inpaint-aug ", 1)[0]
        flags = {o for p in commands[name].params for o in p.opts if o.startswith("--")}
        missing = {f for f in flags - {"--help"} if f"[{f}" not in block and f"{f} " not in block}
        assert not missing, (name, sorted(missing))


# --- 11. --device cuda:N ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "given,held",
    [
        ("auto", "auto"),
        ("cpu", "cpu"),
        ("mps", "mps"),
        ("cuda", "cuda"),
        ("cuda:0", "cuda:0"),
        ("cuda:12", "cuda:12"),
        ("cuda:01", "cuda:1"),
        (Device.cpu, "cpu"),
        (Device.cuda, "cuda"),
    ],
)
def test_device_forms_are_accepted_and_held_as_plain_strings(given, held):
    options = RunOptions("a.json", "p.yaml", device=given)
    assert options.device == held and type(options.device) is str
    assert options.model_options().device == held
    assert RunOptions.from_dict(options.to_dict()).device == held
    assert Device.cpu == "cpu"  # the named members stay usable


@pytest.mark.parametrize(
    "value", ["tpu", "cuda:", "cuda:-1", "cuda:x", "cuda:1:2", "CUDA", 0, None]
)
def test_bad_devices_name_the_option(value):
    with pytest.raises(OptionsError) as caught:
        ModelOptions("tiny-random", device=value)
    assert str(caught.value).startswith("--device") and "cuda:N" in str(caught.value)


class FakeCuda:
    """torch.cuda as a machine with ``count`` GPUs shows it."""

    def __init__(self, count: int) -> None:
        self.count = count

    def is_available(self) -> bool:
        return self.count > 0

    def device_count(self) -> int:
        return self.count


def test_pick_device_checks_the_gpu_index(monkeypatch):
    import torch

    from inpaint_aug.pipeline.backend import _torch_dtype, pick_device

    monkeypatch.setattr(torch, "cuda", FakeCuda(2))
    assert [pick_device(d) for d in ("auto", "cuda", "cuda:1", "cpu")] == [
        "cuda",
        "cuda",
        "cuda:1",
        "cpu",
    ]
    with pytest.raises(ModelError, match=r"--device cuda:2: torch sees 2 CUDA GPU\(s\), cuda:0 to"):
        pick_device("cuda:2")
    monkeypatch.setattr(torch, "cuda", FakeCuda(0))
    with pytest.raises(ModelError, match="--device cuda:0: no CUDA GPU"):
        pick_device("cuda:0")
    assert _torch_dtype(Dtype.auto, "cuda:1") == torch.float16  # a GPU, whatever its index
    assert _torch_dtype(Dtype.auto, "cpu") == torch.float32


def test_cli_device_forms(tmp_path):
    help_text = CliRunner().invoke(app, ["run", "--help"], terminal_width=200).stdout
    assert "cuda:N" in help_text
    args = [*shapes_run_args(tmp_path), "--model", "tiny-random"]
    result = CliRunner().invoke(app, [*args, "--device", "cuda:x"])
    assert result.exit_code == 2 and "--device 'cuda:x'" in result.stderr
    import torch

    if not torch.cuda.is_available():
        result = CliRunner().invoke(app, [*args, "--device", "cuda:0"])
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 1 and len(lines) == 1 and "no CUDA GPU" in lines[0]


def test_line_progress_names_its_unit():
    out, clock = io.StringIO(), Clock()
    report = LineProgress(out, interval=0.0, clock=clock, unit="backgrounds")
    report(1, 2)
    clock.now += 4
    report(2, 2)
    assert out.getvalue().splitlines() == [
        "inpainting: 2/2 backgrounds (100%), 0.25 backgrounds/s, done in 4s"
    ]
