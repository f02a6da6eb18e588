"""The offline ``tiny-random`` model: a tiny random-weight SD inpainting pipeline.

Built in memory from configs in seconds, with no network. Its output is noise: it exists to
test the plumbing, and, saved with ``save_pretrained``, the real loading path.

Example:
    >>> pipe = build_tiny_pipeline()  # doctest: +SKIP
    >>> pipe.save_pretrained("tiny-inpaint")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any


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
