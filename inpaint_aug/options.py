"""Every option of a run: types, ranges, choices, cross-checks and presets, checked when built.

The options objects refuse a bad value when they are constructed, before any file is read or a
model is loaded, with one :class:`~inpaint_aug.errors.OptionsError` that names the option, the
value and what is allowed. The command line builds them from its flags and lists no choice of
its own: the ``str`` Enums of :mod:`inpaint_aug.choices` are its choices.

Example:
    >>> PlanSettings(steps=4, strength=0.2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    inpaint_aug.errors.OptionsError: --steps 4 with --strength 0.2: ... = 0 denoising steps; ...
    >>> RunOptions("a.json", "p.yaml", preset="fast").plan.steps
    4
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from enum import Enum
from pathlib import Path
from typing import Any

from inpaint_aug.checks import check_int, check_number, check_schedule, flag
from inpaint_aug.choices import (
    Control,
    Device,
    Dtype,
    Executor,
    ExportFormat,
    ImageFormat,
    Mode,
    Preset,
    Region,
    Split,
    VerifyMode,
)
from inpaint_aug.errors import OptionsError
from inpaint_aug.model_family import (  # noqa: F401 - re-exported: options holds every default
    DEFAULT_CONTROLNET,
    DEFAULT_CONTROLNET_SDXL,
    LCM_LORA,
    controlnet_for,
    follow_model,
    lcm_lora_for,
)
from inpaint_aug.model_options import (  # noqa: F401 - re-exported: options holds every option
    DEFAULT_MODEL,
    TINY_MODEL,
    ModelOptions,
    VerifySettings,
)


@dataclass(frozen=True)
class PlanSettings:
    """What gets edited and how (every field is recorded in run.json); checked when built.

    Attributes:
        seed: base seed; each edit derives its own from it.
        copies: augmented variants per source image.
        region: what the model may repaint (:class:`~inpaint_aug.choices.Region`).
        dilate: grow each region by this many pixels.
        feather: soften the paste-back edge over this many pixels (inside the region).
        min_size: skip objects whose box is smaller than this on a side.
        max_per_image: edit at most this many objects per image (largest first).
        padding: context around each object, as a fraction of its box side.
        min_context: the crop window is at least this many pixels on a side.
        resolution: model crop size, a positive multiple of 8 (``None``: the model's own size).
        steps: denoising steps.
        guidance: classifier-free guidance scale.
        strength: inpainting strength, in (0, 1].
        min_coverage: an edit is made only if its paintable region covers at least this share
            of its own object (other objects in front of it take the rest).
        control: shape control (:class:`~inpaint_aug.choices.Control`); ``none`` changes nothing.
        controlnet: the ControlNet of ``control`` (a hub id or a local folder); the default,
            the SD 1.5 canny ControlNet, stands for the SDXL one with an SDXL model.
        control_scale: the ControlNet's scale in [0, 2] (lower for small objects: see control).
        keep_outline: erode each object's region by this many pixels (``dilate`` is then not
            applied to it), so a band along its silhouette keeps the source pixels.
        balance: redraw every class at least this many times in the output, adding copies of
            the images that hold it (``None``: off; ``target`` in the prompts file per class).
        max_copies: the most copies of one image that balancing may reach, in all.
        mode: redraw the objects, or the background around them (:class:`~.choices.Mode`).

    Example:
        >>> PlanSettings(region="mask").region
        <Region.mask: 'mask'>
    """

    seed: int = 0
    copies: int = 1
    region: Region = Region.auto
    dilate: int = 4
    feather: int = 3
    min_size: int = 16
    max_per_image: int | None = None
    padding: float = 0.5
    min_context: int = 96
    resolution: int | None = None
    steps: int = 25
    guidance: float = 7.5
    strength: float = 1.0
    min_coverage: float = 0.5
    control: Control = Control.none
    controlnet: str = DEFAULT_CONTROLNET
    control_scale: float = 1.0
    keep_outline: int = 0
    balance: int | None = None
    max_copies: int = 10
    mode: Mode = Mode.object

    def __post_init__(self) -> None:
        object.__setattr__(self, "region", Region.parse("--region", self.region))
        object.__setattr__(self, "control", Control.parse("--control", self.control))
        object.__setattr__(self, "mode", Mode.parse("--mode", self.mode))
        if self.mode is Mode.background and self.balance is not None:
            raise OptionsError.free("--balance: --mode background redraws no object to count")
        check_number("control_scale", self.control_scale, 0.0, 2.0)
        if not isinstance(self.controlnet, str) or not self.controlnet.strip():
            raise OptionsError("--controlnet", self.controlnet, "a hub id or a folder")
        check_number("min_coverage", self.min_coverage, 0.0, 1.0)
        for name, low in (("seed", 0), ("copies", 1), ("dilate", 0), ("feather", 0)):
            check_int(name, getattr(self, name), low)
        for name, low in (("min_size", 0), ("min_context", 1), ("steps", 1), ("keep_outline", 0)):
            check_int(name, getattr(self, name), low)
        check_int("max_per_image", self.max_per_image, 1, optional=True)
        check_int("balance", self.balance, 1, optional=True)
        check_int("max_copies", self.max_copies, 1)
        check_int("resolution", self.resolution, 8, optional=True)
        if self.resolution is not None and self.resolution % 8:
            raise OptionsError("--resolution", self.resolution, "a positive multiple of 8")
        check_number("padding", self.padding, 0.0)
        check_number("guidance", self.guidance, 0.0)
        check_number("strength", self.strength, 0.0, 1.0, above=True)
        check_schedule(self.steps, self.strength)


@dataclass(frozen=True)
class RunOptions:
    """Everything a run needs; checked when built. The CLI builds one from its flags.

    ``preset="fast"`` sets 4 steps, guidance 1 and the model family's LCM-LoRA (unless ``lcm_lora``
    names another); ``quality`` changes nothing. A ``None`` resolution becomes the model's own,
    and with shape control the default ControlNet becomes the model family's own.

    Example:
        >>> RunOptions("a.json", "p.yaml", batch_size=0)
        Traceback (most recent call last):
        ...
        inpaint_aug.errors.OptionsError: --batch-size 0: expected an integer >= 1
    """

    coco: Path | str
    prompts: Path | str
    out: Path | str = "augmented"
    images: Path | str | None = None
    model: str = DEFAULT_MODEL
    device: str = Device.auto.value
    dtype: Dtype = Dtype.auto
    compile: bool = False
    cpu_offload: bool = False
    vae_slicing: bool = False
    lcm_lora: str | None = None
    batch_size: int = 4
    workers: int = 2
    image_format: ImageFormat = ImageFormat.auto
    limit: int | None = None
    resume: bool = False
    include_originals: bool = False
    format: ExportFormat = ExportFormat.coco
    split: Split = Split.train
    yolo_dir: Path | str | None = None  # the YOLO dataset root; None: OUT/yolo
    preset: Preset = Preset.quality
    plan: PlanSettings = field(default_factory=PlanSettings)
    verify: VerifySettings = field(default_factory=VerifySettings)
    executor: Executor = Executor.local
    ray_address: str | None = None  # None: a local Ray started for the run
    ray_actors: int | None = None  # None: one per GPU of the cluster (CPU: one)

    def __post_init__(self) -> None:
        if isinstance(self.verify, (str, VerifyMode)):  # verify="off" for short
            object.__setattr__(self, "verify", VerifySettings(mode=self.verify))
        if not isinstance(self.verify, VerifySettings):
            raise OptionsError("verify", self.verify, "a VerifySettings or a mode")
        for name in ("coco", "prompts", "out"):
            if not isinstance(getattr(self, name), (str, Path)) or not str(getattr(self, name)):
                raise OptionsError(flag(name), getattr(self, name), "a path")
        parse = {"image_format": ImageFormat, "format": ExportFormat, "split": Split}
        for name, kind in {**parse, "preset": Preset}.items():
            object.__setattr__(self, name, kind.parse(flag(name), getattr(self, name)))
        self._check_yolo_dir()
        self._check_executor()
        object.__setattr__(self, "device", Device.name_of("--device", self.device))
        check_int("batch_size", self.batch_size, 1)
        check_int("workers", self.workers, 1)
        check_int("limit", self.limit, 1, optional=True)
        for name in ("resume", "include_originals"):
            if not isinstance(getattr(self, name), bool):
                raise OptionsError(flag(name), getattr(self, name), "true or false")
        if not isinstance(self.plan, PlanSettings):
            raise OptionsError("plan", self.plan, "a PlanSettings")
        if self.plan.mode is Mode.background and self.verify.mode.value in ("clip", "owlv2"):
            raise OptionsError.free("--verify: nothing to check in --mode background (use off)")
        family, resolution = follow_model(self.model, self.plan.resolution, self.plan.control)
        object.__setattr__(self, "plan", replace(self.plan, resolution=resolution))
        if self.plan.control is not Control.none:
            net = controlnet_for(family, self.plan.controlnet)
            object.__setattr__(self, "plan", replace(self.plan, controlnet=net))
        if self.preset is Preset.fast:
            object.__setattr__(self, "plan", replace(self.plan, steps=4, guidance=1.0))
            object.__setattr__(self, "lcm_lora", self.lcm_lora or lcm_lora_for(family))
        self.model_options()  # checks device, dtype, model, flags

    def _check_yolo_dir(self) -> None:
        """``yolo_dir`` is a folder path (any, OUT or not: the user's choice), for a YOLO export."""
        if self.yolo_dir is None:
            return
        if not isinstance(self.yolo_dir, (str, Path)) or not str(self.yolo_dir):
            raise OptionsError("--yolo-dir", self.yolo_dir, "a folder path")
        if self.format is ExportFormat.coco:
            raise OptionsError.free("--yolo-dir: needs --format yolo or --format yolo-seg")

    def _check_executor(self) -> None:
        """``--ray-address`` and ``--ray-actors`` belong to ``--executor ray``."""
        object.__setattr__(self, "executor", Executor.parse("--executor", self.executor))
        address = self.ray_address
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise OptionsError("--ray-address", address, "auto, HOST:PORT or ray://HOST:PORT")
        check_int("ray_actors", self.ray_actors, 1, optional=True)
        given = [flag(n) for n in ("ray_address", "ray_actors") if getattr(self, n) is not None]
        if given and self.executor is not Executor.ray:
            raise OptionsError.free(f"{given[0]}: needs --executor ray")

    def model_options(self) -> ModelOptions:
        """The model-loading part of the options (the fields both classes share)."""
        names = [f.name for f in fields(ModelOptions) if f.name != "controlnet"]
        controlnet = self.plan.controlnet if self.plan.control is not Control.none else None
        return ModelOptions(**{n: getattr(self, n) for n in names}, controlnet=controlnet)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (paths and choices as strings), as run.json records them."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (PlanSettings, VerifySettings)):
                value = {p.name: _plain(getattr(value, p.name)) for p in fields(value)}
            out[f.name] = _plain(value)
        return out

    @classmethod
    def from_dict(cls, settings: dict[str, Any]) -> RunOptions:
        """Rebuild the options a run recorded (``run.json``'s ``settings``), checked again.

        Keys this version does not know are ignored (a run.json from a newer version).
        """
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in settings.items() if k in known}
        plan = _known(PlanSettings, values.pop("plan", None))
        verify = _known(VerifySettings, values.pop("verify", None))
        values.pop("preset", None)  # already applied to the recorded plan and lcm_lora
        return cls(**values, plan=PlanSettings(**plan), verify=VerifySettings(**verify))


def _known(kind: type, values: dict[str, Any] | None) -> dict[str, Any]:
    names = {f.name for f in fields(kind)}
    return {k: v for k, v in (values or {}).items() if k in names}


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    return str(value) if isinstance(value, Path) else value
