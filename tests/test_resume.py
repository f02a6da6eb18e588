"""Long runs survive: resume after kill -9, Ctrl-C, SIGTERM, a full disk; refuse what cannot be
resumed.

One module-wide reference run (in-process, tiny model) is what every interrupted-then-resumed
run must equal: same annotations.json, same decoded pixels, same counts. The crash tests start
the real CLI in subprocesses, all at once so that their model loads overlap, and stop each at a
different point; the resumes run in-process through the CLI with the model loader patched to
return the session's tiny model (same name, same weights).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers import CrashAfter
from PIL import Image
from typer.testing import CliRunner

from inpaint_aug.cli import app
from inpaint_aug.demo.synthetic import make_shapes_dataset
from inpaint_aug.errors import OutputError
from inpaint_aug.options import PlanSettings, RunOptions
from inpaint_aug.pipeline import journal as journal_mod
from inpaint_aug.pipeline.backend import DiffusersInpainter
from inpaint_aug.pipeline.chunks import CHUNK_BATCHES
from inpaint_aug.pipeline.run import run

PLAN = PlanSettings(seed=5, resolution=64, steps=1, guidance=1.0, min_size=8)
BATCH = 1
FLAGS = [
    "--model",
    "tiny-random",
    "--device",
    "cpu",
    "--seed",
    "5",
    "--resolution",
    "64",
    "--steps",
    "1",
    "--guidance",
    "1",
    "--min-size",
    "8",
    "--batch-size",
    str(BATCH),
]
N_IMAGES = 6  # the last one's file is missing: a skip that must survive resumes
N_EDITS = N_IMAGES - 1
ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}
JOURNAL = Path(".inpaint_aug") / "journal.jsonl"


# --------------------------------------------------------------------------------------------
# shared data: the dataset, the reference run, helpers


@dataclass(frozen=True)
class Data:
    coco: Path
    prompts: Path
    root: Path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Data:
    root = tmp_path_factory.mktemp("resume")
    coco = make_shapes_dataset(
        root / "data",
        n_images=N_IMAGES,
        size=(128, 96),
        seed=11,
        variety=False,
        objects_per_image=(1, 1),
    )
    raw = json.loads(coco.read_text(encoding="utf-8"))
    (coco.parent / "images" / raw["images"][-1]["file_name"]).unlink()
    prompts = root / "prompts.yaml"
    prompts.write_text(
        "default:\n  prompt: 'a {name}, {light}'\nvars:\n  light: [day, dusk]\n", encoding="utf-8"
    )
    return Data(coco, prompts, root)


def options(d: Data, out: Path, **kw) -> RunOptions:
    return RunOptions(
        coco=kw.pop("coco", d.coco),
        prompts=kw.pop("prompts", d.prompts),
        out=out,
        model=kw.pop("model", "tiny-random"),
        batch_size=kw.pop("batch_size", BATCH),
        plan=kw.pop("plan", PLAN),
        **kw,
    )


@dataclass(frozen=True)
class Reference:
    out: Path
    annotations: dict
    pixels: dict[str, np.ndarray]
    counts: dict


def decode(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def reference(data, tiny_inpainter, tiny_verifier) -> Reference:
    out = data.root / "reference"
    # the CLI runs below load tiny-random, and so verify with the tiny CLIP: the same here
    run(options(data, out), inpainter=tiny_inpainter, verifier=tiny_verifier)
    annotations = read_json(out / "annotations.json")
    assert len(annotations["images"]) == N_EDITS
    pixels = {im["file_name"]: decode(out / im["file_name"]) for im in annotations["images"]}
    counts = read_json(out / "run.json")["counts"]
    assert counts["skipped"] == {"image/image-missing": 1}
    return Reference(out, annotations, pixels, counts)


def assert_same_as_reference(out: Path, ref: Reference) -> None:
    """Same annotations.json, same decoded pixels, same counts, no stray files in images/."""
    assert read_json(out / "annotations.json") == ref.annotations
    names = sorted(p.name for p in (out / "images").iterdir())
    assert names == sorted(Path(n).name for n in ref.pixels), "stray or missing image files"
    for name, pixels in ref.pixels.items():
        assert np.array_equal(decode(out / name), pixels), f"{name} differs"
    counts = read_json(out / "run.json")["counts"]
    this_run = "objects_this_run"  # what the last invocation redrew: differs after a resume
    assert {k: v for k, v in counts.items() if k != this_run} == {
        k: v for k, v in ref.counts.items() if k != this_run
    }


def journal_entries(out: Path) -> list[dict]:
    entries = []
    for line in (out / JOURNAL).read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return entries


def journal_records(out: Path) -> list[dict]:
    return [e["record"] for e in journal_entries(out) if "record" in e]


def crops_to_resume(out: Path) -> int:
    """Crops a resume redraws: every readable image's edit in a chunk with an unfinished image.

    One edit per image, so a chunk is CHUNK_BATCHES * BATCH consecutive images; the last image
    (its file is missing) never reaches the model.
    """
    entries = journal_entries(out) if (out / JOURNAL).exists() else []
    ended = {e["record"]["out_image_id"] for e in entries if "record" in e}
    ended |= {e["ended"] for e in entries if "ended" in e}
    size = CHUNK_BATCHES * BATCH
    chunks = [range(a, min(a + size, N_IMAGES + 1)) for a in range(1, N_IMAGES + 1, size)]
    todo = [c for c in chunks if set(c) - ended]
    return sum(1 for c in todo for n in c if n < N_IMAGES)


def assert_consistent(out: Path) -> None:
    """After any stop: no final dataset; every journaled image exists and decodes fully."""
    assert not (out / "annotations.json").exists()
    for record in journal_records(out):
        path = out / record["image"]["file_name"]
        with Image.open(path) as img:
            img.load()
            assert img.size == (record["image"]["width"], record["image"]["height"])


class Counting:
    """Wraps the tiny model and counts the crops it is asked to redraw."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.crops = 0

    def inpaint(self, batch):
        self.crops += len(batch)
        return self.inner.inpaint(batch)


