r"""Image files: read them upright in RGB, and encode output images.

EXIF orientation is applied; palette, gray, RGBA, CMYK and 16-bit images become 8-bit RGB.
Encoding returns bytes, which :mod:`inpaint_aug.files` writes atomically.

Example:
    >>> import numpy as np
    >>> encode_image(np.zeros((2, 2, 3), np.uint8), ImageFormat.png)[:4]
    b'\x89PNG'
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from inpaint_aug.choices import ImageFormat
from inpaint_aug.errors import ItemError


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """Convert any PIL image (palette, gray, RGBA, CMYK, 16-bit) to an ``(H, W, 3)`` uint8 array."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        gray = np.clip(np.round(arr * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if img.mode == "F":
        gray = np.clip(np.round(np.asarray(img)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if img.mode in ("P", "PA") and "transparency" in img.info:
        img = img.convert("RGBA")
    return np.array(img.convert("RGB"), dtype=np.uint8)


def load_image(path: Path, width: int | None = None, height: int | None = None) -> np.ndarray:
    """Read an image upright (EXIF orientation applied) as RGB uint8.

    Raises:
        ItemError: ``image-missing``, ``image-unreadable`` or ``size-mismatch`` (the upright
            size differs from the JSON's ``width``/``height``).
    """
    if not path.is_file():
        raise ItemError("image-missing", f"{path} does not exist")
    try:
        with Image.open(path) as img:
            img.load()
            arr = to_rgb_array(ImageOps.exif_transpose(img))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise ItemError("image-unreadable", f"{path}: {err}") from None
    except Image.DecompressionBombError as err:
        raise ItemError("image-too-large", f"{path}: {err}") from None
    if (width, height) != (None, None) and arr.shape[:2] != (height, width):
        raise ItemError(
            "size-mismatch",
            f"{path} is {arr.shape[1]}x{arr.shape[0]} (upright), the JSON says {width}x{height}",
        )
    return arr


def output_format(source_name: str, choice: ImageFormat | str) -> ImageFormat:
    """The format of an output image: ``auto`` keeps JPEG as JPEG and writes PNG for the rest.

    >>> output_format("a/b.JPEG", "auto").value
    'jpg'
    """
    choice = ImageFormat.parse("--image-format", choice)
    if choice is not ImageFormat.auto:
        return choice
    jpeg = Path(source_name).suffix.lower() in (".jpg", ".jpeg")
    return ImageFormat.jpg if jpeg else ImageFormat.png


def encode_image(pixels: np.ndarray, fmt: ImageFormat | str) -> bytes:
    """Encode RGB pixels as PNG (fast, lossless) or JPEG (quality 95)."""
    fmt = ImageFormat.parse("--image-format", fmt)
    buf = io.BytesIO()
    if fmt is ImageFormat.jpg:
        Image.fromarray(pixels).save(buf, format="JPEG", quality=95)
    elif fmt is ImageFormat.png:
        Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    else:
        raise ValueError(f"encode_image: {fmt.value!r} is not a concrete format (png or jpg)")
    return buf.getvalue()
