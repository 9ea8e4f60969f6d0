"""Gymnasium MuJoCo environments with controlled, exactly specified dynamics shifts.

``import dynshift_envs`` registers ``DynShift/HalfCheetah-v0``, ``DynShift/Walker2d-v0``,
``DynShift/Hopper-v0`` and ``DynShift/Ant-v0``; ``gym.make("dynshift_envs:DynShift/Hopper-v0")``
imports it on demand. Keyword arguments (``mass``, ``damping``, ``scale_inertia``, ``crippled_legs``,
``morphology``, ``friction``, ``gravity``, ``joint_range``, ``schedule``, ``context_in_obs``) are documented in each env class's docstring.
"""

from __future__ import annotations

import gymnasium as gym

from dynshift_envs.base import OBSERVATION_KEYWORDS
from dynshift_envs.dynamics import Dynamics, Uniform
from dynshift_envs.grids import GRIDS, Grid, get_grid, load_grid
from dynshift_envs.robots import ROBOTS, Robot, get_robot

__all__ = ["ENV_IDS", "GRIDS", "OBSERVATION_KEYWORDS", "ROBOTS", "Dynamics", "Grid", "Robot", "Uniform", "get_grid", "load_grid",
           "get_robot"]

ENTRY_POINTS = {r.env_id: r.entry_point for r in ROBOTS.values()}
ENV_IDS = tuple(ENTRY_POINTS)
"""Every registered DynShift env id."""

V5_TWINS = {r.env_id: r.v5_id for r in ROBOTS.values()}
"""The Gymnasium environment each DynShift env reproduces bit for bit with default arguments."""

for _env_id, _entry_point in ENTRY_POINTS.items():
    if _env_id not in gym.registry:
        gym.register(id=_env_id, entry_point=_entry_point, max_episode_steps=1000)