@pytest.fixture()
def model(monkeypatch, tiny_inpainter) -> Counting:
    """Make the CLI's model loader return the (counted) session tiny model."""
    counting = Counting(tiny_inpainter)
    monkeypatch.setattr(DiffusersInpainter, "load", classmethod(lambda *_a, **_k: counting))
    return counting


@pytest.fixture()
def no_model(monkeypatch) -> None:
    def refuse(*_a, **_k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(DiffusersInpainter, "load", classmethod(refuse))


def invoke(d: Data, out: Path, *extra: str):
    args = ["run", str(d.coco), "--prompts", str(d.prompts), "--out", str(out), *FLAGS]
    return CliRunner().invoke(app, [*args, *extra])


def cli(d: Data, out: Path, *extra: str) -> tuple[int, str, str]:
    result = invoke(d, out, *extra)
    return result.exit_code, result.stdout, result.stderr


def one_error_line(code: int, stdout: str, stderr: str) -> str:
    assert code == 1, (code, stdout, stderr)
    assert "Traceback" not in stdout + stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), stderr
    return lines[0]


def copy_of(ref: Reference, dest: Path) -> Path:
    shutil.copytree(ref.out, dest)
    return dest


# --------------------------------------------------------------------------------------------
# resume semantics (in-process)


def test_resume_skips_finished_images_and_equals_uninterrupted(
    data, reference, tiny_inpainter, tiny_verifier, tmp_path, model
):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(
            options(data, out),
            inpainter=CrashAfter(tiny_inpainter, calls=2),
            verifier=tiny_verifier,
        )
    assert_consistent(out)
    done = len(journal_records(out))
    assert 1 <= done <= 2
    expected = crops_to_resume(out)
    code, _stdout, stderr = cli(data, out, "--resume")
    assert code == 0, stderr
    assert model.crops == expected, "only whole unfinished chunks are redrawn"
    assert_same_as_reference(out, reference)


