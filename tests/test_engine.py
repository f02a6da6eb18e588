"""The pipelined engine: out-of-memory handling and thread-independence of the results."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from inpaint_aug.errors import OutOfMemory, OutputError
from inpaint_aug.options import PlanSettings, RunOptions
from inpaint_aug.pipeline.run import run

PLAN = PlanSettings(resolution=64, min_size=8, min_context=32)


class Invert:
    """A stand-in model that inverts each crop; fails when a batch is over ``limit``."""

    name = "invert"

    def __init__(self, limit: int = 1000) -> None:
        self.limit = limit
        self.sizes: list[int] = []

    def inpaint(self, batch):
        self.sizes.append(len(batch))
        if len(batch) > self.limit:
            raise OutOfMemory(f"out of memory for a batch of {len(batch)}")
        return [(255 - r.pixels) | 16 for r in batch]


def outputs(out) -> dict:
    return json.loads((out / "annotations.json").read_text(encoding="utf-8"))


def test_out_of_memory_halves_the_batch_and_goes_on(shapes, prompts_file, tmp_path, caplog):
    model = Invert(limit=2)
    options = RunOptions(
        coco=shapes, prompts=prompts_file, out=tmp_path / "a", batch_size=8, plan=PLAN
    )
    with caplog.at_level(logging.WARNING):
        report = run(options, inpainter=model)
    assert report.objects_edited > 0 and not report.skip_counts().get("edit/model-output-invalid")
    assert model.sizes[:2] == [8, 4] and max(model.sizes[2:]) == 2
    assert "going on with --batch-size 2" in caplog.text
    reference = run(
        RunOptions(coco=shapes, prompts=prompts_file, out=tmp_path / "b", batch_size=2, plan=PLAN),
        inpainter=Invert(),
    )
    assert outputs(tmp_path / "a") == outputs(tmp_path / "b")
    assert reference.objects_edited == report.objects_edited


def test_out_of_memory_at_batch_one_is_a_clear_failure(shapes, prompts_file, tmp_path):
    options = RunOptions(
        coco=shapes, prompts=prompts_file, out=tmp_path / "o", batch_size=2, plan=PLAN
    )
    with pytest.raises(OutputError, match="cpu-offload"):
        run(options, inpainter=Invert(limit=0))
    assert not (tmp_path / "o" / "annotations.json").exists()


@pytest.mark.parametrize("workers", [1, 3])
def test_results_do_not_depend_on_worker_threads(shapes, prompts_file, tmp_path, workers):
    def go(name: str, w: int) -> dict:
        options = RunOptions(
            coco=shapes,
            prompts=prompts_file,
            out=tmp_path / name,
            batch_size=3,
            workers=w,
            plan=PLAN,
        )
        run(options, inpainter=Invert())
        return outputs(tmp_path / name)

    assert go("one", 1) == go("many", workers)
    names = [im["file_name"] for im in outputs(tmp_path / "one")["images"]]
    for name in names:
        from PIL import Image

        a = np.asarray(Image.open(tmp_path / "one" / name))
        b = np.asarray(Image.open(tmp_path / "many" / name))
        assert np.array_equal(a, b)


@pytest.mark.parametrize(
    ("requested", "device", "torch_threads", "cores", "expected"),
    [
        pytest.param(2, "cpu", 2, 2, 1, id="cpu-torch-takes-every-core"),
        pytest.param(4, "cpu", 2, 8, 4, id="cpu-free-cores-cap-nothing"),
        pytest.param(8, "cpu", 2, 8, 6, id="cpu-capped-by-free-cores"),
        pytest.param(8, "cpu", None, 8, 1, id="cpu-unknown-threads-all-cores"),
        pytest.param(8, "cuda:0", None, 6, 5, id="gpu-one-core-drives-it"),
        pytest.param(3, "mps", 4, 16, 3, id="mps-requested-caps"),
        pytest.param(1, "cuda", 1, 1, 1, id="at-least-one"),
    ],
)
def test_helper_threads_use_the_cores_torch_leaves(
    requested, device, torch_threads, cores, expected
):
    from inpaint_aug.pipeline.engine import helper_threads

    assert helper_threads(requested, device, torch_threads, cores) == expected
