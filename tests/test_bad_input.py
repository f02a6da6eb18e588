"""A battery of bad inputs, each with its expected answer.

* Fatal problems (unreadable JSON, invalid prompts, no model, no image folder): the CLI exits
  with a non-zero code and prints exactly one ``error:`` line on stderr naming the file.
* Per-item problems: the run completes, the item is skipped, counted under its reason in
  ``run.json`` (``counts.skipped``) and listed in ``run.json["skipped"]``.

Every case starts from a small synthetic dataset (2 images, 2 objects each) and edits its JSON
or files. Runs are in-process with the session's tiny model; the CLI is used for exit codes and
messages (with the model loader patched out where a model must not matter).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from inpaint_aug.cli import app
from inpaint_aug.demo.synthetic import make_shapes_dataset
from inpaint_aug.options import PlanSettings, RunOptions
from inpaint_aug.pipeline.backend import DiffusersInpainter
from inpaint_aug.pipeline.batch import RETRIES, retry_seed
from inpaint_aug.pipeline.plan import derive_seed
from inpaint_aug.pipeline.run import run

PLAN = PlanSettings(resolution=64, steps=1, guidance=1.0, min_size=8, min_context=32)
PROMPTS = "default:\n  prompt: 'a {name}'\n"
W, H = 128, 96


# --------------------------------------------------------------------------------------------
# helpers


@dataclass
class Case:
    """A fresh dataset to break: its JSON (as a dict), folders, and the prompts file."""

    tmp: Path
    coco: Path
    data: dict
    prompts: Path

    @property
    def images_dir(self) -> Path:
        return self.coco.parent / "images"

    def image_file(self, index: int) -> Path:
        return self.images_dir / self.data["images"][index]["file_name"]

    def anns_of(self, index: int) -> list[dict]:
        image_id = self.data["images"][index]["id"]
        return [a for a in self.data["annotations"] if a["image_id"] == image_id]

    def save(self) -> None:
        self.coco.write_text(json.dumps(self.data), encoding="utf-8")

    def source_rgb(self, index: int) -> np.ndarray:
        with Image.open(self.image_file(index)) as img:
            return np.asarray(img.convert("RGB"))


@pytest.fixture()
def case(tmp_path) -> Case:
    coco = make_shapes_dataset(
        tmp_path / "data", n_images=2, size=(W, H), variety=False, objects_per_image=(2, 2)
    )
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text(PROMPTS, encoding="utf-8")
    return Case(tmp_path, coco, json.loads(coco.read_text(encoding="utf-8")), prompts)


def run_case(case: Case, inpainter, **kw) -> tuple[dict, dict, Path]:
    """Run in-process; return (annotations.json, run.json, OUT)."""
    out = case.tmp / "out"
    options = RunOptions(
        coco=case.coco,
        prompts=case.prompts,
        out=out,
        model="tiny-random",
        batch_size=4,
        plan=kw.pop("plan", PLAN),
        **kw,
    )
    run(options, inpainter=inpainter)
    data = json.loads((out / "annotations.json").read_text(encoding="utf-8"))
    report = json.loads((out / "run.json").read_text(encoding="utf-8"))
    return data, report, out


def listing(root: Path, exclude: Path) -> set[str]:
    """Every path under ``root`` except those under ``exclude``."""
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p != exclude and exclude not in p.parents
    }


def decode(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def outside_objects(anns: list[dict], width: int, height: int, margin: int = 10) -> np.ndarray:
    """Pixels farther than ``margin`` from every object's box: an edit can never reach them."""
    keep = np.ones((height, width), bool)
    for a in anns:
        x, y, w, h = a["bbox"]
        x0, y0 = max(int(x) - margin, 0), max(int(y) - margin, 0)
        keep[y0 : int(np.ceil(y + h)) + margin, x0 : int(np.ceil(x + w)) + margin] = False
    return keep


