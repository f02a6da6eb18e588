"""The model: the :class:`Inpainter` interface and its diffusers implementation.

This is the only module that imports torch and diffusers, and it does so lazily, so reading,
planning and validating a dataset never pay for them. Tests pass an already-built pipeline.

Example:
    >>> inpainter = DiffusersInpainter.load("tiny-random", device="cpu")  # doctest: +SKIP
    >>> out = inpainter.inpaint([request])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from inpaint_aug.errors import ModelError, OutOfMemory

log = logging.getLogger(__name__)

DEFAULT_MODEL = "stable-diffusion-v1-5/stable-diffusion-inpainting"
DTYPES = ("auto", "fp16", "bf16", "fp32")
TINY_MODEL = "tiny-random"


@dataclass(frozen=True)
class ModelOptions:
    """How the model is loaded and run (speed and memory only; never quality).

    Attributes:
        model: hub id, local diffusers folder, ``.safetensors`` file, or ``tiny-random``.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        dtype: ``auto`` (fp16 on CUDA/MPS, fp32 on CPU), ``fp16``, ``bf16`` or ``fp32``.
        compile: ``torch.compile`` the UNet (batches are padded to one shape: one compile).
        cpu_offload: move sub-models to the GPU only while they run (small GPUs; slower).
        vae_slicing: decode a batch one image at a time (less memory for large batches).
        lcm_lora: an LCM-LoRA (hub id or folder) for the few-step preset (LCM scheduler).
    """

    model: str = DEFAULT_MODEL
    device: str = "auto"
    dtype: str = "auto"
    compile: bool = False
    cpu_offload: bool = False
    vae_slicing: bool = False
    lcm_lora: str | None = None


@dataclass(frozen=True)
class InpaintRequest:
    """One crop to redraw. ``pixels`` is ``(R, R, 3)`` uint8, ``mask`` ``(R, R)`` uint8 (255 =
    repaint). Requests in one batch share ``steps``, ``guidance`` and ``strength``."""

    pixels: np.ndarray
    mask: np.ndarray
    prompt: str
    negative_prompt: str
    seed: int
    steps: int
    guidance: float
    strength: float


class Inpainter(Protocol):
    """Anything that redraws a batch of same-size crops."""

    name: str

    def inpaint(self, batch: Sequence[InpaintRequest]) -> list[np.ndarray]:
        """Return one ``(R, R, 3)`` uint8 result per request, in order."""
        ...


def pick_device(choice: str = "auto") -> str:
    """Resolve ``auto`` to ``cuda``, then ``mps``, then ``cpu``; check an explicit choice."""
    import torch

    if choice == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise ModelError("--device cuda: no CUDA GPU is visible to torch (try --device auto)")
    if choice not in ("cpu", "cuda", "mps"):
        raise ModelError(f"--device {choice!r}: expected auto, cpu, cuda or mps")
    return choice


class DiffusersInpainter:
    """A diffusers inpainting pipeline behind the :class:`Inpainter` interface.

    Args:
        pipe: a loaded diffusers inpainting pipeline (e.g. ``StableDiffusionInpaintPipeline``).
        name: the model name recorded in provenance.
        device: where ``pipe`` lives.
    """

    def __init__(self, pipe: Any, name: str, device: str = "cpu") -> None:
        self.pipe = pipe
        self.name = name
        self.device = device
        self._cache: dict[tuple[str, str, bool], tuple[Any, Any]] = {}
        pipe.set_progress_bar_config(disable=True)

    @classmethod
    def load(cls, model: str | ModelOptions = DEFAULT_MODEL, device: str = "auto") -> Any:
        """Load a model from a hub id, a local folder, a ``.safetensors`` file or ``tiny-random``.

        Args:
            model: the model, or full :class:`ModelOptions` (then ``device`` is ignored).
            device: ``auto``, ``cpu``, ``cuda`` or ``mps``.

        Raises:
            ModelError: the model cannot be found or loaded; the message says how to fix it.
        """
        opts = model if isinstance(model, ModelOptions) else ModelOptions(model, device)
        dev = pick_device(opts.device)
        dtype = _torch_dtype(opts.dtype, dev)
        _quiet_libraries()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # library chatter; failures raise ModelError
            if opts.model == TINY_MODEL:
                pipe = build_tiny_pipeline().to(dtype=dtype)
            else:
                pipe = _load_pipeline(opts.model, dtype)
        return cls(_prepare(pipe, opts, dev), opts.model, dev)

    def inpaint(self, batch: Sequence[InpaintRequest]) -> list[np.ndarray]:
        """Redraw a batch; one seeded generator per item keeps results independent of batching.

        Crops go in as tensors (no PIL round trip) and text embeddings are computed once per
        distinct prompt. A result with non-finite values comes back all black, for the caller
        to retry with another seed.
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
                **self._text_inputs(batch, first.guidance > 1.0),
            ).images

    def _text_inputs(self, batch: Sequence[InpaintRequest], guided: bool) -> dict[str, Any]:
        """Prompt embeddings from a per-prompt cache, or plain strings for other pipelines."""
        if not hasattr(self.pipe, "encode_prompt") or hasattr(self.pipe, "text_encoder_2"):
            return {
                "prompt": [r.prompt for r in batch],
                "negative_prompt": [r.negative_prompt for r in batch],
            }
        import torch

        pairs = [self._embed(r.prompt, r.negative_prompt, guided) for r in batch]
        return {
            "prompt_embeds": torch.cat([p for p, _ in pairs]),
            "negative_prompt_embeds": torch.cat([n for _, n in pairs]),
        }

    def _embed(self, prompt: str, negative: str, guided: bool) -> tuple[Any, Any]:
        """Embeddings of one prompt pair, computed once and cached."""
        key = (prompt, negative, guided)
        if key not in self._cache:
            if len(self._cache) >= 4096:
                self._cache.clear()
            device = self.pipe._execution_device
            pos, neg = self.pipe.encode_prompt(prompt, device, 1, guided, negative_prompt=negative)
            self._cache[key] = (pos, neg if neg is not None else pos)
        return self._cache[key]


