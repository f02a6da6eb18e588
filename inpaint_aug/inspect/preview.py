"""Preview edits side by side: the source crop, the region the model may repaint, the result.

From a run (its provenance says which edits were made; the plan is rebuilt from ``run.json``
to recover each edit's window and region), also an unfinished one (from its journal and
``.inpaint_aug/settings.json``), or from a quick in-memory sample before a full run. This
module picks the edits and cuts their crops into :class:`PreviewItem`; :mod:`.sheet` draws them
and :mod:`inpaint_aug.cli.preview` is the ``inpaint-aug preview`` command. Sampled edits go
through the run's own batch function (:class:`~inpaint_aug.pipeline.batch.ModelCaller`:
padding, out-of-memory halving, retries).

Example:
    >>> items = items_from_run(Path("augmented"), n=6)  # doctest: +SKIP
    >>> contact_sheet(items).save("augmented/preview.png")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from inpaint_aug.dataset.coco import CocoDataset, read_json
from inpaint_aug.dataset.images import load_image
from inpaint_aug.errors import FatalError, ItemError
from inpaint_aug.files import inside
from inpaint_aug.inspect.sheet import PreviewItem, region_view
from inpaint_aug.options import PlanSettings, RunOptions
from inpaint_aug.pipeline.backend import Inpainter
from inpaint_aug.pipeline.batch import ModelCaller, redraw_grouped
from inpaint_aug.pipeline.crops import cut, paste
from inpaint_aug.pipeline.journal import SETTINGS_FILE, STATE_DIR, read_records
from inpaint_aug.pipeline.plan import Edit, ImageJob, plan_dataset
from inpaint_aug.pipeline.regions import region_mask
from inpaint_aug.pipeline.run import load_inputs

MAX_SIDE = 384  # crops are kept at most this many pixels on a side (they are only looked at)
Pick = tuple[ImageJob, Edit]


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
    region = region_mask(edit, job.annotations, (before.shape[1], before.shape[0]), plan.dilate)
    side = min(edit.window.side, MAX_SIDE)
    crop = cut(before, edit.window, region, side, plan.feather)
    mask = crop.mask > 0
    name = ds.categories_by_id.get(edit.category_id, {"name": "background"}).get("name")
    label = f"{name} · image {job.image['id']} · ann {edit.annotation_id}"
    label += f" · copy {job.copy}" if job.copy else ""
    after_crop = cut(after, edit.window, region, side, plan.feather).pixels
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


def run_settings(out_dir: Path) -> RunOptions:
    """The options a run recorded: ``run.json``'s, or an unfinished run's ``settings.json``.

    Raises:
        FatalError: neither file is there, or it holds no settings.
    """
    path = out_dir / "run.json"
    if not path.is_file():
        path = out_dir / STATE_DIR / SETTINGS_FILE
    if not path.is_file():
        raise FatalError(
            f"{out_dir}: no run.json or {STATE_DIR}/{SETTINGS_FILE} here; "
            "expected an inpaint-aug run folder"
        )
    data = read_json(path)
    settings = data.get("settings", data) if path.name == "run.json" else data
    if not isinstance(settings, dict) or "plan" not in settings:
        raise FatalError(f"{path}: no settings; not an inpaint-aug run")
    return RunOptions.from_dict(settings)


def finished_images(out_dir: Path) -> list[dict[str, Any]]:
    """The COCO entries of the images written so far, provenance included.

    From ``annotations.json`` once the run is complete, else from the journal's records (an
    interrupted or running run; the journal is only read).
    """
    if (out_dir / "annotations.json").is_file():
        return list(read_json(out_dir / "annotations.json").get("images", []))
    return [record.image for record in read_records(out_dir)]


def items_from_run(out_dir: Path, n: int = 12) -> list[PreviewItem]:
    """Items for up to ``n`` edits of a run, spread across classes.

    The run may be unfinished: then its images so far are shown (see :func:`finished_images`).

    Raises:
        FatalError: no ``run.json`` nor ``.inpaint_aug/settings.json``, or the run's inputs
            cannot be read.

    Example:
        >>> items = items_from_run(Path("augmented"), n=4)  # doctest: +SKIP
    """
    out_dir = Path(out_dir)
    options = run_settings(out_dir)
    plan = options.plan
    ds, book = load_inputs(options)
    jobs, _ = plan_dataset(ds, book, plan, options.limit)
    images = finished_images(out_dir)
    made = {}  # (source image id, copy, source annotation id) -> (output file, provenance)
    for image in images:
        prov = image.get("inpaint_aug") or {}
        background = [prov["background"]] if "background" in prov else []  # --mode background
        for e in prov.get("edits", []) + prov.get("rejected", []) + background:
            key = (prov.get("source_image_id"), prov.get("copy"), e.get("source_annotation_id"))
            made[key] = (image["file_name"], e)
    rejected = [e for im in images for e in (im.get("inpaint_aug") or {}).get("rejected", [])]
    read = _reader(ds)

    def make(job: ImageJob, edit: Edit) -> PreviewItem:
        name, prov = made[(job.image["id"], job.copy, edit.annotation_id)]
        after = load_image(inside(out_dir, name))
        prompt, seed = str(prov["prompt"]), int(prov["seed"])
        item = _item(ds, (job, edit), plan, (read(job.image), after), prompt, seed)
        return replace(item, label=item.label + verdict_note(prov, prov in rejected))

    done = [
        (j, e) for j in jobs for e in j.edits if (j.image["id"], j.copy, e.annotation_id) in made
    ]
    return _spread(done, n, make)


def verdict_note(entry: dict[str, Any], rejected: bool) -> str:
    """The verifier's verdict of one provenance entry, for an item's label ('' without one).

    >>> verdict_note({"verify": {"score": 24.2, "source_score": 25.0, "attempts": 2}}, True)
    ' · REJECTED (kept its source pixels) · score 24.20, source 25.00, 2 tries'
    """
    verify = entry.get("verify")
    note = " · REJECTED (kept its source pixels)" if rejected else ""
    if verify:
        note += (
            f" · score {verify['score']:.2f}, source {verify['source_score']:.2f}, "
            f"{verify['attempts']} {'try' if verify['attempts'] == 1 else 'tries'}"
        )
    return note


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
        region = region_mask(edit, job.annotations, (pixels.shape[1], pixels.shape[0]), plan.dilate)
        return (job, edit), pixels, cut(pixels, edit.window, region, plan.resolution, plan.feather)

    chosen = _spread([(j, e) for j in jobs for e in j.edits], n, make)
    if not chosen:
        return []
    if inpainter is None:
        from inpaint_aug.pipeline.backend import DiffusersInpainter

        inpainter = DiffusersInpainter.load(options.model_options())
    caller = ModelCaller(inpainter, options.batch_size)
    outcomes = redraw_grouped(caller, [e for (_, e), _, _ in chosen], [c for _, _, c in chosen])
    items = []
    for ((job, _), pixels, crop), done in zip(chosen, outcomes, strict=True):
        if done.result is None:
            continue  # invalid after retries, as a run would skip it
        after = pixels.copy()
        paste(after, done.edit.window, crop.alpha, done.result)
        pick = (job, done.edit)
        items.append(_item(ds, pick, plan, (pixels, after), done.edit.prompt, done.edit.seed))
    return items
