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
from stable_baselines3.sac.policies import LOG_STD_MAX, LOG_STD_MIN, SACPolicy

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


class SampledActor:
    """A SAC actor acting for data collection with results that do not depend on the CPU or the batch.

    SB3's ``predict`` computes in float32 with whatever matrix kernel torch picks for the batch's shape
    on this CPU, and rows of one batch come out one rounding apart from the same rows alone, or on
    another CPU; MuJoCo turns that into a different episode, so the same collection call could give
    other data on another machine. Here the actor's function (ReLU layers, Gaussian mean
    and clamped log-std, tanh squashing, SB3's rescaling to the action bounds) is evaluated in float64
    from its float32 weights, with its noise drawn from a seeded numpy generator, and the action is
    rounded to float32 once: summation-order differences (about 1e-16) vanish in that rounding.
    ``predict`` has SB3's signature; ``deterministic=True`` gives SB3's deterministic action (to float32
    rounding)."""

    def __init__(self, policy: SACPolicy, rng: np.random.Generator | int | None = None):
        actor = policy.actor
        if actor.use_sde:
            raise ValueError("SampledActor is for SAC's Gaussian actor; gSDE actors are not supported")

        def linear(layer: torch.nn.Linear) -> tuple[np.ndarray, np.ndarray]:
            return layer.weight.detach().double().numpy().T.copy(), layer.bias.detach().double().numpy()

        kinds = {type(m) for m in actor.latent_pi}
        if not kinds <= {torch.nn.Linear, torch.nn.ReLU}:
            raise ValueError(f"SampledActor evaluates Linear and ReLU layers only, found {sorted(k.__name__ for k in kinds)}")
        self.hidden = [linear(m) for m in actor.latent_pi if isinstance(m, torch.nn.Linear)]
        self.mu, self.log_std = linear(actor.mu), linear(actor.log_std)
        self.low = policy.action_space.low.astype(np.float64)
        self.high = policy.action_space.high.astype(np.float64)
        self.observation_space = policy.observation_space
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = False):
        x = np.asarray(observation, dtype=np.float32).astype(np.float64)  # the float32 input SB3 would see
        for weight, bias in self.hidden:
            x = np.maximum(x @ weight + bias, 0.0)
        u = x @ self.mu[0] + self.mu[1]
        if not deterministic:
            log_std = np.clip(x @ self.log_std[0] + self.log_std[1], LOG_STD_MIN, LOG_STD_MAX)
            u = u + np.exp(log_std) * self.rng.standard_normal(u.shape)
        action = self.low + 0.5 * (np.tanh(u) + 1.0) * (self.high - self.low)
        return action.astype(np.float32), state


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

