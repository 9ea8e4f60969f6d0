"""MOPO: Model-based Offline Policy Optimization (Yu et al., NeurIPS 2020).

Model rollouts are penalised by the ensemble's disagreement: r̃(s, a) = r(s, a) − λ · u(s, a), with
u the largest, over *all* members, Euclidean norm of a member's predicted standard deviation over
(Δstate, reward) — the "max aleatoric" estimator of the official code. Everything else is the
model-based layer (:mod:`dynshift_agents.algorithms.model_based`) with MOPO's defaults.

Deliberate deviations: none in the algorithm; CPU-scale presets shorten training (see
:data:`PRESETS` and ``dynshift train --help``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from dynshift_agents.algorithms.model_based import ModelBasedAgent, ModelBasedConfig
from dynshift_agents.checks import NON_NEGATIVE, Range
from dynshift_agents.data.catalog import robot_and_kind
from dynshift_agents.rollout import ModelStep


@dataclass
class MOPOConfig(ModelBasedConfig):
    """MOPO's hyperparameters (paper and official code)."""

    RANGES: ClassVar[dict[str, Range]] = {"penalty_coef": NON_NEGATIVE}

    penalty_coef: float = 1.0
    """λ: weight of the uncertainty penalty."""
    rollout_length: int = 5
    """h: model steps per rollout."""

    @classmethod
    def for_dataset(cls, dataset_id: str, **overrides) -> "MOPOConfig":
        """The official (h, λ) of the dataset's robot and kind (D4RL v0 settings), if known."""
        robot, kind = robot_and_kind(dataset_id)
        h, lam = PRESETS.get((robot, kind), (cls.rollout_length, cls.penalty_coef))
        return cls.from_dict({"rollout_length": h, "penalty_coef": lam} | overrides)


PRESETS: dict[tuple[str, str], tuple[int, float]] = {
    ("halfcheetah", "random"): (5, 0.5), ("halfcheetah", "medium"): (1, 1.0),
    ("halfcheetah", "mixed"): (5, 1.0), ("halfcheetah", "medium-expert"): (5, 5.0),
    ("hopper", "random"): (5, 1.0), ("hopper", "medium"): (5, 5.0),
    ("hopper", "mixed"): (5, 1.0), ("hopper", "medium-expert"): (5, 1.0),
    ("walker2d", "random"): (1, 1.0), ("walker2d", "medium"): (5, 5.0),
    ("walker2d", "mixed"): (1, 1.0), ("walker2d", "medium-expert"): (1, 2.0),
}
"""(h, λ) per (robot, kind) from the official MOPO code (D4RL v0; ``mixed`` is medium-replay)."""


def mopo_uncertainty(std: torch.Tensor) -> torch.Tensor:
    """u = max over members of ‖σ_member‖₂ over the output dimensions; ``std`` is ``[members, batch, out]``."""
    return std.norm(dim=-1).amax(dim=0)


class MOPO(ModelBasedAgent, name="mopo", config=MOPOConfig):
    """MOPO on the offline base: penalised model rewards, SAC (or TQC) on the mixture."""
    config: MOPOConfig

    def process_model_step(self, step: ModelStep) -> ModelStep:
        penalty = self.config.penalty_coef * mopo_uncertainty(step.std)
        return step.replace(rewards=step.rewards - penalty)
