"""Draw preview items: a contact sheet PNG or a static HTML page, and the tinted region view.

Pure drawing with Pillow and cv2 over :class:`PreviewItem` values; each
item is one row of three crops (``before | region | after``) with its label, prompt and seed.

Example:
    >>> from inpaint_aug.inspect.preview import items_from_run
    >>> items = items_from_run(Path("augmented"), n=6)  # doctest: +SKIP
    >>> contact_sheet(items).save("augmented/preview.png")  # doctest: +SKIP
    >>> write_html(items, Path("augmented/preview.html"))  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html as htmllib
import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from inpaint_aug.files import write_text

TINT = (255, 40, 150)  # the editable region's colour in the region view
COLUMNS = ("before", "region", "after")
DARK, GREY, RULE = (20, 20, 20), (90, 90, 90), (205, 205, 205)


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
    write_text(Path(path), page + "\n")
