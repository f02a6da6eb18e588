"""--mode background: every object keeps its pixels, the rest is redrawn from `background:`."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest
from helpers import changed_pixels
from test_run import SMALL, full_mask, run_small
from typer.testing import CliRunner

from inpaint_aug import geometry as geo
from inpaint_aug.cli import app
from inpaint_aug.dataset.prompts import PromptProblems, parse_prompts
from inpaint_aug.demo.synthetic import make_shapes_dataset
from inpaint_aug.errors import ItemError, OptionsError
from inpaint_aug.inspect.validate import validate
from inpaint_aug.options import PlanSettings, RunOptions
from inpaint_aug.pipeline.background import letterbox
from inpaint_aug.pipeline.regions import background_region
from inpaint_aug.pipeline.run import run

BACKGROUND = PlanSettings(resolution=64, steps=2, mode="background", dilate=2)
PROMPTS = (
    "vars:\n  light: [daylight, dusk]\n"
    "default: {prompt: 'a {name}'}\n"
    "background:\n  prompt: ['{surface} in {light}', 'a photo of {surface}']\n"
    "  vars: {surface: [a wooden table, grass]}\n  negative: blurry\n"
)


@pytest.fixture()
def bg_prompts(tmp_path):
    path = tmp_path / "bg.yaml"
    path.write_text(PROMPTS, encoding="utf-8")
    return path


def _check_output(coco, out_dir, copies=1):
    """Objects bit for bit, the rest mostly changed, labels equal; returns the output dict."""
    src = json.loads(coco.read_text(encoding="utf-8"))
    out = json.loads((out_dir / "annotations.json").read_text(encoding="utf-8"))
    assert len(out["images"]) == len(src["images"]) * copies
    for image in out["images"]:
        prov = image["inpaint_aug"]
        assert prov["mode"] == "background" and prov["edits"] == []
        assert prov["background"]["prompt"] and isinstance(prov["background"]["seed"], int)
        w, h = image["width"], image["height"]
        changed = changed_pixels(coco.parent / "images", out_dir, image)
        anns = [a for a in src["annotations"] if a["image_id"] == prov["source_image_id"]]
        keep = np.zeros((h, w), bool)
        for ann in anns:
            keep |= full_mask(ann, w, h)
        assert not changed[keep].any()  # every object, crowd regions too, bit for bit
        assert changed[~geo.dilate(keep, 2)].mean() > 0.8  # the rest is redrawn
        mine = [a for a in out["annotations"] if a["image_id"] == image["id"]]
        strip = ("id", "image_id", "area")
        assert [{k: v for k, v in a.items() if k not in strip} for a in mine] == [
            {k: v for k, v in a.items() if k not in strip} for a in anns
        ]
    return out


def test_objects_keep_their_pixels_and_the_rest_is_redrawn(
    shapes, bg_prompts, tmp_path, tiny_inpainter
):
    out_dir = tmp_path / "out"
    plan = replace(BACKGROUND, copies=2)
    run_small(shapes, bg_prompts, out_dir, tiny_inpainter, plan=plan)
    out = _check_output(shapes, out_dir, copies=2)
    seeds = [im["inpaint_aug"]["background"]["seed"] for im in out["images"]]
    assert len(set(seeds)) == len(seeds)
    saved = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    assert saved["counts"]["per_class"]["(background)"]["edited"] == len(out["images"])
    assert saved["settings"]["plan"]["mode"] == "background"


@pytest.mark.parametrize("size", [(96, 160), (400, 250)])  # portrait; larger than the model
def test_non_square_and_large_images(size, bg_prompts, tmp_path, tiny_inpainter):
    coco = make_shapes_dataset(tmp_path / "data", n_images=2, size=size, seed=4, variety=False)
    out_dir = tmp_path / "out"
    run_small(coco, bg_prompts, out_dir, tiny_inpainter, plan=BACKGROUND)
    _check_output(coco, out_dir)


def test_the_same_run_gives_the_same_pixels(shapes, bg_prompts, tmp_path, tiny_inpainter):
    outs = []
    for name in "ab":
        run_small(shapes, bg_prompts, tmp_path / name, tiny_inpainter, plan=BACKGROUND)
        outs.append(sorted((tmp_path / name / "images").iterdir()))
    assert [p.read_bytes() for p in outs[0]] == [p.read_bytes() for p in outs[1]]


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (640, 480, (0, -80, 640)),
        (480, 640, (-80, 0, 640)),
        (64, 64, (0, 0, 64)),
        (5, 2, (0, -1, 5)),
    ],
)
def test_letterbox_is_the_centred_square_of_the_longer_side(width, height, expected):
    window = letterbox(width, height)
    assert (window.x0, window.y0, window.side) == expected


def test_region_is_everything_but_the_dilated_objects_and_the_band_is_in_it():
    anns = ({"id": 1, "bbox": [2, 2, 4, 4]}, {"id": 2, "bbox": [10, 0, 2, 2], "iscrowd": 1})
    edit = _edit(geo.Window(0, -4, 16))  # a 16 x 8 image
    region, share = background_region(edit, anns, (16, 8), 1)
    assert region[0:3].all()  # the band above the image (row 3: the crowd, dilated)
    assert not region[4 + 2 : 4 + 6, 2:6].any() and not region[4 + 1, 2]  # object, dilated
    assert not region[4 + 0, 10:12].any()  # a crowd region keeps its pixels too
    assert 0 < share < 1


def test_objects_covering_the_whole_image_leave_nothing_to_redraw():
    with pytest.raises(ItemError) as err:
        background_region(_edit(geo.Window(0, 0, 8)), ({"id": 1, "bbox": [0, 0, 8, 8]},), (8, 8), 0)
    assert err.value.reason == "no-background"


def _edit(window):
    from helpers import make_edit

    return replace(make_edit(0), region="background", window=window, ann_index=-1)


# --- prompts, options, validate -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"prompt": "a {name} scene"}, "background.prompt: {name} is a class name"),
        ({"prompt": "a {place}"}, "background: placeholder {place}"),
        ({"prompt": "a beach", "skip": True}, "background.skip: not a background setting"),
        ({"prompt": "a beach", "target": 3}, "background.target: not a background setting"),
        ({"prompt": "a beach", "strength": 2}, "background.strength is 2"),
        ("a beach", "background must be a mapping"),
    ],
)
def test_bad_background_entries_are_reported(entry, message):
    with pytest.raises(PromptProblems, match=message) as err:
        parse_prompts({"background": entry}, "p.yaml", {1: "cat"})
    assert str(err.value).startswith("p.yaml: ")


def test_an_undefined_background_placeholder_does_not_offer_name():
    """{name} is refused in a background, so the message does not list it as defined."""
    with pytest.raises(PromptProblems) as err:
        parse_prompts({"vars": {"light": ["dusk"]}, "background": {"prompt": "{x}"}}, "p", {1: "a"})
    assert "defined: ['light'] (add it under 'vars')" in str(err.value), str(err.value)


def test_background_prompts_are_filled_like_class_prompts():
    book = parse_prompts(
        {
            "vars": {"light": ["dusk"]},
            "background": {"prompt": "{s} at {light}", "vars": {"s": ["x"]}},
        },
        "p.yaml",
        {1: "cat"},
    )
    assert book.render(None, 3) == ("x at dusk", "")


def test_a_missing_background_section_stops_the_run_and_validate(shapes, prompts_file, tmp_path):
    options = RunOptions(
        shapes, prompts_file, out=tmp_path / "o", model="tiny-random", plan=BACKGROUND
    )
    with pytest.raises(PromptProblems, match="--mode background needs a 'background:' section"):
        run(options)
    assert not (tmp_path / "o").exists()
    result = CliRunner().invoke(
        app, ["validate", str(shapes), "--prompts", str(prompts_file), "--mode", "background"]
    )
    assert result.exit_code == 1 and "needs a 'background:' section" in result.output


def test_validate_counts_the_images_redrawn(shapes, bg_prompts):
    report = validate(shapes, bg_prompts, settings={"mode": "background", "copies": 2})
    assert report.ok and report.would_edit == {"(background)": 2 * 4}


def test_background_mode_refuses_verification_and_balance():
    with pytest.raises(OptionsError, match="--verify: nothing to check in --mode background"):
        RunOptions("a.json", "p.yaml", plan=BACKGROUND, verify="clip")
    assert RunOptions("a.json", "p.yaml", plan=BACKGROUND).verify.mode.value == "auto"
    with pytest.raises(OptionsError, match="--balance: --mode background"):
        PlanSettings(mode="background", balance=3)
    assert SMALL.mode.value == "object"


def test_preview_shows_a_background_run(shapes, bg_prompts, tmp_path, tiny_inpainter):
    from inpaint_aug.inspect.preview import items_from_run

    out_dir = tmp_path / "out"
    run_small(shapes, bg_prompts, out_dir, tiny_inpainter, plan=BACKGROUND)
    items = items_from_run(out_dir, n=2)
    assert len(items) == 2 and all(i.label.startswith("background · image") for i in items)
    assert all((i.before != i.after).any() for i in items)


def test_progress_counts_backgrounds(shapes, bg_prompts, tmp_path, tiny_inpainter, capsys):
    options = RunOptions(shapes, bg_prompts, tmp_path / "out", model="tiny-random", plan=BACKGROUND)
    run(options, inpainter=tiny_inpainter)  # stderr is no terminal here: plain lines
    err = capsys.readouterr().err
    assert re.search(r"inpainting: (\d+)/\1 backgrounds \(100%\), [\d.?]+ backgrounds/s", err), err
    assert "objects" not in err
