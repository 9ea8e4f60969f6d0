"""TD3+BC: A Minimalist Approach to Offline Reinforcement Learning (Fujimoto & Gu, NeurIPS 2021).

TD3 (twin critics, target policy smoothing, delayed actor and target updates) whose actor maximises
λ·Q(s, π(s)) − (π(s) − a)², with λ = α / mean|Q(s, π(s))| over the batch (detached), so the BC term's
weight does not depend on the scale of the returns; states are standardised by the dataset's mean
and std (the agent's encoder).

Deliberate deviations: the std floor is 1e-6 (the paper adds 1e-3 to every std), the encoder's
standardisation shared with every DynShift agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from stable_baselines3 import TD3
from stable_baselines3.common.utils import polyak_update

from dynshift_agents.algorithms.sb3 import SB3Agent, SB3Config, record_means


@dataclass
class TD3BCConfig(SB3Config):
    """TD3+BC's hyperparameters (paper, Table 2)."""

    alpha: float = 2.5
    """α: λ = α / mean|Q|, the weight of the Q term against behaviour cloning."""
    policy_noise: float = 0.2
    """Std of the target policy smoothing noise (actions in [-1, 1])."""
    noise_clip: float = 0.5
    """Target smoothing noise is clipped to ±this."""
    policy_delay: int = 2
    """Critic updates per actor (and target) update."""
    standardise_states: bool = True
    """States standardised by the dataset's mean and std, as in the paper."""


def td3bc_actor_loss(q: torch.Tensor, pi: torch.Tensor, actions: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """−λ·mean Q + mean (π − a)², λ = α / mean|Q| (detached); returns the loss and λ."""
    lam = alpha / q.abs().mean().detach()
    return -lam * q.mean() + F.mse_loss(pi, actions), lam


class TD3BCLearner(TD3):
    """SB3's TD3 with TD3+BC's actor loss (its own ``train()``)."""

    alpha: float = 2.5

    def train(self, gradient_steps: int, batch_size: int = 256) -> None:
        self.policy.set_training_mode(True)
        stats: dict[str, list[float]] = {"critic_loss": [], "actor_loss": [], "bc_lambda": []}
        for _ in range(gradient_steps):
            self._n_updates += 1
            data = self.replay_buffer.sample(batch_size)
            with torch.no_grad():
                noise = (torch.randn_like(data.actions) * self.target_policy_noise).clamp(-self.target_noise_clip,
                                                                                          self.target_noise_clip)
                next_actions = (self.actor_target(data.next_observations) + noise).clamp(-1, 1)
                next_q = torch.cat(self.critic_target(data.next_observations, next_actions), dim=1).min(dim=1, keepdim=True).values
                target = data.rewards + (1 - data.dones) * self.gamma * next_q
            critic_loss = sum(F.mse_loss(q, target) for q in self.critic(data.observations, data.actions))
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()
            stats["critic_loss"].append(critic_loss.item())
            if self._n_updates % self.policy_delay == 0:
                pi = self.actor(data.observations)
                actor_loss, lam = td3bc_actor_loss(self.critic.q1_forward(data.observations, pi), pi, data.actions,
                                                   self.alpha)
                self.actor.optimizer.zero_grad()
                actor_loss.backward()
                self.actor.optimizer.step()
                stats["actor_loss"].append(actor_loss.item())
                stats["bc_lambda"].append(lam.item())
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.actor.parameters(), self.actor_target.parameters(), self.tau)
        self.logger.record("train/n_updates", self._n_updates)
        record_means(self.logger, stats)


class TD3BC(SB3Agent):
    """TD3+BC on the SB3 layer."""

    name: ClassVar[str] = "td3bc"
    config_class: ClassVar[type[TD3BCConfig]] = TD3BCConfig
    config: TD3BCConfig

    def learner_class(self):
        return TD3BCLearner

    def learner_kwargs(self) -> dict[str, Any]:
        cfg = self.config
        return super().learner_kwargs() | {"policy_delay": cfg.policy_delay, "target_policy_noise": cfg.policy_noise,
                                           "target_noise_clip": cfg.noise_clip}

    def build(self) -> None:
        super().build()
        self.learner.alpha = self.config.alpha
