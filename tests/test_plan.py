"""Tests of inpaint_aug.plan: seeds, eligibility, dropped annotations, copies, regions, windows."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from helpers import rle_encode

from inpaint_aug import geometry as geo
from inpaint_aug.dataset.coco import load_coco
from inpaint_aug.dataset.prompts import parse_prompts
from inpaint_aug.options import PlanSettings
from inpaint_aug.pipeline.plan import check_annotation, derive_seed, plan_dataset
from inpaint_aug.pipeline.regions import paintable

CATS = [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}, {"id": 5, "name": "bird"}]
PROMPTS = {
    "default": {"prompt": "a {name}"},
    "classes": {"dog": {"skip": True}, "bird": {"prompt": "a bird", "strength": 0.4, "steps": 7}},
}
SETTINGS = PlanSettings(min_size=4, min_context=16, dilate=2)
POLY = [[10, 10, 30, 10, 30, 30, 10, 30]]  # the 20 x 20 square of BOX
BOX = [10, 10, 20, 20]
FAR = [60, 40, 20, 20]  # a box apart from BOX (objects that overlap cut each other)


def ann(id, bbox=BOX, cat=1, image=1, seg=POLY, **extra):
    out = {"id": id, "image_id": image, "category_id": cat, "bbox": bbox, "iscrowd": 0}
    if seg is not None:
        out["segmentation"] = seg
    out.update(extra)
    return out


def make_ds(tmp_path: Path, annotations, images=None, categories=CATS):
    images = images or [{"id": 1, "file_name": "a.png", "width": 100, "height": 80}]
    data = {"images": images, "annotations": annotations, "categories": categories}
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return load_coco(path, images=tmp_path)


def make_book(ds, data=None):
    names = {c["id"]: c["name"] for c in ds.raw["categories"]}
    return parse_prompts(PROMPTS if data is None else data, "p.yaml", names)


def plan(tmp_path, annotations, settings=SETTINGS, images=None, prompts=None, limit=None):
    ds = make_ds(tmp_path, annotations, images)
    return plan_dataset(ds, make_book(ds, prompts), settings, limit)


def reasons(skips, kind=None):
    return {(s.annotation_id, s.reason) for s in skips if kind is None or s.kind == kind}


# --- seeds -----------------------------------------------------------------------------------


def test_derive_seed_is_stable():
    assert derive_seed(1, 5, 9, 0) == derive_seed(1, 5, 9, 0)
    # pinned: a changed derivation would silently change every published augmentation
    assert derive_seed(0, 1, 1, 0) == 1960484156
    digest = hashlib.sha256(b"3:10:20:1").digest()
    assert derive_seed(3, 10, 20, 1) == int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def test_derive_seed_distinct_and_31_bit():
    keys = [(s, i, a, c) for s in (0, 1) for i in range(12) for a in range(12) for c in range(3)]
    seeds = [derive_seed(*k) for k in keys]
    assert len(set(seeds)) == len(keys)
    assert all(0 <= s < 2**31 for s in seeds)
    assert derive_seed(0, 1, 23, 0) != derive_seed(0, 12, 3, 0)  # no concatenation clash


# --- eligibility -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "annotation,settings,reason",
    [
        pytest.param(ann(1, iscrowd=1), SETTINGS, "crowd", id="crowd"),
        pytest.param(
            ann(1, bbox=[10, 10, 3, 20], seg=None), SETTINGS, "too-small", id="too-narrow"
        ),
        pytest.param(
            ann(1, bbox=[10, 10, 20, 3.5], seg=None), SETTINGS, "too-small", id="too-flat"
        ),
        pytest.param(ann(1, cat=2), SETTINGS, "class-skipped", id="class-skipped"),
        pytest.param(
            ann(1, seg=None),
            PlanSettings(**{**SETTINGS.__dict__, "region": "mask"}),
            "no-mask",
            id="no-mask",
        ),
        pytest.param(
            ann(1, seg=[]),
            PlanSettings(**{**SETTINGS.__dict__, "region": "mask"}),
            "no-mask",
            id="no-mask-empty",
        ),
        pytest.param(ann(1, cat=2, iscrowd=1), SETTINGS, "crowd", id="crowd-beats-skip"),
    ],
)
def test_not_editable_reasons(tmp_path, annotation, settings, reason):
    jobs, skips = plan(tmp_path, [annotation], settings)
    assert jobs == []  # nothing else to edit in the image
    assert reasons(skips, "edit") == {(1, reason)}
    assert reasons(skips, "image") == {(None, "nothing-to-edit")}
    assert reasons(skips, "annotation") == set()  # carried over, not dropped


def test_no_prompt_without_default(tmp_path):
    jobs, skips = plan(
        tmp_path,
        [ann(1), ann(2, bbox=FAR, seg=None, cat=5)],
        prompts={"classes": {"bird": {"prompt": "b"}}},
    )
    assert reasons(skips, "edit") == {(1, "no-prompt")}
    assert [e.annotation_id for e in jobs[0].edits] == [2]
    assert [a["id"] for a in jobs[0].annotations] == [1, 2]  # still carried over


def test_too_small_message_names_size_and_limit(tmp_path):
    _, skips = plan(tmp_path, [ann(1, bbox=[10, 10, 3, 20], seg=None)])
    (skip,) = [s for s in skips if s.reason == "too-small"]
    assert "3x20" in skip.detail and "--min-size 4" in skip.detail
    assert skip.image_id == 1 and skip.annotation_id == 1


def test_max_per_image_keeps_the_largest_in_annotation_order(tmp_path):
    anns = [
        ann(1, bbox=[0, 0, 10, 10], seg=None),
        ann(2, bbox=[20, 20, 30, 30], seg=None),
        ann(3, bbox=[60, 5, 5, 5], seg=None),
        ann(4, bbox=[50, 40, 20, 25], seg=None),
    ]
    settings = PlanSettings(**{**SETTINGS.__dict__, "max_per_image": 2})
    jobs, skips = plan(tmp_path, anns, settings)
    assert [e.annotation_id for e in jobs[0].edits] == [2, 4]
    assert reasons(skips, "edit") == {(1, "max-per-image"), (3, "max-per-image")}
    assert all("--max-per-image 2" in s.detail for s in skips if s.reason == "max-per-image")


def test_max_per_image_counts_only_eligible_objects(tmp_path):
    anns = [ann(1, bbox=[40, 30, 60, 50], seg=None, iscrowd=1), ann(2, seg=None)]
    settings = PlanSettings(**{**SETTINGS.__dict__, "max_per_image": 1})
    jobs, skips = plan(tmp_path, anns, settings)
    assert [e.annotation_id for e in jobs[0].edits] == [2]
    assert reasons(skips, "edit") == {(1, "crowd")}


# --- dropped annotations ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "annotation,reason",
    [
        pytest.param(ann(1, image=99), "unknown-image", id="unknown-image"),
        pytest.param(ann(1, cat=42), "unknown-category", id="unknown-category"),
        pytest.param(ann(1, bbox=[0, 0, 0, 5]), "bad-box", id="zero-width"),
        pytest.param(ann(1, bbox=[0, 0, 5, -5]), "bad-box", id="negative-height"),
        pytest.param(ann(1, bbox=[0, 0, 5]), "bad-box", id="three-numbers"),
        pytest.param(ann(1, bbox=["0", 0, 5, 5]), "bad-box", id="string"),
        pytest.param(ann(1, bbox=None), "bad-box", id="none"),
        pytest.param({"id": 1, "image_id": 1, "category_id": 1}, "bad-box", id="no-bbox"),
        pytest.param(
            ann(1, bbox=[100, 10, 5, 5], seg=None), "box-outside-image", id="right-of-image"
        ),
        pytest.param(
            ann(1, bbox=[-20, -20, 20, 20], seg=None), "box-outside-image", id="touching-corner"
        ),
        pytest.param(ann(1, bbox=[10, 80, 5, 5], seg=None), "box-outside-image", id="below-image"),
        pytest.param(ann(1, seg=[[10, 10, 30, 10]]), "bad-segmentation", id="polygon-4-numbers"),
        pytest.param(ann(1, seg=[[10, 10, 30, 10, 30]]), "bad-segmentation", id="polygon-odd"),
        pytest.param(
            ann(1, seg=[[10, 10, 30, "x", 30, 30]]), "bad-segmentation", id="polygon-string"
        ),
        pytest.param(
            ann(1, seg={"size": [100, 80], "counts": [8000]}),
            "bad-segmentation",
            id="rle-wrong-size",
        ),
        pytest.param(
            ann(1, seg={"size": [80, 100], "counts": [10, 20]}), "bad-segmentation", id="rle-short"
        ),
        pytest.param(
            ann(1, seg={"size": [80, 100], "counts": 5}), "bad-segmentation", id="rle-counts-int"
        ),
        pytest.param(ann(1, seg=[[10, 10, 20, 20, 30, 30]]), "empty-mask", id="collinear-polygon"),
        pytest.param(
            ann(1, seg=[[200, 200, 220, 200, 220, 220]]), "empty-mask", id="polygon-outside"
        ),
    ],
)
def test_dropped_annotations(tmp_path, annotation, reason):
    jobs, skips = plan(tmp_path, [annotation, ann(2)])
    dropped = [s for s in skips if s.kind == "annotation"]
    assert [(s.annotation_id, s.reason) for s in dropped] == [(1, reason)]
    assert [a["id"] for a in jobs[0].annotations] == [2]  # not carried over
    assert [e.annotation_id for e in jobs[0].edits] == [2]


def test_drop_detail_shows_the_value(tmp_path):
    _, skips = plan(tmp_path, [ann(1, bbox=[0, 0, 0, 5]), ann(2, seg=[[1, 2, 3, 4]])])
    by_id = {s.annotation_id: s for s in skips}
    assert "[0, 0, 0, 5]" in by_id[1].detail
    assert "4 numbers" in by_id[2].detail


@pytest.mark.parametrize(
    "field,reason",
    [
        pytest.param("image_id", "unknown-image", id="image-id-list"),
        pytest.param("category_id", "unknown-category", id="category-id-list"),
    ],
)
def test_unhashable_ids_are_dropped_not_crashing(tmp_path, field, reason):
    bad = ann(1)
    bad[field] = [1]
    ds = make_ds(tmp_path, [bad])
    skip = check_annotation(ds.annotations[0], ds)
    assert skip is not None and skip.reason == reason


def test_rle_and_box_only_annotations_are_kept(tmp_path):
    mask = geo.box_mask((10, 10, 30, 30), geo.Window(0, 0, 100))[:80, :100]
    seg = rle_encode(mask)
    assert seg["size"] == [80, 100]
    anns = [ann(1, seg=seg), ann(2, bbox=FAR, seg=None), ann(3, bbox=[40, 10, 15, 15], seg=[])]
    jobs, skips = plan(tmp_path, anns)
    assert reasons(skips) == set()
    assert [e.region for e in jobs[0].edits] == ["mask", "box", "box"]


# --- jobs ------------------------------------------------------------------------------------


def test_nothing_to_edit_image(tmp_path):
    images = [
        {"id": 1, "file_name": "a.png", "width": 100, "height": 80},
        {"id": 2, "file_name": "b.png", "width": 100, "height": 80},
    ]
    jobs, skips = plan(tmp_path, [ann(1, image=1)], images=images)
    assert [j.image["id"] for j in jobs] == [1]
    assert [(s.kind, s.reason, s.image_id) for s in skips] == [("image", "nothing-to-edit", 2)]


def test_copies(tmp_path):
    settings = PlanSettings(**{**SETTINGS.__dict__, "copies": 3})
    jobs, skips = plan(tmp_path, [ann(1), ann(2, bbox=FAR, cat=2, seg=None)], settings)
    assert [j.copy for j in jobs] == [0, 1, 2]
    seeds = [j.edits[0].seed for j in jobs]
    assert len(set(seeds)) == 3
    assert seeds == [derive_seed(0, 1, 1, c) for c in range(3)]
    assert [s.reason for s in skips] == ["class-skipped"]  # reported once, not per copy
    assert all(j.annotations == jobs[0].annotations for j in jobs)


def test_copies_nothing_to_edit_reported_once(tmp_path):
    settings = PlanSettings(**{**SETTINGS.__dict__, "copies": 2})
    jobs, skips = plan(tmp_path, [ann(1, cat=2)], settings)
    assert jobs == []
    assert sorted(s.reason for s in skips) == ["class-skipped", "nothing-to-edit"]


@pytest.mark.parametrize(
    "limit,expected",
    [
        pytest.param(None, [1, 2, 3], id="none"),
        pytest.param(2, [1, 2], id="two"),
        pytest.param(0, [], id="zero"),
    ],
)
def test_limit(tmp_path, limit, expected):
    images = [{"id": i, "file_name": f"{i}.png", "width": 100, "height": 80} for i in (1, 2, 3)]
    anns = [ann(i, image=i) for i in (1, 2, 3)]
    jobs, _ = plan(tmp_path, anns, images=images, limit=limit)
    assert [j.image["id"] for j in jobs] == expected


def test_edit_settings_and_prompt(tmp_path):
    jobs, _ = plan(tmp_path, [ann(1), ann(2, cat=5, bbox=[50, 40, 20, 20], seg=None)])
    cat, bird = jobs[0].edits
    assert cat.prompt == "a cat" and cat.negative_prompt == ""
    assert (cat.steps, cat.guidance, cat.strength) == (25, 7.5, 1.0)  # the run's settings
    assert (bird.steps, bird.strength) == (7, 0.4)  # the class's settings win
    assert bird.settings_key == (7, 7.5, 0.4)
    assert (cat.ann_index, bird.ann_index) == (0, 1)
    assert cat.seed == derive_seed(0, 1, 1, 0) and bird.category_id == 5


@pytest.mark.parametrize(
    "region,segs,expected",
    [
        pytest.param("auto", [POLY, None], ["mask", "box"], id="auto"),
        pytest.param("box", [POLY, None], ["box", "box"], id="box"),
        pytest.param("mask", [POLY, POLY], ["mask", "mask"], id="mask"),
    ],
)
def test_region(tmp_path, region, segs, expected):
    settings = PlanSettings(**{**SETTINGS.__dict__, "region": region})
    anns = [ann(1, seg=segs[0]), ann(2, bbox=[60, 40, 20, 20], seg=segs[1])]
    if segs[1] is not None:
        anns[1]["segmentation"] = [[60, 40, 80, 40, 80, 60, 60, 60]]
    jobs, _ = plan(tmp_path, anns, settings)
    assert [e.region for e in jobs[0].edits] == expected


def test_window_contains_the_grown_box(tmp_path):
    jobs, _ = plan(tmp_path, [ann(1, bbox=[90, 70, 10, 10], seg=None)])
    (edit,) = jobs[0].edits
    x0, y0, x1, y1 = edit.window.xyxy
    assert edit.window.side >= SETTINGS.min_context
    assert x0 >= 0 and x1 <= 100 and y0 >= 0 and y1 <= 80  # inside the image
    assert x0 <= 90 - SETTINGS.dilate and y0 <= 70 - SETTINGS.dilate and x1 >= 100 and y1 >= 80


def test_protect_lists_overlapping_annotations(tmp_path):
    anns = [
        ann(1, bbox=[40, 30, 10, 10], seg=None),
        ann(2, bbox=[0, 0, 4, 4], seg=None, iscrowd=1),  # far away: outside the window
        ann(3, bbox=[45, 35, 20, 20], seg=None, cat=2),  # overlaps, skipped class: protected
        ann(4, bbox=[52, 30, 6, 6], seg=None, iscrowd=1),  # beside it, crowd: protected
    ]
    jobs, _ = plan(tmp_path, anns)
    (edit,) = jobs[0].edits  # 2 and 4 are crowd, 3 is skipped
    assert edit.window == geo.Window(31, 21, 28)  # (38..52 grown box) x 2, centred
    assert edit.protect == (2, 3)


def test_protect_is_per_edit_and_excludes_itself(tmp_path):
    anns = [ann(1, bbox=[10, 10, 10, 10], seg=None), ann(2, bbox=[22, 10, 10, 10], seg=None)]
    anns.append(ann(3, bbox=[85, 65, 10, 10], seg=None))
    jobs, _ = plan(tmp_path, anns)
    by_id = {e.annotation_id: e.protect for e in jobs[0].edits}
    assert by_id == {1: (1,), 2: (0,), 3: ()}


def test_protect_excludes_boxes_only_touching_the_window(tmp_path):
    anns = [ann(1, bbox=[40, 30, 10, 10], seg=None), ann(2, bbox=[0, 0, 5, 5], seg=None)]
    jobs, _ = plan(tmp_path, anns, PlanSettings(**{**SETTINGS.__dict__, "padding": 0.0}))
    first = jobs[0].edits[0]
    wx0, wy0, _, _ = first.window.xyxy
    anns[1]["bbox"] = [0, 0, wx0, wy0 + 5]  # ends exactly at the window's left edge
    jobs, _ = plan(tmp_path, anns, PlanSettings(**{**SETTINGS.__dict__, "padding": 0.0}))
    assert jobs[0].edits[0].protect == ()


def poly(x, y, w, h):
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


@pytest.mark.parametrize("masks", [True, False], ids=["polygons", "boxes"])
def test_nested_and_overlapping_objects_are_candidates_both_ways(tmp_path, masks):
    boxes = [[10, 10, 60, 50], [30, 30, 10, 10], [60, 20, 20, 20]]  # wall, window, peer
    anns = [ann(i + 1, bbox=b, seg=poly(*b) if masks else None) for i, b in enumerate(boxes)]
    jobs, _ = plan(tmp_path, anns)
    edits = {e.annotation_id: e for e in jobs[0].edits}
    assert set(edits[1].protect) == {1, 2} and 0 in edits[2].protect and 0 in edits[3].protect
    shares = {}
    for aid, edit in edits.items():
        region, shares[aid] = paintable(edit, jobs[0].annotations, (100, 80), 2, 0.5)
        assert region.shape == (edit.window.side, edit.window.side)
    # the wall loses the window and its overlap with the peer; the window keeps all of itself
    assert shares[1] == pytest.approx(1 - (100 + 10 * 20) / 3000)
    assert shares[2] == 1.0 and shares[3] == pytest.approx(0.5)


def test_edits_keep_annotation_order(tmp_path):
    anns = [
        ann(7, bbox=[60, 50, 30, 25], seg=None),
        ann(3, bbox=[5, 5, 10, 10], seg=None),
        ann(9, bbox=[30, 30, 20, 20], seg=None),
        ann(1, bbox=[70, 5, 12, 12], seg=None),
    ]
    jobs, _ = plan(tmp_path, anns)
    assert [e.annotation_id for e in jobs[0].edits] == [7, 3, 9, 1]
    assert [e.ann_index for e in jobs[0].edits] == [0, 1, 2, 3]
    assert [a["id"] for a in jobs[0].annotations] == [7, 3, 9, 1]


def test_plan_is_pure_and_deterministic(tmp_path):
    anns = [ann(1), ann(2, bbox=[50, 40, 20, 20], seg=None)]
    a = plan(tmp_path, anns)
    b = plan(tmp_path, anns)
    assert a == b
    assert anns[0]["bbox"] == BOX  # inputs untouched


# --- occlusion, found when planning ----------------------------------------------------------


def test_occluded_objects_are_skipped_when_planning_once_for_all_copies(tmp_path):
    settings = PlanSettings(**{**SETTINGS.__dict__, "copies": 3})
    anns = [ann(1), ann(2), ann(3, bbox=FAR, seg=None)]  # 1 and 2 are duplicates: peers
    jobs, skips = plan(tmp_path, anns, settings)
    assert [[e.annotation_id for e in j.edits] for j in jobs] == [[3], [3], [3]]
    assert sorted(reasons(skips, "edit")) == [(1, "occluded"), (2, "occluded")]
    assert len(skips) == 2  # the same in every copy: recorded once
    assert all("no pixel" in s.detail for s in skips)


def test_an_image_whose_objects_are_all_covered_has_nothing_to_edit(tmp_path):
    jobs, skips = plan(tmp_path, [ann(1), ann(2)])
    assert jobs == []
    assert sorted(s.reason for s in skips) == ["nothing-to-edit", "occluded", "occluded"]


def test_max_per_image_chooses_among_paintable_objects(tmp_path):
    big = [5, 5, 40, 40]  # the largest: covered by a crowd region, so not counted
    anns = [ann(1, bbox=big, seg=None), ann(2, bbox=big, seg=None, iscrowd=1)]
    anns += [ann(3, bbox=FAR, seg=None), ann(4, bbox=[60, 5, 10, 10], seg=None)]
    settings = PlanSettings(**{**SETTINGS.__dict__, "max_per_image": 1})
    jobs, skips = plan(tmp_path, anns, settings)
    assert [e.annotation_id for e in jobs[0].edits] == [3]
    assert reasons(skips, "edit") == {(1, "occluded"), (2, "crowd"), (4, "max-per-image")}


@pytest.mark.parametrize("min_coverage,edited", [(0.5, [1, 2]), (0.9, [2])])
def test_min_coverage_decides_when_planning(tmp_path, min_coverage, edited):
    # 2 is nested in 1 (a wheel on a car): 1 is cut around it, keeping 75% of its pixels
    anns = [ann(1, bbox=[10, 10, 40, 40], seg=None), ann(2, bbox=[30, 30, 20, 20], seg=None)]
    settings = PlanSettings(**{**SETTINGS.__dict__, "min_coverage": min_coverage})
    jobs, skips = plan(tmp_path, anns, settings)
    assert [e.annotation_id for e in jobs[0].edits] == edited
    assert {s.reason for s in skips} == ({"occluded"} if len(edited) == 1 else set())
