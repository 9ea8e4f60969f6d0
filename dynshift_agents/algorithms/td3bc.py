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
from typing import ClassVar

import torch
import torch.nn.functional as F
from stable_baselines3 import TD3
from stable_baselines3.common.utils import polyak_update

from dynshift_agents.algorithms.agent import optimizer_step
from dynshift_agents.algorithms.sb3 import OfflineLearner, SB3Agent, SB3Config
from dynshift_agents.checks import COUNT, NON_NEGATIVE, Range


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

    RANGES: ClassVar[dict[str, Range]] = {"alpha": NON_NEGATIVE, "policy_noise": NON_NEGATIVE, "noise_clip": NON_NEGATIVE,
                                          "policy_delay": COUNT}


def td3bc_actor_loss(q: torch.Tensor, pi: torch.Tensor, actions: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """−λ·mean Q + mean (π − a)², λ = α / mean|Q| (detached); returns the loss and λ."""
    lam = alpha / q.abs().mean().detach()
    return -lam * q.mean() + F.mse_loss(pi, actions), lam


class TD3BCLearner(OfflineLearner, TD3):
    """SB3's TD3 networks trained with TD3+BC's losses."""

    config: TD3BCConfig

    def update(self, data, step: int) -> dict[str, torch.Tensor]:
        cfg = self.config
        with torch.no_grad():
            noise = (torch.randn_like(data.actions) * cfg.policy_noise).clamp(-cfg.noise_clip, cfg.noise_clip)
            next_actions = (self.actor_target(data.next_observations) + noise).clamp(-1, 1)
            next_q = torch.cat(self.critic_target(data.next_observations, next_actions), dim=1).min(dim=1, keepdim=True).values
            target = data.rewards + (1 - data.dones) * cfg.gamma * next_q
        critic_loss = sum(F.mse_loss(q, target) for q in self.critic(data.observations, data.actions))
        optimizer_step(self.critic.optimizer, critic_loss)
        metrics = {"critic_loss": critic_loss.detach()}
        if (step + 1) % cfg.policy_delay == 0:  # the actor and the targets every policy_delay-th update
            pi = self.actor(data.observations)
            actor_loss, lam = td3bc_actor_loss(self.critic.q1_forward(data.observations, pi), pi, data.actions, cfg.alpha)
            optimizer_step(self.actor.optimizer, actor_loss)
            metrics |= {"actor_loss": actor_loss.detach(), "bc_lambda": lam}
            polyak_update(self.critic.parameters(), self.critic_target.parameters(), cfg.tau)
            polyak_update(self.actor.parameters(), self.actor_target.parameters(), cfg.tau)
        return metrics


class TD3BC(SB3Agent, name="td3bc", config=TD3BCConfig, learner=TD3BCLearner):
    """TD3+BC on the SB3 layer."""
    config: TD3BCConfig