def test_resume_of_a_finished_run_loads_no_model(data, reference, tmp_path, no_model):
    out = copy_of(reference, tmp_path / "out")
    report = run(options(data, out, resume=True, workers=1, device="cpu"))  # scheduling differs
    assert report.seconds_load == 0.0
    code, _, stderr = cli(data, out, "--resume", "--workers", "1")
    assert code == 0, stderr
    assert_same_as_reference(out, reference)


CHANGED = [
    pytest.param({"plan": PlanSettings(**{**PLAN.__dict__, "seed": 6})}, "seed", id="seed"),
    pytest.param({"plan": PlanSettings(**{**PLAN.__dict__, "steps": 2})}, "steps", id="steps"),
    pytest.param(
        {"plan": PlanSettings(**{**PLAN.__dict__, "resolution": 128})},
        "resolution",
        id="resolution",
    ),
    pytest.param({"batch_size": 2}, "batch_size", id="batch-size"),
    pytest.param({"model": "someone/other-model"}, "model", id="model"),
    pytest.param({"prompts": "edited"}, "prompts", id="prompts-content"),
    pytest.param({"coco": "edited"}, "coco", id="coco-content"),
]


@pytest.mark.parametrize("change,name", CHANGED)
def test_resume_refuses_different_settings(data, reference, tmp_path, no_model, change, name):
    out = copy_of(reference, tmp_path / "out")
    before = (out / JOURNAL).read_bytes()
    change = dict(change)
    if change.get("prompts") == "edited":
        change["prompts"] = tmp_path / "prompts.yaml"
        change["prompts"].write_text(data.prompts.read_text() + "# edited\n", encoding="utf-8")
    if change.get("coco") == "edited":
        change["coco"] = data.coco.parent / "edited.json"  # beside it: same image folder
        change["coco"].write_text(data.coco.read_text() + "\n", encoding="utf-8")
    with pytest.raises(OutputError, match="settings differ") as err:
        run(options(data, out, resume=True, **change))
    assert name in str(err.value)
    assert "\n" not in str(err.value)
    assert (out / JOURNAL).read_bytes() == before
    assert read_json(out / "annotations.json") == reference.annotations


def test_cli_resume_with_other_seed_is_one_line(data, reference, tmp_path, no_model):
    out = copy_of(reference, tmp_path / "out")
    args = ["run", str(data.coco), "--prompts", str(data.prompts), "--out", str(out), *FLAGS]
    args[args.index("--seed") + 1] = "6"
    result = CliRunner().invoke(app, [*args, "--resume"])
    line = one_error_line(result.exit_code, result.stdout, result.stderr)
    assert "seed" in line and "was 5" in line and "now 6" in line


def test_non_empty_out_without_journal_is_refused(data, tmp_path, no_model):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("user data")
    (out / "images").mkdir()
    (out / "images" / "photo.png").write_bytes(b"not really a png")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for extra in ([], ["--resume"]):
        line = one_error_line(*cli(data, out, *extra))
        assert "not empty" in line and str(out) in line
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in out.rglob("*")) == ["images", "notes.txt", "photo.png"]


def test_existing_run_without_resume_is_continued(data, reference, tmp_path, no_model):
    """The same command again (a requeued job) continues the run; nothing is left to do here."""
    out = copy_of(reference, tmp_path / "out")
    before = read_json(out / "run.json")["seconds"]
    code, stdout, stderr = cli(data, out)
    assert code == 0, stderr
    assert "no object redrawn by this invocation" in stdout
    assert_same_as_reference(out, reference)
    assert read_json(out / "run.json")["seconds"] == before, "the original timings were lost"
    args = ["run", str(data.coco), "--prompts", str(data.prompts), "--out", str(out), *FLAGS]
    args[args.index("--seed") + 1] = "6"  # a setting differs: refused without --resume too
    result = CliRunner().invoke(app, args)
    line = one_error_line(result.exit_code, result.stdout, result.stderr)
    assert "seed" in line and "was 5" in line and "now 6" in line


