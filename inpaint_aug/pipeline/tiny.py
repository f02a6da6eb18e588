"""The offline tiny models: ``tiny-random`` inpainting, ``tiny-clip`` and ``tiny-owlv2``.

Built in memory from configs in seconds, with no network. Their output is noise: they exist to
test the plumbing, and, saved with ``save_pretrained``, the real loading path.

Example:
    >>> pipe = build_tiny_pipeline()  # doctest: +SKIP
    >>> pipe.save_pretrained("tiny-inpaint")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

TINY_UNET: dict[str, Any] = {
    "block_out_channels": (32, 64),
    "layers_per_block": 2,
    "sample_size": 32,
    "in_channels": 9,
    "out_channels": 4,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
}
"""The two-block 9-channel inpainting UNet of the tiny SD-style families (each adds its
cross-attention layout: 32 wide for SD, :data:`.tiny_families.SDXL_LAYOUT` for SDXL)."""


def build_tiny_pipeline(seed: int = 0) -> Any:
    """A tiny random-weight SD inpainting pipeline, built in memory with no network.

    Its output is noise: it exists to test the plumbing (and the real loading path, once saved
    with ``save_pretrained``). Components follow the diffusers unit tests' configs.
    """
    import torch
    from diffusers import (
        PNDMScheduler,
        StableDiffusionInpaintPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**TINY_UNET, cross_attention_dim=32)
    vae = tiny_vae()
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


def tiny_vae() -> Any:
    """The SD-style tiny VAE (two blocks: 4 latent channels at half the crop size)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        sample_size=128,
    )


def tiny_tokenizer() -> Any:
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


def build_tiny_clip(seed: int = 0) -> tuple[Any, Any]:
    """A tiny random-weight ``CLIPModel`` and its tokenizer, for the ``tiny-clip`` verifier.

    Two layers of width 32 on each side, 32 px images in 8 px patches; in eval mode and the same
    for the same ``seed`` (the global RNG is left as it was). Its scores are noise.
    """
    import torch
    from transformers import CLIPConfig, CLIPModel

    tokenizer = tiny_tokenizer()
    config = CLIPConfig(
        text_config=_tiny_tower(tokenizer, max_position_embeddings=77),
        vision_config=_tiny_tower(None, image_size=32, patch_size=8),
        projection_dim=32,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(config)
    return model.eval(), tokenizer


def build_tiny_owlv2(seed: int = 0) -> tuple[Any, Any]:
    """A tiny random-weight ``Owlv2ForObjectDetection`` and its tokenizer (``tiny-owlv2``).

    Same sizes as :func:`build_tiny_clip` (a 4 x 4 grid of predicted boxes); the projection is
    as wide as the text tower, as the class head requires. The detection heads get small
    weights, so predicted boxes sit near their grid cells and class scores are not saturated.
    """
    import torch
    from transformers import Owlv2Config, Owlv2ForObjectDetection

    tokenizer = tiny_tokenizer()
    config = Owlv2Config(
        text_config=_tiny_tower(tokenizer, max_position_embeddings=32),
        vision_config=_tiny_tower(None, image_size=32, patch_size=8),
        projection_dim=32,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Owlv2ForObjectDetection(config)
        for head in (model.class_head, model.box_head, model.objectness_head):
            for layer in head.modules():
                if isinstance(layer, torch.nn.Linear):
                    torch.nn.init.normal_(layer.weight, std=0.02)
                    torch.nn.init.zeros_(layer.bias)
    return model.eval(), tokenizer


def _tiny_tower(tokenizer: Any, **extra: Any) -> dict[str, Any]:
    """The config of one tiny transformer tower; a text tower when ``tokenizer`` is given."""
    tower = {
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        **extra,
    }
    if tokenizer is not None:
        tower.update(
            vocab_size=len(tokenizer),
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    return tower


def save_tiny_lora(directory: str | Path, seed: int = 0, rank: int = 4) -> Path:
    """Save a random LoRA for the ``tiny-random`` UNet, in the diffusers LoRA format.

    The attention projections (``to_q``, ``to_k``, ``to_v``, ``to_out.0``) get rank-``rank``
    adapters with non-zero ``B`` matrices, so fusing them changes the output. For tests of
    ``--lcm-lora DIR`` offline (it is no LCM distillation: the output stays noise). Needs
    ``peft``; the global RNG is left as it was.

    Returns:
        ``directory``, holding ``pytorch_lora_weights.safetensors``.
    """
    import torch
    from diffusers import StableDiffusionInpaintPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny scheduler config's steps_offset notice
        unet = build_tiny_pipeline(seed).unet
        config = LoraConfig(
            r=rank,
            lora_alpha=rank,
            init_lora_weights="gaussian",
            target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        )
        unet.add_adapter(config)
        torch.manual_seed(seed + 1)
        with torch.no_grad():
            for name, param in unet.named_parameters():
                if "lora_B" in name:
                    param.normal_(std=0.1)
        StableDiffusionInpaintPipeline.save_lora_weights(
            str(directory), unet_lora_layers=get_peft_model_state_dict(unet)
        )
    return Path(directory)