def cli(*args: str) -> tuple[int, str, str]:
    """Invoke the CLI in-process; return (exit code, stdout, stderr)."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def assert_one_error_line(code: int, stdout: str, stderr: str, *needles: str) -> str:
    assert code != 0, stdout + stderr
    assert "Traceback" not in stdout + stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error:"), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture()
def no_model(monkeypatch):
    """Fail loudly if anything tries to load a model."""

    def refuse(*_a, **_k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(DiffusersInpainter, "load", classmethod(refuse))


# --------------------------------------------------------------------------------------------
# fatal problems: one stderr line, non-zero exit, no traceback


def _write_text(text: str) -> Callable[[Case], None]:
    return lambda c: c.coco.write_text(text, encoding="utf-8")


def _drop_key(key: str) -> Callable[[Case], None]:
    def mutate(c: Case) -> None:
        del c.data[key]
        c.save()

    return mutate


def _string_ids(c: Case) -> None:
    c.data["images"][0]["id"] = "1"
    c.save()


def _dup_image_ids(c: Case) -> None:
    c.data["images"][1]["id"] = c.data["images"][0]["id"]
    c.save()


def _dup_ann_ids(c: Case) -> None:
    c.data["annotations"][1]["id"] = c.data["annotations"][0]["id"]
    c.save()


def _nowhere(c: Case) -> None:
    for i, im in enumerate(c.data["images"]):
        im["file_name"] = f"nowhere/missing_{i}.png"
    c.save()


DATASET_FATAL = [
    pytest.param(
        _write_text('{"images": [\n  {"id": 1,}\n]}'),
        ["invalid JSON", "line 2", "column"],
        id="json-syntax",
    ),
    pytest.param(_write_text(""), ["empty"], id="json-empty"),
    pytest.param(_write_text("[1, 2]"), ["expected a JSON object"], id="json-list"),
    pytest.param(_drop_key("images"), ["'images'"], id="missing-images"),
    pytest.param(_drop_key("annotations"), ["'annotations'"], id="missing-annotations"),
    pytest.param(_drop_key("categories"), ["'categories'"], id="missing-categories"),
    pytest.param(_string_ids, ["'1'", "expected an integer"], id="string-id"),
    pytest.param(_dup_image_ids, ["duplicate id", "'images'"], id="duplicate-image-ids"),
    pytest.param(_dup_ann_ids, ["duplicate id", "'annotations'"], id="duplicate-ann-ids"),
    pytest.param(_nowhere, ["no image folder", "--images"], id="no-image-folder"),
]


@pytest.mark.parametrize("mutate,needles", DATASET_FATAL)
def test_fatal_dataset(case, mutate, needles, no_model):
    mutate(case)
    out = case.tmp / "out"
    code, stdout, stderr = cli(
        "run",
        str(case.coco),
        "--prompts",
        str(case.prompts),
        "--out",
        str(out),
        "--model",
        "tiny-random",
    )
    assert code == 1
    assert_one_error_line(code, stdout, stderr, case.coco.name, *needles)
    assert not out.exists(), "a fatal input error must not create --out"


def _prompts(text: str) -> Callable[[Case], None]:
    return lambda c: c.prompts.write_text(text, encoding="utf-8")


def _duplicate_name(c: Case) -> None:
    c.data["categories"][1]["name"] = c.data["categories"][0]["name"]  # two 'circle's
    c.save()
    c.prompts.write_text("classes:\n  circle:\n    prompt: 'a ball'\n", encoding="utf-8")


PROMPT_FATAL = [
    pytest.param(_prompts("default: [unclosed\n"), ["invalid YAML", "line"], id="invalid-yaml"),
    pytest.param(
        _prompts("classes:\n  dragon:\n    prompt: 'a dragon'\n"),
        ["dragon", "circle", "square", "triangle"],
        id="unknown-class",
    ),
    pytest.param(
        _prompts("default:\n  prompt: 'a {colour} {name}'\n"),
        ["{colour}", "not defined"],
        id="undefined-placeholder",
    ),
    pytest.param(_prompts("default:\n  prompt: []\n"), ["non-empty list"], id="empty-prompt-list"),
    pytest.param(
        _prompts("default:\n  prompt: 'a {name}'\n  strength: high\n"),
        ["strength", "'high'"],
        id="strength-not-a-number",
    ),
    pytest.param(_duplicate_name, ["circle", "by its id"], id="duplicated-category-name"),
]


@pytest.mark.parametrize("mutate,needles", PROMPT_FATAL)
def test_fatal_prompts(case, mutate, needles, no_model):
    mutate(case)
    out = case.tmp / "out"
    code, stdout, stderr = cli(
        "run",
        str(case.coco),
        "--prompts",
        str(case.prompts),
        "--out",
        str(out),
        "--model",
        "tiny-random",
    )
    assert code == 1
    assert_one_error_line(code, stdout, stderr, case.prompts.name, *needles)
    assert not out.exists()


def _not_a_model_dir(tmp: Path) -> str:
    folder = tmp / "some folder"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return str(folder)


def _ckpt(tmp: Path) -> str:
    path = tmp / "model.ckpt"
    path.write_bytes(b"\x80\x04K\x01.")  # a pickle
    return str(path)


MODEL_FATAL = [
    pytest.param(
        _not_a_model_dir, ["some folder", "not a diffusers model folder"], id="dir-without-index"
    ),
    pytest.param(
        lambda _t: "nobody/nothing-here",
        ["nobody/nothing-here", "ffline", "--model DIR"],
        id="hub-id-offline",
    ),
    pytest.param(_ckpt, ["model.ckpt", ".safetensors", "no pickles"], id="ckpt-pickle"),
]


@pytest.mark.parametrize("make,needles", MODEL_FATAL)
@pytest.mark.filterwarnings("ignore::UserWarning")  # huggingface_hub deprecation chatter
def test_fatal_model(case, make, needles):
    model = make(case.tmp)
    code, stdout, stderr = cli(
        "run",
        str(case.coco),
        "--prompts",
        str(case.prompts),
        "--out",
        str(case.tmp / "out"),
        "--model",
        model,
        "--device",
        "cpu",
    )
    assert code == 1
    assert_one_error_line(code, stdout, stderr, *needles)
    assert not (case.tmp / "out").exists(), "the model loads before anything is written"


# --------------------------------------------------------------------------------------------
# per-item problems: the run completes, the item is skipped and reported


def _ann(mutate: Callable[[dict], None], index: int = 0) -> Callable[[Case], None]:
    def apply(c: Case) -> None:
        mutate(c.data["annotations"][index])
        c.save()

    return apply


def _set(**values) -> Callable[[dict], None]:
    return lambda a: a.update(values)


def _ids_zero(c: Case) -> None:
    image = c.data["images"][0]
    for a in c.anns_of(0):
        a["image_id"] = 0
    image["id"] = 0
    c.data["annotations"][0]["id"] = 0
    cat = c.data["annotations"][0]["category_id"]
    for a in c.data["annotations"]:
        if a["category_id"] == cat:
            a["category_id"] = 0
    next(x for x in c.data["categories"] if x["id"] == cat)["id"] = 0
    c.save()


def _check_ids_zero(c: Case, data: dict, report: dict, out: Path) -> None:
    assert all(im["id"] > 0 for im in data["images"])
    assert all(a["id"] > 0 for a in data["annotations"])
    assert len(data["images"]) == 2
    assert 0 in {im["inpaint_aug"]["source_image_id"] for im in data["images"]}
    sources = {
        e["source_annotation_id"] for im in data["images"] for e in im["inpaint_aug"]["edits"]
    }
    assert 0 in sources


def _check_box_only(c: Case, data: dict, report: dict, out: Path) -> None:
    first = data["images"][0]
    edit = next(e for e in first["inpaint_aug"]["edits"] if e["source_annotation_id"] == 1)
    assert edit["region"] == "box"
    ann = next(a for a in data["annotations"] if a["id"] == edit["annotation_id"])
    assert ann["segmentation"] == []
    assert ann["area"] == pytest.approx(ann["bbox"][2] * ann["bbox"][3])


def _check_clipped(c: Case, data: dict, report: dict, out: Path) -> None:
    first = data["images"][0]
    mine = [a for a in data["annotations"] if a["image_id"] == first["id"]]
    assert len(mine) == 2
    assert mine[0]["bbox"] == [100.0, 70.0, 28.0, 26.0]
    assert mine[0]["area"] == pytest.approx(28 * 26)


def _carried_not_edited(c: Case, data: dict, report: dict, out: Path) -> None:
    first = data["images"][0]
    mine = [a for a in data["annotations"] if a["image_id"] == first["id"]]
    assert len(mine) == 2, "the object must still be labelled"
    assert 1 not in {e["source_annotation_id"] for e in first["inpaint_aug"]["edits"]}


def _dropped(c: Case, data: dict, report: dict, out: Path) -> None:
    assert len(data["annotations"]) == 3, "the bad annotation is dropped, the others kept"


def _to_mode(convert: Callable[[Image.Image], Image.Image], ext: str = ".png"):
    """Re-encode image 2 with another pixel format; the run must read it as RGB."""

    def apply(c: Case) -> None:
        src = c.image_file(1)
        with Image.open(src) as img:
            rgb = img.convert("RGB")
        target = src.with_suffix(ext)
        src.unlink()
        convert(rgb).save(target)
        c.data["images"][1]["file_name"] = target.name
        c.save()

    return apply


def _gray16(img: Image.Image) -> Image.Image:
    gray = np.asarray(img.convert("L")).astype(np.uint16) * 257  # 8-bit value v -> v * 257
    return Image.fromarray(gray)


def _expected_rgb(kind: str) -> Callable[[Image.Image], np.ndarray]:
    """What the converted image looks like as RGB (computed without the tool's code)."""
    return {
        "gray": lambda im: np.repeat(np.asarray(im.convert("L"))[..., None], 3, axis=2),
        "gray16": lambda im: np.repeat(np.asarray(im.convert("L"))[..., None], 3, axis=2),
        "rgba": lambda im: np.asarray(im.convert("RGB")),
        "palette": lambda im: np.asarray(im.convert("P").convert("RGB")),
        "cmyk": lambda im: np.asarray(im.convert("RGB")),
    }[kind]


def _check_converted(kind: str, exact: bool):
    def check(c: Case, data: dict, report: dict, out: Path) -> None:
        second = data["images"][1]
        got = decode(out / second["file_name"])
        assert got.shape == (H, W, 3)
        with Image.open(c.tmp / "original_1.png") as orig:
            want = _expected_rgb(kind)(orig)
        keep = outside_objects(c.anns_of(1), W, H)
        diff = np.abs(got.astype(int) - want)[keep]
        if exact:
            assert diff.max() == 0, "pixels outside the edited objects changed"
        else:
            assert diff.mean() < 8

    return check


def _truncated_jpeg(c: Case) -> None:
    src = c.image_file(1)
    with Image.open(src) as img:
        img.convert("RGB").save(src.with_suffix(".jpg"), quality=95)
    data = src.with_suffix(".jpg").read_bytes()
    src.with_suffix(".jpg").write_bytes(data[: len(data) // 2])
    src.unlink()
    c.data["images"][1]["file_name"] = src.with_suffix(".jpg").name
    c.save()


def _text_as_jpg(c: Case) -> None:
    target = c.images_dir / "notes.jpg"
    target.write_text("this is not an image\n", encoding="utf-8")
    c.data["images"][1]["file_name"] = target.name
    c.save()


def _exif_rotated(c: Case) -> None:
    """Store image 2 sideways with EXIF orientation 6; the JSON keeps the upright size."""
    src = c.image_file(1)
    with Image.open(src) as img:
        upright = img.convert("RGB")
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # exif_transpose(6) rotates by 270
    exif = Image.Exif()
    exif[0x0112] = 6
    target = src.with_suffix(".jpg")
    stored.save(target, quality=95, exif=exif)
    src.unlink()
    c.data["images"][1]["file_name"] = target.name
    c.save()


def _check_upright(c: Case, data: dict, report: dict, out: Path) -> None:
    second = data["images"][1]
    assert second["file_name"].endswith(".jpg")
    with Image.open(out / second["file_name"]) as img:
        assert img.size == (W, H)
        assert img.getexif().get(0x0112) in (None, 1)
        got = np.asarray(img.convert("RGB"))
    with Image.open(c.tmp / "original_1.png") as orig:
        want = np.asarray(orig.convert("RGB"))
    keep = outside_objects(c.anns_of(1), W, H)
    assert np.abs(got.astype(int) - want)[keep].mean() < 8, "the output is not upright"


def _large(c: Case) -> None:
    """Image 1 becomes 4000x3000 (scaled up 31.25x, labels scaled with it)."""
    k = 4000 / W
    src = c.image_file(0)
    big = cv2.resize(cv2.imread(str(src)), (4000, 3000), interpolation=cv2.INTER_LINEAR)
    cv2.imwrite(str(src), big, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    c.data["images"][0].update(width=4000, height=3000)
    for a in c.anns_of(0):
        a["bbox"] = [v * k for v in a["bbox"]]
        a["segmentation"] = [[v * k for v in part] for part in a["segmentation"]]
        a["area"] = a["area"] * k * k


def _save_after(mutate: Callable[[Case], None]) -> Callable[[Case], None]:
    def apply(c: Case) -> None:
        mutate(c)
        c.save()

    return apply


def _check_large(c: Case, data: dict, report: dict, out: Path) -> None:
    first = data["images"][0]
    assert (first["width"], first["height"]) == (4000, 3000)
    assert len(first["inpaint_aug"]["edits"]) == 2
    got = decode(out / first["file_name"])
    assert got.shape == (3000, 4000, 3)
    want = decode(c.image_file(0))[..., :3]
    keep = outside_objects(c.anns_of(0), 4000, 3000, margin=400)
    assert np.array_equal(got[keep], want[keep])
    assert not np.array_equal(got, want)


def _rename(index: int, name: str) -> Callable[[Case], None]:
    def apply(c: Case) -> None:
        src = c.image_file(index)
        target = c.images_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        src.rename(target)
        c.data["images"][index]["file_name"] = name
        c.save()

    return apply


def _move_outside(index: int, absolute: bool) -> Callable[[Case], None]:
    """Move an image out of the image folder and point at it with ../ or an absolute path."""

    def apply(c: Case) -> None:
        src = c.image_file(index)
        if absolute:
            target = c.tmp / "elsewhere dir" / "abs image.png"
            target.parent.mkdir()
            name = str(target)
        else:
            target = c.coco.parent / "escape.png"
            name = "../escape.png"
        src.rename(target)
        c.data["images"][index]["file_name"] = name
        c.save()

    return apply


def _check_written(index: int, name_part: str):
    def check(c: Case, data: dict, report: dict, out: Path) -> None:
        source_id = c.data["images"][index]["id"]
        entry = next(
            im for im in data["images"] if im["inpaint_aug"]["source_image_id"] == source_id
        )
        assert name_part in entry["file_name"]
        assert entry["inpaint_aug"]["source_file_name"] == c.data["images"][index]["file_name"]
        path = (out / entry["file_name"]).resolve()
        assert path.parent == (out / "images").resolve() and path.is_file()
        assert decode(path).shape == (H, W, 3)

    return check


def _edit_image(index: int, mutate: Callable[[dict], None]) -> Callable[[Case], None]:
    def apply(c: Case) -> None:
        mutate(c.data["images"][index])
        c.save()

    return apply


def _delete_image(c: Case) -> None:
    c.image_file(1).unlink()


def _empty_image(c: Case) -> None:
    c.image_file(1).write_bytes(b"")


def _box_only(a: dict) -> None:
    a["segmentation"] = []


def _polygon_outside(a: dict) -> None:
    a["segmentation"] = [[300, 300, 320, 300, 320, 320, 300, 320]]  # the bbox stays inside


def _same_stem(c: Case) -> None:
    """Two images called scene.png in two folders: two distinct output files."""
    for index, folder in enumerate(("a", "b")):
        _rename(index, f"{folder}/scene.png")(c)


def _check_same_stem(c: Case, data: dict, report: dict, out: Path) -> None:
    names = [im["file_name"] for im in data["images"]]
    assert len(set(names)) == 2 and all("scene" in n for n in names)
    assert not np.array_equal(*(decode(out / n) for n in names))


def item(
    mutate, skip: str | None, n_images: int, check=None, *, id: str, tiny: bool = False, marks=()
):
    """One per-item case: expected skip ``kind/reason`` (or none), images written, extra check.

    ``tiny=True`` runs the real tiny model; the others use a shape-checking stand-in (the
    model never sees what these cases change)."""
    return pytest.param(mutate, skip, n_images, check, tiny, id=id, marks=marks)


PER_ITEM = [
    # annotations
    item(_ann(_set(image_id=999)), "annotation/unknown-image", 2, _dropped, id="ann-unknown-image"),
    item(_ann(_set(image_id=[1])), "annotation/unknown-image", 2, _dropped, id="ann-list-image-id"),
    item(
        _ann(_set(category_id={"id": 1})),
        "annotation/unknown-category",
        2,
        _dropped,
        id="ann-dict-category-id",
    ),
    item(
        _ann(_set(category_id=999)),
        "annotation/unknown-category",
        2,
        _dropped,
        id="ann-unknown-category",
    ),
    item(
        _ann(_set(segmentation=[[10, 10, 20, 10]])),
        "annotation/bad-segmentation",
        2,
        _dropped,
        id="polygon-4-numbers",
    ),
    item(
        _ann(_set(segmentation=[[10, 10, 20, 10, 20, 20, 10]])),
        "annotation/bad-segmentation",
        2,
        _dropped,
        id="polygon-odd-count",
    ),
    item(
        _ann(_set(segmentation=[["a", "b", "c", "d", "e", "f"]])),
        "annotation/bad-segmentation",
        2,
        _dropped,
        id="polygon-strings",
    ),
    item(_ann(_polygon_outside), "annotation/empty-mask", 2, _dropped, id="polygon-outside"),
    item(_ann(_box_only), None, 2, _check_box_only, id="segmentation-empty-box-only", tiny=True),
    item(
        _ann(_set(segmentation={"size": [10, 10], "counts": [100]})),
        "annotation/bad-segmentation",
        2,
        _dropped,
        id="rle-wrong-size",
    ),
    item(
        _ann(lambda a: a["bbox"].__setitem__(2, 0)),
        "annotation/bad-box",
        2,
        _dropped,
        id="box-zero-width",
    ),
    item(
        _ann(lambda a: a["bbox"].__setitem__(3, -5)),
        "annotation/bad-box",
        2,
        _dropped,
        id="box-negative-height",
    ),
    item(_ann(_set(bbox="10,10,20,20")), "annotation/bad-box", 2, _dropped, id="box-a-string"),
    item(
        _ann(_set(segmentation=[], bbox=[100, 70, 60, 50])),
        None,
        2,
        _check_clipped,
        id="box-partly-outside",
        tiny=True,
    ),
    item(
        _ann(_set(segmentation=[], bbox=[200, 10, 20, 20])),
        "annotation/box-outside-image",
        2,
        _dropped,
        id="box-wholly-outside",
    ),
    item(
        _ann(_set(segmentation=[], bbox=[2, 2, 5, 5])),
        "edit/too-small",
        2,
        _carried_not_edited,
        id="smaller-than-min-size",
    ),
    item(_ann(_set(iscrowd=1)), "edit/crowd", 2, _carried_not_edited, id="crowd"),
    item(_ids_zero, None, 2, _check_ids_zero, id="ids-zero"),
    # images
    item(_delete_image, "image/image-missing", 1, id="image-missing"),
    item(_empty_image, "image/image-unreadable", 1, id="image-zero-bytes"),
    item(_truncated_jpeg, "image/image-unreadable", 1, id="image-truncated-jpeg"),
    item(_text_as_jpg, "image/image-unreadable", 1, id="image-text-named-jpg"),
    item(
        _to_mode(lambda im: im.convert("L")),
        None,
        2,
        _check_converted("gray", True),
        id="image-gray-png",
    ),
    item(
        _to_mode(lambda im: im.convert("RGBA")),
        None,
        2,
        _check_converted("rgba", True),
        id="image-rgba-png",
    ),
    item(
        _to_mode(lambda im: im.convert("CMYK"), ".jpg"),
        None,
        2,
        _check_converted("cmyk", False),
        id="image-cmyk-jpeg",
    ),
    item(
        _to_mode(_gray16),
        None,
        2,
        _check_converted("gray16", True),
        id="image-16bit-png",
        tiny=True,
    ),
    item(
        _to_mode(lambda im: im.convert("P")),
        None,
        2,
        _check_converted("palette", True),
        id="image-palette-png",
    ),
    item(_exif_rotated, None, 2, _check_upright, id="image-exif-rotated-jpeg", tiny=True),
    item(_edit_image(1, _set(width=200)), "image/size-mismatch", 1, id="image-size-mismatch"),
    item(_edit_image(1, lambda im: im.pop("height")), "image/bad-size", 1, id="image-no-height"),
    item(_edit_image(1, _set(file_name="")), "image/no-file-name", 1, id="image-no-file-name"),
    item(_save_after(_large), None, 2, _check_large, id="image-large-4000x3000", tiny=True),
    item(
        _rename(0, "scène über 01.png"),
        None,
        2,
        _check_written(0, "sc"),
        id="image-unicode-spaces",
        tiny=True,
    ),
    # paths
    item(_move_outside(0, absolute=False), None, 2, _check_written(0, "escape"), id="path-dotdot"),
    item(
        _move_outside(0, absolute=True), None, 2, _check_written(0, "abs_image"), id="path-absolute"
    ),
    item(
        _edit_image(1, _set(file_name="../../../../../../nowhere/x.png")),
        "image/image-missing",
        1,
        id="path-dotdot-missing",
    ),
    item(
        _edit_image(1, _set(file_name="/nonexistent-inpaint-aug/x.png")),
        "image/image-missing",
        1,
        id="path-absolute-missing",
    ),
    item(_same_stem, None, 2, _check_same_stem, id="path-same-stem-two-folders"),
]


class StandIn:
    """A fast stand-in for the model: checks each request's shapes, returns seeded noise."""

    name = "tiny-random"

    def inpaint(self, batch):
        out = []
        for r in batch:
            res = PLAN.resolution
            assert r.pixels.shape == (res, res, 3) and r.pixels.dtype == np.uint8
            assert r.mask.shape == (res, res) and set(np.unique(r.mask)) <= {0, 255}
            assert r.mask.any() and r.prompt
            out.append(np.random.default_rng(r.seed).integers(20, 240, r.pixels.shape, np.uint8))
        return out


@pytest.mark.parametrize("mutate,skip,n_images,check,tiny", PER_ITEM)
def test_per_item(case, request, mutate, skip, n_images, check, tiny):
    with Image.open(case.image_file(1)) as img:
        img.convert("RGB").save(case.tmp / "original_1.png")
    mutate(case)
    before = listing(case.tmp, case.tmp / "out")
    inpainter = request.getfixturevalue("tiny_inpainter") if tiny else StandIn()
    data, report, out = run_case(case, inpainter)
    assert listing(case.tmp, out) == before, "something was written outside --out"
    assert {p.name for p in out.iterdir()} == {
        "annotations.json",
        "run.json",
        "images",
        ".inpaint_aug",
    }
    skipped = report["counts"]["skipped"]
    wanted = {skip: 1} if skip else {}
    assert skipped == wanted, report["skipped"]
    if skip:
        (entry,) = report["skipped"]
        assert f"{entry['kind']}/{entry['reason']}" == skip and entry["detail"]
    assert len(data["images"]) == n_images == report["counts"]["images_written"]
    for image in data["images"]:
        assert (out / image["file_name"]).is_file()
        assert out.resolve() in (out / image["file_name"]).resolve().parents
    if check:
        check(case, data, report, out)


# --------------------------------------------------------------------------------------------
# bad model output: retried with another seed, then skipped and reported


class ScriptedInpainter:
    """Returns black crops for the first ``black_calls`` calls (all calls when None), else noise."""

    name = "tiny-random"

    def __init__(self, black_calls: int | None) -> None:
        self.black_calls = black_calls
        self.calls: list[list[int]] = []

    def inpaint(self, batch):
        self.calls.append([r.seed for r in batch])
        black = self.black_calls is None or len(self.calls) <= self.black_calls
        if black:
            return [np.zeros_like(r.pixels) for r in batch]
        return [
            np.random.default_rng(r.seed).integers(20, 240, r.pixels.shape, dtype=np.uint8)
            for r in batch
        ]


class NanPipe:
    """A stand-in diffusers pipeline whose output is NaN (what a broken fp16 model returns)."""

    def set_progress_bar_config(self, **_kw) -> None:
        pass

    def __call__(self, image, **_kw):
        n, _, h, w = image.shape
        return type("Out", (), {"images": np.full((n, h, w, 3), np.nan, np.float32)})()


@pytest.mark.parametrize("kind", ["all-black", "nan"])
def test_invalid_model_output_is_retried_then_skipped(case, kind):
    if kind == "nan":
        inpainter = DiffusersInpainter(NanPipe(), "tiny-random")
    else:
        inpainter = ScriptedInpainter(black_calls=None)
    data, report, out = run_case(case, inpainter)
    if kind == "all-black":
        assert len(inpainter.calls) == 1 + RETRIES  # one batch of 4, retried twice
        assert len(set(inpainter.calls[0]) & set(inpainter.calls[1])) == 0, "same seeds again"
    counts = report["counts"]["skipped"]
    assert counts == {"edit/model-output-invalid": 4, "image/no-edit-left": 2}
    assert data["images"] == [] and report["counts"]["images_written"] == 0
    assert all(s["detail"] for s in report["skipped"])
    assert not list((out / "images").iterdir())


def test_black_once_then_retry_succeeds_with_another_seed(case):
    inpainter = ScriptedInpainter(black_calls=1)
    data, report, _ = run_case(case, inpainter)
    assert report["counts"]["skipped"] == {}
    assert len(data["images"]) == 2
    by_id = {im["id"]: im for im in case.data["images"]}
    for image in data["images"]:
        source_id = image["inpaint_aug"]["source_image_id"]
        for edit in image["inpaint_aug"]["edits"]:
            planned = derive_seed(
                PLAN.seed, by_id[source_id]["id"], edit["source_annotation_id"], 0
            )
            assert edit["seed"] == retry_seed(planned, 1) != planned


def test_per_item_skips_are_listed_on_the_cli(case, tiny_inpainter, monkeypatch):
    """The CLI completes (exit 0) on per-item problems and prints them in its summary."""
    monkeypatch.setattr(DiffusersInpainter, "load", classmethod(lambda *_a, **_k: tiny_inpainter))
    case.image_file(1).unlink()
    case.data["annotations"][0]["category_id"] = 999
    case.save()
    out = case.tmp / "out"
    code, stdout, stderr = cli(
        "run",
        str(case.coco),
        "--prompts",
        str(case.prompts),
        "--out",
        str(out),
        "--model",
        "tiny-random",
        "--resolution",
        "64",
        "--steps",
        "1",
        "--guidance",
        "1",
        "--min-size",
        "8",
    )
    assert code == 0, stderr
    assert "Traceback" not in stdout + stderr
    assert "(image/image-missing)" in stdout
    report = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert report["counts"]["skipped"] == {
        "annotation/unknown-category": 1,
        "image/image-missing": 1,
    }


def test_a_model_error_leaves_out_reusable(case, tiny_inpainter, monkeypatch):
    """The model loads before anything is written: a typo in --model does not block --out."""
    out = case.tmp / "out"
    base = [
        "run",
        str(case.coco),
        "--prompts",
        str(case.prompts),
        "--out",
        str(out),
        "--resolution",
        "64",
        "--steps",
        "1",
        "--guidance",
        "1",
        "--min-size",
        "8",
    ]
    code, stdout, stderr = cli(*base, "--model", _not_a_model_dir(case.tmp), "--device", "cpu")
    assert_one_error_line(code, stdout, stderr, "not a diffusers model folder")
    monkeypatch.setattr(DiffusersInpainter, "load", classmethod(lambda *_a, **_k: tiny_inpainter))
    code, stdout, stderr = cli(*base, "--model", "tiny-random")
    assert code == 0, stderr
