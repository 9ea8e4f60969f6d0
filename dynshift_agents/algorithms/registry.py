"""The one place that knows the algorithms by name: ``dynshift train NAME``, loading a checkpoint of
any algorithm, and describing a checkpoint (nothing else reads ``agent.json``)."""

from __future__ import annotations

import os
from typing import Any

from dynshift_agents.algorithms.agent import Agent, checkpoint_dir, read_meta
from dynshift_agents.algorithms.augwm import AugWM
from dynshift_agents.algorithms.awr import AWR
from dynshift_agents.algorithms.bc import BC
from dynshift_agents.algorithms.bcq import BCQ
from dynshift_agents.algorithms.bear import BEAR
from dynshift_agents.algorithms.bracp import BRACP
from dynshift_agents.algorithms.cql import CQL
from dynshift_agents.algorithms.fb import FB
from dynshift_agents.algorithms.iql import IQL
from dynshift_agents.algorithms.model_based import ModelBasedAgent
from dynshift_agents.algorithms.mopo import MOPO
from dynshift_agents.algorithms.rambo import RAMBO
from dynshift_agents.algorithms.td3bc import TD3BC

ALGORITHMS: dict[str, type[Agent]] = {cls.name: cls for cls in (ModelBasedAgent, MOPO, AugWM, RAMBO, BC, CQL, IQL, TD3BC,
                                                                 BCQ, BEAR, BRACP, AWR, FB)}
"""Algorithm name → class (``dynshift train NAME``)."""
MODEL_BASED = sorted(name for name, cls in ALGORITHMS.items() if issubclass(cls, ModelBasedAgent))
"""The algorithms that train on a world model (``dynshift train world-model --for NAME``)."""


def needs_world_model(name: str) -> bool:
    """Whether ``dynshift train NAME`` trains on a world model (the one answer to that question)."""
    algorithm_class(name)  # an unknown name is refused, naming the valid ones
    return name in MODEL_BASED


def algorithm_class(name: str) -> type[Agent]:
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; choose one of {sorted(ALGORITHMS)}")
    return ALGORITHMS[name]


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """What a checkpoint holds (``agent.json``): algorithm, config, env, dataset, seed, steps, encoder."""
    meta = read_meta(path)
    algorithm_class(meta["algorithm"])
    return meta


def load(path: str | os.PathLike, dataset=None, device: str = "cpu") -> Agent:
    """Load the agent saved in ``path`` (a checkpoint or a run directory), whatever its algorithm."""
    return algorithm_class(describe(path)["algorithm"]).load(checkpoint_dir(path), dataset=dataset, device=device)
