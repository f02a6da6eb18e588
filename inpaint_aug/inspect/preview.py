"""Preview edits side by side: the source crop, the region the model may repaint, the result.

From a finished run (its provenance says which edits were made; the plan is rebuilt from
``run.json`` to recover each edit's window and region), or from a quick in-memory sample before
a full run. This module picks the edits and cuts their crops into :class:`PreviewItem`;
:mod:`.sheet` draws them (``contact_sheet`` and ``write_html`` are re-exported here) and
:mod:`.cli_preview` is the ``inpaint-aug preview`` command.

Example:
    >>> items = items_from_run(Path("augmented"), n=6)  # doctest: +SKIP
    >>> contact_sheet(items).save("augmented/preview.png")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from inpaint_aug.dataset.coco import CocoDataset, read_json
from inpaint_aug.errors import FatalError, ItemError
from inpaint_aug.inspect.sheet import contact_sheet, region_view, write_html  # noqa: F401 - re-exported
from inpaint_aug.pipeline.backend import Inpainter
from inpaint_aug.pipeline.crops import Crop, cut, load_image, paste, region_mask
from inpaint_aug.pipeline.engine import call_padded, request_for
from inpaint_aug.pipeline.plan import Edit, ImageJob, PlanSettings, plan_dataset
from inpaint_aug.pipeline.records import inside
from inpaint_aug.pipeline.run import RunOptions, load_inputs

MAX_SIDE = 384  # crops are kept at most this many pixels on a side (they are only looked at)
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
            batch = [request_for(edits[i], crops[i]) for i in part]
            for i, result in zip(part, call_padded(inpainter, batch, batch_size), strict=True):
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
        from inpaint_aug.pipeline.backend import DiffusersInpainter

        inpainter = DiffusersInpainter.load(options.model_options())
    edits, crops = [e for (_, e), _, _ in chosen], [c for _, _, c in chosen]
    results = inpaint_padded(inpainter, edits, crops, options.batch_size) if chosen else []
    items = []
    for ((job, edit), pixels, crop), result in zip(chosen, results, strict=True):
        after = pixels.copy()
        paste(after, edit.window, crop.alpha, result)
        items.append(_item(ds, (job, edit), plan, (pixels, after), edit.prompt, edit.seed))
    return items
