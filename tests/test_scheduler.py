"""Runs under batch schedulers and on shared folders: a requeued job continues, one run per OUT,
Ctrl-C twice quits at once, and an unfinished run can be previewed.

The processes are real: the CLI runs in subprocesses through a small entry script that swaps
the model loader for a numpy stand-in (named like the tiny model, no torch) that sleeps a set
time per call, so a test can stop a run mid-batch. The stand-in's edits carry the same provenance
as the tiny model's, so annotations.json can be compared with an uninterrupted in-process run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from inpaint_aug.cli import app
from inpaint_aug.cli.preview import preview_command
from inpaint_aug.cli.run import print_summary
from inpaint_aug.demo.synthetic import make_shapes_dataset
from inpaint_aug.errors import ModelError
from inpaint_aug.inspect.preview import items_from_run
from inpaint_aug.options import PlanSettings, RunOptions
from inpaint_aug.pipeline.backend import DiffusersInpainter
from inpaint_aug.pipeline.report import RunReport
from inpaint_aug.pipeline.run import run
from inpaint_aug.pipeline.signals import stop_on_signals

N_IMAGES = 5
SEED = 5
PLAN = PlanSettings(seed=SEED, resolution=64, steps=1, guidance=1.0, min_size=8)
FLAGS = ["--model", "tiny-random", "--device", "cpu", "--resolution", "64", "--steps", "1"]
FLAGS += ["--guidance", "1", "--min-size", "8", "--batch-size", "1", "--verify", "off"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
STATE = Path(".inpaint_aug")
ENTRY = """
import os, time
import numpy as np
from inpaint_aug.pipeline.backend import DiffusersInpainter

DELAYS = [float(s) for s in os.environ["SLOW_SECONDS"].split(",")]  # per call; last repeats
CALLS = os.environ["SLOW_CALLS"]  # one line appended as each call starts

class Slow:
    name = "tiny-random"
    device = "cpu"
    calls = 0

    def inpaint(self, batch):
        with open(CALLS, "a") as fh:
            fh.write("call\\n")
        time.sleep(DELAYS[min(self.calls, len(DELAYS) - 1)])
        self.calls += 1
        return [np.random.default_rng(r.seed).integers(20, 240, r.pixels.shape, np.uint8)
                for r in batch]

DiffusersInpainter.load = classmethod(lambda cls, *a, **k: Slow())
from inpaint_aug.cli import app
app()
"""


@dataclass(frozen=True)
class Data:
    coco: Path
    prompts: Path
    root: Path
    entry: Path
    annotations: dict  # the uninterrupted run's annotations.json


@pytest.fixture(scope="module")
def data(tmp_path_factory, tiny_inpainter) -> Data:
    root = tmp_path_factory.mktemp("scheduler")
    coco = make_shapes_dataset(
        root / "data",
        n_images=N_IMAGES,
        size=(128, 96),
        seed=11,
        variety=False,
        objects_per_image=(1, 1),
    )
    prompts = root / "prompts.yaml"
    prompts.write_text("default:\n  prompt: 'a {name}'\n", encoding="utf-8")
    entry = root / "slow_entry.py"
    entry.write_text(ENTRY, encoding="utf-8")
    out = root / "reference"
    options = RunOptions(coco, prompts, out=out, model="tiny-random", batch_size=1, plan=PLAN)
    run(options, inpainter=tiny_inpainter)
    annotations = read_json(out / "annotations.json")
    assert len(annotations["images"]) == N_IMAGES
    return Data(coco, prompts, root, entry, annotations)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def command(d: Data, out: Path, seed: int = SEED) -> list[str]:
    args = ["run", str(d.coco), "--prompts", str(d.prompts), "--out", str(out), *FLAGS]
    return [*args, "--seed", str(seed)]


def start(d: Data, out: Path, delays: str, seed: int = SEED, log: Path | None = None):
    """The CLI in a subprocess with the slow stand-in model; stderr goes to ``proc.log``."""
    log = log or out.with_name(f"{out.name}-{seed}.stderr")
    env = {**ENV, "SLOW_SECONDS": delays, "SLOW_CALLS": str(log.with_suffix(".calls"))}
    with open(log, "w", encoding="utf-8") as fh:
        cmd = [sys.executable, str(d.entry), *command(d, out, seed)]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=fh)
    proc.log = log
    return proc


def stderr_of(proc: subprocess.Popen) -> str:
    return proc.log.read_text(encoding="utf-8")


def records(out: Path) -> list[dict]:
    entries = []
    for line in (out / STATE / "journal.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return [e["record"] for e in entries if "record" in e]


def wait_for(condition, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def lines_of(path: Path) -> int:
    try:
        return path.read_text(encoding="utf-8").count("\n")
    except FileNotFoundError:
        return 0


def journal_records(out: Path) -> int:
    return len(records(out)) if (out / STATE / "journal.jsonl").is_file() else 0


def error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.fixture()
def model(monkeypatch, tiny_inpainter):
    """In-process CLI runs get the session's tiny model."""
    monkeypatch.setattr(DiffusersInpainter, "load", classmethod(lambda *_a, **_k: tiny_inpainter))


