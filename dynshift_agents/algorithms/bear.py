"""BEAR: Stabilizing Off-Policy Q-Learning via Bootstrapping Error Reduction (Kumar, Fu, Tucker,
Levine, NeurIPS 2019).

SAC's tanh-Gaussian actor and twin critics, with the actor constrained to the support of the data:
the maximum mean discrepancy between ``mmd_samples`` pre-tanh actions of the policy and as many of a
behaviour VAE (fitted alongside) stays below ε. The constraint enters through a Lagrange multiplier
α = exp(log α), log α clamped to [−5, 10], raised by dual ascent while MMD > ε:

    actor:  mean( −min_i Q_i(s, a_π) + α·(MMD − ε) ),   a_π from ``target_samples`` draws of π(·|s);
    α:      ascends α·(MMD − ε).

During the first ``warmup_steps`` the actor minimises α·MMD only. Critics regress on
r + γ(1 − done)·max over ``target_samples`` policy actions at s' of 0.75·min + 0.25·max of the target
critics. Kernels as the official code: Laplacian exp(−Σ|x − y| / (2σ)) with σ = 10 (hopper, the
default) or Gaussian exp(−Σ(x − y)² / (2σ)) with σ = 20 (walker2d).

Deliberate deviations: the critic ensemble is SB3's two critics (the official code allows more, and
its ensemble-variance term is off by default, as here); no entropy bonus in the actor's loss (the
official default); acting takes tanh of the policy's mean (SB3's deterministic ``predict``), where
the official code takes the best of 10 sampled actions by Q. The warm-up is counted in gradient steps (the original: 20 epochs; d3rlpy: 40 000
steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from stable_baselines3 import SAC
from stable_baselines3.common.utils import polyak_update

from dynshift_agents.algorithms.agent import optimizer_step
from dynshift_agents.algorithms.bcq import soft_clipped_target
from dynshift_agents.algorithms.behaviour_models import BehaviourVAE
from dynshift_agents.algorithms.sb3 import OfflineLearner, SB3Agent, SB3Config
from dynshift_agents.checks import COUNT, FRACTION, NON_NEGATIVE, POSITIVE, Range, SIZES, STEPS, check_choice

KERNELS = ("laplacian", "gaussian")


@dataclass
class BEARConfig(SB3Config):
    """BEAR's hyperparameters (official code)."""

    RANGES: ClassVar[dict[str, Range]] = {"actor_learning_rate": POSITIVE, "sigma": POSITIVE, "mmd_samples": COUNT,
                                          "epsilon": NON_NEGATIVE, "lagrange_learning_rate": POSITIVE,
                                          "warmup_steps": STEPS, "target_samples": COUNT, "lmbda": FRACTION,
                                          "vae_hidden": SIZES}

    actor_learning_rate: float = 1e-4
    """The actor's learning rate (``learning_rate`` is the critics' and the VAE's)."""
    kernel: str = "laplacian"
    """``"laplacian"`` (σ = 10, hopper in the official code) or ``"gaussian"`` (σ = 20, walker2d)."""
    sigma: float = 10.0
    mmd_samples: int = 5
    """Actions per state drawn from the policy and from the VAE for the MMD."""
    epsilon: float = 0.05
    """ε: the MMD threshold of the constraint."""
    lagrange_learning_rate: float = 1e-3
    warmup_steps: int = 40_000
    """Gradient steps in which the actor trains on the MMD term only."""
    target_samples: int = 10
    """Policy actions per next state in the critics' target."""
    lmbda: float = 0.75
    """Weight of the min over critics in the target (the rest on the max)."""
    vae_hidden: tuple[int, ...] = (750, 750)

    def __post_init__(self):
        super().__post_init__()
        self.vae_hidden = tuple(self.vae_hidden)
        check_choice(self, "kernel", KERNELS)

    @classmethod
    def for_dataset(cls, dataset_id: str, **overrides) -> "BEARConfig":
        """The official code's kernel per robot: Gaussian σ = 20 for walker2d, Laplacian σ = 10 otherwise."""
        robot = dataset_id.split("/")[1] if dataset_id.count("/") >= 2 else ""
        preset = {"kernel": "gaussian", "sigma": 20.0} if robot == "walker2d" else {}
        return cls.from_dict(preset | overrides)


