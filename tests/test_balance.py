"""Per-class targets (--balance, target:): the extra-copy planner, its plan, and a whole run."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_plan import make_book, make_ds
from typer.testing import CliRunner

from inpaint_aug.cli import app
from inpaint_aug.dataset.prompts import PromptProblems, parse_prompts
from inpaint_aug.demo.synthetic import TRIANGLE, make_shapes_dataset
from inpaint_aug.errors import OptionsError
from inpaint_aug.options import PlanSettings, RunOptions
from inpaint_aug.pipeline.balance import class_targets, extra_copies
from inpaint_aug.pipeline.plan import plan_dataset
from inpaint_aug.pipeline.records import output_tasks
from inpaint_aug.pipeline.run import run

# --- the pure planner ------------------------------------------------------------------------


def fake_images(contents):
    """``redraws`` and ``holders`` for images holding ``contents[i]`` objects of each class."""
    holders = {}
    for pos, objs in enumerate(contents):
        for cid in sorted(objs):
            holders.setdefault(cid, []).append(pos)

    def redraws(image, copy, classes, cap=None):
        objs = sorted(((c, n) for c, n in contents[image].items() if c in classes), reverse=True)
        got, left = Counter(), cap if cap is not None else 10**9
        for cid, n in objs:
            got[cid] = min(n, left)
            left -= got[cid]
        return +got

    return holders, redraws


contents_st = st.lists(
    st.dictionaries(st.integers(1, 4), st.integers(1, 3), min_size=0, max_size=3),
    min_size=1,
    max_size=6,
)
targets_st = st.dictionaries(st.integers(1, 4), st.integers(1, 25), min_size=1, max_size=4)


@settings(max_examples=150, deadline=None)
@given(contents_st, targets_st, st.integers(1, 3), st.integers(1, 6), st.sampled_from([None, 1, 2]))
def test_targets_reached_when_caps_allow_and_never_overserved(contents, targets, copies, cap, per):
    holders, fake = fake_images(contents)

    def redraws(image, copy, classes):
        return fake(image, copy, classes, per)

    counts = Counter()
    for pos in range(len(contents)):
        for _ in range(copies):
            counts.update(fake(pos, 0, frozenset(contents[pos]), per))
    extra = extra_copies(targets, counts, holders, copies, cap, redraws)
    assert extra == extra_copies(targets, counts, holders, copies, cap, redraws)  # deterministic
    planned = Counter({c: counts[c] for c in targets})
    per_image = Counter()
    for x in extra:
        below = {c for c, t in targets.items() if planned[c] < t}
        assert x.classes == below  # only classes still below target may be redrawn
        got = redraws(x.image, x.copy, x.classes)
        assert got and set(got) <= below
        assert x.copy == copies + per_image[x.image] < cap  # the next copy index, under the cap
        per_image[x.image] += 1
        planned.update(got)
    below = frozenset(c for c, t in targets.items() if planned[c] < t)
    for cid in below:  # short: no image holding it can take another copy that redraws it
        for pos in holders.get(cid, []):
            capped = copies + per_image[pos] >= cap
            assert capped or not redraws(pos, copies + per_image[pos], below).get(cid)


@pytest.mark.parametrize(
    ("contents", "targets", "copies", "cap", "expected"),
    [
        # one rare class in two images: round-robin over them until the target
        ([{1: 1}, {1: 1}, {2: 1}], {1: 5}, 1, 10, [(0, 1), (1, 1), (0, 2)]),
        # the cap stops it short
        ([{1: 1}, {2: 1}], {1: 9}, 1, 3, [(0, 1), (0, 2)]),
        # rarest first: class 2 (1 redraw) is served before class 1 (2 redraws)
        ([{1: 2}, {2: 1}], {1: 4, 2: 2}, 1, 10, [(1, 1), (0, 1)]),
        # a class already at its target gets no extra copy
        ([{1: 3}], {1: 3}, 1, 10, []),
        # the image holding both: class 1 is redrawn with class 2 until it reaches its target
        ([{1: 1, 2: 1}], {1: 2, 2: 3}, 1, 10, [(0, 1), (0, 2)]),
    ],
)
def test_extra_copies_table(contents, targets, copies, cap, expected):
    holders, redraws = fake_images(contents)
    counts = Counter()
    for objs in contents:
        counts.update({c: n * copies for c, n in objs.items()})
    extra = extra_copies(targets, counts, holders, copies, cap, redraws)
    assert [(x.image, x.copy) for x in extra] == expected


def test_classes_in_the_last_case_of_the_table():
    holders, redraws = fake_images([{1: 1, 2: 1}])
    extra = extra_copies({1: 2, 2: 3}, {1: 1, 2: 1}, holders, 1, 10, redraws)
    assert [x.classes for x in extra] == [frozenset({1, 2}), frozenset({2})]


# --- targets, options, prompts ----------------------------------------------------------------


def test_targets_from_balance_and_per_class(tmp_path):
    ds = make_ds(tmp_path, [])
    book = make_book(ds, {"default": {"prompt": "a {name}"}, "classes": {"cat": {"target": 7}}})
    assert class_targets(book, PlanSettings()) == {1: 7}
    assert class_targets(book, PlanSettings(balance=3)) == {1: 7, 2: 3, 5: 3}
    skipping = make_book(ds, {"default": {"prompt": "a"}, "classes": {"dog": {"skip": True}}})
    assert 2 not in class_targets(skipping, PlanSettings(balance=3))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"prompt": "a", "target": 0}, "p.yaml: classes.cat.target is 0, expected an integer >= 1"),
        ({"prompt": "a", "target": "many"}, "classes.cat.target is 'many'"),
        ({"skip": True, "target": 5}, "classes.cat.target is set, but skip: true"),
    ],
)
def test_bad_targets_name_the_file_and_class(entry, message):
    with pytest.raises(PromptProblems, match=message):
        parse_prompts({"classes": {"cat": entry}}, "p.yaml", {1: "cat"})


@pytest.mark.parametrize(("field", "value"), [("balance", 0), ("max_copies", 0)])
def test_balance_options_are_checked(field, value):
    with pytest.raises(OptionsError, match=f"--{field.replace('_', '-')} 0"):
        PlanSettings(**{field: value})


# --- plan_dataset ------------------------------------------------------------------------------


def _rare_plan(tmp_path, **kw):
    images = [{"id": i, "file_name": f"{i}.png", "width": 100, "height": 80} for i in (1, 2, 3)]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 20, 20], "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 5, "bbox": [50, 5, 20, 20], "iscrowd": 0},
        {"id": 3, "image_id": 2, "category_id": 1, "bbox": [5, 5, 20, 20], "iscrowd": 0},
        {"id": 4, "image_id": 3, "category_id": 1, "bbox": [5, 5, 20, 20], "iscrowd": 0},
        {"id": 5, "image_id": 3, "category_id": 1, "bbox": [40, 40, 20, 20], "iscrowd": 0},
    ]
    ds = make_ds(tmp_path, anns, images)
    book = make_book(ds, {"default": {"prompt": "a {name} {x}", "vars": {"x": list("abcdefg")}}})
    settings = PlanSettings(min_size=4, min_context=16, **kw)
    return plan_dataset(ds, book, settings)


def test_plan_adds_copies_of_the_rare_class_only(tmp_path):
    jobs, skips = _rare_plan(tmp_path, balance=4)
    assert [(j.image["id"], j.copy) for j in jobs] == [
        (1, 0),
        (1, 1),
        (1, 2),
        (1, 3),
        (2, 0),
        (3, 0),
    ]
    for job in jobs[1:4]:  # extra copies redraw the bird only: the cats reached 4 already
        assert [e.category_id for e in job.edits] == [5]
    seeds = [e.seed for j in jobs for e in j.edits]
    assert len(set(seeds)) == len(seeds)  # distinct seeds
    names = [t.file_name for t in output_tasks(jobs, [], "png")[0]]
    assert names[:4] == ["images/1_c0.png", "images/1_c1.png", "images/1_c2.png", "images/1_c3.png"]
    assert len(set(names)) == len(names)
    assert not [s for s in skips if s.kind == "class"]
    (tmp_path / "again").mkdir()
    assert _rare_plan(tmp_path / "again", balance=4) == (jobs, skips)  # deterministic


def test_plan_says_when_a_class_cannot_reach_its_target(tmp_path):
    jobs, skips = _rare_plan(tmp_path, balance=6, max_copies=3)
    short = [s for s in skips if s.kind == "class"]
    assert [(s.category_id, s.reason) for s in short] == [(5, "below-target")]
    assert "'bird' cannot reach its target of 6 redraws: 3 planned" in short[0].detail
    assert "--max-copies 3" in short[0].detail
    assert max(j.copy for j in jobs) == 2


def test_targets_count_only_objects_that_can_be_painted(tmp_path):
    # a second bird on top of the first: the two cut each other (peers), neither can be redrawn
    images = [{"id": i, "file_name": f"{i}.png", "width": 100, "height": 80} for i in (1, 2)]
    bird = {"image_id": 1, "category_id": 5, "bbox": [50, 5, 20, 20], "iscrowd": 0}
    anns = [{**bird, "id": 1}, {**bird, "id": 2}, {**bird, "id": 3, "image_id": 2}]
    ds = make_ds(tmp_path, anns, images)
    book = make_book(ds, {"default": {"prompt": "a {name}"}})
    jobs, skips = plan_dataset(ds, book, PlanSettings(min_size=4, balance=3, max_copies=5))
    assert [(j.image["id"], j.copy) for j in jobs] == [(2, c) for c in range(3)]
    assert sum(len(j.edits) for j in jobs) == 3  # the target, in objects that will be redrawn
    assert sorted(s.reason for s in skips) == ["nothing-to-edit", "occluded", "occluded"]


def test_without_targets_the_plan_is_unchanged(tmp_path):
    base = _rare_plan(tmp_path)
    assert [(j.image["id"], j.copy) for j in base[0]] == [(1, 0), (2, 0), (3, 0)]
    assert replace(PlanSettings(), max_copies=3).balance is None


# --- end to end --------------------------------------------------------------------------------


def test_run_reaches_the_rare_target_and_reports_it(tmp_path, tiny_inpainter):
    coco = make_shapes_dataset(
        tmp_path / "data", n_images=6, size=(128, 96), seed=3, variety=False, rare=TRIANGLE
    )
    src = json.loads(coco.read_text(encoding="utf-8"))
    rare = sum(a["category_id"] == TRIANGLE for a in src["annotations"])
    assert 0 < rare < 4
    prompts = tmp_path / "p.yaml"
    prompts.write_text("default: {prompt: 'a {name}'}\nclasses:\n  triangle: {target: 6}\n")
    plan = PlanSettings(resolution=64, steps=2, min_size=8, min_context=32, dilate=0)
    out = tmp_path / "out"
    options = RunOptions(coco, prompts, out=out, model="tiny-random", plan=plan, verify="off")
    report = run(options, inpainter=tiny_inpainter)
    row = report.per_class["triangle"]
    assert row["target"] == 6 and row["edited"] >= 6 and row["reached"] is True
    data = json.loads((out / "annotations.json").read_text(encoding="utf-8"))
    edits = [e for im in data["images"] for e in im["inpaint_aug"]["edits"]]
    assert sum(e["category_id"] == TRIANGLE for e in edits) == row["edited"]
    extra = [im for im in data["images"] if im["inpaint_aug"]["copy"] >= 1]
    assert extra and all(
        {e["category_id"] for e in im["inpaint_aug"]["edits"]} == {TRIANGLE} for im in extra
    )
    saved = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert saved["counts"]["per_class"]["triangle"]["reached"] is True
    shown = CliRunner().invoke(
        app, ["validate", str(coco), "--prompts", str(prompts), "--min-size", "8", "--dilate", "0"]
    )
    assert shown.exit_code == 0, shown.output
    line = next(x for x in shown.output.splitlines() if x.startswith("triangle") and "target" in x)
    assert line.split()[1:4] == [str(rare), "6", str(row["edited"])]
