"""The models a run needs: the inpainter, and the verifier its options ask for.

Which verifier: ``--verify auto`` is CLIP for a model the run loads itself, and ``off`` when
:func:`~inpaint_aug.pipeline.run.run` is handed a ready inpainter object and no verifier (the
caller chose its components). With ``--model tiny-random`` the verifier is a tiny random one too
(unless ``--verifier-model`` names one), so the offline quick start runs through the same path.

Example:
    >>> from inpaint_aug.options import RunOptions
    >>> verifier_choice(RunOptions("a.json", "p.yaml", model="tiny-random"), injected=False)
    ('tiny-clip', None)
    >>> verifier_choice(RunOptions("a.json", "p.yaml", verify="off"), injected=False) is None
    True
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from inpaint_aug.choices import Mode, VerifyMode
from inpaint_aug.options import TINY_MODEL, RunOptions
from inpaint_aug.pipeline.backend import Inpainter
from inpaint_aug.pipeline.verify import Verifier


@dataclass(frozen=True)
class Models:
    """What the run's model calls go to, and the seconds their loading took."""

    inpainter: Inpainter
    verifier: Verifier | None
    seconds_load: float


def verifier_choice(options: RunOptions, injected: bool) -> tuple[str, str | None] | None:
    """The verifier kind and model to load, or ``None`` for no verification.

    Kinds are ``clip``, ``owlv2``, ``tiny-clip`` and ``tiny-owlv2``.

    Args:
        options: the run's options.
        injected: the caller passed its own inpainter object.
    """
    mode, model = options.verify.mode, options.verify.model
    if mode is VerifyMode.off or (mode is VerifyMode.auto and injected):
        return None
    if options.plan.mode is Mode.background:  # every object keeps its pixels: nothing to check
        return None
    kind = "clip" if mode is VerifyMode.auto else mode.value
    if options.model == TINY_MODEL and model is None:
        kind = f"tiny-{kind}"
    return kind, model


def load_models(
    options: RunOptions, inpainter: Inpainter | None = None, verifier: Verifier | None = None
) -> Models:
    """Load what is not given: the inpainter from ``options``, and the verifier they ask for.

    Raises:
        ModelError: a model cannot be found or loaded; the message says how to fix it.
    """
    t0 = time.perf_counter()
    injected = inpainter is not None
    if inpainter is None:
        from inpaint_aug.pipeline.backend import DiffusersInpainter

        inpainter = DiffusersInpainter.load(options.model_options())
    choice = verifier_choice(options, injected) if verifier is None else None
    if choice is not None:
        verifier = _load_verifier(options, inpainter, *choice)
    if options.plan.mode is Mode.background:
        verifier = None  # a given one too: there is no object redraw to verify
    return Models(inpainter, verifier, time.perf_counter() - t0)


def _load_verifier(options: RunOptions, inpainter: Inpainter, kind: str, model: str | None):
    """The verifier, on the inpainter's device (the CPU for a stand-in without one)."""
    from inpaint_aug.pipeline.backend import pick_device
    from inpaint_aug.pipeline.verifier_loading import load_verifier

    device = getattr(inpainter, "device", None) or pick_device(options.device)
    return load_verifier(kind, model, device, options.dtype, options.verify.threshold)
