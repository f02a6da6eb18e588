"""``--compile``: regional compilation of the repeated blocks, or the whole denoiser.

Only how the model is wrapped is checked here (compiling itself is slow on a CPU); its effect
on speed is measured by ``benchmarks/throughput.py --compile``.
"""

from __future__ import annotations

from inpaint_aug.pipeline.backend import compile_denoiser


def _blocks(unet):
    return [m for m in unet.modules() if type(m).__name__ in unet._repeated_blocks]


def test_regional_compiles_each_repeated_block_and_leaves_the_unet_plain():
    from inpaint_aug.pipeline.tiny import build_tiny_pipeline

    pipe = build_tiny_pipeline()
    unet = pipe.unet
    assert _blocks(unet)
    assert compile_denoiser(pipe) == "regional"
    assert pipe.unet is unet  # not wrapped: its config and attributes stay reachable
    assert all(getattr(b, "_compiled_call_impl", None) is not None for b in _blocks(unet))


def test_full_wraps_the_whole_unet():
    import torch

    from inpaint_aug.pipeline.tiny import build_tiny_pipeline

    pipe = build_tiny_pipeline()
    assert compile_denoiser(pipe, regional=False) == "full"
    assert isinstance(pipe.unet, torch._dynamo.eval_frame.OptimizedModule)
