"""Preview edits side by side: the source crop, the region the model may repaint, the result.

From a finished run (its provenance says which edits were made; the plan is rebuilt from
``run.json`` to recover each edit's window and region), or from a quick in-memory sample before
a full run. Either becomes a contact sheet PNG or a static HTML page.

Example:
    >>> items = items_from_run(Path("augmented"), n=6)  # doctest: +SKIP
    >>> contact_sheet(items).save("augmented/preview.png")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import dataclasses
import html as htmllib
import io
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any  # noqa: UP035 - typer reads Optional on Python 3.10

import cv2
import numpy as np
import typer
from PIL import Image, ImageDraw, ImageFont

from .backend import DEFAULT_MODEL, Inpainter, InpaintRequest
from .coco import CocoDataset, read_json
from .errors import FatalError, ItemError
from .plan import Edit, ImageJob, PlanSettings, plan_dataset
from .render import Crop, cut, load_image, paste, region_mask
from .runner import RunOptions, load_inputs
from .writer import inside

MAX_SIDE = 384  # crops are kept at most this many pixels on a side (they are only looked at)
TINT = (255, 40, 150)  # the editable region's colour in the region view
COLUMNS = ("before", "region", "after")
DARK, GREY, RULE = (20, 20, 20), (90, 90, 90), (205, 205, 205)
Pick = tuple[ImageJob, Edit]


@dataclass(frozen=True)
class PreviewItem:
    """One edit, ready to look at: square ``(S, S, 3)`` uint8 crops of its window.

    ``region`` is ``before`` dimmed with the editable region tinted and outlined; ``mask`` is
    that region as ``(S, S)`` bool.

    Example:
        >>> item.label  # doctest: +SKIP
        'circle · image 3 · ann 12'
    """

    before: np.ndarray
    region: np.ndarray
    after: np.ndarray
    prompt: str
    seed: int
    label: str
    mask: np.ndarray


def region_view(before: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``before`` dimmed outside ``mask``, tinted inside, with the region's outline drawn.

    Example:
        >>> region_view(np.zeros((8, 8, 3), np.uint8), np.ones((8, 8), bool)).shape
        (8, 8, 3)
    """
    view = before.astype(np.float32) * 0.4 + 20.0
    view[mask] = before[mask].astype(np.float32) * 0.55 + 0.45 * np.array(TINT, np.float32)
    out = np.clip(np.round(view), 0, 255).astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, TINT, max(1, before.shape[0] // 96))
    return out


def _spread(picks: Sequence[Pick], n: int, make: Callable[[ImageJob, Edit], Any]) -> list[Any]:
    """``make`` up to ``n`` results, taking edits round-robin per class; ItemErrors are skipped.

    Classes come in order of first appearance, edits in plan order: the choice is deterministic.
    """
    lanes: dict[Any, list[Pick]] = {}
    for pick in picks:
        lanes.setdefault(pick[1].category_id, []).append(pick)
    order: Iterator[Pick] = (
        lane[i] for i in range(len(picks)) for lane in lanes.values() if i < len(lane)
    )
    made: list[Any] = []
    for job, edit in order:
        if len(made) == n:
            break
        try:
            made.append(make(job, edit))
        except ItemError:
            continue
    return made


def _item(
    ds: CocoDataset,
    pick: Pick,
    plan: PlanSettings,
    pixels: tuple[np.ndarray, np.ndarray],
    prompt: str,
    seed: int,
) -> PreviewItem:
    """Cut the before/after crops of one edit at display size and build its item."""
    (job, edit), (before, after) = pick, pixels
    region = region_mask(edit, job.annotations, (before.shape[1], before.shape[0]), plan)
    view = replace(plan, resolution=min(edit.window.side, MAX_SIDE))
    crop = cut(before, edit, region, view)
    mask = crop.mask > 0
    name = ds.categories_by_id[edit.category_id].get("name")
    label = f"{name} · image {job.image['id']} · ann {edit.annotation_id}"
    label += f" · copy {job.copy}" if job.copy else ""
    after_crop = cut(after, edit, region, view).pixels
    view_px = region_view(crop.pixels, mask)
    return PreviewItem(crop.pixels, view_px, after_crop, prompt, seed, label, mask)


def _reader(ds: CocoDataset) -> Callable[[dict[str, Any]], np.ndarray]:
    """A function reading a source image's pixels, each image read once."""
    cache: dict[Any, np.ndarray] = {}

    def read(image: dict[str, Any]) -> np.ndarray:
        if image["id"] not in cache:
            path = ds.image_path(image)
            cache[image["id"]] = load_image(path, image.get("width"), image.get("height"))
        return cache[image["id"]]

    return read


def items_from_run(out_dir: Path, n: int = 12) -> list[PreviewItem]:
    """Items for up to ``n`` edits of a finished run, spread across classes.

    Raises:
        FatalError: no ``run.json``/``annotations.json``, or the run's inputs cannot be read.

    Example:
        >>> items = items_from_run(Path("augmented"), n=4)  # doctest: +SKIP
    """
    out_dir = Path(out_dir)
    settings = read_json(out_dir / "run.json").get("settings")
    if not isinstance(settings, dict) or "plan" not in settings:
        raise FatalError(f"{out_dir / 'run.json'}: no settings; not an inpaint-aug run.json")
    known = {f.name for f in dataclasses.fields(PlanSettings)}
    plan = PlanSettings(**{k: v for k, v in settings["plan"].items() if k in known})
    options = RunOptions(settings["coco"], settings["prompts"], images=settings.get("images"))
    ds, book = load_inputs(options)
    jobs, _ = plan_dataset(ds, book, plan, settings.get("limit"))
    made = {}  # (source image id, copy, source annotation id) -> (output file, provenance)
    for image in read_json(out_dir / "annotations.json").get("images", []):
        prov = image.get("inpaint_aug") or {}
        for e in prov.get("edits", []):
            key = (prov.get("source_image_id"), prov.get("copy"), e.get("source_annotation_id"))
            made[key] = (image["file_name"], e)
    read = _reader(ds)

    def make(job: ImageJob, edit: Edit) -> PreviewItem:
        name, prov = made[(job.image["id"], job.copy, edit.annotation_id)]
        after = load_image(inside(out_dir, name))
        prompt, seed = str(prov["prompt"]), int(prov["seed"])
        return _item(ds, (job, edit), plan, (read(job.image), after), prompt, seed)

    done = [
        (j, e) for j in jobs for e in j.edits if (j.image["id"], j.copy, e.annotation_id) in made
    ]
    return _spread(done, n, make)


def _request(e: Edit, c: Crop) -> InpaintRequest:
    """The model request of one edit's crop."""
    return InpaintRequest(
        c.pixels, c.mask, e.prompt, e.negative_prompt, e.seed, e.steps, e.guidance, e.strength
    )


def inpaint_padded(
    inpainter: Inpainter, edits: list[Edit], crops: list[Crop], batch_size: int
) -> list[np.ndarray]:
    """Redraw crops in batches of ``batch_size`` edits sharing settings, padded like the runner.

    Example:
        >>> results = inpaint_padded(model, [edit], [crop], batch_size=4)  # doctest: +SKIP
    """
    results: list[Any] = [None] * len(edits)
    groups: dict[tuple, list[int]] = {}
    for i, e in enumerate(edits):
        groups.setdefault(e.settings_key, []).append(i)
    for indexes in groups.values():
        for start in range(0, len(indexes), batch_size):
            part = indexes[start : start + batch_size]
            batch = [_request(edits[i], crops[i]) for i in part]
            batch += [batch[-1]] * (batch_size - len(batch))
            for i, result in zip(part, inpainter.inpaint(batch)[: len(part)], strict=True):
                results[i] = result
    return results


def sample_items(
    options: RunOptions, n: int = 8, inpainter: Inpainter | None = None
) -> list[PreviewItem]:
    """Redraw up to ``n`` edits in memory (nothing is written), to try settings before a run.

    Each edit gets the prompt and seed the full run would give it, pasted into its own copy.

    Example:
        >>> opts = RunOptions("a.json", "p.yaml", model="tiny-random")
        >>> items = sample_items(opts, n=4)  # doctest: +SKIP
    """
    ds, book = load_inputs(options)
    jobs, _ = plan_dataset(ds, book, options.plan, options.limit)
    read, plan = _reader(ds), options.plan

    def make(job: ImageJob, edit: Edit) -> tuple[Pick, np.ndarray, Any]:
        pixels = read(job.image)
        region = region_mask(edit, job.annotations, (pixels.shape[1], pixels.shape[0]), plan)
        return (job, edit), pixels, cut(pixels, edit, region, plan)

    chosen = _spread([(j, e) for j in jobs for e in j.edits], n, make)
    if chosen and inpainter is None:
        from .backend import DiffusersInpainter

        inpainter = DiffusersInpainter.load(options.model_options())
    edits, crops = [e for (_, e), _, _ in chosen], [c for _, _, c in chosen]
    results = inpaint_padded(inpainter, edits, crops, options.batch_size) if chosen else []
    items = []
    for ((job, edit), pixels, crop), result in zip(chosen, results, strict=True):
        after = pixels.copy()
        paste(after, edit.window, crop.alpha, result)
        items.append(_item(ds, (job, edit), plan, (pixels, after), edit.prompt, edit.seed))
    return items


def _font(size: int) -> Any:
    """Pillow's bundled font at ``size`` px (its small bitmap font on Pillow < 10.1)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow < 10.1
        return ImageFont.load_default()


def drawable(text: str, font: Any) -> str:
    """``text`` with the characters ``font`` has no glyph for folded (``é`` → ``e``) or ``?``.

    Example:
        >>> drawable("café", _font(14))
        'cafe'
    """
    blank = bytes(font.getmask("\U0010ffff"))  # what a missing glyph renders as

    def has(ch: str) -> bool:
        return ch.isspace() or bytes(font.getmask(ch)) != blank

    folded = (c if has(c) else unicodedata.normalize("NFKD", c)[0] for c in text)
    return "".join(c if has(c) else "?" for c in folded)


def wrap(text: str, font: Any, width: float, max_lines: int = 4) -> list[str]:
    """Break ``text`` at spaces into lines at most ``width`` px wide (``…`` past ``max_lines``).

    Example:
        >>> wrap("a red ball", _font(14), 1000)
        ['a red ball']
    """
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        while " " in lines[-1] and font.getlength(lines[-1] + " …") > width:
            lines[-1] = lines[-1].rsplit(" ", 1)[0]
        lines[-1] += " …"
    return lines or [""]


def contact_sheet(items: Sequence[PreviewItem], cell: int = 192) -> Image.Image:
    """One row per item (before | region | after, ``cell`` px each), with its label, prompt, seed.

    Example:
        >>> contact_sheet(items).save("preview.png")  # doctest: +SKIP
    """
    pad, head, body, line = 12, _font(17), _font(15), 21
    width = 3 * cell + 4 * pad
    texts = [
        [(drawable(it.label, head), head, DARK)]
        + [(t, body, DARK) for t in wrap(drawable(it.prompt, body), body, width - 2 * pad)]
        + [(f"seed {it.seed}", body, GREY)]
        for it in items
    ]
    sheet = Image.new(
        "RGB", (width, 36 + sum(cell + 2 * pad + line * len(t) for t in texts)), "white"
    )
    draw = ImageDraw.Draw(sheet)
    for col, title in enumerate(COLUMNS):
        draw.text((pad + col * (cell + pad) + cell // 2, 18), title, DARK, head, anchor="mm")
    y = 36
    for item, lines in zip(items, texts, strict=True):
        draw.line([(0, y), (width, y)], RULE, 1)
        for col, pixels in enumerate((item.before, item.region, item.after)):
            x, tile = pad + col * (cell + pad), Image.fromarray(pixels)
            sheet.paste(tile.resize((cell, cell), Image.Resampling.BICUBIC), (x, y + pad))
            draw.rectangle([x - 1, y + pad - 1, x + cell, y + pad + cell], outline=RULE)
        for i, (text, font, fill) in enumerate(lines):
            draw.text((pad, y + pad + cell + 6 + i * line), text, fill, font)
        y += cell + 2 * pad + line * len(lines)
    return sheet


def _data_uri(pixels: np.ndarray) -> str:
    """A ``data:image/png;base64,...`` URI of an RGB array."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def write_html(items: Sequence[PreviewItem], path: Path) -> None:
    """Write a self-contained HTML page: each item's three crops (embedded), prompt and seed.

    Example:
        >>> write_html(items, Path("preview.html"))  # doctest: +SKIP
    """
    rows = [f"<tr>{''.join(f'<th>{c}</th>' for c in COLUMNS)}</tr>"]
    for it in items:
        crops = zip(COLUMNS, (it.before, it.region, it.after), strict=True)
        rows.append(
            "<tr>"
            + "".join(f'<td><img src="{_data_uri(a)}" alt="{c}"></td>' for c, a in crops)
            + "</tr>"
        )
        text = f"<b>{htmllib.escape(it.label)}</b><br>{htmllib.escape(it.prompt)}<br>seed {it.seed}"
        rows.append(f'<tr><td colspan="3">{text}</td></tr>')
    style = "body{font-family:sans-serif}img{width:192px;height:192px}td{padding:4px 4px 14px}"
    head = f'<meta charset="utf-8"><title>inpaint-aug preview</title><style>{style}</style>'
    body = "\n".join(rows)
    page = (
        f"<!doctype html>\n<html><head>{head}</head><body><table>\n{body}\n</table></body></html>"
    )
    Path(path).write_text(page + "\n", encoding="utf-8")


_DEF = PlanSettings()
_Path = Path | None
SHEET_HELP = "Contact sheet PNG [default: RUN_DIR/preview.png; ./preview.png when sampling]"


def _gather(target: Path, options: RunOptions, n: int) -> tuple[list[PreviewItem], Path]:
    """Items and the default sheet path: from a run folder, or sampled from a COCO JSON."""
    if target.is_dir():
        if not (target / "run.json").is_file():
            raise FatalError(f"{target}: no run.json here; expected a finished inpaint-aug run")
        return items_from_run(target, n), target / "preview.png"
    if not target.is_file():
        raise FatalError(f"{target}: no such file or folder")
    if not str(options.prompts):
        raise typer.BadParameter(
            "a prompts file is needed to sample a COCO JSON", param_hint="--prompts"
        )
    if options.plan.region not in ("auto", "mask", "box"):
        raise typer.BadParameter("expected auto, mask or box", param_hint="--region")
    if options.device not in ("auto", "cpu", "cuda", "mps"):
        raise typer.BadParameter("expected auto, cpu, cuda or mps", param_hint="--device")
    if options.plan.resolution % 8:
        raise typer.BadParameter("not a multiple of 8", param_hint="--resolution")
    return sample_items(options, n), Path("preview.png")


def _preview(target: Path, options: RunOptions, n: int, sheet: _Path, page: _Path) -> str:
    """Gather items, write the sheet (and the page); say what was written."""
    items, default = _gather(target, options, n)
    if not items:
        raise FatalError(f"{target}: nothing to preview (no object was or can be redrawn)")
    contact_sheet(items).save(sheet or default, format="PNG")
    if page is not None:
        write_html(items, page)
    return f"{len(items)} edits -> {sheet or default}" + (f" and {page}" if page else "")


def preview_command(
    target: Annotated[Path, typer.Argument(help="A finished run's --out folder, or a COCO JSON.")],
    prompts: Annotated[_Path, typer.Option(help="Prompts YAML (to sample a COCO JSON).")] = None,
    n: Annotated[int, typer.Option(min=1, help="Edits to show, spread across classes.")] = 12,
    sheet: Annotated[_Path, typer.Option(help=SHEET_HELP)] = None,
    html: Annotated[_Path, typer.Option(help="Also write a static HTML page here.")] = None,
    images: Annotated[_Path, typer.Option(help="Image folder (found automatically).")] = None,
    model: Annotated[str, typer.Option(help="As for run (sample mode).")] = DEFAULT_MODEL,
    device: Annotated[str, typer.Option(help="auto|cpu|cuda|mps.")] = "auto",
    steps: Annotated[int, typer.Option(min=1, help="Denoising steps.")] = _DEF.steps,
    guidance: Annotated[float, typer.Option(min=0.0, help="Guidance scale.")] = _DEF.guidance,
    strength: Annotated[float, typer.Option(min=0.01, max=1.0)] = _DEF.strength,
    resolution: Annotated[int, typer.Option(min=64, help="Multiple of 8.")] = _DEF.resolution,
    batch_size: Annotated[int, typer.Option(min=1, help="Crops per model call.")] = 4,
    seed: Annotated[int, typer.Option(min=0, help="Base seed, as for run.")] = 0,
    region: Annotated[str, typer.Option(help="auto|mask|box.")] = "auto",
    min_size: Annotated[int, typer.Option(min=0, help="Skip smaller objects.")] = _DEF.min_size,
    dilate: Annotated[int, typer.Option(min=0, help="Grow masks by N px.")] = _DEF.dilate,
    limit: Annotated[int | None, typer.Option(min=1, help="First N images only.")] = None,
) -> None:
    """Show edits as before | region | after: from a finished run, or sampled from a COCO JSON.

    Example:
        inpaint-aug preview augmented/ --n 8 --html augmented/preview.html
    """
    plan = PlanSettings(seed=seed, region=region, dilate=dilate, min_size=min_size, steps=steps)
    plan = replace(plan, resolution=resolution, guidance=guidance, strength=strength)
    options = RunOptions(target, prompts or "", images=images, model=model, device=device)
    options = replace(options, batch_size=batch_size, limit=limit, plan=plan)
    try:
        written = _preview(target, options, n, sheet, html)
    except (FatalError, OSError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote a preview of {written}")
