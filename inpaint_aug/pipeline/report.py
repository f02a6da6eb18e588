"""The run report: counts, skips with reasons, timings; saved as ``OUT/run.json``.

Built once, at the end, from what the stages returned.

Example:
    >>> RunReport(Path("o"), skips=(Skip("edit", "crowd", ""),)).skip_counts()
    {'edit/crowd': 1}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from inpaint_aug.dataset.coco import CocoDataset
from inpaint_aug.options import RunOptions
from inpaint_aug.pipeline.plan import Skip
from inpaint_aug.pipeline.records import ImageRecord
from inpaint_aug.version import __version__


@dataclass(frozen=True)
class RunReport:
    """What a run did: counts, skips with reasons, timings."""

    out: Path
    images_planned: int = 0
    images_written: int = 0
    originals_written: int = 0
    objects_edited: int = 0
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
    ds: CocoDataset, records: list[ImageRecord], skips: list[Skip]
) -> dict[str, dict[str, Any]]:
    """Per class name: objects edited, edited after a verifier retry, rejected, and skipped.

    Edits count per output copy; a skip at planning counts once per source object.
    """

    def name(cat: Any) -> str:
        return str(ds.categories_by_id.get(cat, {}).get("name", cat))

    table: dict[str, dict[str, Any]] = {}
    for rec in records:
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
            row["skipped"][skip.reason] = row["skipped"].get(skip.reason, 0) + 1
    return dict(sorted(table.items()))


def _row() -> dict[str, Any]:
    return {"edited": 0, "after_retry": 0, "rejected": 0, "skipped": {}}


def report_dict(options: RunOptions, report: RunReport) -> dict[str, Any]:
    """``run.json``: settings, counts, timings and every skip with its reason."""
    return {
        "version": __version__,
        "settings": options.to_dict(),
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
            "verify": round(report.seconds_verify, 3),
            "model_load": round(report.seconds_load, 3),
        },
        "exported": report.exported,
        "skipped": [asdict(s) for s in report.skips],
    }