def mmd(x: torch.Tensor, y: torch.Tensor, kernel: str, sigma: float) -> torch.Tensor:
    """Per-state MMD between sample sets ``x [batch, n, d]`` and ``y [batch, m, d]``, as the official
    code: sqrt(mean k(x, x') + mean k(y, y') − 2·mean k(x, y) + 1e-6)."""
    def k(a, b):
        diff = a.unsqueeze(2) - b.unsqueeze(1)
        distance = diff.abs().sum(-1) if kernel == "laplacian" else diff.pow(2).sum(-1)
        return torch.exp(-distance / (2.0 * sigma)).mean(dim=(1, 2))

    return torch.sqrt(k(x, x) + k(y, y) - 2 * k(x, y) + 1e-6)


class BEARLearner(OfflineLearner, SAC):
    """SB3's SAC networks plus a behaviour VAE and BEAR's Lagrange multiplier, trained with BEAR's losses."""

    config: BEARConfig

    def _setup_model(self) -> None:
        super()._setup_model()
        config = self.config
        obs_dim, action_dim = self.observation_space.shape[0], self.action_space.shape[0]
        self.vae = BehaviourVAE(obs_dim, action_dim, config.vae_hidden).to(self.device)
        self.vae_optimizer = torch.optim.Adam(self.vae.parameters(), lr=config.learning_rate)
        self.log_alpha = torch.zeros(1, requires_grad=True, device=self.device)
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=config.lagrange_learning_rate)
        for group in self.actor.optimizer.param_groups:
            group["lr"] = config.actor_learning_rate

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        return [*state_dicts, "vae", "vae_optimizer", "alpha_optimizer"], [*variables, "log_alpha"]

    def policy_samples(self, obs: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` actions per state from π: pre-tanh ``[batch, n, d]`` and squashed ``[batch·n, d]``."""
        mean, log_std, _ = self.actor.get_action_dist_params(obs.repeat_interleave(n, dim=0))
        raw = mean + log_std.exp() * torch.randn_like(mean)
        return raw.view(len(obs), n, -1), torch.tanh(raw)

    def update(self, data, step: int) -> dict[str, torch.Tensor]:
        cfg = self.config
        obs = data.observations
        vae_loss = self.vae.loss(obs, data.actions)
        optimizer_step(self.vae_optimizer, vae_loss)

        with torch.no_grad():
            next_obs = data.next_observations.repeat_interleave(cfg.target_samples, dim=0)
            _, next_actions = self.policy_samples(data.next_observations, cfg.target_samples)
            next_q = soft_clipped_target(*self.critic_target(next_obs, next_actions), cfg.lmbda, cfg.target_samples)
            target = data.rewards + (1 - data.dones) * cfg.gamma * next_q
        critic_loss = sum(F.mse_loss(q, target) for q in self.critic(obs, data.actions))
        optimizer_step(self.critic.optimizer, critic_loss)

        raw, actions = self.policy_samples(obs, cfg.mmd_samples)
        with torch.no_grad():
            behaviour = self.vae.decode_raw(obs.repeat_interleave(cfg.mmd_samples, dim=0)).view_as(raw)
        distance = mmd(raw, behaviour, cfg.kernel, cfg.sigma)
        alpha = self.log_alpha.exp()
        if step < cfg.warmup_steps:
            actor_loss = (alpha.detach() * distance).mean()
        else:
            q = torch.cat(self.critic(obs.repeat_interleave(cfg.mmd_samples, dim=0), actions), dim=1).min(dim=1).values
            actor_loss = (-q.view(len(obs), -1).mean(dim=1) + alpha.detach() * (distance - cfg.epsilon)).mean()
        optimizer_step(self.actor.optimizer, actor_loss)

        alpha_loss = -(self.log_alpha.exp() * (distance.detach() - cfg.epsilon)).mean()  # ascent on α·(MMD − ε)
        optimizer_step(self.alpha_optimizer, alpha_loss)
        with torch.no_grad():
            self.log_alpha.clamp_(-5.0, 10.0)
        polyak_update(self.critic.parameters(), self.critic_target.parameters(), cfg.tau)
        return {"vae_loss": vae_loss.detach(), "critic_loss": critic_loss.detach(), "actor_loss": actor_loss.detach(),
                "mmd": distance.detach().mean(), "alpha": alpha.detach().reshape(())}


class BEAR(SB3Agent, name="bear", config=BEARConfig, learner=BEARLearner):
    """BEAR on the SB3 layer."""
    config: BEARConfig

    def learner_kwargs(self) -> dict[str, Any]:
        return super().learner_kwargs() | {"ent_coef": 0.0}  # no entropy bonus (the official default)

    def parameters(self) -> list[torch.Tensor]:
        return [*super().parameters(), *self.learner.vae.parameters()]

