"""Vectorised termination functions, one per robot: ``done = fn(obs, action, next_obs)`` on batches.

They restate Gymnasium v5's ``is_healthy`` on observations (positions excluded from the observation,
as in v5's defaults), so model rollouts stop where the real robot's episode would. Arrays or tensors
of shape ``[batch, obs_dim]`` in, a boolean ``[batch]`` out.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from dynshift_envs import get_robot


def _lib(x):
    return torch if isinstance(x, torch.Tensor) else np


def halfcheetah(obs, action, next_obs):
    """HalfCheetah never terminates."""
    lib = _lib(next_obs)
    if lib is torch:
        return torch.zeros(next_obs.shape[:-1], dtype=torch.bool, device=next_obs.device)
    return np.zeros(next_obs.shape[:-1], bool)


def hopper(obs, action, next_obs):
    """Unhealthy when height z ≤ 0.7, |angle| ≥ 0.2, or any of obs[1:] (qpos[2:], qvel) leaves (−100, 100)."""
    lib = _lib(next_obs)
    z, angle = next_obs[..., 0], next_obs[..., 1]
    state_ok = lib.all(lib.abs(next_obs[..., 1:]) < 100, axis=-1) if lib is np else (next_obs[..., 1:].abs() < 100).all(-1)
    healthy = (z > 0.7) & (angle > -0.2) & (angle < 0.2) & state_ok
    return ~healthy


def walker2d(obs, action, next_obs):
    """Unhealthy when height z leaves (0.8, 2.0) or the angle leaves (−1, 1)."""
    z, angle = next_obs[..., 0], next_obs[..., 1]
    healthy = (z > 0.8) & (z < 2.0) & (angle > -1.0) & (angle < 1.0)
    return ~healthy


def ant(obs, action, next_obs):
    """Unhealthy when the torso height z leaves [0.2, 1.0] or the observation is not finite."""
    lib = _lib(next_obs)
    z = next_obs[..., 0]
    finite = lib.isfinite(next_obs).all(-1) if lib is torch else np.isfinite(next_obs).all(-1)
    healthy = finite & (z >= 0.2) & (z <= 1.0)
    return ~healthy


TERMINATION_FNS: dict[str, Callable] = {"halfcheetah": halfcheetah, "hopper": hopper, "walker2d": walker2d, "ant": ant}


def termination_fn(env: str) -> Callable:
    """The termination function of a robot name or DynShift env id."""
    return TERMINATION_FNS[get_robot(env).name]
