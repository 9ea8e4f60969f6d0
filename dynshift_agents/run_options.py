"""How a training run is driven, as one value: the Python API (:func:`dynshift_agents.experiment.train`),
the command line (``dynshift train``'s flags take their defaults from here) and sweep specs (their
``[budget]`` table and ``device`` key) all build a :class:`RunOptions`, so a run started from any of
them is the same run.

What a run *learns* (an algorithm's hyperparameters) is its config, not these options: changing an
option never changes the numbers a CPU run produces, except ``gradient_steps``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import ClassVar

from dynshift_agents.checks import COUNT, STEPS, Range, check_ranges

DEVICE_CHOICES = "cpu, cuda, cuda:N or auto"


@dataclass(frozen=True)
class RunOptions:
    """The options of one training run; every field is checked when the value is built."""

    gradient_steps: int = 100_000
    """Learner updates in total (CPU scale: about 20 minutes of a model-free learner on one core; the
    papers use 1–3 M). A run directory holding a checkpoint resumes up to this count."""
    eval_every: int = 0
    """Evaluate every N gradient steps into the run's log (learning curves); 0 = never."""
    eval_episodes: int = 10
    """Episodes per periodic evaluation (seeded, deterministic, on the training data's robot)."""
    checkpoint_every: int = 10_000
    """Gradient steps between checkpoints (an interrupted run resumes from the last); one is always
    written at the end."""
    keep_checkpoints: bool = False
    """Also keep every periodic checkpoint as ``RUN/checkpoints/step_<steps>/`` (hard links)."""
    threads: int = 1
    """Torch's CPU threads (one per job: two jobs of two threads run far slower on two cores)."""
    device: str = "cpu"
    """Where everything the run allocates lives: ``cpu``, ``cuda``, ``cuda:N``, or ``auto`` (CUDA where
    present, else the CPU)."""
    progress: bool = True
    """Progress bars (off in logs and sweeps)."""

    RANGES: ClassVar[dict[str, Range]] = {"gradient_steps": COUNT, "eval_every": STEPS, "eval_episodes": COUNT,
                                          "checkpoint_every": COUNT, "threads": COUNT}

    def __post_init__(self):
        check_ranges(self, qualified=False)
        for name in ("keep_checkpoints", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        check_device(self.device)

    @classmethod
    def of(cls, base: "RunOptions | None" = None, **changes) -> "RunOptions":
        """``base`` (default: the defaults) with ``changes``; ``None`` values leave a field as it is, an
        unknown name is refused with the valid ones."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(changes) - set(names))
        if unknown:
            raise TypeError(f"unknown run options {unknown}; valid: {names}")
        return dataclasses.replace(base or cls(), **{k: v for k, v in changes.items() if v is not None})


def check_device(device: str) -> str:
    """``device`` if it is one of ``cpu``, ``cuda``, ``cuda:N``, ``auto``; otherwise a ValueError naming them."""
    if not isinstance(device, str) or not re.fullmatch(r"cpu|auto|cuda(:\d+)?", device):
        raise ValueError(f"device must be one of {DEVICE_CHOICES}, got {device!r}")
    return device


def resolve_device(device: str) -> str:
    """The torch device a run uses: ``auto`` becomes ``cuda`` where CUDA is present, else ``cpu``; a CUDA
    device that is not there is refused before anything is built."""
    import torch

    check_device(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: this torch ({torch.__version__}) sees no CUDA device; use cpu or auto")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    return device


DEFAULTS = RunOptions()
"""The default run options (the CLI's flag defaults, the Python API's, a sweep budget's)."""
