"""Behaviour policies: the SAC actors shipped with the package, loaded without pickled code.

Each robot ships a *medium* and an *expert* actor, plus the snapshots of the SAC run that led to the
medium one (the *mixed* data's policies), trained by ``scripts/train_behaviour.py`` and chosen by
``scripts/ship_behaviour.py``. A file holds an actor's state dict only; it is read with
``torch.load(weights_only=True)`` into Stable-Baselines3's SAC policy, so ``predict`` is SB3's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.sac.policies import SACPolicy

from dynshift_envs import get_robot  # (importing dynshift_envs registers the ids)

NET_ARCH = [256, 256]
"""Hidden layers of every behaviour actor (SAC's default)."""


def build_policy(env_id: str) -> SACPolicy:
    """An untrained SB3 SAC policy with the behaviour actors' architecture for ``env_id``."""
    env = gym.make(env_id)
    try:
        return SACPolicy(env.observation_space, env.action_space, lr_schedule=lambda _: 0.0, net_arch=NET_ARCH)
    finally:
        env.close()


class UniformPolicy:
    """Uniform random actions with SB3's ``predict`` signature, drawn from a seeded generator."""

    def __init__(self, action_space: gym.spaces.Box, rng: np.random.Generator | int | None = None):
        self.low, self.high = action_space.low, action_space.high
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = False):
        batch = np.shape(observation)[:-1]
        return self.rng.uniform(self.low, self.high, size=(*batch, *self.low.shape)).astype(np.float32), state


@dataclass(frozen=True)
class PolicyInfo:
    """One shipped policy, as listed in ``dynshift_agents/policies/index.json``."""

    robot: str
    name: str
    """``"medium"``, ``"expert"`` or ``"mixed-<i>"`` (the i-th snapshot of the run up to medium)."""
    file: str
    steps: int
    """Env steps of the SAC run when this actor was saved."""
    return_mean: float | None = None
    """Deterministic return over 10 seeded episodes on the robot it was trained on (``scripts/ship_behaviour.py``)."""
    return_std: float | None = None
    shift: dict | None = None
    """The env keywords of the robot it was trained on (``None``: the nominal robot). DARA's source
    data come from policies trained on the source robot (the D4RL protocol)."""


def policy_set(robot: str, shift: dict | None = None) -> str:
    """The key of a robot's policies in :func:`index`: ``hopper``, or ``hopper@mass1p5`` for policies
    trained on a shifted robot."""
    from dynshift_agents.data.catalog import shift_tag

    robot = get_robot(robot).name
    tag = shift_tag(shift or {})
    return f"{robot}@{tag}" if tag else robot


@cache
def _index_file() -> dict:
    return json.loads(resources.files("dynshift_agents.policies").joinpath("index.json").read_text())


def index() -> dict[str, dict[str, PolicyInfo]]:
    """Every shipped policy: ``index()[policy_set][name]`` (``policy_set`` is the robot, or
    ``robot@<shift>`` for policies trained on a shifted robot; :func:`policy_set`)."""
    table: dict[str, dict[str, PolicyInfo]] = {}
    for entry in _index_file()["policies"]:
        info = PolicyInfo(**entry)
        table.setdefault(policy_set(info.robot, info.shift), {})[info.name] = info
    return table


def references(robot: str) -> dict[str, float]:
    """Reference returns of ``robot`` at nominal dynamics, for normalised scores: ``random`` (uniform
    random actions) and ``expert`` (the shipped expert, deterministic), means over ``episodes``
    seeded episodes, measured by ``scripts/ship_behaviour.py``."""
    robot = get_robot(robot).name
    table = _index_file().get("references", {})
    if robot not in table:
        raise ValueError(f"no reference returns shipped for {robot}; shipped: {sorted(table) or 'none'}")
    return dict(table[robot])


def policy_info(robot: str, name: str, shift: dict | None = None) -> PolicyInfo:
    key = policy_set(robot, shift)
    shipped = index().get(key, {})
    if not shipped and shift:
        trained = sorted(k for k in index() if k.startswith(get_robot(robot).name + "@"))
        raise ValueError(f"no behaviour policies trained on {key.replace('@', ' with ')} are shipped (shifted sets: "
                         f"{', '.join(trained) or 'none'}); train them with `python scripts/train_behaviour.py "
                         f"{get_robot(robot).name} --env-kwargs '{json.dumps(shift)}'` and ship them with "
                         f"`python scripts/ship_behaviour.py {get_robot(robot).name} --env-kwargs '{json.dumps(shift)}'`")
    if name not in shipped:
        raise ValueError(f"no shipped {name!r} policy for {key}; shipped: {sorted(shipped) or 'none'}")
    return shipped[name]


def load_policy(robot: str, name: str, shift: dict | None = None) -> SACPolicy:
    """The shipped ``name`` policy of ``robot`` (trained on the nominal robot, or on the one ``shift``
    describes) as an SB3 ``SACPolicy`` in eval mode, on the CPU."""
    info = policy_info(robot, name, shift)
    policy = build_policy(get_robot(info.robot).env_id)
    path = resources.files("dynshift_agents.policies").joinpath(info.file)
    with resources.as_file(path) as file:
        state = torch.load(file, map_location="cpu", weights_only=True)
    policy.actor.load_state_dict(state)
    policy.set_training_mode(False)
    return policy

