"""The choices of the options: ``str`` Enums, one per option that picks from a fixed set.

The command line lists no choice of its own: typer shows these members as an option's choices,
and :mod:`inpaint_aug.options` parses values into them.

Example:
    >>> Region.parse("--region", "mask")
    <Region.mask: 'mask'>
    >>> str(ExportFormat.yolo_seg)
    'yolo-seg'
    >>> Split.parse("--split", "dev")
    Traceback (most recent call last):
    ...
    inpaint_aug.errors.OptionsError: --split 'dev': expected one of train, val, test
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any

from inpaint_aug.errors import OptionsError

CUDA_INDEX = re.compile(r"cuda:([0-9]+)")


class Choice(str, Enum):
    """A ``str`` Enum whose ``str()`` is its value (typer shows these as choices)."""

    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def parse(cls, option: str, value: Any) -> Choice:
        """The member for ``value`` (a member or its string), or an OptionsError."""
        try:
            return value if isinstance(value, cls) else cls(value)
        except ValueError:
            allowed = ", ".join(m.value for m in cls)
            raise OptionsError(option, value, f"one of {allowed}") from None


class Region(Choice):
    """What the model may repaint: the mask when there is one (else the box), or either."""

    auto = "auto"
    mask = "mask"
    box = "box"


class Device(Choice):
    """Where the model runs; ``auto`` picks cuda, then mps, then cpu.

    ``cuda`` is the current GPU; ``cuda:N`` (GPU N, as PyTorch spells it) is no member: use
    :meth:`name_of`, which accepts every form and returns the plain device string.

    Example:
        >>> Device.name_of("--device", "cuda:01"), Device.name_of("--device", Device.cpu)
        ('cuda:1', 'cpu')
    """

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"

    @classmethod
    def name_of(cls, option: str, value: Any) -> str:
        """The device string for ``value``: a member (or its name), or ``cuda:N``.

        Args:
            option: the flag named in the error (``--device``).
            value: a :class:`Device`, ``"auto"``, ``"cpu"``, ``"mps"``, ``"cuda"`` or
                ``"cuda:N"`` with N a non-negative integer.

        Raises:
            OptionsError: any other value.
        """
        if isinstance(value, cls):
            return value.value
        if isinstance(value, str):
            if value in {m.value for m in cls}:
                return value
            match = CUDA_INDEX.fullmatch(value)
            if match:
                return f"cuda:{int(match.group(1))}"
        allowed = ", ".join(m.value for m in cls)
        raise OptionsError(option, value, f"one of {allowed}, or cuda:N (N: a GPU index, 0, 1...)")


class Dtype(Choice):
    """Model precision; ``auto`` is fp16 on a GPU, fp32 on the CPU."""

    auto = "auto"
    fp16 = "fp16"
    bf16 = "bf16"
    fp32 = "fp32"


class ImageFormat(Choice):
    """Output image encoding; ``auto`` keeps JPEG sources JPEG and writes PNG for the rest."""

    auto = "auto"
    png = "png"
    jpg = "jpg"


class ExportFormat(Choice):
    """What is written besides the COCO dataset (``yolo``/``yolo-seg`` also write OUT/yolo/)."""

    coco = "coco"
    yolo = "yolo"
    yolo_seg = "yolo-seg"


class Split(Choice):
    """The split name a YOLO export is written under."""

    train = "train"
    val = "val"
    test = "test"


class Preset(Choice):
    """``fast`` is the few-step mode: an LCM-LoRA, 4 steps, guidance 1."""

    quality = "quality"
    fast = "fast"


class VerifyMode(Choice):
    """Which verifier checks each redrawn object (``auto``: CLIP, tiny CLIP for tiny-random)."""

    auto = "auto"
    off = "off"
    clip = "clip"
    owlv2 = "owlv2"


class OnReject(Choice):
    """What a rejected redraw becomes: its source pixels (``revert``) or no image (``drop``)."""

    revert = "revert"
    drop = "drop"


class Executor(Choice):
    """Where the batches run: this process's threads (``local``) or a Ray actor pool (``ray``)."""

    local = "local"
    ray = "ray"


class Control(Choice):
    """Shape control: ``canny`` guides the redraw with an edge map of the source crop."""

    none = "none"
    canny = "canny"


class ModelFamily(Choice):
    """The inpainting pipeline family of a model, read from its ``model_index.json``."""

    sd = "sd"
    sdxl = "sdxl"
    flux = "flux"


class Mode(Choice):
    """What is redrawn: each labelled ``object``, or the ``background`` around all of them."""

    object = "object"
    background = "background"