# --------------------------------------------------------------------------------------------
# crashes and signals: the real CLI in subprocesses


@dataclass
class Stopped:
    """A CLI subprocess stopped by a signal, and what it left."""

    name: str
    out: Path
    signal: int
    returncode: int | None = None
    stderr: str = ""
    lines_at_signal: int = -1
    seconds_to_exit: float = 0.0
    annotations_after_exit: bool = False


def journal_lines(out: Path) -> int:
    try:
        return (out / JOURNAL).read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def loading_torch(pid: int) -> bool:
    """The CLI imports torch only inside the model loader: once it is mapped, loading began."""
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


HAVE_PROC = Path("/proc/self/maps").exists()
# name: (signal, when: (seconds since start, complete journal lines, pid) -> send it now)
STOPS = {
    "kill-early": (signal.SIGKILL, lambda t, n, pid: t >= 0.5),
    "kill-mid": (signal.SIGKILL, lambda t, n, pid: n >= 2),
    "sigint-mid": (signal.SIGINT, lambda t, n, pid: n >= 2),
    "sigterm-mid": (signal.SIGTERM, lambda t, n, pid: n >= 2),
}
if HAVE_PROC:
    STOPS["sigint-loading"] = (signal.SIGINT, lambda t, n, pid: loading_torch(pid))


@pytest.fixture(scope="module")
def stopped(data) -> dict[str, Stopped]:
    """Start one CLI run per entry of STOPS at once; stop each at its point; wait for all."""
    procs, results, logs = {}, {}, {}
    started = time.monotonic()
    for name, (sig, _) in STOPS.items():
        out = data.root / f"stopped-{name}"
        logs[name] = open(data.root / f"{name}.stderr", "w+", encoding="utf-8")  # noqa: SIM115
        cmd = [
            sys.executable,
            "-c",
            "from inpaint_aug.cli import app; app()",
            "run",
            str(data.coco),
            "--prompts",
            str(data.prompts),
            "--out",
            str(out),
            *FLAGS,
        ]
        procs[name] = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=logs[name])
        results[name] = Stopped(name, out, sig)
    signalled: dict[str, float] = {}
    try:
        while len(signalled) < len(procs) and time.monotonic() - started < 400:
            for name, proc in procs.items():
                if name in signalled:
                    continue
                lines = journal_lines(results[name].out)
                when = STOPS[name][1]
                if proc.poll() is not None or when(time.monotonic() - started, lines, proc.pid):
                    if proc.poll() is None:
                        proc.send_signal(STOPS[name][0])
                    results[name].lines_at_signal = lines
                    signalled[name] = time.monotonic()
            time.sleep(0.02)
        for name, proc in procs.items():
            try:
                results[name].returncode = proc.wait(timeout=180)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            results[name].seconds_to_exit = time.monotonic() - signalled.get(name, started)
            results[name].annotations_after_exit = (results[name].out / "annotations.json").exists()
    finally:
        for name, proc in procs.items():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            logs[name].seek(0)
            results[name].stderr = logs[name].read()
            logs[name].close()
    return results


def resume_and_compare(d: Data, out: Path, ref: Reference, model: Counting) -> None:
    done = len(journal_records(out)) if (out / JOURNAL).exists() else 0
    expected = crops_to_resume(out)
    model.crops = 0
    code, stdout, stderr = cli(d, out, "--resume")
    assert code == 0, stderr
    assert "Traceback" not in stdout + stderr
    assert model.crops == expected
    assert_same_as_reference(out, ref)
    assert read_json(out / "run.json")["counts"]["objects_this_run"] == N_EDITS - done


