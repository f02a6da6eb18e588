"""Run the stages: read → plan → cut → inpaint a batch → paste → write.

Example:
    >>> from inpaint_aug.pipeline.run import RunOptions, run
    >>> report = run(RunOptions(coco="datasets/shapes/annotations.json",
    ...                         prompts="datasets/shapes/prompts.yaml", model="tiny-random",
    ...                         out="augmented"))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from inpaint_aug.dataset.coco import CocoDataset, load_coco, save_json_atomic
from inpaint_aug.dataset.prompts import PromptBook, load_prompts
from inpaint_aug.errors import Interrupted, OutputError
from inpaint_aug.pipeline.backend import DEFAULT_MODEL, Inpainter, ModelOptions
from inpaint_aug.pipeline.crops import output_format
from inpaint_aug.pipeline.engine import Engine, EngineSettings
from inpaint_aug.pipeline.journal import STATE_DIR, Journal, check_output_folder
from inpaint_aug.pipeline.plan import (
    PlanSettings,
    Skip,
    check_image,
    kept_annotations,
    plan_dataset,
)
from inpaint_aug.pipeline.records import (
    IMAGES_DIR,
    ImageRecord,
    assemble,
    carry_annotation,
    inside,
    output_names,
    safe_stem,
)
from inpaint_aug.version import __version__

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
FORMATS = ("coco", "yolo", "yolo-seg")


@dataclass(frozen=True)
class RunOptions:
    """Everything a run needs; the CLI builds one from its flags."""

    coco: Path | str
    prompts: Path | str
    out: Path | str = "augmented"
    images: Path | str | None = None
    model: str = DEFAULT_MODEL
    device: str = "auto"
    dtype: str = "auto"
    compile: bool = False
    cpu_offload: bool = False
    vae_slicing: bool = False
    lcm_lora: str | None = None
    batch_size: int = 4
    workers: int = 2
    image_format: str = "auto"
    limit: int | None = None
    resume: bool = False
    include_originals: bool = False
    format: str = "coco"
    split: str = "train"
    plan: PlanSettings = field(default_factory=PlanSettings)

    def model_options(self) -> ModelOptions:
        """The model-loading part of the options."""
        return ModelOptions(self.model, self.device, self.dtype, self.compile, self.cpu_offload,
                            self.vae_slicing, self.lcm_lora)  # fmt: skip


@dataclass
class RunReport:
    """What a run did: counts, skips with reasons, timings. Saved as ``OUT/run.json``."""

    out: Path
    images_planned: int = 0
    images_written: int = 0
    originals_written: int = 0
    objects_edited: int = 0
    annotations_written: int = 0
    per_class: dict[str, dict[str, Any]] = field(default_factory=dict)
    skips: list[Skip] = field(default_factory=list)
    seconds_total: float = 0.0
    seconds_model: float = 0.0
    seconds_load: float = 0.0
    exported: str | None = None

    def skip_counts(self) -> dict[str, int]:
        """Number of skips per ``kind/reason``."""
        counts: dict[str, int] = {}
        for s in self.skips:
            counts[f"{s.kind}/{s.reason}"] = counts.get(f"{s.kind}/{s.reason}", 0) + 1
        return dict(sorted(counts.items()))


def load_inputs(options: RunOptions) -> tuple[CocoDataset, PromptBook]:
    """Load and validate the dataset and the prompt book (fatal errors raise)."""
    ds = load_coco(options.coco, options.images)
    names = {c["id"]: str(c.get("name")) for c in ds.raw["categories"]}
    return ds, load_prompts(options.prompts, names)


def fingerprint(options: RunOptions) -> dict[str, Any]:
    """The settings a resumed run must share with the run it continues."""
    digest = {k: hashlib.sha256(Path(getattr(options, k)).read_bytes()).hexdigest()[:16]
              for k in ("coco", "prompts")}  # fmt: skip
    return {
        "model": options.model, "image_format": options.image_format, "limit": options.limit,
        "batch_size": options.batch_size, "dtype": options.dtype, "lcm_lora": options.lcm_lora,
        "coco_sha256": digest["coco"], "prompts_sha256": digest["prompts"],
        **{f"plan.{k}": v for k, v in asdict(options.plan).items()},
    }  # fmt: skip


def run(
    options: RunOptions, inpainter: Inpainter | None = None, progress: Progress | None = None
) -> RunReport:
    """Run the whole job and write ``OUT/annotations.json``, ``OUT/run.json`` and the images.

    Args:
        options: what to do.
        inpainter: a ready model; loaded from ``options`` when ``None`` (and only if there is
            work left to do).
        progress: called with ``(objects_done, objects_total)`` after each batch.

    Raises:
        FatalError: bad inputs, a model that cannot load, an unusable output folder.
        Interrupted: SIGINT or SIGTERM; what is finished is kept for ``resume=True``.
    """
    started = time.perf_counter()
    ds, book = load_inputs(options)
    out = Path(options.out)
    _check_choices(options)
    check_output_folder(out, options.resume)
    jobs, skips = plan_dataset(ds, book, options.plan, options.limit)
    report = RunReport(out=out, images_planned=len(jobs))
    resuming = options.resume and (out / STATE_DIR / "journal.jsonl").is_file()
    if not resuming and jobs and inpainter is None:
        inpainter = _load_model_first(out, options, report)
    journal = Journal.open(out, fingerprint(options), options.resume)
    _make_dirs(out)
    try:
        _execute(ds, jobs, options, inpainter, journal, report, progress)
    finally:
        journal.close()
    all_skips = list(dict.fromkeys(skips + journal.skips))  # a resumed job may repeat a skip
    finish(out, ds, options, report, all_skips, list(journal.records.values()))
    report.seconds_total = time.perf_counter() - started
    _save_json(report_dict(options, report), out / "run.json")
    return report


def _save_json(data: Any, path: Path) -> None:
    """Write a JSON file atomically; a full disk or a read-only folder is one clear error."""
    try:
        save_json_atomic(data, path)
    except OSError as err:
        path.with_name(f".{path.name}.tmp").unlink(missing_ok=True)  # our own temporary file
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from None


def _load_model_first(out: Path, options: RunOptions, report: RunReport) -> Inpainter:
    """Load the model before anything is written, after checking OUT can be created.

    If loading fails or is interrupted, an OUT folder made here (still empty) is removed again,
    so the next attempt needs no ``--resume``.
    """
    created = not out.exists()
    _make_dirs(out, images=False)
    try:
        with _interrupt_on_signals("while loading the model; nothing was written"):
            return _load_model(options, report)
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


@contextmanager
def _signals(handler: Callable[[int, Any], None]) -> Iterator[bool]:
    """Install ``handler`` for SIGINT and SIGTERM, restoring the old ones afterwards.

    Yields whether it could (signals can only be handled in the main thread).
    """
    try:
        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread (a notebook worker, say)
        yield False
        return
    try:
        yield True
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


@contextmanager
def _interrupt_on_signals(when: str) -> Iterator[None]:
    """SIGINT/SIGTERM become :class:`Interrupted` here.

    The handler raises ``KeyboardInterrupt``, a ``BaseException``, because library code that
    runs meanwhile (imports, model loading) may catch ``Exception``.
    """
    caught: list[str] = []

    def handler(signum: int, _frame: Any) -> None:
        caught.append(signal.Signals(signum).name)
        raise KeyboardInterrupt

    with _signals(handler):
        try:
            yield
        except KeyboardInterrupt:
            raise Interrupted(f"stopped by {(caught or ['SIGINT'])[0]} {when}") from None


def _load_model(options: RunOptions, report: RunReport) -> Inpainter:
    from inpaint_aug.pipeline.backend import DiffusersInpainter

    t0 = time.perf_counter()
    inpainter = DiffusersInpainter.load(options.model_options())
    report.seconds_load = time.perf_counter() - t0
    return inpainter


def _check_choices(options: RunOptions) -> None:
    if options.format not in FORMATS:
        raise OutputError(f"--format {options.format!r}: expected one of {', '.join(FORMATS)}")


def _make_dirs(out: Path, images: bool = True) -> None:
    try:
        (out / IMAGES_DIR if images else out).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{out}: cannot create the output folder ({err.strerror})") from None


def _execute(ds: CocoDataset, jobs: list, options: RunOptions, inpainter: Inpainter | None,
             journal: Journal, report: RunReport, progress: Progress | None) -> None:  # fmt: skip
    """Load the model if work is left, run the engine, stop cleanly on a signal."""
    todo = [i for i in range(len(jobs)) if i + 1 not in journal.ended]
    if not todo:
        return
    if inpainter is None:
        inpainter = _load_model(options, report)
    formats = [output_format(j.image.get("file_name", ""), options.image_format) for j in jobs]
    settings = EngineSettings(options.batch_size, options.workers, max(4, options.batch_size))
    engine = Engine(ds, jobs, options.plan, inpainter, journal, Path(options.out),
                    output_names(jobs, formats), formats, settings)  # fmt: skip
    engine.progress = progress
    with _stop_on_signals(engine) as caught:
        engine.process(todo)
    report.seconds_model = engine.seconds_model
    if caught:
        done = len(journal.ended)
        raise Interrupted(f"stopped by {caught[0]} after {done} of {len(jobs)} images; the "
                          "finished ones are kept: run the same command with --resume")  # fmt: skip


@contextmanager
def _stop_on_signals(engine: Engine) -> Iterator[list[str]]:
    """Turn SIGINT/SIGTERM into a clean stop: the engine finishes its batch and returns."""
    caught: list[str] = []

    def handler(signum: int, _frame: Any) -> None:
        caught.append(signal.Signals(signum).name)
        engine.stop.set()

    with _signals(handler):
        yield caught


def finish(out: Path, ds: CocoDataset, options: RunOptions, report: RunReport,
           skips: list[Skip], records: list[ImageRecord]) -> None:  # fmt: skip
    """Write the final dataset (and its export) and fill the report's counts."""
    edited = list(records)
    if options.include_originals:
        originals, missing = copy_originals(out, ds, options, report.images_planned + 1)
        records = records + originals
        skips = skips + missing
        report.originals_written = len(originals)
    data = assemble(ds.raw, records)
    _save_json(data, out / "annotations.json")
    report.skips = skips
    report.images_written = len(edited)
    report.objects_edited = sum(len(r.edited_ann_indexes) for r in edited)
    report.annotations_written = len(data["annotations"])
    report.per_class = per_class(ds, edited, skips)
    if options.format != "coco":
        from inpaint_aug.exporters.yolo import export_yolo

        task = "segment" if options.format == "yolo-seg" else "detect"
        report.exported = str(export_yolo(data, out, out / "yolo", task, options.split))


