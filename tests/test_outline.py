"""--keep-outline: the region shrinks inside the object, and the outline band keeps its pixels."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from helpers import changed_pixels, make_edit, rle_encode
from test_run import SMALL, full_mask, run_small

from inpaint_aug import geometry as geo
from inpaint_aug.errors import ItemError, OptionsError
from inpaint_aug.options import PlanSettings, RunOptions
from inpaint_aug.pipeline.journal import fingerprint
from inpaint_aug.pipeline.regions import paintable

BOX = {"id": 1, "bbox": [8, 8, 16, 16], "category_id": 1}


def _region(ann: dict, px: int, region: str = "box"):
    edit = replace(make_edit(0, region=region, window=geo.Window(0, 0, 32)), keep_outline=px)
    return paintable(edit, (ann,), (32, 32), dilate=4, min_coverage=0.0)[0]


@pytest.mark.parametrize(
    ("px", "expected"),
    [(0, 20 * 20), (1, 14 * 14), (3, 10 * 10), (7, 2 * 2)],  # 0: the box dilated by 4 (rounded)
)
def test_box_region_erodes_by_px(px, expected):
    region = _region(BOX, px)
    if px == 0:
        assert region.sum() > 16 * 16  # dilated
    else:
        assert region.sum() == expected
        assert not region[8 : 8 + px].any() and region[8 + px, 8 + px]


def test_mask_region_erodes_inside_the_mask():
    mask = np.zeros((32, 32), bool)
    mask[6:26, 10:20] = True
    ann = {"id": 1, "bbox": [10, 6, 10, 20], "category_id": 1, "segmentation": rle_encode(mask)}
    region = _region(ann, 2, region="mask")
    assert region.sum() > 0 and not (region & ~mask).any()
    assert region.sum() == geo.erode(mask, 2).sum() < mask.sum()


def test_object_at_the_image_border_is_not_eroded_from_the_border():
    ann = {"id": 1, "bbox": [0, 0, 10, 10], "category_id": 1}
    region = _region(ann, 2)
    assert region[0, 0] and region[7, 7] and not region[8, 8]


def test_too_thin_object_is_skipped_with_a_reason():
    ann = {"id": 1, "bbox": [8, 8, 4, 30], "category_id": 1}
    with pytest.raises(ItemError) as err:
        _region(ann, 3)
    assert err.value.reason == "too-thin" and "--keep-outline" in err.value.detail


def test_keep_outline_is_checked_and_in_the_fingerprint(tmp_path):
    with pytest.raises(OptionsError, match="--keep-outline -1"):
        PlanSettings(keep_outline=-1)
    for name in ("a.json", "p.yaml"):
        (tmp_path / name).write_text("{}")
    opts = [
        RunOptions(tmp_path / "a.json", tmp_path / "p.yaml", plan=PlanSettings(keep_outline=k))
        for k in (0, 3)
    ]
    assert fingerprint(opts[0])["plan.keep_outline"] == 0
    assert fingerprint(opts[1])["plan.keep_outline"] == 3


def test_outline_band_keeps_source_pixels_bit_for_bit(
    shapes, prompts_file, tmp_path, tiny_inpainter
):
    src = json.loads(shapes.read_text(encoding="utf-8"))
    out_dir = tmp_path / "out"
    plan = replace(SMALL, keep_outline=3, min_size=16)
    out = run_small(shapes, prompts_file, out_dir, tiny_inpainter, plan=plan, verify="off")
    anns = {a["id"]: a for a in src["annotations"]}
    bands = 0
    for image in out["images"]:
        prov = image["inpaint_aug"]
        w, h = image["width"], image["height"]
        changed = changed_pixels(shapes.parent / "images", out_dir, image)
        for edit in prov["edits"]:
            assert edit["keep_outline"] == 3
            own = full_mask(anns[edit["source_annotation_id"]], w, h)
            inside = np.ones((h, w), bool)
            band = own & ~geo.erode(own | ~inside, 3)
            assert band.any() and not changed[band].any()
            assert changed[own & ~band].any()  # the inside was redrawn
            bands += 1
        union = np.zeros((h, w), bool)
        for edit in prov["edits"]:
            union |= full_mask(anns[edit["source_annotation_id"]], w, h)
        assert not changed[~union].any()  # no dilation: nothing outside the objects changes
    assert bands
