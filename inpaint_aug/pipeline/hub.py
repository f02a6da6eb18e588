"""Where a hub model comes from: the local Hugging Face cache, or the hub if it answers quickly.

Without this check, a model that is not cached on a machine without network costs half a
minute of retries before diffusers gives up. :func:`local_files_only` decides in about a second
whether loading may use the network, and fails at once, with what to do, when the model can
come from nowhere. Pure Python (``huggingface_hub`` only, imported when called).

Example:
    >>> local_files_only("stable-diffusion-v1-5/stable-diffusion-inpainting")  # doctest: +SKIP
    False
"""

from __future__ import annotations

import threading
from pathlib import Path

from inpaint_aug.errors import ModelError

REACH_TIMEOUT = 3.0  # seconds the hub has to answer before it counts as out of reach
MODEL_FIX = (
    "pass --model DIR (a local diffusers folder), --model tiny-random to check the plumbing, "
    "or run once with network access"
)
LORA_FIX = "pass --lcm-lora DIR (a local folder), or run once with network access"


def is_cached(repo_id: str) -> bool:
    """Whether a snapshot of ``repo_id`` (its ``main`` revision) is in the local cache."""
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(repo_id, local_files_only=True)
    except Exception:  # any failure means: not usable from the cache
        return False
    return True


def hub_reachable(timeout: float = REACH_TIMEOUT) -> bool:
    """Whether the hub endpoint answers an HTTP request within ``timeout`` seconds.

    Any answer counts (even an error status); the request runs in a daemon thread so that a
    slow name lookup cannot hold the caller longer than ``timeout``. Proxies set in the
    environment are honoured (the request goes through huggingface_hub's own session).
    """
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    answered: list[bool] = []

    def probe() -> None:
        try:
            get_session().head(constants.ENDPOINT, timeout=timeout)
        except Exception:  # no answer is the only thing asked
            return
        answered.append(True)

    thread = threading.Thread(target=probe, name="hub-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answered)


def hub_usable() -> bool:
    """Whether the hub may be asked: offline mode is off and it answers within the timeout."""
    from huggingface_hub import constants

    return not constants.HF_HUB_OFFLINE and hub_reachable()


def local_files_only(repo_id: str, what: str = "model", fix: str = MODEL_FIX) -> bool:
    """Whether ``repo_id`` must load from the local cache only; fail fast if it cannot load.

    With the hub offline (``HF_HUB_OFFLINE``) or out of reach, a cached model loads from the
    cache (no retries); one that is not cached is a :class:`ModelError` at once.

    Args:
        repo_id: a hub id (``org/name``).
        what: what it is, for the message (``model``, ``LCM-LoRA``...).
        fix: what to do, for the message.

    Returns:
        ``True`` to load with ``local_files_only=True``, ``False`` to let the hub be used.

    Raises:
        ModelError: not in the cache, and the hub is off or cannot be reached.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        why = "the hub is switched off (offline mode: HF_HUB_OFFLINE is set)"
    elif hub_reachable():
        return False
    else:
        why = f"{constants.ENDPOINT} does not answer (offline?)"
    if is_cached(repo_id):
        return True
    raise ModelError(f"{what} {repo_id!r} is not in the local Hugging Face cache and {why}: {fix}")


def check_model(model: str) -> bool:
    """Check a model name before anything heavy loads; return its ``local_files_only``.

    Args:
        model: a ``.safetensors`` file, a diffusers folder or a hub id.

    Raises:
        ModelError: a pickle checkpoint, a folder without ``model_index.json``, a name that is
            neither a path nor a hub id, or a hub model that cannot load (see
            :func:`local_files_only`).
    """
    path = Path(model).expanduser()
    if path.is_file():
        if path.suffix != ".safetensors":
            raise ModelError(f"{path}: only .safetensors checkpoints are loaded (no pickles)")
        return not hub_usable()  # its config comes from the cache then, without retries
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelError(f"{path}: not a diffusers model folder (no model_index.json)")
        return False
    if model.count("/") != 1 or model.startswith((".", "/", "~")):
        raise ModelError(f"{model}: no such file or folder, and not a hub id like 'org/name'")
    return local_files_only(model)


def check_lora(lora: str | None) -> bool:
    """``local_files_only`` for an LCM-LoRA (a folder or a hub id); see :func:`local_files_only`."""
    if lora is None or Path(lora).expanduser().exists():
        return False
    return local_files_only(lora, "LCM-LoRA", LORA_FIX)


def first_line(err: BaseException) -> str:
    """The first non-empty line of an error's message (no final period), or its type's name."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0].rstrip(".") if lines else type(err).__name__


def load_error(what: str, name: str, err: Exception) -> ModelError:
    """One line for a library failure while loading ``name``, with what to do about it.

    A missing or unreadable file (an ``OSError`` or a safetensors error) says how to fix it:
    copy the folder or file again when ``name`` is local, else :data:`MODEL_FIX`; another error
    (say, not an inpainting model) shows the library's first line only.

    Args:
        what: ``model``, ``LCM-LoRA``...
        name: the hub id, folder or file.
        err: what the library raised.
    """
    path = Path(name).expanduser()
    library = type(err).__module__.split(".")[0]
    damaged = isinstance(err, OSError) or library == "safetensors"
    shown = (
        first_line(err) if isinstance(err, OSError) else f"{type(err).__name__}: {first_line(err)}"
    )
    text = f"cannot load {what} {name!r} ({shown})"
    if damaged and _not_cached(err):
        text += f": it needs files from the hub that are not in the local cache; {MODEL_FIX}"
    elif damaged and path.is_dir():
        text += ": a file in the folder is missing or damaged; copy the folder again"
    elif damaged and path.is_file():
        text += ": the file is incomplete or damaged; copy it again"
    elif damaged:
        text += f": {MODEL_FIX if what == 'model' else LORA_FIX}"
    return ModelError(text)


def _not_cached(err: Exception) -> bool:
    """Whether ``err`` is huggingface_hub's "not in the cache, and the hub is off" error."""
    names = {"LocalEntryNotFoundError", "OfflineModeIsEnabled"}
    return any(kind.__name__ in names for kind in type(err).__mro__)
