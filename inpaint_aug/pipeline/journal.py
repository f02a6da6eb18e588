"""An append-only journal of finished images, so a run can resume after any crash.

``OUT/.inpaint_aug/journal.jsonl`` starts with the run's settings fingerprint; each later line
is one finished output image (written to disk before its line is appended) or one skip. A torn
last line (a crash while appending) is ignored. The final ``annotations.json`` is assembled from
the journal only when every job is done.

Example:
    >>> j = Journal.open(Path(tmp), {"seed": 1}, resume=False)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from inpaint_aug.errors import OutputError
from inpaint_aug.files import dumps_json, make_dirs, output_errors, write_text
from inpaint_aug.pipeline.plan import Skip
from inpaint_aug.pipeline.records import ImageRecord

STATE_DIR = ".inpaint_aug"


class Journal:
    """Finished records and skips of a run, backed by a JSONL file in the output folder.

    Build one with :meth:`Journal.open`; the constructor takes what was read back.

    Args:
        path: the journal file, opened for appending.
        records: finished output images by output image id.
        skips: skips recorded so far.
        ended: job numbers (output image ids) that need no more work.
    """

    def __init__(
        self, path: Path, records: dict[int, ImageRecord], skips: list[Skip], ended: set[int]
    ) -> None:
        self.path = path
        self.records = records
        self.skips = skips
        self.ended = ended  # job numbers (output image ids) that need no more work
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    @classmethod
    def open(cls, out: Path, fingerprint: dict[str, Any], resume: bool) -> Journal:
        """Start a journal, or reopen one after checking its settings match ``fingerprint``.

        Raises:
            OutputError: settings differ from the journal's (the message names them).
        """
        path = out / STATE_DIR / "journal.jsonl"
        lines = _read_lines(path) if resume and path.is_file() else []
        if not lines or "fingerprint" not in lines[0]:  # new, or killed before its first line
            _start(path, fingerprint)
            return cls(path, {}, [], set())
        old = lines[0].get("fingerprint", {}) if lines else {}
        diff = sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
        if diff:
            shown = "; ".join(f"{k}: was {old.get(k)!r}, now {fingerprint.get(k)!r}" for k in diff)
            raise OutputError(
                f"{out}: cannot resume, settings differ from the journal's ({shown})"
                "; rerun with the same settings or choose another --out"
            )
        records = {r.out_image_id: r for r in (_record(x) for x in lines[1:] if "record" in x)}
        skips = [Skip(**x["skip"]) for x in lines[1:] if "skip" in x]
        ended = set(records) | {x["ended"] for x in lines[1:] if "ended" in x}
        return cls(path, records, skips, ended)

    def add_record(self, record: ImageRecord) -> None:
        """Append a finished image (its file must already be on disk)."""
        self.records[record.out_image_id] = record
        self.ended.add(record.out_image_id)
        self._write({"record": asdict(record)})

    def end_without_record(self, job_number: int) -> None:
        """Mark a job finished with nothing written (its image was skipped)."""
        self.ended.add(job_number)
        self._write({"ended": job_number})

    def add_skip(self, skip: Skip) -> None:
        """Append a skip found while running (not one found by planning)."""
        self.skips.append(skip)
        self._write({"skip": asdict(skip)})

    def _write(self, entry: dict[str, Any]) -> None:
        """Append one entry; a full disk or a read-only folder is one clear error."""
        with output_errors(self.path):
            self._append(entry)

    def _append(self, entry: dict[str, Any]) -> None:
        self._fh.write(dumps_json(entry) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Close the file."""
        self._fh.close()


def _start(path: Path, fingerprint: dict[str, Any]) -> None:
    """Create the journal with its fingerprint line, atomically (never a half-written start)."""
    make_dirs(path.parent)
    write_text(path, dumps_json({"fingerprint": fingerprint}) + "\n")


def _read_lines(path: Path) -> list[dict[str, Any]]:
    """Parse the journal, cutting a torn last line off the file.

    A torn last line (a kill while appending) is removed so that later appends start on a
    fresh line.
    """
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(end)
    entries = []
    for line in data[:end].splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return entries


def _record(entry: dict[str, Any]) -> ImageRecord:
    data = entry["record"]
    return ImageRecord(
        out_image_id=data["out_image_id"],
        image=data["image"],
        annotations=tuple(data["annotations"]),
        edited_ann_indexes=tuple(data["edited_ann_indexes"]),
        rejected_ann_indexes=tuple(data.get("rejected_ann_indexes", ())),
    )


def check_output_folder(out: Path, resume: bool) -> None:
    """Refuse a non-empty output folder unless resuming a run that lives there."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: --out exists and is not a folder")
    if not out.exists() or _empty(out):
        return
    if not (out / STATE_DIR).is_dir():
        raise OutputError(
            f"{out}: the output folder is not empty and holds no inpaint-aug run; "
            "choose another --out (nothing is ever deleted)"
        )
    if not resume:
        raise OutputError(
            f"{out}: holds an earlier run; pass --resume to continue it, or choose another --out"
        )


def _empty(out: Path) -> bool:
    """Nothing in OUT but, at most, an empty ``images/`` (a run killed as it started)."""
    entries = list(out.iterdir())
    return all(e.name == "images" and e.is_dir() and not any(e.iterdir()) for e in entries)
