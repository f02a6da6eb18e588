"""Deterministic generator of small synthetic COCO scene datasets.

Shaded circles, squares and triangles on smooth textured backgrounds, drawn in painter's order;
each annotation describes only the *visible* pixels of its object, as real COCO data does.

Example:
    >>> from inpaint_aug.demo.synthetic import make_shapes_dataset
    >>> make_shapes_dataset("/tmp/shapes", n_images=6).name
    'annotations.json'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

CIRCLE, SQUARE, TRIANGLE = 1, 3, 7
_NAMES = {CIRCLE: "circle", SQUARE: "square", TRIANGLE: "triangle"}
CATEGORIES = [{"id": i, "name": name, "supercategory": "shape"} for i, name in _NAMES.items()]
LICENSE = {"id": 1, "name": "CC0 1.0", "url": "https://creativecommons.org/publicdomain/zero/1.0/"}
INFO = {"description": "Synthetic shapes scenes (inpaint_aug.synthetic)", "version": "1.0"}
MIN_OBJECT_PX = 24
MIN_SIZE, MAX_SIZE = 96, 4096
#: Roles of the first images when ``variety=True``; every later image is "plain".
ROLES = ("attributes", "split", "rle", "bbox_only", "empty")
_MIN_COUNT = {"attributes": 1, "rle": 1, "bbox_only": 2}
#: (role, index of the object in painter's order) -> segmentation form; default "polygon".
_FORMS = {("rle", 0): "rle_list", ("rle", 1): "rle_str"}
_FORMS |= {("bbox_only", 0): "bbox_empty", ("bbox_only", 1): "bbox_absent"}
_VIVID, _MUTED = ((150, 256), (150, 256)), ((10, 90), (90, 210))  # HSV (saturation, value)
_TRIES = 60


@dataclass
class _Obj:
    category_id: int
    drawn: np.ndarray  # uint8 0/1 mask of the shape as drawn, clipped to the image
    colour: np.ndarray  # BGR float32
    crowd: bool = False

    def __post_init__(self) -> None:
        self.area = int(cv2.countNonZero(self.drawn))
        self.box = cv2.boundingRect(self.drawn)  # x, y, w, h of the drawn, in-image shape


def _colour(rng: np.random.Generator, sat: tuple[int, int], val: tuple[int, int]) -> np.ndarray:
    hsv = np.array([[[rng.integers(0, 180), rng.integers(*sat), rng.integers(*val)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Colour gradient plus two octaves of noise, built on a coarse grid and upsampled once."""
    gw, gh = 16, max(2, round(16 * h / w))
    c0, c1 = _colour(rng, *_MUTED), _colour(rng, *_MUTED)
    theta = rng.uniform(0.0, 2.0 * np.pi)
    ramp = np.add.outer(np.linspace(0, np.sin(theta), gh), np.linspace(0, np.cos(theta), gw))
    ramp = ((ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)).astype(np.float32)[..., None]
    coarse = rng.normal(0.0, 22.0, (max(2, gh // 4), 4, 3)).astype(np.float32)
    grid = c0 + (c1 - c0) * ramp + cv2.resize(coarse, (gw, gh), interpolation=cv2.INTER_CUBIC)
    grid += rng.normal(0.0, 8.0, (gh, gw, 1)).astype(np.float32)  # luminance texture
    grid = np.clip(grid, 0, 255).astype(np.uint8)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def _shape(rng: np.random.Generator, cat: int, pts: np.ndarray, w: int, h: int) -> _Obj:
    drawn = np.zeros((h, w), np.uint8)
    cv2.fillPoly(drawn, [np.round(pts).astype(np.int32)], 1)
    return _Obj(cat, drawn, _colour(rng, *_VIVID))


def _random_object(rng: np.random.Generator, w: int, h: int, rare: int | None) -> _Obj | None:
    """A random shape at least MIN_OBJECT_PX wide and tall, or None if mostly outside the image."""
    cat = int(rng.choice(list(_NAMES), p=rare and [(c != rare) * 7 / 17 + 1 / 17 for c in _NAMES]))
    n, jitter = {CIRCLE: (72, 0.0), SQUARE: (4, 0.0), TRIANGLE: (3, 0.3)}[cat]
    lo = max(17.0, 0.06 * min(w, h))  # circumradius; a square's side is r * sqrt(2) >= 24
    r, cx, cy = rng.uniform(lo, max(lo + 1, 0.16 * min(w, h))), rng.uniform(0, w), rng.uniform(0, h)
    ang = np.arange(n) * 2 * np.pi / n + rng.uniform(0, 2 * np.pi) + rng.uniform(-jitter, jitter, n)
    rad = r * (1 + rng.uniform(-jitter / 3, jitter, n))
    pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], axis=1)
    obj = _shape(rng, cat, pts, w, h)
    full_area = cv2.contourArea(pts.astype(np.float32))
    if np.ptp(pts, axis=0).min() < MIN_OBJECT_PX or obj.area < 0.5 * full_area:
        return None
    return obj


def _split_pair(rng: np.random.Generator, w: int, h: int) -> list[_Obj]:
    """A wide triangle and a square drawn over its middle, which cuts it into two parts."""
    q, a = max(32.0, 0.3 * min(w, h)), 0.38 * w
    cx, cy = w / 2 + rng.uniform(-0.05, 0.05) * w, h / 2 + rng.uniform(-0.1, 0.1) * h
    tri = np.array([[cx - a, cy - 0.35 * q], [cx + a, cy - 0.35 * q], [cx, cy + 0.4 * q]])
    square = cv2.boxPoints(((cx, cy), (q, q), rng.uniform(-8, 8)))
    return [_shape(rng, TRIANGLE, tri, w, h), _shape(rng, SQUARE, square, w, h)]


def _crowd(rng: np.random.Generator, w: int, h: int) -> _Obj:
    """A cluster of small circles annotated as one crowd region (iscrowd=1)."""
    drawn = np.zeros((h, w), np.uint8)
    bw, bh = max(40.0, 0.25 * w), max(32.0, 0.2 * h)
    x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
    for _ in range(int(rng.integers(6, 11))):
        r = int(rng.integers(5, 10))
        centre = (round(x0 + rng.uniform(r, bw - r)), round(y0 + rng.uniform(r, bh - r)))
        cv2.circle(drawn, centre, r, 1, -1)
    return _Obj(CIRCLE, drawn, _colour(rng, *_VIVID), crowd=True)


def _visible_masks(objs: list[_Obj]) -> list[np.ndarray]:
    """Visible part of each object: later objects occlude earlier ones (painter's order)."""
    covered, out = 0, []
    for obj in reversed(objs):
        out.append((obj.drawn > covered).astype(np.uint8))
        covered = covered | obj.drawn
    return out[::-1]


def _visible_ok(vis: np.ndarray, obj: _Obj) -> bool:
    """True if a visible mask is big enough, in at most two solid parts, and without holes."""
    x, y, bw, bh = obj.box
    vis = vis[y : y + bh, x : x + bw]
    if cv2.countNonZero(vis) < max(120, 0.3 * obj.area):
        return False
    if obj.crowd:
        return True
    contours, hierarchy = cv2.findContours(vis, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if len(contours) > 2 or (hierarchy[0][:, 3] >= 0).any():  # more than two parts, or a hole
        return False
    return all(min(cv2.boundingRect(c)[2:]) >= 4 and cv2.contourArea(c) >= 30 for c in contours)


def _paint(img: np.ndarray, obj: _Obj) -> None:
    """Fill the object's drawn mask with its colour, shaded light-to-dark along its diagonal."""
    x, y, bw, bh = obj.box
    ys, xs = np.mgrid[0:bh, 0:bw].astype(np.float32)
    shade = 1.25 - 0.3 * (xs / max(bw - 1, 1) + ys / max(bh - 1, 1))
    patch = np.clip(obj.colour * shade[..., None], 0, 255).astype(np.uint8)
    region, inside = img[y : y + bh, x : x + bw], obj.drawn[y : y + bh, x : x + bw].astype(bool)
    region[inside] = patch[inside]


def _scene(rng: np.random.Generator, role: str, w: int, h: int, counts: tuple, rare=None) -> tuple:
    """Render one image; return (BGR image, objects in painter's order, visible masks).

    Random objects go between head and tail; a candidate that leaves any object hidden is rejected.
    """
    img = _background(rng, w, h)
    if role == "empty":
        return img, [], []
    count = max(int(rng.integers(counts[0], counts[1] + 1)), _MIN_COUNT.get(role, 0))
    head = [_crowd(rng, w, h)] if role == "rle" else []
    tail = _split_pair(rng, w, h) if role == "split" else []
    placed: list[_Obj] = []
    for _ in range(count * _TRIES):
        if len(placed) == count:
            break
        cand = _random_object(rng, w, h, rare)
        order = [*head, *placed, cand, *tail]
        masks = _visible_masks(order) if cand else []
        if cand and all(_visible_ok(v, o) for v, o in zip(masks, order, strict=True)):
            placed.append(cand)
    objs = [*head, *placed, *tail]
    for obj in objs:
        _paint(img, obj)
    return img, objs, _visible_masks(objs)


def _uncompressed_rle(mask: np.ndarray) -> list[int]:
    """COCO uncompressed RLE counts: alternating 0/1 run lengths in column-major order."""
    flat = mask.ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate([[0], change, [flat.size]])).tolist()
    return [0, *counts] if flat[0] else counts


def _polygons(vis: np.ndarray) -> list[list[int]]:
    """Pixel-edge outlines of the visible parts; pycocotools rasterises them back to ``vis``.

    Contours of the 2x upsampled mask lie on 2j (left/top) or 2j+1; (X + 1) // 2 is the corner.
    """
    up = cv2.resize(vis, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(up, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = [cv2.approxPolyDP((c + 1) // 2, 0.1, True).reshape(-1).tolist() for c in contours]
    return [p for p in polys if len(p) >= 6]


def _annotation(obj: _Obj, vis: np.ndarray, role: str, k: int, ann_id: int, image_id: int) -> dict:
    """COCO annotation of the ``k``-th object (painter's order) of an image with this role."""
    (h, w), form = vis.shape, _FORMS.get((role, k), "polygon")
    ann: dict = {"id": ann_id, "image_id": image_id, "category_id": obj.category_id}
    if form == "polygon":
        ann["segmentation"] = _polygons(vis)
    elif form == "rle_str":
        counts = mask_utils.encode(np.asfortranarray(vis))["counts"].decode("ascii")
        ann["segmentation"] = {"size": [h, w], "counts": counts}
    elif form == "rle_list":
        ann["segmentation"] = {"size": [h, w], "counts": _uncompressed_rle(vis)}
    elif form == "bbox_empty":
        ann["segmentation"] = []
    bbox_only = form.startswith("bbox")
    x, y, bw, bh = obj.box if bbox_only else cv2.boundingRect(vis)
    ann["area"] = float(bw * bh if bbox_only else cv2.countNonZero(vis))
    ann["bbox"] = [float(x), float(y), float(bw), float(bh)]
    ann["iscrowd"] = int(obj.crowd)
    if role == "attributes":  # an extra key that loaders must carry over untouched
        ann["attributes"] = {"occluded": bool(cv2.countNonZero(vis) < obj.area)}
    return ann


def _is_int(value: object, lo: int, hi: int) -> bool:
    return type(value) is not bool and isinstance(value, (int, np.integer)) and lo <= value <= hi


def _validate(n: int, size: tuple, seed: int, fmt: str, counts: tuple, flags: tuple) -> None:
    """Raise ValueError naming the bad argument, its value and what was expected."""
    sz, lo_hi = (tuple(v) if isinstance(v, (tuple, list)) else () for v in (size, counts))
    size_ok = len(sz) == 2 and all(_is_int(v, MIN_SIZE, MAX_SIZE) for v in sz)
    rare_ok = flags[1] is None or (_is_int(flags[1], 1, 7) and flags[1] in _NAMES)
    counts_ok = len(lo_hi) == 2 and all(_is_int(v, 0, 64) for v in lo_hi) and lo_hi[0] <= lo_hi[1]
    checks = [
        ("n_images", n, _is_int(n, 1, 100_000), "an int in [1, 100000]"),
        ("size", size, size_ok, f"(width, height), ints in [{MIN_SIZE}, {MAX_SIZE}]"),
        ("seed", seed, _is_int(seed, 0, 2**63), "a non-negative int"),
        ("image_format", fmt, fmt in ("png", "jpg"), "'png' or 'jpg'"),
        ("objects_per_image", counts, counts_ok, "(lo, hi), ints with 0 <= lo <= hi <= 64"),
        ("variety", flags[0], isinstance(flags[0], bool), "a bool"),
        ("rare", flags[1], rare_ok, f"None or one of {sorted(_NAMES)}"),
    ]
    for name, value, ok, expected in checks:
        if not ok:
            raise ValueError(f"{name} must be {expected}, got {value!r}")


def _dump_json(data: dict) -> str:
    """Compact UTF-8 JSON with one image / annotation / category per line (diff-friendly)."""
    dump, out = json.JSONEncoder(ensure_ascii=False).encode, []
    for key, value in data.items():
        rows = [dump(v) for v in value] if isinstance(value, list) else []
        body = "[\n  " + ",\n  ".join(rows) + "\n]" if rows else dump(value)
        out.append(f"{dump(key)}: {body}")
    return "{\n" + ",\n".join(out) + "\n}\n"


def make_shapes_dataset(
    out_dir: Path | str,
    n_images: int = 6,
    size: tuple[int, int] = (320, 240),
    seed: int = 0,
    image_format: str = "png",
    objects_per_image: tuple[int, int] = (2, 5),
    variety: bool = True,
    rare: int | None = None,
) -> Path:
    """Write OUT_DIR/annotations.json and OUT_DIR/images/*.{png|jpg}; return the JSON path.

    Same arguments give byte-identical JSON and identical pixels. ``file_name`` is relative to
    ``images/``. With ``variety=True`` images 0-4 have fixed roles (all need ``n_images >= 5``):
    0 polygons plus an ``attributes`` key; 1 a triangle cut in two by a square (two polygons);
    2 a crowd (uncompressed RLE, list counts, iscrowd=1) and a compressed RLE (string counts);
    3 named ``"scène 003.<ext>"``, one ``"segmentation": []`` and one without the key (bbox of the
    drawn shape, area = bbox area); 4 no annotations. ``variety=False``: polygons only.

    Args:
        out_dir: Output folder, created if missing.
        n_images: Number of images, 1 to 100000.
        size: (width, height) in pixels, each 96 to 4096.
        seed: Non-negative random seed.
        image_format: "png" or "jpg" (JPEG quality 95).
        objects_per_image: Inclusive (lo, hi) number of random objects per image, hi <= 64.
        variety: Cover every COCO segmentation form (see above).
        rare: A category id (e.g. ``TRIANGLE``) drawn 8 times less often than each other one.

    Raises:
        ValueError: If an argument has the wrong type or is out of range.

    Example:
        >>> path = make_shapes_dataset("/tmp/bench", n_images=100, variety=False)
    """
    _validate(n_images, size, seed, image_format, objects_per_image, (variety, rare))
    (w, h), out, counts = (int(size[0]), int(size[1])), Path(out_dir), objects_per_image
    (out / "images").mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if image_format == "jpg" else []
    images, annotations = [], []
    for i in range(n_images):
        role = ROLES[i] if variety and i < len(ROLES) else "plain"
        img, objs, masks = _scene(np.random.default_rng([seed, i]), role, w, h, counts, rare)
        name = f"{'scène ' if role == 'bbox_only' else 'scene_'}{i:03d}.{image_format}"
        (out / "images" / name).write_bytes(cv2.imencode(f".{image_format}", img, params)[1])
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h, "license": 1})
        for k, (obj, vis) in enumerate(zip(objs, masks, strict=True)):
            annotations.append(_annotation(obj, vis, role, k, len(annotations) + 1, i + 1))
    generator = {"name": "inpaint_aug.synthetic", "seed": seed}
    data = {"info": INFO, "licenses": [LICENSE], "images": images, "annotations": annotations}
    data |= {"categories": CATEGORIES, "x_generator": generator}
    (json_path := out / "annotations.json").write_text(_dump_json(data), encoding="utf-8")
    return json_path
