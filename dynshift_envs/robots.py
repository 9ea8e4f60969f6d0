"""The one table of facts about each robot; everything else looks them up here.

A :class:`Robot` holds the short name used in dataset ids (``"halfcheetah"``), the DynShift env id and
its entry point, the Gymnasium v5 env it reproduces bit for bit with default arguments, the camera
distance for videos, and D4RL's reference returns for normalised scores (``d4rl/infos.py``). The
termination functions of the model-based agents are code, keyed by the same names
(``dynshift_agents.termination``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Robot:
    name: str
    """Short name, as in dataset ids (``dynshift/<name>/<kind>-v0``)."""
    env_id: str
    entry_point: str
    v5_id: str
    """The Gymnasium env this one equals bit for bit with default arguments."""
    camera_distance: float
    """Distance of the torso-tracking camera in videos."""
    d4rl_random: float
    """D4RL's random-policy reference return."""
    d4rl_expert: float
    """D4RL's expert reference return."""


ROBOTS: dict[str, Robot] = {robot.name: robot for robot in (
    Robot("halfcheetah", "DynShift/HalfCheetah-v0", "dynshift_envs.half_cheetah:HalfCheetahEnv", "HalfCheetah-v5", 4.0,
          -280.178953, 12135.0),
    Robot("walker2d", "DynShift/Walker2d-v0", "dynshift_envs.walker2d:Walker2dEnv", "Walker2d-v5", 4.0,
          1.629008, 4592.3),
    Robot("hopper", "DynShift/Hopper-v0", "dynshift_envs.hopper:HopperEnv", "Hopper-v5", 3.0, -20.272305, 3234.3),
    Robot("ant", "DynShift/Ant-v0", "dynshift_envs.ant:AntEnv", "Ant-v5", 5.0, -325.6, 3879.7),
)}
"""Robot name → its facts."""


def get_robot(name_or_env_id: str) -> Robot:
    """The robot of a short name (``"hopper"``), a DynShift env id or its v5 twin's id."""
    for entry in ROBOTS.values():
        if name_or_env_id in (entry.name, entry.env_id, entry.v5_id):
            return entry
    raise ValueError(f"unknown robot or env {name_or_env_id!r}; choose one of {sorted(ROBOTS)} or "
                     f"{sorted(r.env_id for r in ROBOTS.values())}")
