"""The CLIP and OWLv2 verifiers, on tiny random-weight models built from configs (no network)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from inpaint_aug.errors import ModelError
from inpaint_aug.pipeline.verify import Verdict, VerifyRequest

R = 32
KINDS = ["tiny-clip", "tiny-owlv2"]
# (4, 4, 12, 12) is the first cell of the tiny OWLv2's 4 x 4 box grid, so its detections count.
BOXES = [(4.0, 4.0, 12.0, 12.0), (2.0, 10.0, 30.0, 18.0), (20.0, 16.0, 24.0, 31.0)]


def requests(seed: int = 0) -> list[VerifyRequest]:
    rng = np.random.default_rng(seed)
    return [
        VerifyRequest(
            rng.integers(0, 256, (R, R, 3), dtype=np.uint8),
            rng.integers(0, 256, (R, R, 3), dtype=np.uint8),
            box,
            label,
        )
        for box, label in zip(BOXES, ["circle", "square", "circle"], strict=True)
    ]


@pytest.fixture(scope="module", params=KINDS)
def verifier(request):
    import torch

    from inpaint_aug.pipeline.verifier_loading import load_verifier

    torch.set_num_threads(1)
    return load_verifier(request.param, None, "cpu", "fp32", None)


def close(a: Verdict, b: Verdict, tol: float = 1e-4) -> bool:
    return (
        abs(a.score - b.score) <= tol
        and abs(a.source_score - b.source_score) <= tol
        and abs(a.threshold - b.threshold) <= tol
        and a.passed == b.passed
    )


def test_one_finite_verdict_per_request_and_deterministic(verifier):
    batch = requests()
    first = verifier.verify(batch)
    assert len(first) == len(batch)
    for v in first:
        assert all(isinstance(x, float) and math.isfinite(x) for x in (v.score, v.source_score))
        assert isinstance(v.threshold, float) and isinstance(v.passed, bool)
    assert verifier.verify(batch) == first
    assert verifier.verify([]) == []
    assert verifier.seconds > 0
    assert verifier.name in KINDS


def test_a_fresh_model_gives_the_same_verdicts(verifier):
    from inpaint_aug.pipeline.verifier_loading import load_verifier

    again = load_verifier(verifier.name, None, "cpu", None, None)
    assert again.verify(requests()) == verifier.verify(requests())


def test_verdicts_do_not_depend_on_the_batch(verifier):
    batch = requests(seed=1)
    together = verifier.verify(batch)
    for request, verdict in zip(batch, together, strict=True):
        assert close(verifier.verify([request])[0], verdict)
    backwards = verifier.verify(batch[::-1])
    assert all(close(a, b) for a, b in zip(backwards, together[::-1], strict=True))


def test_an_unchanged_object_passes(verifier):
    same = [VerifyRequest(r.source, r.source, r.box, r.label) for r in requests()]
    for verdict in verifier.verify(same):
        assert verdict.score == pytest.approx(verdict.source_score, abs=1e-4)
        assert verdict.passed
    if verifier.name == "tiny-owlv2":  # the grid-cell box is seen: the rule is not vacuous
        assert verifier.verify(same[:1])[0].source_score > 0.0


def test_the_clip_rule_allows_threshold_points_below_the_source(monkeypatch):
    import torch

    from inpaint_aug.pipeline.verifier_loading import load_verifier

    clip = load_verifier("tiny-clip", None, "cpu", None, 2.5)
    results, sources = [28.6, 28.4, 35.0, 20.0], [31.0, 31.0, 31.0, 21.0]
    scores = torch.tensor([*results, *sources])
    monkeypatch.setattr(clip, "_scores", lambda b: scores)
    verdicts = clip.verify(requests()[:2] * 2)
    assert [v.passed for v in verdicts] == [True, False, True, True]
    assert [v.threshold for v in verdicts] == pytest.approx([28.5, 28.5, 28.5, 18.5])
    assert verdicts[0].score == pytest.approx(28.6)
    assert verdicts[0].source_score == pytest.approx(31.0)


def test_the_owlv2_rule_keeps_a_fraction_and_passes_what_it_cannot_see(monkeypatch):
    import torch

    from inpaint_aug.pipeline.verifier_loading import load_verifier

    owl = load_verifier("tiny-owlv2", None, "cpu", None, 0.5)
    results, sources = [0.31, 0.29, 0.0, 0.9], [0.6, 0.6, 0.0, 0.0]
    scores = torch.tensor([*results, *sources])
    monkeypatch.setattr(owl, "_scores", lambda b: scores)
    verdicts = owl.verify(requests()[:2] * 2)
    assert [v.passed for v in verdicts] == [True, False, True, True]
    assert [v.threshold for v in verdicts] == pytest.approx([0.3, 0.3, 0.0, 0.0])


@pytest.mark.parametrize("kind", KINDS)
def test_a_saved_model_loads_back_through_the_real_path(kind, tmp_path):
    import torch

    from inpaint_aug.pipeline.tiny import build_tiny_clip, build_tiny_owlv2
    from inpaint_aug.pipeline.verifier_loading import load_verifier

    torch.set_num_threads(1)
    model, tokenizer = (build_tiny_clip if kind == "tiny-clip" else build_tiny_owlv2)()
    model.save_pretrained(str(tmp_path / "m"))
    tokenizer.save_pretrained(str(tmp_path / "m"))
    family = kind.removeprefix("tiny-")
    bar = 2.5 if family == "clip" else 0.5  # the tiny kinds' own default bar is wide open
    loaded = load_verifier(family, str(tmp_path / "m"), "cpu", "fp32", bar)
    assert loaded.name == f"{family}:{tmp_path / 'm'}"
    memory = load_verifier(kind, None, "cpu", "fp32", bar)
    for a, b in zip(loaded.verify(requests()), memory.verify(requests()), strict=True):
        assert close(a, b, 1e-6)
    other = "owlv2" if family == "clip" else "clip"
    with pytest.raises(ModelError, match=f"{family}' model folder; expected"):
        load_verifier(other, str(tmp_path / "m"), "cpu", None, None)


@pytest.mark.parametrize("kind", ["clip", "owlv2"])
def test_a_bad_model_folder_is_one_clear_line(kind, tmp_path):
    from inpaint_aug.pipeline.verifier_loading import load_verifier

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not a model")
    cases = [tmp_path / "missing", tmp_path / "notes"]
    for path in cases:
        with pytest.raises(ModelError) as err:
            load_verifier(kind, str(path), "cpu", None, None)
        assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_an_uncached_hub_model_offline_says_what_to_do():
    from inpaint_aug.pipeline.verifier_loading import load_verifier

    with pytest.raises(ModelError, match="--verifier-model DIR, or --verify off") as err:
        load_verifier("clip", "inpaint-aug-tests/no-such-model", "cpu", None, None)
    assert "\n" not in str(err.value)
    with pytest.raises(ModelError, match="expected one of clip, owlv2"):
        load_verifier("yolo", None, "cpu", None, None)


def test_the_module_imports_without_torch():
    code = "import sys, inpaint_aug.pipeline.verifiers; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tiny_kinds_let_every_redraw_through_by_default():
    from inpaint_aug.pipeline.verifier_loading import TINY_THRESHOLDS, load_verifier

    for kind in KINDS:
        verifier = load_verifier(kind, None, "cpu", "fp32", None)
        assert verifier.threshold == TINY_THRESHOLDS[kind.removeprefix("tiny-")]
        assert all(v.passed for v in verifier.verify(requests()))
