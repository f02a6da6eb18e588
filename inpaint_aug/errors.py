"""Typed exceptions. Every message names the offending file or value and what was expected.

Two families:

* :class:`FatalError` and subclasses stop a run. The CLI prints ``str(err)`` on one line and
  exits with code 1.
* :class:`ItemError` marks one bad item (an image, an annotation). The runner skips the item,
  counts it under :attr:`ItemError.reason` and goes on.
"""

from __future__ import annotations


class InpaintAugError(Exception):
    """Base class of every error this package raises on purpose."""


class FatalError(InpaintAugError):
    """A problem that makes the whole run impossible (bad JSON, bad prompts, no model...)."""


class DatasetError(FatalError):
    """The COCO file cannot be read or is structurally invalid."""


class PromptError(FatalError):
    """The prompts YAML is invalid or does not fit the dataset."""


class ModelError(FatalError):
    """The inpainting model cannot be found or loaded."""


class OutputError(FatalError):
    """The output folder cannot be used (not empty, not writable, settings differ...)."""


class OptionsError(FatalError):
    """An option has a value that is not allowed; found when the options object is built.

    The message names the option, the value and what is allowed. The command line maps it to a
    usage error (exit code 2).

    Args:
        option: the flag (``--steps``), or the whole message when nothing else is given.
        value: the value refused.
        expected: what is allowed, e.g. ``"an integer >= 1"``.

    Example:
        >>> str(OptionsError("--steps", 0, "an integer >= 1"))
        '--steps 0: expected an integer >= 1'
    """

    def __init__(self, option: str, value: object = None, expected: str = "") -> None:
        shown = value.value if hasattr(value, "value") else value
        text = f"{option} {shown!r}" if isinstance(shown, str) else f"{option} {shown}"
        super().__init__(f"{text}: expected {expected}" if expected else option)
        self.option = option

    @classmethod
    def free(cls, message: str) -> OptionsError:
        """An options error whose message is written out in full (a cross-field rule)."""
        return cls(message)


class OutOfMemory(InpaintAugError):
    """The accelerator ran out of memory for one batch; the caller retries with smaller ones."""


class Interrupted(FatalError):
    """The run was stopped by SIGINT or SIGTERM; finished work is kept for the same command."""


class ItemError(InpaintAugError):
    """One item is unusable; it is skipped and counted under ``reason``.

    Args:
        reason: a short, stable key used for counting (e.g. ``"image-missing"``).
        detail: a human-readable explanation with the offending value.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
