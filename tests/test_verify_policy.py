"""The verification policy, tested exactly with a scripted verifier and a seeded stand-in model:
accept; reject then accept on a retry; reject -> revert (source pixels kept); reject -> drop."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from inpaint_aug import geometry as geo
from inpaint_aug.errors import OutputError
from inpaint_aug.options import PlanSettings, RunOptions, VerifySettings
from inpaint_aug.pipeline.batch import VERIFY_SEED_OFFSET, retry_seed
from inpaint_aug.pipeline.models import verifier_choice
from inpaint_aug.pipeline.run import run
from inpaint_aug.pipeline.verify import Verdict

PLAN = PlanSettings(resolution=64, min_size=8, min_context=32)


class Noise:
    """A stand-in model: seeded noise, so another seed gives another result."""

    name = "noise"

    def inpaint(self, batch):
        return [
            np.random.default_rng(r.seed).integers(16, 256, r.pixels.shape, np.uint8) for r in batch
        ]


class Scripted:
    """A verifier that rejects the first ``rejections`` redraws of each object, or all."""

    name = "scripted"

    def __init__(self, rejections: int | None = 0) -> None:
        self.rejections = rejections
        self.seen: dict[str, int] = {}
        self.calls = 0

    def verify(self, batch):
        verdicts = []
        for request in batch:
            key = hashlib.sha256(request.source.tobytes()).hexdigest()
            self.seen[key] = self.seen.get(key, 0) + 1
            ok = self.rejections is not None and self.seen[key] > self.rejections
            verdicts.append(Verdict(1.0 if ok else 0.0, 1.0, 0.5, ok))
        self.calls += 1
        return verdicts


def go(shapes, prompts, out: Path, verifier, **verify) -> tuple[dict, dict]:
    options = RunOptions(shapes, prompts, out=out, plan=PLAN, verify=VerifySettings(**verify))
    run(options, inpainter=Noise(), verifier=verifier)
    data = json.loads((out / "annotations.json").read_text(encoding="utf-8"))
    return data, json.loads((out / "run.json").read_text(encoding="utf-8"))


def edits(data: dict) -> list[dict]:
    return [e for im in data["images"] for e in im["inpaint_aug"]["edits"]]


def test_accepted_first_time(shapes, prompts_file, tmp_path):
    data, report = go(shapes, prompts_file, tmp_path / "o", Scripted(0))
    assert edits(data) and all(e["verify"]["attempts"] == 1 for e in edits(data))
    assert all(e["verify"]["verifier"] == "scripted" for e in edits(data))
    assert not any("rejected" in im["inpaint_aug"] for im in data["images"])
    rows = report["counts"]["per_class"].values()
    assert sum(r["after_retry"] for r in rows) == 0 and sum(r["rejected"] for r in rows) == 0


def test_rejected_then_accepted_with_a_recorded_retry_seed(shapes, prompts_file, tmp_path):
    plain, _ = go(shapes, prompts_file, tmp_path / "a", Scripted(0))
    data, report = go(shapes, prompts_file, tmp_path / "b", Scripted(1))
    first = {e["source_annotation_id"]: e["seed"] for e in edits(plain)}
    for entry in edits(data):
        assert entry["verify"]["attempts"] == 2
        assert entry["seed"] == retry_seed(first[entry["source_annotation_id"]], VERIFY_SEED_OFFSET)
    rows = report["counts"]["per_class"].values()
    assert sum(r["after_retry"] for r in rows) == len(edits(data)) > 0


def object_mask(ann: dict, height: int, width: int) -> np.ndarray:
    seg = ann.get("segmentation")
    if geo.segmentation_kind(seg) == "none":
        full = geo.Window(0, 0, max(width, height))
        return geo.box_mask(geo.xywh_to_xyxy(ann["bbox"]), full)[:height, :width]
    return mask_utils.decode(geo.to_rle(seg, height, width)).astype(bool)


def test_reject_reverts_every_object_to_its_source_pixels(shapes, prompts_file, tmp_path):
    source_dir = shapes.parent / "images"
    data, report = go(shapes, prompts_file, tmp_path / "o", Scripted(1), retries=0)
    # retries=0 and one rejection each: every redraw is rejected, so no image is written
    assert data["images"] == []
    assert report["counts"]["skipped"].get("image/all-rejected", 0) > 0
    # now reject only objects of one image's first redraw: a mix of kept and reverted objects
    verifier = Scripted(None)
    keep = {"count": 0}

    def verify(batch):
        out = Scripted.verify(verifier, batch)
        keep["count"] += 1
        return [Verdict(v.score, 1.0, 0.5, i % 2 == 0) for i, v in enumerate(out)]

    verifier.verify = verify
    data, _ = go(shapes, prompts_file, tmp_path / "mix", verifier, retries=0)
    rejected = [(im, r) for im in data["images"] for r in im["inpaint_aug"].get("rejected", [])]
    assert rejected and edits(data)
    anns = {a["id"]: a for a in data["annotations"]}
    for image, entry in rejected:
        ann = anns[entry["annotation_id"]]
        assert ann["category_id"] == entry["category_id"]
        src = np.asarray(Image.open(source_dir / image["inpaint_aug"]["source_file_name"]))
        got = np.asarray(Image.open(tmp_path / "mix" / image["file_name"]))
        inside = object_mask(ann, image["height"], image["width"])
        assert np.array_equal(got[inside], src[inside]), "a rejected object changed"


def test_reject_drops_the_image_copy(shapes, prompts_file, tmp_path):
    data, report = go(shapes, prompts_file, tmp_path / "o", Scripted(None), on_reject="drop")
    assert data["images"] == []
    counts = report["counts"]["skipped"]
    assert counts.get("image/verify-rejected", 0) > 0 and counts.get("edit/verify-rejected", 0) > 0
    assert not list((tmp_path / "o" / "images").iterdir())


def test_verification_is_deterministic_and_part_of_the_fingerprint(shapes, prompts_file, tmp_path):
    a, _ = go(shapes, prompts_file, tmp_path / "a", Scripted(1))
    b, _ = go(shapes, prompts_file, tmp_path / "b", Scripted(1))
    assert a == b
    for image in a["images"]:
        assert (tmp_path / "a" / image["file_name"]).read_bytes() == (
            tmp_path / "b" / image["file_name"]
        ).read_bytes()
    options = RunOptions(
        shapes,
        prompts_file,
        out=tmp_path / "a",
        plan=PLAN,
        resume=True,
        verify=VerifySettings(retries=5),
    )
    with pytest.raises(OutputError, match=r"verify\.retries"):
        run(options, inpainter=Noise(), verifier=Scripted(1))


@pytest.mark.parametrize(
    "model,verify,injected,expected",
    [
        pytest.param("tiny-random", "auto", False, ("tiny-clip", None), id="tiny-auto"),
        pytest.param("org/real", "auto", False, ("clip", None), id="real-auto"),
        pytest.param("org/real", "auto", True, None, id="injected-auto-off"),
        pytest.param("org/real", "owlv2", True, ("owlv2", None), id="injected-explicit"),
        pytest.param("tiny-random", "owlv2", False, ("tiny-owlv2", None), id="tiny-owlv2"),
        pytest.param("org/real", "off", False, None, id="off"),
    ],
)
def test_which_verifier(model, verify, injected, expected):
    options = RunOptions("a.json", "p.yaml", model=model, verify=verify)
    assert verifier_choice(options, injected) == expected


def test_cli_tiny_owlv2_runs_through_the_whole_path(shapes, prompts_file, tmp_path):
    from typer.testing import CliRunner

    from inpaint_aug.cli import app

    out = tmp_path / "o"
    args = [
        "run",
        str(shapes),
        "--prompts",
        str(prompts_file),
        "--model",
        "tiny-random",
        "--device",
        "cpu",
        "--resolution",
        "64",
        "--steps",
        "2",
        "--min-size",
        "8",
        "--limit",
        "2",
        "--verify",
        "owlv2",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "annotations.json").read_text(encoding="utf-8"))
    assert edits(data) and {e["verify"]["verifier"] for e in edits(data)} == {"tiny-owlv2"}
    report = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert report["seconds"]["verify"] > 0 and report["settings"]["verify"]["mode"] == "owlv2"


def test_preview_marks_rejected_objects_and_shows_scores(shapes, prompts_file, tmp_path):
    from inpaint_aug.inspect.preview import items_from_run

    out = tmp_path / "o"
    verifier = Scripted(None)
    real = verifier.verify
    verifier.verify = lambda batch: [
        Verdict(v.score, 1.0, 0.5, i % 2 == 0) for i, v in enumerate(real(batch))
    ]
    go(shapes, prompts_file, out, verifier, retries=0)
    labels = [item.label for item in items_from_run(out, n=50)]
    assert any("REJECTED" in label for label in labels)
    assert all("score" in label for label in labels)
