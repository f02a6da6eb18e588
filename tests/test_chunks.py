"""Batch composition is a function of the plan: chunks of whole images, fixed batches.

The chunk function is pure (tables and hypothesis); the engine runs exactly its batches, pads
only with ``--compile``, and a run interrupted mid-way then resumed writes the same PNG bytes as
an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import CrashAfter
from hypothesis import given, settings
from hypothesis import strategies as st

from inpaint_aug.choices import ImageFormat
from inpaint_aug.options import PlanSettings, RunOptions
from inpaint_aug.pipeline.chunks import CHUNK_BATCHES, plan_chunks
from inpaint_aug.pipeline.plan import ImageJob
from inpaint_aug.pipeline.records import Task
from inpaint_aug.pipeline.run import run


@dataclass(frozen=True)
class FakeEdit:
    settings_key: tuple


def tasks_of(keys: list[str]) -> list[Task]:
    """One task per string; each letter one edit, the letter its settings."""
    return [
        Task(
            i + 1,
            ImageJob({"id": i}, 0, (), tuple(FakeEdit((c,)) for c in k)),
            "x",
            ImageFormat.png,
        )
        for i, k in enumerate(keys)
    ]


def shape(chunks) -> list[tuple[int, list[str]]]:
    """Each chunk as (tasks, batches as letter strings)."""
    out = []
    for chunk in chunks:
        letters = [
            "".join(chunk.tasks[p].job.edits[k].settings_key[0] for p, k in batch)
            for batch in chunk.batches
        ]
        out.append((len(chunk.tasks), letters))
    return out


@pytest.mark.parametrize(
    ("keys", "batch", "expected"),
    [
        pytest.param(["a", "a", "a"], 1, [(3, ["a", "a", "a"])], id="batch-1-one-chunk-per-4"),
        pytest.param(
            ["aa"] * 5, 1, [(2, ["a"] * 4), (2, ["a"] * 4), (1, ["a", "a"])], id="batch-1"
        ),
        pytest.param(["aab", "ab", "b"], 2, [(3, ["aa", "a", "bb", "b"])], id="two-buckets"),
        pytest.param(["a" * 9], 2, [(1, ["aa", "aa", "aa", "aa", "a"])], id="big-image-alone"),
        pytest.param(["a" * 8, "b"], 2, [(1, ["aa"] * 4), (1, ["b"])], id="closes-at-boundary"),
        pytest.param(["ba", "ab"], 4, [(2, ["aa", "bb"])], id="ordered-by-last-edit"),
        pytest.param(["", "a", ""], 3, [(3, ["a"])], id="images-without-edits"),
        pytest.param([], 3, [], id="nothing"),
    ],
)
def test_chunks_table(keys, batch, expected):
    assert shape(plan_chunks(tasks_of(keys), batch)) == expected


def test_bad_batch_size_is_refused():
    with pytest.raises(ValueError, match="batch_size 0"):
        plan_chunks(tasks_of(["a"]), 0)


@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(st.text(alphabet="abc", max_size=7), max_size=12),
    batch=st.integers(1, 5),
    min_batches=st.integers(1, 3),
)
def test_chunks_properties(keys, batch, min_batches):
    tasks = tasks_of(keys)
    chunks = plan_chunks(tasks, batch, min_batches)
    assert chunks == plan_chunks(tasks, batch, min_batches), "deterministic"
    assert [t for c in chunks for t in c.tasks] == tasks, "whole images, in plan order"
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for chunk in chunks[:-1]:  # closed at the first image boundary past the threshold
        assert chunk.n_edits >= min_batches * batch
        assert chunk.n_edits - len(chunk.tasks[-1].job.edits) < min_batches * batch
    for chunk in chunks:
        refs = [r for b in chunk.batches for r in b]
        every = [(p, k) for p, t in enumerate(chunk.tasks) for k in range(len(t.job.edits))]
        assert sorted(refs) == every, "every edit in exactly one batch"
        key = lambda r, c=chunk: c.tasks[r[0]].job.edits[r[1]].settings_key  # noqa: E731
        assert all(len({key(r) for r in b}) == 1 for b in chunk.batches), "no mixed settings"
        assert all(1 <= len(b) <= batch for b in chunk.batches)
        assert [b[-1] for b in chunk.batches] == sorted(b[-1] for b in chunk.batches)
        for bucket in {key(r) for r in refs}:
            mine = [b for b in chunk.batches if key(b[0]) == bucket]
            assert [r for b in mine for r in b] == sorted(r for r in every if key(r) == bucket)
            assert all(len(b) == batch for b in mine[:-1]), "only a bucket's last batch is short"


# --------------------------------------------------------------------------------------------
# the engine runs the planned batches

PLAN = PlanSettings(resolution=64, min_size=8, min_context=32, steps=2, seed=3)


class Slots:
    """A stand-in model that inverts each crop and counts the batch sizes it is given."""

    name = "invert"

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def inpaint(self, batch):
        self.sizes.append(len(batch))
        return [(255 - r.pixels) | 16 for r in batch]


@pytest.mark.parametrize("compile_", [False, True], ids=["plain", "compile"])
def test_padding_only_with_compile(shapes, prompts_file, tmp_path, compile_):
    model = Slots()
    options = RunOptions(
        shapes, prompts_file, out=tmp_path / "o", batch_size=3, plan=PLAN, compile=compile_
    )
    report = run(options, inpainter=model)
    assert report.objects_edited == sum(min(s, 3) for s in model.sizes) or compile_
    if compile_:
        assert set(model.sizes) == {3}
    else:
        assert sum(model.sizes) == report.objects_edited, "no padded slot"
        assert min(model.sizes) < 3, "a bucket's last batch is not padded"


def digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (out / "images").iterdir()}


def test_resume_mid_run_is_byte_identical_without_padding(
    shapes, prompts_file, tmp_path, tiny_inpainter
):
    def opts(name: str) -> RunOptions:
        return RunOptions(shapes, prompts_file, out=tmp_path / name, batch_size=2, plan=PLAN)

    first = plan_chunks_of(opts("x"))
    assert len(first) >= 2 and first[0].n_edits >= CHUNK_BATCHES * 2
    run(opts("whole"), inpainter=tiny_inpainter)
    with pytest.raises(RuntimeError, match="simulated crash"):  # in the second chunk
        run(opts("cut"), inpainter=CrashAfter(tiny_inpainter, len(first[0].batches) + 1))
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cut" / "images").iterdir()}
    assert before, "the first chunk was written"
    run(opts("cut"), inpainter=tiny_inpainter)
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cut" / "images").iterdir()}
    assert {k: after[k] for k in before} == before, "finished images are not written again"
    assert digests(tmp_path / "cut") == digests(tmp_path / "whole")
    read = lambda n: json.loads((tmp_path / n / "annotations.json").read_text())  # noqa: E731
    assert read("cut") == read("whole")


def plan_chunks_of(options: RunOptions):
    from inpaint_aug.pipeline.plan import plan_dataset
    from inpaint_aug.pipeline.records import output_tasks
    from inpaint_aug.pipeline.run import load_inputs

    ds, book = load_inputs(options)
    jobs, _ = plan_dataset(ds, book, options.plan, options.limit)
    return plan_chunks(output_tasks(jobs, [], options.image_format)[0], options.batch_size)
