"""The SD 1.5 inpainting architecture built from its configs with random weights (no download).

Used by ``throughput.py --arch sd15`` (speed does not depend on the weights) and by
``flops.py``'s tests (the FLOP count of the real configuration, on the meta device).

Example:
    >>> pipe = build_sd15_pipeline("cuda")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any


def build_sd15_pipeline(device: str) -> Any:
    """The SD 1.5 inpainting architecture from config, random weights (no download).

    Configs follow ``stable-diffusion-v1-5/stable-diffusion-inpainting``; the tokenizer is the
    offline character-level one (same sequence length, 77), which is fine for timing.
    """
    import torch
    from diffusers import StableDiffusionInpaintPipeline

    from inpaint_aug.pipeline.tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    with torch.device(device):  # random init on the device: much faster on a GPU
        unet, vae = sd15_unet_vae()
        text_encoder = sd15_text_encoder(tokenizer)
    return StableDiffusionInpaintPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=sd15_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def sd15_unet_vae() -> tuple[Any, Any]:
    """SD 1.5 inpainting's UNet (9 input channels, ~860M parameters) and VAE, random weights."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    unet = UNet2DConditionModel(
        sample_size=64,
        in_channels=9,
        out_channels=4,
        layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=768,
        attention_head_dim=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=2,
        sample_size=512,
    )
    return unet, vae


def sd15_text_encoder(tokenizer: Any) -> Any:
    """CLIP ViT-L/14 text tower (SD 1.5's text encoder), random weights."""
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(config).eval()


def sd15_scheduler() -> Any:
    """SD 1.5 inpainting's scheduler: PNDM, PLMS steps only."""
    from diffusers import PNDMScheduler

    return PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        steps_offset=1,
        set_alpha_to_one=False,
    )


def sd15_controlnet(device: str = "cpu") -> Any:
    """An SD 1.5 ControlNet (the UNet's encoder half, ~361M parameters), random weights."""
    import torch
    from diffusers import ControlNetModel

    with torch.device(device):
        return ControlNetModel(
            in_channels=4,
            conditioning_channels=3,
            block_out_channels=(320, 640, 1280, 1280),
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            layers_per_block=2,
            cross_attention_dim=768,
            attention_head_dim=8,
            conditioning_embedding_out_channels=(16, 32, 96, 256),
        )