@pytest.mark.parametrize("name", ["kill-early", "sigint-loading"])
def test_stopped_before_the_model_loaded_then_resumed(
    data, reference, stopped, tmp_path, model, name
):
    if name not in stopped:
        pytest.skip("needs Linux /proc to see the model load start")
    s = stopped[name]
    assert s.returncode is not None and s.returncode != 0, s.stderr
    if name == "kill-early":
        assert s.returncode == -signal.SIGKILL
    else:
        assert s.returncode == 130, s.stderr
        assert "Traceback" not in s.stderr
        assert s.lines_at_signal == 0
    # nothing may be written to a fresh --out before the model loads but the run's lock, which
    # a kill -9 leaves behind (the next run takes it over: its pid is gone)
    left = sorted(str(p.relative_to(s.out)) for p in s.out.rglob("*")) if s.out.exists() else []
    assert left in ([], [".inpaint_aug", ".inpaint_aug/run.lock"]), left
    if name == "sigint-loading":
        assert not s.out.exists(), "the lock and the folders made for it must be removed"
    for extra in ([], ["--resume"]):  # the same command works, with or without --resume
        out = tmp_path / f"out{len(extra)}"
        model.crops = 0
        code, stdout, stderr = cli(data, out, *extra)
        assert code == 0 and "Traceback" not in stdout + stderr, stderr
        assert model.crops == N_EDITS
        assert_same_as_reference(out, reference)


def test_kill9_mid_run_then_torn_journal_line_and_temp_file(
    data, reference, stopped, tmp_path, model
):
    s = stopped["kill-mid"]
    assert s.returncode == -signal.SIGKILL, s.stderr
    assert not s.annotations_after_exit, "annotations.json must appear only when a run completes"
    assert_consistent(s.out)
    records = journal_records(s.out)
    assert 1 <= len(records) < N_EDITS, "kill -9 did not land mid-run"
    out = shutil.copytree(s.out, tmp_path / "out")
    # what a kill while writing leaves: a torn last journal line and a half-written image
    done = {r["image"]["file_name"] for r in records}
    todo = sorted(set(reference.pixels) - done)
    with open(out / JOURNAL, "a", encoding="utf-8") as fh:
        fh.write('{"record": {"out_image_id": 9, "image": {"id": 9, "file_na')
    torn = out / todo[0]
    tmp = torn.with_name(f".{torn.name}.tmp")
    tmp.write_bytes(b"\x89PNG\r\n\x1a\n half an image")
    resume_and_compare(data, out, reference, model)
    assert not tmp.exists(), "the leftover temporary file was not replaced"


