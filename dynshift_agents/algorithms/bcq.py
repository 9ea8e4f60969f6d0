"""BCQ: Off-Policy Deep Reinforcement Learning without Exploration (Fujimoto, Meger, Precup, ICML 2019),
the continuous-action version.

Actions come from a conditional VAE of the behaviour policy, nudged by a perturbation network
ξ(s, a) bounded by Φ (in the policy's [-1, 1] action units, so within Φ·(high − low)/2 in env units).
Twin critics regress on the soft clipped double-Q target: for each s', ``target_samples`` VAE actions
are perturbed by the target ξ, each valued λ·min(Q̄₁, Q̄₂) + (1 − λ)·max(Q̄₁, Q̄₂), and the best is
taken. ξ maximises Q₁(s, ξ(s, a_VAE)). Acting takes the argmax of Q₁ over ``act_samples`` perturbed
VAE actions. Sizes and rates are the original code's: VAE 750-750 with a latent of 2·|A|, ξ and the
critics 400-300, Adam 1e-3, batch 100.

Built on SB3's TD3: its twin critics and their targets are BCQ's critics; the perturbation network
and the VAE are modules of the learner, saved with it. TD3's own actor is not used (it is built
small). Deliberate deviations: none in the algorithm.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3 import TD3
from stable_baselines3.common.utils import polyak_update

from dynshift_agents.algorithms.agent import optimizer_step
from dynshift_agents.algorithms.behaviour_models import BehaviourVAE, mlp
from dynshift_agents.algorithms.sb3 import OfflineLearner, SB3Agent, SB3Config
from dynshift_agents.checks import COUNT, FRACTION, NON_NEGATIVE, Range, SIZES


@dataclass
class BCQConfig(SB3Config):
    """BCQ's hyperparameters (paper and original code)."""

    RANGES: ClassVar[dict[str, Range]] = {"phi": NON_NEGATIVE, "lmbda": FRACTION, "target_samples": COUNT,
                                          "act_samples": COUNT, "vae_hidden": SIZES}

    net_arch: tuple[int, ...] = (400, 300)
    """Hidden layers of the perturbation network and of each critic."""
    learning_rate: float = 1e-3
    batch_size: int = 100
    phi: float = 0.05
    """Φ: the perturbation's bound (actions in [-1, 1])."""
    lmbda: float = 0.75
    """λ of the soft clipped double-Q target."""
    target_samples: int = 10
    """VAE actions per next state in the target."""
    act_samples: int = 100
    """VAE actions per state when acting."""
    vae_hidden: tuple[int, ...] = (750, 750)

    def __post_init__(self):
        super().__post_init__()
        self.vae_hidden = tuple(self.vae_hidden)


def soft_clipped_target(q1: torch.Tensor, q2: torch.Tensor, lmbda: float, samples: int) -> torch.Tensor:
    """λ·min + (1 − λ)·max of two critics' values ``[batch·samples, 1]``, then the max over each
    state's ``samples`` → ``[batch, 1]``."""
    q = lmbda * torch.min(q1, q2) + (1 - lmbda) * torch.max(q1, q2)
    return q.view(-1, samples).max(dim=1, keepdim=True).values


class BCQLearner(OfflineLearner, TD3):
    """SB3's TD3 critics plus BCQ's perturbation network and VAE, trained with BCQ's losses."""

    config: BCQConfig

    def _setup_model(self) -> None:
        super()._setup_model()
        cfg = self.config
        obs_dim, action_dim = self.observation_space.shape[0], self.action_space.shape[0]
        self.perturbation = mlp(obs_dim + action_dim, action_dim, cfg.net_arch).to(self.device)
        self.perturbation_target = copy.deepcopy(self.perturbation)
        self.perturbation_optimizer = torch.optim.Adam(self.perturbation.parameters(), lr=cfg.learning_rate)
        self.vae = BehaviourVAE(obs_dim, action_dim, cfg.vae_hidden).to(self.device)
        self.vae_optimizer = torch.optim.Adam(self.vae.parameters(), lr=cfg.learning_rate)

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        return [*state_dicts, "perturbation", "perturbation_target", "perturbation_optimizer", "vae",
                "vae_optimizer"], variables

    def perturb(self, obs: torch.Tensor, actions: torch.Tensor, target: bool = False) -> torch.Tensor:
        """a + Φ·tanh(ξ(s, a)), clipped to [-1, 1]."""
        network = self.perturbation_target if target else self.perturbation
        return (actions + self.config.phi * torch.tanh(network(torch.cat([obs, actions], -1)))).clamp(-1, 1)

    @torch.no_grad()
    def select(self, obs: torch.Tensor, samples: int) -> torch.Tensor:
        """Per state, the perturbed VAE action (of ``samples``) with the highest Q₁."""
        repeated = obs.repeat_interleave(samples, dim=0)
        actions = self.perturb(repeated, self.vae.decode(repeated))
        best = self.critic.q1_forward(repeated, actions).view(-1, samples).argmax(dim=1)
        return actions.view(len(obs), samples, -1)[torch.arange(len(obs)), best]

    def update(self, data, step: int) -> dict[str, torch.Tensor]:
        cfg = self.config
        vae_loss = self.vae.loss(data.observations, data.actions)
        optimizer_step(self.vae_optimizer, vae_loss)

        with torch.no_grad():
            next_obs = data.next_observations.repeat_interleave(cfg.target_samples, dim=0)
            next_actions = self.perturb(next_obs, self.vae.decode(next_obs), target=True)
            next_q = soft_clipped_target(*self.critic_target(next_obs, next_actions), cfg.lmbda, cfg.target_samples)
            target = data.rewards + (1 - data.dones) * cfg.gamma * next_q
        critic_loss = sum(F.mse_loss(q, target) for q in self.critic(data.observations, data.actions))
        optimizer_step(self.critic.optimizer, critic_loss)

        with torch.no_grad():
            sampled = self.vae.decode(data.observations)
        actor_loss = -self.critic.q1_forward(data.observations, self.perturb(data.observations, sampled)).mean()
        optimizer_step(self.perturbation_optimizer, actor_loss)
        polyak_update(self.critic.parameters(), self.critic_target.parameters(), cfg.tau)
        polyak_update(self.perturbation.parameters(), self.perturbation_target.parameters(), cfg.tau)
        return {"vae_loss": vae_loss.detach(), "critic_loss": critic_loss.detach(), "actor_loss": actor_loss.detach()}


class BCQ(SB3Agent, name="bcq", config=BCQConfig, learner=BCQLearner):
    """BCQ on the SB3 layer."""
    config: BCQConfig
    q_on_dataset_actions = True  # TD3's actor is unused: value the data's actions

    def learner_kwargs(self) -> dict[str, Any]:
        arch = {"pi": [16], "qf": list(self.config.net_arch)}  # TD3's actor is unused: built small
        return super().learner_kwargs() | {"policy_kwargs": {"net_arch": arch}}

    def act(self, policy_obs: np.ndarray, deterministic: bool) -> np.ndarray:
        obs = torch.as_tensor(policy_obs, dtype=torch.float32, device=self.learner.device)
        actions = self.learner.select(obs, self.config.act_samples).cpu().numpy()
        return self.learner.policy.unscale_action(actions)

    def parameters(self) -> list[torch.Tensor]:
        learner = self.learner
        return [*learner.critic.parameters(), *learner.perturbation.parameters(), *learner.vae.parameters()]