@pytest.fixture()
def no_model(monkeypatch) -> None:
    def refuse(*_a, **_k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(DiffusersInpainter, "load", classmethod(refuse))


# --------------------------------------------------------------------------------------------
# 1. a requeued job (the very same command after a kill -9) continues, taking over its lock


def test_requeued_job_continues_and_takes_over_its_stale_lock(data, tmp_path):
    out = tmp_path / "out"
    first = start(data, out, "0.3")
    wait_for(lambda: journal_records(out) >= 2 or first.poll() is not None)
    first.send_signal(signal.SIGKILL)  # the node fails
    first.wait()
    assert first.returncode == -signal.SIGKILL
    lock = read_json(out / STATE / "run.lock")
    assert lock["pid"] == first.pid and lock["host"] == socket.gethostname()
    done = journal_records(out)
    assert 2 <= done < N_IMAGES
    again = start(data, out, "0", log=tmp_path / "requeue.stderr")  # the very same command
    assert again.wait(timeout=120) == 0, stderr_of(again)
    stderr = stderr_of(again)
    assert not error_lines(stderr)
    takeover = [line for line in stderr.splitlines() if "taking over the lock" in line]
    assert len(takeover) == 1 and f"pid {first.pid}" in takeover[0], stderr
    assert f"resuming: {done} of {N_IMAGES} images done" in stderr
    assert read_json(out / "annotations.json") == data.annotations
    ids = [r["out_image_id"] for r in records(out)]
    assert sorted(ids) == list(range(1, N_IMAGES + 1)), "finished images were redrawn"
    assert read_json(out / "run.json")["counts"]["objects_this_run"] == N_IMAGES - done
    assert not (out / STATE / "run.lock").exists()


# --------------------------------------------------------------------------------------------
# 2. one run per OUT


def test_second_run_on_the_same_out_refuses_at_once(data, tmp_path):
    out = tmp_path / "out"
    procs = {seed: start(data, out, "0.8", seed=seed) for seed in (SEED, SEED + 1)}
    wait_for(lambda: any(p.poll() is not None for p in procs.values()))
    loser = next(seed for seed, p in procs.items() if p.poll() is not None)
    winner = next(seed for seed in procs if seed != loser)
    assert procs[winner].poll() is None, "the second run must stop at once, not run alongside"
    stderr = stderr_of(procs[loser])
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert procs[loser].returncode == 1 and len(lines) == 1, stderr
    assert error_lines(stderr) == lines
    assert "another run is using this output folder" in lines[0]
    assert f"pid {procs[winner].pid} on host {socket.gethostname()}" in lines[0]
    assert str(out / STATE / "run.lock") in lines[0]
    assert procs[winner].wait(timeout=120) == 0, stderr_of(procs[winner])
    journal = (out / STATE / "journal.jsonl").read_text(encoding="utf-8")
    assert journal.count("fingerprint") == 1
    assert json.loads(journal.splitlines()[0])["fingerprint"]["plan.seed"] == winner
    assert len(read_json(out / "annotations.json")["images"]) == N_IMAGES
    assert not (out / STATE / "run.lock").exists()


@pytest.mark.parametrize("existed", [False, True], ids=["new-out", "empty-out"])
def test_the_lock_comes_before_the_model_and_goes_when_loading_fails(
    data, tmp_path, monkeypatch, existed
):
    out = tmp_path / "out"
    if existed:
        out.mkdir()
    seen = []

    def load(*_a, **_k):
        seen.append(sorted(str(p.relative_to(out)) for p in out.rglob("*")))
        raise ModelError("no model here")

    monkeypatch.setattr(DiffusersInpainter, "load", classmethod(load))
    result = CliRunner().invoke(app, command(data, out))
    assert result.exit_code == 1 and "no model here" in result.stderr
    assert seen == [[".inpaint_aug", ".inpaint_aug/run.lock"]], "only the lock before the model"
    assert out.exists() == existed and (not existed or not any(out.iterdir()))


@pytest.mark.parametrize("where", ["other-host", "this-host-alive"])
def test_a_live_or_foreign_lock_is_never_taken_over(data, tmp_path, no_model, where):
    out = tmp_path / "out"
    (out / STATE).mkdir(parents=True)
    host, pid = ("node-17", 4242) if where == "other-host" else (socket.gethostname(), os.getpid())
    holder = {"host": host, "pid": pid, "started": "2024-05-01T10:00:00+00:00", "job": "981"}
    (out / STATE / "run.lock").write_text(json.dumps(holder), encoding="utf-8")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    result = CliRunner().invoke(app, command(data, out))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error:"), lines
    assert f"pid {pid} on host {host}" in lines[0] and "job 981" in lines[0]
    assert f"delete {out / STATE / 'run.lock'}" in lines[0]
    if where == "other-host":
        assert "never taken over" in lines[0]
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(
    "holder_restart,our_restart,taken",
    [
        pytest.param(0, "1", True, id="requeued-on-another-node"),
        pytest.param(1, "1", False, id="same-start-twice"),
        pytest.param(2, "1", False, id="older-start"),
    ],
)
def test_a_requeued_scheduler_job_takes_over_its_own_lock_from_another_node(
    data, tmp_path, monkeypatch, holder_restart, our_restart, taken
):
    from inpaint_aug.errors import OutputError
    from inpaint_aug.pipeline.lock import acquire

    monkeypatch.setenv("SLURM_JOB_ID", "981")
    monkeypatch.setenv("SLURM_RESTART_COUNT", our_restart)
    out = tmp_path / "out"
    (out / STATE).mkdir(parents=True)
    holder = {
        "host": "node-17",
        "pid": 4242,
        "started": "2024-05-01T10:00:00+00:00",
        "job": "981",
        "restart": holder_restart,
    }
    (out / STATE / "run.lock").write_text(json.dumps(holder), encoding="utf-8")
    if not taken:
        with pytest.raises(OutputError, match="never taken over"):
            acquire(out)
        return
    lock = acquire(out)
    try:
        mine = json.loads((out / STATE / "run.lock").read_text(encoding="utf-8"))
        assert mine["host"] == socket.gethostname() and mine["pid"] == os.getpid()
        assert (mine["job"], mine["restart"]) == ("981", 1)
    finally:
        lock.release()


# --------------------------------------------------------------------------------------------
# 3. Ctrl-C twice quits at once; 4. the unfinished run can be previewed, then resumed


@dataclass(frozen=True)
class Interrupted:
    out: Path
    returncode: int
    seconds_after_second: float
    stderr: str
    done: int


@pytest.fixture(scope="module")
def interrupted(data) -> Interrupted:
    """A run whose second model call (4 s) is interrupted by SIGINT, then SIGINT again."""
    out = data.root / "ctrl-c"
    proc = start(data, out, "0.1,4")
    calls = proc.log.with_suffix(".calls")
    try:
        wait_for(lambda: lines_of(calls) >= 2 and journal_records(out) >= 1)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)  # asks for a clean stop: the batch would take 4 s
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        second = time.monotonic()
        code = proc.wait(timeout=30)
        seconds = time.monotonic() - second
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Interrupted(out, code, seconds, stderr_of(proc), journal_records(out))


