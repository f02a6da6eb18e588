"""The model: the :class:`Inpainter` interface and its diffusers implementation.

This is the only module that imports torch and diffusers, and it does so lazily, so reading,
planning and validating a dataset never pay for them. Tests pass an already-built pipeline.

Example:
    >>> inpainter = DiffusersInpainter.load("tiny-random", device="cpu")  # doctest: +SKIP
    >>> out = inpainter.inpaint([request])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from inpaint_aug.choices import Device, Dtype
from inpaint_aug.errors import ModelError, OptionsError, OutOfMemory
from inpaint_aug.options import DEFAULT_MODEL, TINY_MODEL, ModelOptions
from inpaint_aug.pipeline.families import PromptCache, control_inputs, denoiser_name
from inpaint_aug.pipeline.hub import check_model
from inpaint_aug.pipeline.latents import batch_vae_encode
from inpaint_aug.pipeline.loading import (
    check_controlnet,
    check_lcm_lora,
    load_pipeline,
    quiet_libraries,
    use_lcm,
    with_controlnet,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InpaintRequest:
    """One crop to redraw, with its prompts, seed and schedule.

    ``pixels`` is ``(R, R, 3)`` uint8, ``mask`` ``(R, R)`` uint8 (255 = repaint). Requests in
    one batch share ``steps``, ``guidance``, ``strength`` and ``control_scale``. With shape
    control, ``control`` is the ``(R, R, 3)`` uint8 edge map of the source crop.
    """

    pixels: np.ndarray
    mask: np.ndarray
    prompt: str
    negative_prompt: str
    seed: int
    steps: int
    guidance: float
    strength: float
    control: np.ndarray | None = None
    control_scale: float = 0.0


class Inpainter(Protocol):
    """Anything that redraws a batch of same-size crops."""

    name: str

    def inpaint(self, batch: Sequence[InpaintRequest]) -> list[np.ndarray]:
        """Return one ``(R, R, 3)`` uint8 result per request, in order."""
        ...


def pick_device(choice: Device | str = Device.auto) -> str:
    """Resolve ``auto`` to ``cuda``, then ``mps``, then ``cpu``; check an explicit choice.

    Args:
        choice: ``auto``, ``cpu``, ``mps``, ``cuda`` (the current GPU) or ``cuda:N``.

    Returns:
        The torch device string (``cuda:N`` as given).

    Raises:
        OptionsError: not a device name.
        ModelError: that device is not there (no CUDA, no GPU N, no MPS).
    """
    import torch

    name = Device.name_of("--device", choice)
    mps = getattr(torch.backends, "mps", None)
    has_mps = mps is not None and mps.is_available()
    if name == Device.auto:
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if name == Device.mps and not has_mps:
        raise ModelError("--device mps: MPS is not available to torch (try --device auto)")
    if name.startswith(Device.cuda.value):
        _check_cuda(name, torch.cuda)
    return name


def _check_cuda(name: str, cuda: Any) -> None:
    """Refuse ``cuda`` without a visible GPU and ``cuda:N`` without a GPU N."""
    if not cuda.is_available():
        raise ModelError(f"--device {name}: no CUDA GPU is visible to torch (try --device auto)")
    index = name.partition(":")[2]
    count = cuda.device_count()
    if index and int(index) >= count:
        raise ModelError(
            f"--device {name}: torch sees {count} CUDA GPU(s), cuda:0 to cuda:{count - 1} "
            "(numbered after CUDA_VISIBLE_DEVICES)"
        )


class DiffusersInpainter:
    """A diffusers inpainting pipeline behind the :class:`Inpainter` interface.

    Args:
        pipe: a loaded diffusers inpainting pipeline: SD 1.5 or SDXL (either also with a
            ControlNet), or FLUX.1 Fill (see :mod:`~inpaint_aug.pipeline.families`).
        name: the model name recorded in provenance.
        device: where ``pipe`` lives.
    """

    def __init__(self, pipe: Any, name: str, device: str = "cpu") -> None:
        self.pipe = pipe
        self.name = name
        self.device = device
        self._prompts = PromptCache()
        pipe.set_progress_bar_config(disable=True)
        batch_vae_encode(pipe)  # one VAE encoder call per batch, not one per item

    @classmethod
    def load(cls, model: str | ModelOptions = DEFAULT_MODEL, device: str = "auto") -> Any:
        """Load a model from a hub id, a local folder, a ``.safetensors`` file or ``tiny-random``.

        Args:
            model: the model, or full :class:`ModelOptions` (then ``device`` is ignored).
            device: ``auto``, ``cpu``, ``mps``, ``cuda`` or ``cuda:N``.

        Raises:
            OptionsError: ``--dtype fp16`` on the CPU.
            ModelError: the model cannot be found or loaded; the message says how to fix it.
        """
        opts = model if isinstance(model, ModelOptions) else ModelOptions(model, device)
        tiny = opts.model == TINY_MODEL
        model_offline = not tiny and check_model(opts.model)  # fast: before torch loads
        lora_offline = check_lcm_lora(opts.lcm_lora)
        controlnet_offline = check_controlnet(opts.controlnet, opts.model)
        dev = pick_device(opts.device)
        dtype = _torch_dtype(opts.dtype, dev)
        quiet_libraries()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # library chatter; failures raise ModelError
            if tiny:
                from inpaint_aug.pipeline.tiny import build_tiny_pipeline

                pipe = build_tiny_pipeline().to(dtype=dtype)
            else:
                pipe = load_pipeline(opts.model, dtype, model_offline)
            if opts.controlnet is not None:
                pipe = with_controlnet(pipe, opts.controlnet, dtype, controlnet_offline)
            pipe = _prepare(pipe, opts, dev, lora_offline)
        return cls(pipe, opts.model, dev)

    def inpaint(self, batch: Sequence[InpaintRequest]) -> list[np.ndarray]:
        """Redraw a batch; one seeded generator per item keeps results independent of batching.

        Crops (and edge maps) go in as tensors (no PIL round trip) and text embeddings are
        computed once per distinct prompt. A result with non-finite values comes back all
        black, for the caller to retry with another seed.
        """
        import torch

        if not batch:
            return []
        image = torch.from_numpy(np.stack([r.pixels for r in batch])).permute(0, 3, 1, 2)
        mask = torch.from_numpy(np.stack([r.mask for r in batch]))[:, None]
        gens = [torch.Generator("cpu").manual_seed(r.seed) for r in batch]
        try:
            out = self._call(image, mask, gens, batch)
        except torch.OutOfMemoryError as err:
            torch.cuda.empty_cache()
            raise OutOfMemory(f"out of memory for a batch of {len(batch)}: {err}") from None
        out = np.nan_to_num(np.asarray(out, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        return [np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8) for img in out]

    def _call(self, image: Any, mask: Any, gens: list, batch: Sequence[InpaintRequest]) -> Any:
        """One pipeline call in inference mode; returns ``(B, R, R, 3)`` floats in [0, 1]."""
        import torch

        first = batch[0]
        res = first.pixels.shape[0]
        with torch.inference_mode():
            return self.pipe(
                image=image.float() / 255.0,
                mask_image=mask.float() / 255.0,
                height=res,
                width=res,
                num_inference_steps=first.steps,
                guidance_scale=first.guidance,
                strength=first.strength,
                generator=gens,
                output_type="np",
                **self._prompts.inputs(self.pipe, batch),
                **control_inputs(batch),
            ).images


def _torch_dtype(choice: Dtype, device: str) -> Any:
    """The torch dtype for ``--dtype`` (``auto``: fp16 on CUDA and MPS, fp32 on CPU).

    Raises:
        OptionsError: fp16 on the CPU (slow, and many CPU kernels lack half precision).
    """
    import torch

    if choice is Dtype.auto:
        gpu = device.startswith(Device.cuda.value) or device == Device.mps
        choice = Dtype.fp16 if gpu else Dtype.fp32
    if choice is Dtype.fp16 and device == Device.cpu:
        raise OptionsError.free(
            "--dtype fp16 with the model on the CPU (--device cpu, or auto without a GPU): "
            "half precision is slow there and often unsupported; use --dtype fp32 or bf16, "
            "or a GPU with --device cuda"
        )
    types = {Dtype.fp16: torch.float16, Dtype.bf16: torch.bfloat16, Dtype.fp32: torch.float32}
    return types[choice]


def _prepare(pipe: Any, opts: ModelOptions, device: str, lora_offline: bool = False) -> Any:
    """Apply the speed and memory options and move the pipeline to ``device``."""
    import torch

    if opts.lcm_lora:
        use_lcm(pipe, opts.lcm_lora, lora_offline)
    if opts.vae_slicing:
        pipe.vae.enable_slicing()  # diffusers 0.42 pipelines have no enable_vae_slicing
    if opts.cpu_offload and device != "cpu":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe = pipe.to(device)
    denoiser = denoiser_name(pipe)
    if device.startswith(Device.cuda.value) and denoiser == "unet":
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
    if opts.compile:
        compile_denoiser(pipe)
    return pipe


def compile_denoiser(pipe: Any, regional: bool = True) -> str:
    """``--compile``: torch.compile the denoiser (UNet or transformer); return how.

    ``regional`` compiles only the blocks the model repeats (diffusers'
    ``compile_repeated_blocks``, for models that declare ``_repeated_blocks``): one compiled
    block serves all its copies, so compiling takes a fraction of the whole model's time. Other
    models, or ``regional=False``, compile whole. Batches are padded to one shape with
    ``--compile``, so either compiles once.
    """
    import torch

    name = "unet" if getattr(pipe, "unet", None) is not None else "transformer"
    model = getattr(pipe, name)
    if regional and getattr(model, "_repeated_blocks", None):
        model.compile_repeated_blocks(fullgraph=True)
        return "regional"
    setattr(pipe, name, torch.compile(model, mode="max-autotune-no-cudagraphs"))
    return "full"