def per_class(
    ds: CocoDataset, records: list[ImageRecord], skips: list[Skip]
) -> dict[str, dict[str, Any]]:
    """Per class name: objects edited and objects not edited, by reason."""

    def name(cat: Any) -> str:
        return str(ds.categories_by_id.get(cat, {}).get("name", cat))

    table: dict[str, dict[str, Any]] = {}
    for rec in records:
        for index in rec.edited_ann_indexes:
            row = table.setdefault(name(rec.annotations[index]["category_id"]), _row())
            row["edited"] += 1
    for skip in skips:
        if skip.kind in ("edit", "annotation") and skip.category_id is not None:
            reasons = table.setdefault(name(skip.category_id), _row())["skipped"]
            reasons[skip.reason] = reasons.get(skip.reason, 0) + 1
    return dict(sorted(table.items()))


def _row() -> dict[str, Any]:
    return {"edited": 0, "skipped": {}}


def copy_originals(
    out: Path, ds: CocoDataset, options: RunOptions, first_id: int
) -> tuple[list[ImageRecord], list[Skip]]:
    """Copy the processed source images unchanged (bytes) with their labels, for one training
    set holding originals and augmentations."""
    images = ds.images[: options.limit]
    kept, _ = kept_annotations(ds, {im["id"] for im in images})
    records, skips = [], []
    for offset, image in enumerate(images):
        src = ds.image_path(image)
        if check_image(image) or not src.is_file():
            skips.append(Skip("image", "original-missing", f"{src}", image.get("id")))
            continue
        name = f"{IMAGES_DIR}/{safe_stem(image['file_name'])}_orig{src.suffix.lower()}"
        if not os.path.exists(inside(out, name)):
            shutil.copyfile(src, inside(out, name))
        entry = {**image, "id": first_id + offset, "file_name": name}
        entry["inpaint_aug"] = {"source_image_id": image["id"], "original": True, "edits": []}
        anns = tuple(carry_annotation(a, image["width"], image["height"])
                     for a in kept.get(image["id"], []))  # fmt: skip
        records.append(ImageRecord(first_id + offset, entry, anns, ()))
    return records, skips


def report_dict(options: RunOptions, report: RunReport) -> dict[str, Any]:
    """``run.json``: settings, counts, timings and every skip with its reason."""
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()}
    return {
        "version": __version__,
        "settings": settings,
        "counts": {
            "images_planned": report.images_planned,
            "images_written": report.images_written,
            "originals_written": report.originals_written,
            "objects_edited": report.objects_edited,
            "annotations_written": report.annotations_written,
            "per_class": report.per_class,
            "skipped": report.skip_counts(),
        },
        "seconds": {
            "total": round(report.seconds_total, 3),
            "model": round(report.seconds_model, 3),
            "model_load": round(report.seconds_load, 3),
        },  # fmt: skip
        "exported": report.exported,
        "skipped": [asdict(s) for s in report.skips],
    }
