"""Tiny random-weight models of the other families: SDXL inpainting, FLUX.1 Fill, ControlNets.

Built in memory from small configs (after the diffusers unit tests' ones) with no network, the
tokenizers too. Their output is noise: saved with ``save_pretrained``, they test the loading
and calling path of each family through ``--model DIR`` and ``--controlnet DIR``.

Example:
    >>> build_tiny_sdxl().save_pretrained("tiny-sdxl")  # doctest: +SKIP
    >>> build_tiny_controlnet().save_pretrained("tiny-controlnet")  # doctest: +SKIP
    >>> build_tiny_sdxl_controlnet().save_pretrained("tiny-sdxl-controlnet")  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from typing import Any

from inpaint_aug.pipeline.tiny import TINY_UNET, tiny_tokenizer, tiny_vae

CLIP_TEXT = {
    "hidden_size": 32,
    "intermediate_size": 37,
    "layer_norm_eps": 1e-05,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "vocab_size": 1000,
    "hidden_act": "gelu",
    "projection_dim": 32,
}

# What the tiny SDXL UNet and its ControlNet share: attention layout, added text-time embedding
# (6 time ids x 8 plus the 32-wide pooled embedding) and cross-attention on both encoders' 32 + 32.
SDXL_LAYOUT: dict[str, Any] = {
    "attention_head_dim": (2, 4),
    "use_linear_projection": True,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 8,
    "transformer_layers_per_block": (1, 2),
    "projection_class_embeddings_input_dim": 80,  # 6 * 8 + 32
    "cross_attention_dim": 64,
}


def _clip_config(tokenizer: Any) -> Any:
    from transformers import CLIPTextConfig

    ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    return CLIPTextConfig(**CLIP_TEXT, **ids)


def build_tiny_sdxl(seed: int = 0) -> Any:
    """A tiny ``StableDiffusionXLInpaintPipeline``: a 9-channel UNet and two text encoders.

    The UNet's added-condition input is 6 time ids x 8 plus the 32-wide pooled embedding of the
    second encoder (no aesthetic score); cross-attention takes both encoders' 32 + 32 features.
    The global RNG is left as it was.
    """
    import torch
    from diffusers import (
        EulerDiscreteScheduler,
        StableDiffusionXLInpaintPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = tiny_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**TINY_UNET, **SDXL_LAYOUT)
        vae = tiny_vae()
        config = _clip_config(tokenizer)
        text_encoder = CLIPTextModel(config).eval()
        text_encoder_2 = CLIPTextModelWithProjection(config).eval()
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        steps_offset=1,
        beta_schedule="scaled_linear",
        timestep_spacing="leading",
    )
    return StableDiffusionXLInpaintPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tiny_tokenizer(),
        unet=unet,
        scheduler=scheduler,
        requires_aesthetics_score=False,
        force_zeros_for_empty_prompt=True,
    )


def build_tiny_flux_fill(seed: int = 0) -> Any:
    """A tiny ``FluxFillPipeline``: a one-block transformer, CLIP and T5 encoders, a tiny VAE.

    The VAE has 2 latent channels at half the crop size, so the transformer's input is the
    packed latents (8), the packed masked image (8) and the packed 2 x 2 mask (16). The T5
    tokenizer is built locally (:func:`tiny_t5_tokenizer`). The global RNG is left as it was.
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxFillPipeline,
        FluxTransformer2DModel,
    )
    from transformers import CLIPTextModel, T5Config, T5EncoderModel

    tokenizer = tiny_tokenizer()
    tokenizer_2 = tiny_t5_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer = FluxTransformer2DModel(
            patch_size=1,
            in_channels=32,
            out_channels=8,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=32,
            pooled_projection_dim=32,
            axes_dims_rope=[4, 4, 8],
        )
        text_encoder = CLIPTextModel(_clip_config(tokenizer)).eval()
        t5 = T5Config(
            vocab_size=len(tokenizer_2),
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            decoder_start_token_id=0,
            pad_token_id=0,
            eos_token_id=1,
        )
        text_encoder_2 = T5EncoderModel(t5).eval()
        vae = AutoencoderKL(
            sample_size=32,
            in_channels=3,
            out_channels=3,
            block_out_channels=(4, 8),
            down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
            up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
            layers_per_block=1,
            latent_channels=2,
            norm_num_groups=1,
            use_quant_conv=False,
            use_post_quant_conv=False,
            shift_factor=0.0609,
            scaling_factor=1.5035,
        )
    return FluxFillPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )


def tiny_t5_tokenizer() -> Any:
    """A character-level T5 tokenizer built with the ``tokenizers`` library (no download).

    A unigram model over printable ASCII characters (with and without the word-start mark),
    ``</s>`` appended to every text, ``<pad>`` = 0 as T5 has it.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import AutoTokenizer, T5TokenizerFast

    chars = [chr(c) for c in range(33, 127)]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -1.0)]
    vocab += [(c, -2.0) for c in chars] + [("\u2581" + c, -2.5) for c in chars]
    core = Tokenizer(models.Unigram(vocab, unk_id=2))
    core.pre_tokenizer = pre_tokenizers.Metaspace()
    core.decoder = decoders.Metaspace()
    core.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    built = T5TokenizerFast(
        tokenizer_object=core,
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_ids=0,
        model_max_length=512,
    )
    with tempfile.TemporaryDirectory() as tmp:  # the class a saved pipeline loads it as
        built.save_pretrained(tmp)
        return AutoTokenizer.from_pretrained(tmp)


def build_tiny_controlnet(seed: int = 0) -> Any:
    """A tiny random ``ControlNetModel`` for the ``tiny-random`` UNet (SD 1.5 layout).

    It takes the UNet's sizes with 4 input channels (a ControlNet sees the noisy latents, not
    the inpainting UNet's 9 channels) and a 3-channel control image brought down by 2, the tiny
    VAE's factor. A new ControlNet's output ("zero") convolutions are all zero, so it would
    change nothing: here they get small random weights, so its scale changes the output. The
    global RNG is left as it was.
    """
    return _tiny_controlnet(seed, cross_attention_dim=32)


def build_tiny_sdxl_controlnet(seed: int = 0) -> Any:
    """A tiny random SDXL ``ControlNetModel`` for :func:`build_tiny_sdxl`'s UNet.

    Like :func:`build_tiny_controlnet`, with the SDXL UNet's added text-time embedding (6 time
    ids x 8 plus the 32-wide pooled embedding), its attention layout and its 64-wide
    cross-attention (both encoders' features).
    """
    return _tiny_controlnet(seed, **SDXL_LAYOUT)


def _tiny_controlnet(seed: int, **layout: Any) -> Any:
    """A two-block random ``ControlNetModel`` whose zero convolutions are random too."""
    import torch
    from diffusers import ControlNetModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ControlNetModel(
            block_out_channels=(32, 64),
            layers_per_block=2,
            in_channels=4,
            conditioning_channels=3,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            conditioning_embedding_out_channels=(16, 32),
            **layout,
        )
        zero = [*net.controlnet_down_blocks, net.controlnet_mid_block]
        zero.append(net.controlnet_cond_embedding.conv_out)
        with torch.no_grad():
            for conv in zero:
                torch.nn.init.normal_(conv.weight, std=0.5)
    return net.eval()
