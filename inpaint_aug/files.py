"""Every file written under OUT goes through here.

* Atomic writes of bytes, text and JSON: a temporary file in the same folder, fsync, rename, so
  a reader (or a resumed run) never sees half a file.
* The "inside OUT" guard: nothing is written outside the output folder, whatever a source
  ``file_name`` says.
* One naming rule for every file written under OUT (edited copies, originals, YOLO images and
  labels): the source name's last component, cleaned, plus a tag; collisions (equal stems in
  different folders, duplicate names, names equal but for case) get the image id, then a count.
* ``OSError`` becomes one :class:`~inpaint_aug.errors.OutputError` naming the file.
* Strict JSON (RFC 8259): a non-finite float (``NaN``, ``Infinity``) is written as ``null``.

Example:
    >>> safe_stem("../../etc/pass wd.jpg")
    'pass_wd'
    >>> taken = set()
    >>> [unique_name("images", n, "_c0", "png", i, taken)
    ...  for i, n in [(1, "a/x.jpg"), (2, "b/x.jpg")]]
    ['images/x_c0.png', 'images/x_c0_id2.png']
    >>> dumps_json({"area": float("nan")})
    '{"area": null}'
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from inpaint_aug.errors import OutputError


def inside(out: Path | str, relative: str) -> Path:
    """Resolve ``relative`` under ``out`` and refuse anything that would land outside it.

    Raises:
        OutputError: the path would leave the output folder.
    """
    root = Path(out).resolve()
    target = (root / relative).resolve()
    if root not in target.parents:
        raise OutputError(f"{relative}: refusing to write outside the output folder {out}")
    return target


@contextmanager
def output_errors(path: Path | str) -> Iterator[None]:
    """Turn an ``OSError`` (a full disk, a read-only folder) into one clear ``OutputError``."""
    try:
        yield
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from None


def make_dirs(path: Path) -> None:
    """Create a folder and its parents (an existing one is fine).

    Raises:
        OutputError: it cannot be created.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{path}: cannot create the folder ({err.strerror or err})") from None


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary name in the same folder, fsync, rename).

    Raises:
        OutputError: the file cannot be written; no temporary file is left behind.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    with output_errors(path):
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)  # our own temporary file
            raise


def write_text(path: Path, text: str) -> None:
    """Write UTF-8 text atomically; see :func:`write_bytes`."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, data: Any) -> None:
    """Write strict JSON atomically; see :func:`dumps_json` and :func:`write_bytes`."""
    write_bytes(path, dumps_json(data).encode("utf-8"))


def copy_file(src: Path, dst: Path) -> None:
    """Copy a file's bytes to ``dst`` atomically (never a link, so OUT stands on its own)."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    with output_errors(dst):
        try:
            shutil.copyfile(src, tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, dst)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise


def dumps_json(data: Any) -> str:
    """JSON text that every parser accepts: non-finite floats become ``null``.

    Python's ``json`` writes ``NaN`` and ``Infinity``, which JavaScript, Go and Rust parsers
    reject; such values can arrive in carried-over extra keys of a source dataset.
    """
    try:
        return json.dumps(data, ensure_ascii=False, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(data), ensure_ascii=False, allow_nan=False)


def _finite(value: Any) -> Any:
    """A copy of ``value`` with every non-finite float replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def safe_stem(file_name: str) -> str:
    r"""A file-system-safe stem from the last component of a source ``file_name``.

    >>> safe_stem("C:\\data\\scène 3.PNG")
    'scène_3'
    """
    last = PureWindowsPath(PurePosixPath(str(file_name)).name).name
    stem = unicodedata.normalize("NFC", last.rsplit(".", 1)[0] if "." in last else last)
    stem = re.sub(r"[^\w\-.]+", "_", stem).strip("._")
    # Cap by bytes, not characters: file names are limited to 255 bytes, and the output name
    # adds a tag, an id and a temporary prefix.
    stem = stem.encode("utf-8")[:100].decode("utf-8", errors="ignore")
    return stem or "image"


def unique_name(
    folder: str, source_name: str, tag: str, ext: str, image_id: Any, taken: set[str]
) -> str:
    """The one naming rule: ``<folder>/<stem><tag>.<ext>``, unique among ``taken``.

    Stems are compared case-insensitively and without the extension (a YOLO label file shares
    its image's stem). A collision adds ``_id<image id>``, then ``_2``, ``_3``... The chosen
    name is added to ``taken``.

    Args:
        folder: the folder under OUT (``""`` for none).
        source_name: the source image's ``file_name``; only its last component is used.
        tag: what this file is, e.g. ``"_c0"`` for copy 0, ``"_orig"`` for an original.
        ext: the extension without a dot.
        image_id: the source image id, to tell equal stems apart.
        taken: names already given in this folder (lowercase, folder included); updated.
    """
    base = f"{safe_stem(source_name)}{tag}"
    candidate = base
    if _key(folder, candidate) in taken:
        candidate = f"{base}_id{safe_stem(str(image_id))}"
    first, n = candidate, 2
    while _key(folder, candidate) in taken:
        candidate, n = f"{first}_{n}", n + 1
    taken.add(_key(folder, candidate))
    name = f"{candidate}.{ext}" if ext else candidate
    return f"{folder}/{name}" if folder else name


def _key(folder: str, stem: str) -> str:
    return f"{folder}/{stem}".lower()
