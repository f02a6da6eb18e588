"""The model-side options: how the inpainter is loaded, and how each redraw is verified.

Checked when built, like every option (see :mod:`inpaint_aug.options`, which re-exports them).

Example:
    >>> ModelOptions(dtype="bf16").dtype
    <Dtype.bf16: 'bf16'>
"""

from __future__ import annotations

from dataclasses import dataclass

from inpaint_aug.checks import check_int, check_number, flag
from inpaint_aug.choices import Device, Dtype, OnReject, VerifyMode
from inpaint_aug.errors import OptionsError

DEFAULT_MODEL = "stable-diffusion-v1-5/stable-diffusion-inpainting"
TINY_MODEL = "tiny-random"


@dataclass(frozen=True)
class ModelOptions:
    """How the model is loaded and run (speed and memory only; never quality).

    Attributes:
        model: hub id, local diffusers folder, ``.safetensors`` file, or ``tiny-random``.
        device: ``auto``, ``cpu``, ``mps``, ``cuda`` (the current GPU) or ``cuda:N``; a
            :class:`~inpaint_aug.choices.Device` or a string, held as a plain string.
        dtype: :class:`~inpaint_aug.choices.Dtype`.
        compile: ``torch.compile`` the UNet (batches are padded to one shape: one compile).
        cpu_offload: move sub-models to the GPU only while they run (small GPUs; slower).
        vae_slicing: decode a batch one image at a time (less memory for large batches).
        lcm_lora: an LCM-LoRA (hub id or folder) for the few-step preset (LCM scheduler).
        controlnet: a ControlNet (hub id or folder) to load with the model, or ``None``.
    """

    model: str = DEFAULT_MODEL
    device: str = Device.auto.value
    dtype: Dtype = Dtype.auto
    compile: bool = False
    cpu_offload: bool = False
    vae_slicing: bool = False
    lcm_lora: str | None = None
    controlnet: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise OptionsError("--model", self.model, "a hub id, a folder, a file or tiny-random")
        object.__setattr__(self, "device", Device.name_of("--device", self.device))
        object.__setattr__(self, "dtype", Dtype.parse("--dtype", self.dtype))
        for name in ("compile", "cpu_offload", "vae_slicing"):
            if not isinstance(getattr(self, name), bool):
                raise OptionsError(flag(name), getattr(self, name), "true or false")


@dataclass(frozen=True)
class VerifySettings:
    """How each redrawn object is checked against its label before it is pasted back.

    Attributes:
        mode: which verifier (:class:`~inpaint_aug.choices.VerifyMode`); ``auto`` is CLIP for a
            model the run loads itself (a tiny random CLIP with ``tiny-random``), and ``off``
            when ``run`` is given a ready inpainter object and no verifier.
        model: the verifier's hub id or local folder (``None``: the mode's default).
        threshold: the bar, in the verifier's units (``None``: its default). CLIP: how many
            CLIP score points (100 x cosine) the redraw may fall below the source object's own
            score. OWLv2: the share of the source object's detection score the redraw must reach.
        retries: new deterministic seeds tried for a rejected redraw.
        on_reject: ``revert`` (the object keeps its source pixels) or ``drop`` (that image
            copy is not written).

    Example:
        >>> VerifySettings(mode="owlv2", threshold=0.4).mode
        <VerifyMode.owlv2: 'owlv2'>
    """

    mode: VerifyMode = VerifyMode.auto
    model: str | None = None
    threshold: float | None = None
    retries: int = 2
    on_reject: OnReject = OnReject.revert

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", VerifyMode.parse("--verify", self.mode))
        object.__setattr__(self, "on_reject", OnReject.parse("--on-reject", self.on_reject))
        check_int("verify_retries", self.retries, 0)
        if self.threshold is not None:
            check_number("verify_threshold", self.threshold, -100.0, 100.0)
        if self.model is not None and (not isinstance(self.model, str) or not self.model):
            raise OptionsError("--verifier-model", self.model, "a hub id or a folder")
