"""The Ray executor on a local Ray (CPU, tiny model from a folder): the same output as local.

One module-wide local Ray (2 CPUs, no dashboard, usage stats off, offline) serves every test:
the executor joins it instead of starting its own. Run these alone with ``pytest -m ray``.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inpaint_aug.cli import app
from inpaint_aug.demo.synthetic import make_shapes_dataset
from inpaint_aug.errors import OutputError
from inpaint_aug.options import PlanSettings, RunOptions
from inpaint_aug.pipeline.run import run

ray = pytest.importorskip("ray", reason="the ray extra is installed in CI (.[test,ray])")
from inpaint_aug.executors import ray as ray_executor  # noqa: E402
from inpaint_aug.executors.ray_worker import ChunkWorker, check_token  # noqa: E402

pytestmark = pytest.mark.ray
FLAGS = ["--device", "cpu", "--resolution", "64", "--steps", "2", "--seed", "5"]
FLAGS += ["--min-size", "8", "--batch-size", "1", "--verify", "off", "--quiet"]


@pytest.fixture(scope="module")
def cluster():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["RAY_AUTH_MODE"] = "disabled"  # a local test cluster: no token file in ~/.ray
    env = {k: v for k, v in os.environ.items() if k.startswith(ray_executor.PASSED_ENV)}
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": env},
    )
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def data(tmp_path_factory, tiny_model_dir):
    """5 images, 2 objects each: with --batch-size 1, three chunks (2, 2 and 1 images)."""
    root = tmp_path_factory.mktemp("ray")
    coco = make_shapes_dataset(
        root / "data", n_images=5, size=(128, 96), seed=4, variety=False, objects_per_image=(2, 2)
    )
    prompts = root / "prompts.yaml"
    prompts.write_text("default:\n  prompt: 'a {name}'\n", encoding="utf-8")
    args = ["run", str(coco), "--prompts", str(prompts), "--model", str(tiny_model_dir), *FLAGS]
    return root, args


def invoke(args: list[str], out: Path, *extra: str) -> None:
    result = CliRunner().invoke(app, [*args, "--out", str(out), *extra])
    assert result.exit_code == 0, (result.output, result.exception)


def output(out: Path) -> tuple[dict, dict]:
    images = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (out / "images").iterdir()
    }
    return images, json.loads((out / "annotations.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def local(data):
    root, args = data
    invoke(args, root / "local")
    images, annotations = output(root / "local")
    assert len(images) == 5 and sum(len(i["inpaint_aug"]["edits"]) for i in annotations["images"])
    return images, annotations


def test_ray_output_is_identical_to_local(cluster, data, local, tiny_model_dir):
    root, args = data
    options = RunOptions(
        coco=args[1],
        prompts=args[3],
        out=root / "ray",
        model=str(tiny_model_dir),
        device="cpu",
        batch_size=1,
        plan=PlanSettings(seed=5, resolution=64, steps=2, min_size=8),
        verify="off",
        executor="ray",
        ray_actors=2,
    )
    seen: list[tuple[int, int]] = []
    report = run(options, progress=lambda done, total: seen.append((done, total)))
    assert output(root / "ray") == local
    assert report.objects_edited == 10 and report.seconds_model > 0
    assert seen[-1] == (10, 10) and len(seen) == 3, "progress fed as each chunk came back"
    assert not list((root / "ray" / "images").glob("*.tmp*")), "no temporary file left"


def test_an_out_folder_that_is_not_shared_is_one_clear_error(tmp_path):
    token = tmp_path / "out" / ".inpaint_aug" / "ray" / "driver-abc"
    with pytest.raises(OutputError, match=r"--out is not shared with .*token file"):
        check_token(str(token), "abc")


class CrashOnce(ChunkWorker):
    """An actor whose process dies on its first chunk, once (a marker file says it did)."""

    marker = ""

    def __call__(self, batch):
        if not os.path.exists(self.marker):
            Path(self.marker).write_text("crashed", encoding="utf-8")
            os._exit(1)
        return super().__call__(batch)


def test_a_killed_worker_is_retried(cluster, data, local, monkeypatch):
    root, args = data
    CrashOnce.marker = str(root / "crashed")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    monkeypatch.setattr(ray_executor, "WORKER", CrashOnce)
    invoke(args, root / "crash", "--executor", "ray", "--ray-actors", "1")
    assert Path(CrashOnce.marker).exists(), "the worker did crash"
    assert output(root / "crash") == local


def test_resume_after_a_killed_driver(cluster, data, local):
    root, args = data
    out = root / "killed"
    journal = out / ".inpaint_aug" / "journal.jsonl"
    cmd = [sys.executable, "-c", "from inpaint_aug.cli import app; app()", *args, "--out", str(out)]
    cmd += ["--executor", "ray", "--ray-address", cluster, "--ray-actors", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if journal.exists() and '"record"' in journal.read_text(encoding="utf-8"):
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert not (out / "annotations.json").exists(), "killed mid-run"
    invoke(args, out, "--executor", "ray")
    assert output(out) == local


def test_ray_address_needs_the_ray_executor(data, tmp_path):
    _, args = data
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "o"), "--ray-actors", "2"])
    assert result.exit_code == 2 and "--ray-actors: needs --executor ray" in result.output


def test_without_ray_the_executor_is_one_clear_error(data, tmp_path, monkeypatch):
    _, args = data
    monkeypatch.setitem(sys.modules, "ray.data", None)  # import ray.data fails
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "o"), "--executor", "ray"])
    assert result.exit_code == 1
    assert 'pip install "inpaint-aug[ray]"' in result.output
    assert not (tmp_path / "o").exists(), "refused before anything was written"
