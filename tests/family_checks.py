"""What every model family and mode must keep: labels carried, pixels outside regions unchanged.

Shared by the ControlNet and model-family tests (``from family_checks import ...``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from helpers import changed_pixels
from test_run import full_mask
from typer.testing import CliRunner

from inpaint_aug import geometry as geo
from inpaint_aug.cli import app

SMALL_ARGS = ["--resolution", "64", "--steps", "2", "--min-size", "8", "--verify", "off"]
SMALL_ARGS += ["--device", "cpu", "--quiet"]


def run_cli(shapes: Path, prompts: Path, out: Path, *extra: str) -> dict:
    """``inpaint-aug run`` on the small settings; the output annotations."""
    args = ["run", str(shapes), "--prompts", str(prompts), "--out", str(out), *SMALL_ARGS, *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads((out / "annotations.json").read_text(encoding="utf-8"))


def check_labels_and_pixels(shapes: Path, out_dir: Path, data: dict, dilate: int = 4) -> None:
    """Every source label arrives unchanged; only pixels inside edit regions differ."""
    src = json.loads(shapes.read_text(encoding="utf-8"))
    assert data["categories"] == src["categories"] and data["images"]
    for image in data["images"]:
        prov = image["inpaint_aug"]
        source = [a for a in src["annotations"] if a["image_id"] == prov["source_image_id"]]
        mine = [a for a in data["annotations"] if a["image_id"] == image["id"]]
        assert [(a["category_id"], a.get("segmentation")) for a in source] == [
            (b["category_id"], b.get("segmentation")) for b in mine
        ]
        assert all(
            np.allclose(a["bbox"], b["bbox"], atol=1e-3) for a, b in zip(source, mine, strict=True)
        )
        w, h = image["width"], image["height"]
        changed = changed_pixels(shapes.parent / "images", out_dir, image)
        masks = {a["id"]: full_mask(a, w, h) for a in source}
        allowed = np.zeros((h, w), bool)
        for edit in prov["edits"]:
            allowed |= geo.dilate(masks[edit["source_annotation_id"]], dilate)
        assert prov["edits"] and changed.any(), "nothing was redrawn"
        assert not (changed & ~allowed).any(), "a pixel outside every edit region changed"


def check_control(data: dict, controlnet: Path, scale: float) -> None:
    """Every edit records the canny control, the ControlNet and a scale in (0, ``scale``]."""
    edits = [e for im in data["images"] for e in im["inpaint_aug"]["edits"]]
    assert edits
    for edit in edits:
        assert edit["control"]["mode"] == "canny"
        assert edit["control"]["controlnet"] == str(controlnet)
        assert 0 < edit["control"]["scale"] <= scale
