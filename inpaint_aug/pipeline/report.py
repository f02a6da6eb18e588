"""The run report: counts, skips with reasons, timings; saved as ``OUT/run.json``.

Built once, at the end, from what the stages returned.

Example:
    >>> RunReport(Path("o"), skips=(Skip("edit", "crowd", ""),)).skip_counts()
    {'edit/crowd': 1}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from inpaint_aug.dataset.coco import CocoDataset
from inpaint_aug.options import RunOptions
from inpaint_aug.pipeline.plan import Skip
from inpaint_aug.pipeline.predict import copies_of
from inpaint_aug.pipeline.records import ImageRecord
from inpaint_aug.version import __version__


@dataclass(frozen=True)
class RunReport:
    """What a run did: counts, skips with reasons, timings.

    Counts describe the whole output; ``objects_this_run`` and the ``seconds_*`` describe this
    invocation only (a resumed run redraws just what was left), so
    ``seconds_model / objects_this_run`` is the model time per object.
    """

    out: Path
    images_planned: int = 0
    images_written: int = 0
    originals_written: int = 0
    objects_edited: int = 0
    objects_this_run: int = 0
    annotations_written: int = 0
    per_class: dict[str, dict[str, Any]] = field(default_factory=dict)
    skips: tuple[Skip, ...] = ()
    seconds_total: float = 0.0
    seconds_model: float = 0.0
    seconds_verify: float = 0.0
    seconds_load: float = 0.0
    exported: str | None = None

    def skip_counts(self) -> dict[str, int]:
        """Number of skips per ``kind/reason``."""
        counts: dict[str, int] = {}
        for s in self.skips:
            counts[f"{s.kind}/{s.reason}"] = counts.get(f"{s.kind}/{s.reason}", 0) + 1
        return dict(sorted(counts.items()))


def per_class(
    ds: CocoDataset,
    records: list[ImageRecord],
    skips: list[Skip],
    copies: int = 1,
    targets: Mapping[Any, int] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per class name: objects edited, edited after a verifier retry, rejected, and skipped.

    One unit throughout: objects per output copy. With ``copies`` N, each source object counts
    once in each of its image's N copies: an edit once per copy it was made in, and a skip
    recorded once for all copies (planning's, a dropped annotation, ``occluded``: see
    :func:`~inpaint_aug.pipeline.predict.copies_of`) N times. ``inpaint-aug validate`` counts
    the same way. A class in the output with a target (``--balance``, ``target:``) also gets
    ``target`` and ``reached`` (whether ``edited`` reached it).
    """

    def name(cat: Any) -> str:
        return str(ds.categories_by_id.get(cat, {}).get("name", cat))

    table: dict[str, dict[str, Any]] = {}
    for rec in records:
        if "background" in rec.image.get("inpaint_aug", {}):  # --mode background: images
            table.setdefault("(background)", _row())["edited"] += 1
        for entry in rec.image.get("inpaint_aug", {}).get("edits", []):
            row = table.setdefault(name(entry["category_id"]), _row())
            row["edited"] += 1
            if (entry.get("verify") or {}).get("attempts", 1) > 1:
                row["after_retry"] += 1
    for skip in skips:
        if skip.kind in ("edit", "annotation") and skip.category_id is not None:
            row = table.setdefault(name(skip.category_id), _row())
            if skip.reason == "verify-rejected":
                row["rejected"] += 1
                continue
            row["skipped"][skip.reason] = row["skipped"].get(skip.reason, 0) + copies_of(
                skip, copies
            )
    for cat, target in (targets or {}).items():  # classes in the output (edited or skipped)
        if name(cat) in table:
            table[name(cat)].update(target=target, reached=table[name(cat)]["edited"] >= target)
    return dict(sorted(table.items()))


def _row() -> dict[str, Any]:
    return {"edited": 0, "after_retry": 0, "rejected": 0, "skipped": {}}


def report_dict(
    options: RunOptions, report: RunReport, previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``run.json``: settings, counts, timings and every skip with its reason.

    Args:
        options: the run's options.
        report: what this invocation found and did.
        previous: the ``run.json`` of the invocation that did the work, given when this one had
            nothing left to redraw: its ``seconds`` and ``objects_this_run`` are kept, so a
            finished run rerun keeps its original timings.
    """
    seconds = {
        "total": round(report.seconds_total, 3),
        "model": round(report.seconds_model, 3),
        "verify": round(report.seconds_verify, 3),
        "model_load": round(report.seconds_load, 3),
    }
    this_run = report.objects_this_run
    if previous and isinstance(previous.get("seconds"), dict):
        seconds = previous["seconds"]
        this_run = (previous.get("counts") or {}).get("objects_this_run", report.objects_edited)
    return {
        "version": __version__,
        "settings": options.to_dict(),
        "counts": {
            "images_planned": report.images_planned,
            "images_written": report.images_written,
            "originals_written": report.originals_written,
            "objects_edited": report.objects_edited,
            "objects_this_run": this_run,
            "annotations_written": report.annotations_written,
            "per_class": report.per_class,
            "skipped": report.skip_counts(),
        },
        "seconds": seconds,
        "exported": report.exported,
        "skipped": [asdict(s) for s in report.skips],
    }
