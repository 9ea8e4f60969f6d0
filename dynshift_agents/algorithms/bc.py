"""BC: behaviour cloning, the baseline every offline table needs.

A deterministic actor (SB3's TD3 actor: an MLP with a tanh output, actions in [-1, 1]) regressed on the
dataset's actions by mean squared error, as the BC baselines of TD3+BC and CORL. States are
standardised by the dataset's mean and std. The critics SB3 builds beside the actor are not trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from stable_baselines3 import TD3

from dynshift_agents.algorithms.agent import optimizer_step
from dynshift_agents.algorithms.sb3 import OfflineLearner, SB3Agent, SB3Config


@dataclass
class BCConfig(SB3Config):
    """Behaviour cloning's settings (CORL's BC: 256×2, Adam 3e-4, batch 256)."""

    standardise_states: bool = True
    """States standardised by the dataset's mean and std."""


class BCLearner(OfflineLearner, TD3):
    """SB3's TD3 policy, of which only the actor is trained, on the dataset's actions."""

    def update(self, data, step: int) -> dict[str, torch.Tensor]:
        loss = F.mse_loss(self.actor(data.observations), data.actions)
        optimizer_step(self.actor.optimizer, loss)
        return {"bc_loss": loss.detach()}


class BC(SB3Agent, name="bc", config=BCConfig, learner=BCLearner):
    """Behaviour cloning on the SB3 layer."""
    config: BCConfig

    def q_mean(self) -> None:
        return None  # no critic is trained

    def parameters(self):
        return list(self.learner.actor.parameters())
