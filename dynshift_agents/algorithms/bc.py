"""BC: behaviour cloning, the baseline every offline table needs.

A deterministic actor (SB3's TD3 actor: an MLP with a tanh output, actions in [-1, 1]) regressed on the
dataset's actions by mean squared error, as the BC baselines of TD3+BC and CORL. States are
standardised by the dataset's mean and std. The critics SB3 builds beside the actor are not trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch.nn.functional as F
from stable_baselines3 import TD3

from dynshift_agents.algorithms.sb3 import SB3Agent, SB3Config, record_means


@dataclass
class BCConfig(SB3Config):
    """Behaviour cloning's settings (CORL's BC: 256×2, Adam 3e-4, batch 256)."""

    standardise_states: bool = True
    """States standardised by the dataset's mean and std."""


class BCLearner(TD3):
    """SB3's TD3 policy, of which only the actor is trained, on the dataset's actions."""

    def train(self, gradient_steps: int, batch_size: int = 256) -> None:
        self.policy.set_training_mode(True)
        losses = []
        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size)
            loss = F.mse_loss(self.actor(data.observations), data.actions)
            self.actor.optimizer.zero_grad()
            loss.backward()
            self.actor.optimizer.step()
            losses.append(loss.item())
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates)
        record_means(self.logger, {"bc_loss": losses})


class BC(SB3Agent):
    """Behaviour cloning on the SB3 layer."""

    name: ClassVar[str] = "bc"
    config_class: ClassVar[type[BCConfig]] = BCConfig
    config: BCConfig

    def learner_class(self):
        return BCLearner

    def q_mean(self) -> None:
        return None  # no critic is trained

    def parameters(self):
        return list(self.learner.actor.parameters())
