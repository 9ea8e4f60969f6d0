"""Standard evaluation grids of the papers: settings as keyword arguments for ``gym.make``.

Each :class:`Grid` lists plain-JSON settings, so a benchmark can run
``gym.make(env_id, **setting)`` for every setting of ``GRIDS[name]`` on every env id it applies to.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MULTIPLIERS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
"""Mass and damping multipliers of the AugWM paper's test grid, {0.25, 0.50, …, 1.75}."""


@dataclass(frozen=True)
class Grid:
    """A named list of dynamics settings and the env ids they apply to."""

    name: str
    env_ids: tuple[str, ...]
    """The env ids it applies to; empty for a grid read from a file (any env its settings build on)."""
    settings: tuple[dict[str, Any], ...]
    description: str

    def __len__(self) -> int:
        return len(self.settings)


MASS_DAMPING = Grid(
    "mass-damping",
    ("DynShift/HalfCheetah-v0", "DynShift/Walker2d-v0", "DynShift/Hopper-v0", "DynShift/Ant-v0"),
    tuple({"mass": m, "damping": d} for m, d in itertools.product(MULTIPLIERS, MULTIPLIERS)),
    "7x7 mass x damping multipliers {0.25, 0.50, ..., 1.75} (AugWM, Ball et al. 2021)",
)
ANT_CRIPPLED = Grid(
    "ant-crippled",
    ("DynShift/Ant-v0",),
    tuple({"crippled_legs": [leg]} for leg in range(4))
    + tuple({"crippled_legs": list(pair)} for pair in itertools.combinations(range(4), 2)),
    "every one-leg (4) and two-leg (6) crippled Ant",
)
CHEETAH_MORPHOLOGY = Grid(
    "cheetah-morphology",
    ("DynShift/HalfCheetah-v0",),
    ({"morphology": "big"}, {"morphology": "small"}),
    "HalfCheetah with 1.25x (big) and 0.75x (small) legs",
)

ALL_ROBOTS = MASS_DAMPING.env_ids

MORPHOLOGY = Grid(
    "morphology",
    ALL_ROBOTS,
    ({"morphology": "big"}, {"morphology": "small"}),
    "every limb 1.25x (big) and 0.75x (small), total mass kept (gym-extensions' big/small variants, every robot)",
)

ODRL_LEVELS = (0.1, 0.5, 2.0, 5.0)
"""The friction and gravity levels of the off-dynamics benchmark ODRL (Lyu et al., NeurIPS 2024): the
shift levels its ``envs/mujoco/call_mujoco_env.py`` accepts for ``<robot>-friction`` and
``<robot>-gravity`` (``OffDynamicsRL/off-dynamics-rl``). Its kinematic and morphology levels
(easy / medium / hard) are hand-edited XML files per robot that are not in the sources available to
this project, so they are not grids here; ``joint_range`` and ``morphology`` maps express them."""

ODRL_FRICTION = Grid(
    "odrl-friction",
    ALL_ROBOTS,
    tuple({"friction": k} for k in ODRL_LEVELS),
    "every contact's friction x 0.1, 0.5, 2, 5 (ODRL's friction levels)",
)
ODRL_GRAVITY = Grid(
    "odrl-gravity",
    ALL_ROBOTS,
    tuple({"gravity": k} for k in ODRL_LEVELS),
    "gravity x 0.1, 0.5, 2, 5 (ODRL's gravity levels)",
)
KINEMATIC = Grid(
    "kinematic",
    ALL_ROBOTS,
    tuple({"joint_range": k} for k in (0.75, 0.5, 0.25)),
    "every limited joint's range x 0.75, 0.5, 0.25 about its centre (broken joints, three levels)",
)

GRIDS = {grid.name: grid for grid in (MASS_DAMPING, ANT_CRIPPLED, CHEETAH_MORPHOLOGY, MORPHOLOGY, ODRL_FRICTION,
                                      ODRL_GRAVITY, KINEMATIC)}
"""Every standard grid by name."""


def get_grid(name: str) -> Grid:
    """The standard grid called ``name``; ``ValueError`` lists the known names."""
    if name not in GRIDS:
        raise ValueError(f"unknown grid {name!r}; known grids: {', '.join(GRIDS)}")
    return GRIDS[name]


def load_grid(name_or_file: str) -> Grid:
    """A standard grid by name, or a JSON file of settings (a list, or ``{"settings": [...]}``) as a grid
    named after the file's stem; ``ValueError`` lists the standard names."""
    if name_or_file in GRIDS:
        return GRIDS[name_or_file]
    path = Path(name_or_file)
    if not path.is_file():
        raise ValueError(f"unknown grid {name_or_file!r}: not one of {', '.join(GRIDS)} and not a file")
    loaded = json.loads(path.read_text())
    settings = tuple(loaded["settings"] if isinstance(loaded, dict) else loaded)
    if not settings or not all(isinstance(setting, dict) for setting in settings):
        raise ValueError(f"{path} must hold a non-empty list of settings (env keyword tables)")
    return Grid(path.stem, (), settings, f"{len(settings)} settings from {path.name}")