def _torch_dtype(choice: str, device: str) -> Any:
    """The torch dtype for ``--dtype`` (``auto``: fp16 on CUDA and MPS, fp32 on CPU)."""
    import torch

    if choice == "auto":
        choice = "fp16" if device in ("cuda", "mps") else "fp32"
    if choice not in DTYPES:
        raise ModelError(f"--dtype {choice!r}: expected one of {', '.join(DTYPES)}")
    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[choice]


def _prepare(pipe: Any, opts: ModelOptions, device: str) -> Any:
    """Apply the speed and memory options and move the pipeline to ``device``."""
    import torch

    if opts.lcm_lora:
        _use_lcm(pipe, opts.lcm_lora)
    if opts.vae_slicing:
        pipe.enable_vae_slicing()
    if opts.cpu_offload and device != "cpu":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe = pipe.to(device)
    if device == "cuda":
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
    if opts.compile:
        pipe.unet = torch.compile(pipe.unet, mode="max-autotune-no-cudagraphs")
    return pipe


def _use_lcm(pipe: Any, lora: str) -> None:
    """The few-step preset: LCM scheduler plus a fused LCM-LoRA (4-8 steps, guidance ~1)."""
    from diffusers import LCMScheduler

    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    try:
        pipe.load_lora_weights(lora)
        pipe.fuse_lora()
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"cannot load LCM-LoRA {lora!r} ({first}); pass a local folder") from None


def _quiet_libraries() -> None:
    """Silence library chatter that would drown the run's own log."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore", module="diffusers")
    warnings.filterwarnings("ignore", module="transformers")
    from diffusers.utils import logging as dlog

    dlog.set_verbosity_error()


def _load_pipeline(model: str, dtype: Any) -> Any:
    """Load a real pipeline; safetensors only, never remote code, safety checker off."""
    from diffusers import AutoPipelineForInpainting, StableDiffusionInpaintPipeline

    path = Path(model).expanduser()
    common = {"torch_dtype": dtype, "safety_checker": None, "requires_safety_checker": False}
    try:
        if path.is_file():
            if path.suffix != ".safetensors":
                raise ModelError(f"{path}: only .safetensors checkpoints are loaded (no pickles)")
            return StableDiffusionInpaintPipeline.from_single_file(str(path), **common)
        if path.is_dir():
            if not (path / "model_index.json").is_file():
                raise ModelError(f"{path}: not a diffusers model folder (no model_index.json)")
            return AutoPipelineForInpainting.from_pretrained(
                str(path), use_safetensors=True, **common
            )
        if model.count("/") != 1 or model.startswith((".", "/", "~")):
            raise ModelError(f"{model}: no such file or folder, and not a hub id like 'org/name'")
        return AutoPipelineForInpainting.from_pretrained(model, use_safetensors=True, **common)
    except ModelError:
        raise
    except OSError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(
            f"cannot load model {model!r} ({first}). Offline or not downloaded yet? Download it "
            "once with network access, or pass a local diffusers folder with --model DIR"
        ) from None
    except (ValueError, TypeError, KeyError, RuntimeError) as err:
        raise ModelError(f"cannot load model {model!r}: {err}".splitlines()[0]) from None


def build_tiny_pipeline(seed: int = 0) -> Any:
    """A tiny random-weight SD inpainting pipeline, built in memory with no network.

    Its output is noise: it exists to test the plumbing (and the real loading path, once saved
    with ``save_pretrained``). Components follow the diffusers unit tests' configs.
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        PNDMScheduler,
        StableDiffusionInpaintPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = _tiny_tokenizer()
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=32,
        in_channels=9,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
    )
    vae = AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        sample_size=128,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            hidden_size=32,
            intermediate_size=37,
            layer_norm_eps=1e-05,
            num_attention_heads=4,
            num_hidden_layers=5,
            vocab_size=1000,
        )
    )
    return StableDiffusionInpaintPipeline(
        vae=vae,
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        unet=unet,
        scheduler=PNDMScheduler(skip_prk_steps=True),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _tiny_tokenizer() -> Any:
    """A character-level CLIP tokenizer (no merges) loaded from files in a temporary folder.

    Printable ASCII characters are in the vocabulary; anything else maps to the unknown token.
    """
    from transformers import CLIPTokenizer

    chars = [chr(c) for c in range(33, 127)]
    tokens = ["<|startoftext|>", "<|endoftext|>"] + chars + [c + "</w>" for c in chars]
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
        Path(tmp, "merges.txt").write_text("#version: 0.2\n")
        Path(tmp, "tokenizer_config.json").write_text(json.dumps({"model_max_length": 77}))
        return CLIPTokenizer.from_pretrained(tmp, model_max_length=77)
