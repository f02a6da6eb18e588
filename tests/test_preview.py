"""The preview: items from a finished run or a sample, the contact sheet, the HTML page, the CLI."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image, ImageFont
from typer.testing import CliRunner

from inpaint_aug.cli.preview import preview_command
from inpaint_aug.inspect.preview import items_from_run, sample_items
from inpaint_aug.inspect.sheet import PreviewItem, contact_sheet, wrap, write_html
from inpaint_aug.options import PlanSettings, RunOptions
from inpaint_aug.pipeline.backend import DiffusersInpainter
from inpaint_aug.pipeline.run import run

SMALL = PlanSettings(resolution=64, steps=2, min_size=8, min_context=32)


def options(shapes: Path, prompts: Path, out: Path) -> RunOptions:
    return RunOptions(coco=shapes, prompts=prompts, out=out, model="tiny-random", plan=SMALL)


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


@pytest.fixture()
def finished_run(shapes, prompts_file, tmp_path, tiny_inpainter) -> Path:
    out = tmp_path / "out"
    run(options(shapes, prompts_file, out), inpainter=tiny_inpainter)
    return out


def test_items_from_run(finished_run):
    edited = json.loads((finished_run / "annotations.json").read_text(encoding="utf-8"))
    made = [e for im in edited["images"] for e in im["inpaint_aug"]["edits"]]
    items = items_from_run(finished_run, n=5)
    assert len(items) == min(5, len(made)) and items
    again = items_from_run(finished_run, n=5)
    assert [i.label for i in again] == [i.label for i in items]
    names = {c["id"]: c["name"] for c in edited["categories"]}
    classes = {names[e["category_id"]] for e in made}
    assert len(classes) == 3 and {i.label.split(" · ")[0] for i in items[:3]} == classes
    for item in items:
        assert item.before.shape == item.region.shape == item.after.shape
        assert item.mask.shape == item.before.shape[:2] and item.mask.any()
        changed = (item.before != item.after).any(axis=2)
        assert changed[item.mask].mean() > 0.5, "the region was not redrawn"
        assert (item.prompt, item.seed) in {(e["prompt"], e["seed"]) for e in made}
    report = json.loads((finished_run / "run.json").read_text(encoding="utf-8"))
    assert len(items_from_run(finished_run, n=100)) == report["counts"]["objects_edited"]


def test_sample_writes_nothing(shapes, prompts_file, tmp_path, tiny_inpainter):
    before = files_under(tmp_path)
    items = sample_items(options(shapes, prompts_file, tmp_path / "o"), 3, tiny_inpainter)
    assert len(items) == 3
    assert files_under(tmp_path) == before and not (tmp_path / "o").exists()
    for item in items:
        assert item.before.shape == item.after.shape
        assert (item.before != item.after).any(axis=2)[item.mask].mean() > 0.5
        assert (item.before == item.after)[~item.mask].all()  # one edit per item, pasted alone


def test_sample_matches_the_run(finished_run, shapes, prompts_file, tiny_inpainter):
    """Same prompts and seeds as the full run, and the same pixels in (most of) the region."""
    sampled = sample_items(options(shapes, prompts_file, finished_run), 2, tiny_inpainter)
    from_run = items_from_run(finished_run, n=2)
    for a, b in zip(sampled, from_run, strict=True):
        assert (a.label, a.prompt, a.seed) == (b.label, b.prompt, b.seed)
        diff = np.abs(a.after.astype(int) - b.after).max(axis=2)[a.mask]
        assert (diff <= 2).mean() > 0.75  # the rest: other edits of the run overlapping this one


def fake_item(prompt: str = "a red ball", side: int = 40) -> PreviewItem:
    pixels = np.full((side, side, 3), 90, np.uint8)
    mask = np.zeros((side, side), bool)
    mask[10:30, 10:30] = True
    return PreviewItem(pixels, pixels, pixels[::-1].copy(), prompt, 7, "circle · image 1", mask)


def test_contact_sheet_grows_with_items():
    one = contact_sheet([fake_item()], cell=96)
    three = contact_sheet([fake_item(), fake_item(side=200), fake_item(side=64)], cell=96)
    assert one.mode == three.mode == "RGB"
    assert one.width == three.width >= 3 * 96 and three.height > one.height + 2 * 96
    assert three.getpixel((0, 0)) == (255, 255, 255)


def test_long_prompt_wraps_at_words():
    long = " ".join(["a very long and detailed prompt about a shiny sphere"] * 4)
    sheet_short = contact_sheet([fake_item()])
    sheet_long = contact_sheet([fake_item(long)])
    assert sheet_long.height > sheet_short.height
    font = ImageFont.load_default(size=15)
    lines = wrap(long, font, 400)
    assert 2 <= len(lines) <= 4 and all(font.getlength(t) <= 400 for t in lines)
    assert set(" ".join(lines).replace(" …", "").split()) <= set(long.split())


def test_write_html(tmp_path):
    items = [fake_item("a <red> & 'blue' ball"), fake_item("a square")]
    page = tmp_path / "p.html"
    write_html(items, page)
    text = page.read_text(encoding="utf-8")
    assert text.count("<img") == 3 * len(items)
    assert html.escape("a <red> & 'blue' ball") in text and "<red>" not in text
    assert "a square" in text and "data:image/png;base64," in text


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(preview_command)
    return app


def test_cli_from_run(finished_run, tmp_path):
    page = tmp_path / "page.html"
    result = CliRunner().invoke(cli(), [str(finished_run), "--n", "3", "--html", str(page)])
    assert result.exit_code == 0, result.output
    sheet = finished_run / "preview.png"
    assert str(sheet) in result.output
    with Image.open(sheet) as img:
        assert img.format == "PNG" and img.width > 3 * 192
    assert page.read_text(encoding="utf-8").count("<img") == 9


def test_cli_sample(shapes, prompts_file, tmp_path, tiny_inpainter, monkeypatch):
    loaded = []

    def load(options):
        loaded.append((options.model, options.device))
        return tiny_inpainter

    monkeypatch.setattr(DiffusersInpainter, "load", load)
    sheet = tmp_path / "sheet.png"
    args = [str(shapes), "--prompts", str(prompts_file), "--model", "some/model"]
    args += ["--device", "cpu", "--n", "2", "--sheet", str(sheet), "--resolution", "64"]
    args += ["--steps", "2", "--min-size", "8"]
    before = files_under(tmp_path)
    result = CliRunner().invoke(cli(), args)
    assert result.exit_code == 0, result.output
    assert loaded == [("some/model", "cpu")] and "2 edits" in result.output
    assert files_under(tmp_path) == before | {sheet}


def test_cli_missing_run_json(tmp_path):
    result = CliRunner().invoke(cli(), [str(tmp_path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "run.json" in lines[0]
    assert not any(tmp_path.iterdir())


def test_cli_sample_needs_prompts(shapes):
    result = CliRunner().invoke(cli(), [str(shapes)])
    assert result.exit_code == 2 and "--prompts" in result.output


def test_cli_refuses_prompts_with_a_run_folder(finished_run, prompts_file):
    from inpaint_aug.cli import app

    before = files_under(finished_run)
    result = CliRunner().invoke(app, ["preview", str(finished_run), "--prompts", str(prompts_file)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "--prompts" in lines[0]
    assert "only for sampling a COCO JSON" in lines[0]
    assert files_under(finished_run) == before  # nothing written
