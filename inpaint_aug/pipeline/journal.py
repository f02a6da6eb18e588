"""An append-only journal of finished images, so a run can resume after any crash.

``OUT/.inpaint_aug/journal.jsonl`` starts with the run's settings fingerprint; each later line
is one finished output image (written to disk before its line is appended) or one skip. A torn
last line (a crash while appending) is ignored. The final ``annotations.json`` is assembled from
the journal only when every job is done. ``OUT/.inpaint_aug/settings.json`` (the run's full
options, paths included) is written before the journal starts, so tools such as ``preview`` can
read an unfinished run.

Example:
    >>> j = Journal.open(Path(tmp), {"seed": 1}, resume=False)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from inpaint_aug.errors import OutputError
from inpaint_aug.files import dumps_json, make_dirs, output_errors, write_json, write_text
from inpaint_aug.options import RunOptions
from inpaint_aug.pipeline.chunks import CHUNK_BATCHES
from inpaint_aug.pipeline.plan import Skip
from inpaint_aug.pipeline.records import ImageRecord

STATE_DIR = ".inpaint_aug"
JOURNAL_FILE = "journal.jsonl"
SETTINGS_FILE = "settings.json"


def fingerprint(options: RunOptions) -> dict[str, Any]:
    """The settings a resumed run must share with the run it continues."""
    digest = {
        k: hashlib.sha256(Path(getattr(options, k)).read_bytes()).hexdigest()[:16]
        for k in ("coco", "prompts")
    }
    plain = options.to_dict()
    return {
        **{k: plain[k] for k in ("model", "image_format", "limit", "batch_size", "dtype")},
        "lcm_lora": options.lcm_lora,
        "chunk_batches": CHUNK_BATCHES,  # with batch_size: which edits share a model call
        "coco_sha256": digest["coco"],
        "prompts_sha256": digest["prompts"],
        **{f"plan.{k}": v for k, v in plain["plan"].items()},
        **{f"verify.{k}": v for k, v in plain["verify"].items()},
    }


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
    def open(
        cls,
        out: Path,
        fingerprint: dict[str, Any],
        resume: bool,
        settings: dict[str, Any] | None = None,
    ) -> Journal:
        """Start a journal, or reopen one after checking its settings match ``fingerprint``.

        Args:
            out: the output folder.
            fingerprint: the settings a continued run must share with the journal's.
            resume: continue a journal found in ``out`` (``False`` starts a new one).
            settings: the run's full options, written to ``settings.json`` once the
                fingerprint is known to match (before a new journal's first line).

        Raises:
            OutputError: settings differ from the journal's (the message names them).
        """
        path = out / STATE_DIR / JOURNAL_FILE
        lines = _read_lines(path) if resume and path.is_file() else []
        if lines and "fingerprint" in lines[0]:
            _check_fingerprint(out, lines[0]["fingerprint"], fingerprint)
        if settings is not None:
            make_dirs(path.parent)
            write_json(path.parent / SETTINGS_FILE, settings)
        if not lines or "fingerprint" not in lines[0]:  # new, or killed before its first line
            _start(path, fingerprint)
            return cls(path, {}, [], set())
        records, skips, ended = _entries(lines[1:])
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


def _check_fingerprint(out: Path, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Refuse to continue a journal whose settings differ, naming each setting.

    Raises:
        OutputError: a setting differs (one line: was, now).
    """
    diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if diff:
        shown = "; ".join(f"{k}: was {old.get(k)!r}, now {new.get(k)!r}" for k in diff)
        raise OutputError(
            f"{out}: cannot resume, settings differ from the journal's ({shown})"
            "; rerun with the same settings or choose another --out"
        )


def _entries(lines: list[dict[str, Any]]) -> tuple[dict[int, ImageRecord], list[Skip], set[int]]:
    """The records, skips and ended job numbers of the journal lines after the fingerprint."""
    records = {r.out_image_id: r for r in (_record(x) for x in lines if "record" in x)}
    skips = [Skip(**x["skip"]) for x in lines if "skip" in x]
    ended = set(records) | {x["ended"] for x in lines if "ended" in x}
    return records, skips, ended


def _start(path: Path, fingerprint: dict[str, Any]) -> None:
    """Create the journal with its fingerprint line, atomically (never a half-written start)."""
    make_dirs(path.parent)
    write_text(path, dumps_json({"fingerprint": fingerprint}) + "\n")


def _read_lines(path: Path, repair: bool = True) -> list[dict[str, Any]]:
    """Parse the journal, ignoring a torn last line (a kill while appending).

    Args:
        path: the journal file.
        repair: also cut the torn line off the file, so that later appends start on a fresh
            line (only the run holding the output folder may do so).
    """
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if repair and end < len(data):
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


def has_journal(out: Path) -> bool:
    """Whether ``out`` holds a started journal (its settings fingerprint line was written)."""
    try:
        with open(out / STATE_DIR / JOURNAL_FILE, "rb") as fh:
            first = fh.readline()
    except OSError:
        return False
    try:
        return first.endswith(b"\n") and "fingerprint" in json.loads(first)
    except (ValueError, TypeError):
        return False


def read_records(out: Path) -> list[ImageRecord]:
    """The finished images a journal lists so far, read without changing the file.

    Safe while a run is appending (a torn last line is ignored); ``[]`` without a journal.
    """
    path = out / STATE_DIR / JOURNAL_FILE
    if not path.is_file():
        return []
    lines = _read_lines(path, repair=False)
    if not lines or "fingerprint" not in lines[0]:
        return []
    return list(_entries(lines[1:])[0].values())


def check_output_folder(out: Path) -> None:
    """Refuse an output folder that is a file, or holds something that is not an inpaint-aug run.

    An earlier run's folder (``.inpaint_aug/`` inside) is accepted: the journal there is continued
    when its settings match (see :meth:`Journal.open`), whether or not ``--resume`` was given.

    Raises:
        OutputError: ``out`` is a file, or a non-empty folder without ``.inpaint_aug/``.
    """
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: --out exists and is not a folder")
    if not out.exists() or (out / STATE_DIR).is_dir() or _empty(out):
        return
    raise OutputError(
        f"{out}: the output folder is not empty and holds no inpaint-aug run; "
        "choose another --out (nothing is ever deleted)"
    )


def _empty(out: Path) -> bool:
    """Nothing in OUT but, at most, an empty ``images/`` (a run killed as it started)."""
    entries = list(out.iterdir())
    return all(e.name == "images" and e.is_dir() and not any(e.iterdir()) for e in entries)