def test_ctrl_c_twice_exits_at_once(interrupted):
    s = interrupted
    assert s.returncode == 130, s.stderr
    assert s.seconds_after_second < 1.0, "the second Ctrl-C must not wait for the batch"
    assert "finishing the current batch" in s.stderr and "Ctrl-C again" in s.stderr
    (line,) = error_lines(s.stderr)
    assert "stopped at once by a second SIGINT after" in line and "--resume" in line
    assert f"after {s.done} of {N_IMAGES} images" in line
    assert not (s.out / "annotations.json").exists()
    assert not (s.out / STATE / "run.lock").exists(), "the lock must go on an interrupt too"
    for record in records(s.out):  # every journaled image is complete
        with Image.open(s.out / record["image"]["file_name"]) as img:
            img.load()
    assert 1 <= s.done < N_IMAGES


def test_unfinished_run_can_be_previewed(interrupted, tmp_path):
    out = shutil.copytree(interrupted.out, tmp_path / "out")
    assert (out / STATE / "settings.json").is_file() and not (out / "run.json").exists()
    journal = (out / STATE / "journal.jsonl").read_bytes()
    items = items_from_run(out, n=N_IMAGES)
    assert len(items) == interrupted.done
    sheet = tmp_path / "sheet.png"
    cli = typer.Typer()
    cli.command()(preview_command)
    result = CliRunner().invoke(cli, [str(out), "--sheet", str(sheet)])
    assert result.exit_code == 0, result.output
    assert sheet.is_file() and f"{interrupted.done} edits" in result.output
    assert (out / STATE / "journal.jsonl").read_bytes() == journal, "preview changed the journal"