@pytest.mark.parametrize("name", ["sigint-mid", "sigterm-mid"])
def test_signal_stops_after_the_batch_and_resumes(data, reference, stopped, tmp_path, model, name):
    s = stopped[name]
    assert s.returncode == 130, s.stderr
    assert s.seconds_to_exit < 120
    assert "Traceback" not in s.stderr
    errors = [line for line in s.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--resume" in errors[0], s.stderr
    assert ("SIGINT" if name == "sigint-mid" else "SIGTERM") in errors[0]
    assert not s.annotations_after_exit
    assert_consistent(s.out)
    assert journal_records(s.out), "the batch in progress should have been finished"
    out = shutil.copytree(s.out, tmp_path / "out")
    resume_and_compare(data, out, reference, model)


# --------------------------------------------------------------------------------------------
# unwritable output, full disk


def test_disk_full_stops_cleanly_then_resumes(data, reference, tmp_path, model, monkeypatch):
    out = tmp_path / "out"
    real_replace = os.replace
    saved = []

    def replace(src, dst, *args, **kwargs):
        if Path(dst).parent.name == "images":
            if saved:  # the disk fills up after the first image; a few bytes made it
                Path(src).write_bytes(b"\x89PNG\r\n\x1a\n")
                raise OSError(errno.ENOSPC, "No space left on device")
            saved.append(dst)
        return real_replace(src, dst, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", replace)
        line = one_error_line(*cli(data, out))
    assert "cannot write" in line and "No space left on device" in line
    assert_consistent(out)
    assert len(journal_records(out)) == 1
    for path in (out / "images").iterdir():  # every visible image file is complete
        if not path.name.startswith("."):
            decode(path)
    resume_and_compare(data, out, reference, model)  # space is back


def test_disk_full_while_journaling_is_one_line(data, tmp_path, model, monkeypatch):
    real_append = journal_mod.Journal._append
    appended = []

    def append(self, entry):
        if appended:
            raise OSError(errno.ENOSPC, "No space left on device")
        appended.append(entry)
        real_append(self, entry)

    monkeypatch.setattr(journal_mod.Journal, "_append", append)
    result = invoke(data, tmp_path / "out")
    assert not isinstance(result.exception, OSError), f"raw {result.exception!r} escaped"
    line = one_error_line(result.exit_code, result.stdout, result.stderr)
    assert "No space left on device" in line


def test_disk_full_on_annotations_json_is_one_line(
    data, reference, tmp_path, no_model, monkeypatch
):
    out = copy_of(reference, tmp_path / "out")
    (out / "annotations.json").unlink()

    real_replace = os.replace

    def full(src, dst, *args, **kwargs):
        if Path(dst).name == "annotations.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full)
    result = invoke(data, out, "--resume")
    assert not isinstance(result.exception, OSError), f"raw {result.exception!r} escaped"
    line = one_error_line(result.exit_code, result.stdout, result.stderr)
    assert "annotations.json" in line and "No space left on device" in line


def test_out_is_a_file(data, tmp_path, no_model):
    out = tmp_path / "out.json"
    out.write_text("precious")
    line = one_error_line(*cli(data, out))
    assert "not a folder" in line and str(out) in line
    assert out.read_text() == "precious"


def _root_can_write(folder: Path) -> bool:
    try:
        (folder / ".probe").mkdir()
    except OSError:
        return False
    (folder / ".probe").rmdir()
    return True


def test_out_inside_unwritable_folder_simulated(data, tmp_path, model, monkeypatch):
    """The same as above whoever runs the tests: mkdir under the folder fails with EACCES."""
    parent = tmp_path / "read-only"
    parent.mkdir()
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        if str(path).startswith(str(parent)):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    line = one_error_line(*cli(data, parent / "out"))
    assert "cannot create" in line and "Permission denied" in line and str(parent) in line
    assert not (parent / "out").exists()


# --------------------------------------------------------------------------------------------
# journal robustness


def test_records_after_a_torn_line_survive_the_next_resume(
    data, reference, tiny_inpainter, tiny_verifier, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(
            options(data, out),
            inpainter=CrashAfter(tiny_inpainter, calls=1),
            verifier=tiny_verifier,
        )
    with open(out / JOURNAL, "a", encoding="utf-8") as fh:
        fh.write('{"record": {"out_image_id": 2, "ima')
    run(options(data, out, resume=True), inpainter=tiny_inpainter, verifier=tiny_verifier)
    assert_same_as_reference(out, reference)

    def refuse(*_a, **_k):
        raise AssertionError("a model was loaded: finished images were forgotten")

    monkeypatch.setattr(DiffusersInpainter, "load", classmethod(refuse))
    run(options(data, out, resume=True))  # everything is done: no model, no work
    assert_same_as_reference(out, reference)


def _empty_journal(out: Path) -> None:
    (out / JOURNAL).parent.mkdir(parents=True)
    (out / JOURNAL).write_bytes(b"")
    (out / "images").mkdir()


def _only_images_folder(out: Path) -> None:
    (out / "images").mkdir(parents=True)


@pytest.mark.parametrize(
    "state", [_empty_journal, _only_images_folder], ids=["empty-journal", "only-images-folder"]
)
def test_resume_after_a_kill_during_startup(data, reference, tmp_path, model, state):
    out = tmp_path / "out"
    state(out)
    resume_and_compare(data, out, reference, model)