def test_ctrl_c_twice_then_resume_equals_uninterrupted(interrupted, data, tmp_path, model):
    out = shutil.copytree(interrupted.out, tmp_path / "out")
    result = CliRunner().invoke(app, [*command(data, out), "--resume"])
    assert result.exit_code == 0, result.output
    assert read_json(out / "annotations.json") == data.annotations
    counts = read_json(out / "run.json")["counts"]
    assert counts["objects_this_run"] == N_IMAGES - interrupted.done
    assert counts["objects_edited"] == N_IMAGES


def test_second_signal_raises_in_the_main_thread():
    for second in (signal.SIGINT, signal.SIGTERM):
        stop = threading.Event()
        with pytest.raises(KeyboardInterrupt), stop_on_signals(stop) as caught:
            os.kill(os.getpid(), signal.SIGINT)
            assert stop.is_set() and caught == ["SIGINT"]
            os.kill(os.getpid(), second)
            time.sleep(1)  # the handler raises before this ends
        assert caught == ["SIGINT", second.name]


# --------------------------------------------------------------------------------------------
# 4. timings: a rerun with nothing left keeps the original ones; time per object of this run


def test_finished_run_rerun_keeps_its_timings(data, tmp_path, no_model, tiny_inpainter):
    out = tmp_path / "out"
    options = RunOptions(
        data.coco,
        data.prompts,
        out=out,
        model="tiny-random",
        batch_size=1,
        plan=PLAN,
        verify="off",
    )
    run(options, inpainter=tiny_inpainter)
    before = read_json(out / "run.json")
    result = CliRunner().invoke(app, command(data, out))  # no --resume: continued anyway
    assert result.exit_code == 0, result.output
    after = read_json(out / "run.json")
    assert after["seconds"] == before["seconds"]
    assert after["counts"]["objects_this_run"] == before["counts"]["objects_this_run"] > 0
    assert "no object redrawn by this invocation" in result.output


def test_time_per_object_counts_only_this_invocation(capsys):
    report = RunReport(Path("o"), objects_edited=10, objects_this_run=4, seconds_model=2.0)
    print_summary(report)
    assert "0.500s of model time per object" in capsys.readouterr().out
