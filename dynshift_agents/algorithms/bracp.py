"""BRAC-p: Behavior Regularized Offline Reinforcement Learning, policy-regularised variant (Wu, Tucker,
Nachum, 2019).

First a behaviour policy π_b (a tanh-Gaussian of the policy's architecture) is fitted to the dataset
by maximum likelihood for ``behaviour_steps``. Then an actor-critic whose actor's loss is the
divergence-regularised value, as the official primal agent:

    actor:   mean over s and ``kl_samples`` actions a ~ π(·|s) of
             −min_i Q_i(s, a) + α·(log π(a|s) − log π_b(a|s)),
    critics: regress on r + γ(1 − done)·min_i Q̄_i(s', a'),  a' ~ π(·|s'),

the KL term a sampled estimate of α·KL(π‖π_b) (log-densities of the same pre-tanh samples). α is
fixed (0.1, the official setting) or, with ``divergence_target`` set, learnt by dual ascent so that
the KL stays near it. No value penalty (BRAC-p). During the first ``warm_start`` steps the actor
minimises α·KL only (no Q), as the official code's warm start. Networks as the official code: critics
300-300, policy 200-200; the policy's (and π_b's) log-std clipped to [−5, 0], the official range.

``ent_coef="auto"`` with ``log_std_range=(-20, 2)`` is SB3's SAC instead: an entropy term
α_ent·log π(a|s) in the actor's loss and −α_ent·log π(a'|s') in the critics' target, α_ent tuned
from 1.0 towards an entropy of −|A|, SB3's log-std range. That was DynShift's BRAC-p until issue 38
(its results are labelled so in docs/results).

Deliberate deviations: learning rates are SB3's 3e-4 for all networks (the official code's differ
per environment); the behaviour policy is one tanh-Gaussian (the official code offers mixtures too);
the actor and critics are SB3's SAC networks (a state-dependent log-std head, as the official code).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from stable_baselines3 import SAC
from stable_baselines3.common.utils import polyak_update

from dynshift_agents.algorithms.agent import optimizer_step
from dynshift_agents.algorithms.fused_sac import entropy_step, sac_target
from dynshift_agents.algorithms.sb3 import OfflineLearner, SB3Agent, SB3Config
from dynshift_agents.checks import COUNT, POSITIVE, Range, SIZES, STEPS, check_ent_coef


@dataclass
class BRACConfig(SB3Config):
    """BRAC-p's hyperparameters (official code)."""

    RANGES: ClassVar[dict[str, Range]] = {"policy_arch": SIZES, "alpha": POSITIVE,
                                          "divergence_target": Range(optional=True), "alpha_learning_rate": POSITIVE,
                                          "kl_samples": COUNT, "behaviour_steps": STEPS, "warm_start": STEPS}

    net_arch: tuple[int, ...] = (300, 300)
    """Hidden layers of each critic."""
    policy_arch: tuple[int, ...] = (200, 200)
    """Hidden layers of the policy and of the behaviour policy."""
    alpha: float = 0.1
    """α: weight of the KL term (the initial value with ``divergence_target``)."""
    divergence_target: float | None = None
    """With a value, α is learnt by dual ascent to keep the KL near it."""
    alpha_learning_rate: float = 1e-3
    kl_samples: int = 4
    """Actions per state in the sampled KL (and the actor's loss)."""
    behaviour_steps: int = 20_000
    """Maximum-likelihood steps of the behaviour policy before training."""
    warm_start: int = 20_000
    """Steps in which the actor trains without Q."""
    ent_coef: str | float = 0.0
    """The entropy term's coefficient in the actor's loss and the critics' target: 0, the official
    primal agent (no entropy term); ``"auto"``, SB3's SAC term (tuned from 1.0 to an entropy of −|A|)."""
    log_std_range: tuple[float, float] = (-5.0, 0.0)
    """The clip of the policy's and π_b's log-std: the official [−5, 0]; SB3's SAC uses (−20, 2)."""

    def __post_init__(self):
        super().__post_init__()
        self.policy_arch = tuple(self.policy_arch) if isinstance(self.policy_arch, list) else self.policy_arch
        self.log_std_range = tuple(self.log_std_range)
        check_ent_coef(self)
        low, high = self.log_std_range
        if not (isinstance(low, (int, float)) and isinstance(high, (int, float)) and low < high):
            raise ValueError(f"BRACConfig.log_std_range must be (low, high) with low < high, got {self.log_std_range!r}")

    @property
    def entropy_term(self) -> bool:
        """Whether the actor's loss and the critics' target carry SAC's entropy term."""
        return not (isinstance(self.ent_coef, (int, float)) and self.ent_coef == 0)


def clip_log_std(actor, low: float, high: float) -> None:
    """Clip an SB3 SAC actor's log-std to [low, high] (SB3 clips it to [−20, 2]; this clip follows it)."""
    sb3_params = actor.get_action_dist_params

    def get_action_dist_params(obs):
        mean, log_std, kwargs = sb3_params(obs)
        return mean, log_std.clamp(low, high), kwargs

    actor.get_action_dist_params = get_action_dist_params


def sampled_kl(actor, behaviour, obs: torch.Tensor, samples: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``samples`` reparameterised actions per state from ``actor`` (SB3 SAC actors both), their
    log π, and the per-sample estimate log π(a|s) − log π_b(a|s) (``[batch·samples]``)."""
    repeated = obs.repeat_interleave(samples, dim=0)
    mean, log_std, _ = actor.get_action_dist_params(repeated)
    dist = actor.action_dist.proba_distribution(mean, log_std)
    actions = dist.sample()
    gaussian = dist.gaussian_actions
    log_pi = dist.log_prob(actions, gaussian)
    b_mean, b_log_std, _ = behaviour.get_action_dist_params(repeated)
    log_b = behaviour.action_dist.proba_distribution(b_mean, b_log_std).log_prob(actions, gaussian)
    return actions, log_pi, log_pi - log_b


class BRACLearner(OfflineLearner, SAC):
    """SB3's SAC networks plus a behaviour policy and the KL weight, trained with BRAC-p's losses."""

    config: BRACConfig

    def _setup_model(self) -> None:
        super()._setup_model()
        config = self.config
        self.behaviour = copy.deepcopy(self.actor)  # same architecture, trained by maximum likelihood
        for actor in (self.actor, self.behaviour):
            clip_log_std(actor, *config.log_std_range)
        self.behaviour.optimizer = torch.optim.Adam(self.behaviour.parameters(), lr=config.learning_rate)
        self.log_alpha_kl = torch.tensor([float(torch.log(torch.tensor(config.alpha)))], requires_grad=True,
                                         device=self.device)
        self.alpha_kl_optimizer = torch.optim.Adam([self.log_alpha_kl], lr=config.alpha_learning_rate)
        self.behaviour_fitted = torch.zeros(1)

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        return ([*state_dicts, "behaviour", "behaviour.optimizer", "alpha_kl_optimizer"],
                [*variables, "log_alpha_kl", "behaviour_fitted"])

    def begin_block(self) -> None:
        super().begin_block()
        if not self.behaviour_fitted:
            self.logger.record("train/behaviour_nll", self.fit_behaviour())

    def fit_behaviour(self) -> float:
        """Maximum likelihood of the dataset's actions under π_b (actions clipped inside (−1, 1)), before
        the first update."""
        loss = torch.tensor(0.0)
        for _ in range(self.config.behaviour_steps):
            data = self.replay_buffer.sample(self.config.batch_size)
            mean, log_std, _ = self.behaviour.get_action_dist_params(data.observations)
            actions = data.actions.clamp(-1 + 1e-6, 1 - 1e-6)
            loss = -self.behaviour.action_dist.proba_distribution(mean, log_std).log_prob(actions).mean()
            optimizer_step(self.behaviour.optimizer, loss)
        self.behaviour_fitted.fill_(1)
        return float(loss.detach())

    def update(self, data, step: int) -> dict[str, torch.Tensor]:
        cfg = self.config
        obs = data.observations
        actions, log_pi, kl = sampled_kl(self.actor, self.behaviour, obs, cfg.kl_samples)
        ent_coef, _ = entropy_step(self, log_pi.reshape(-1, 1))

        target = sac_target(self, data, cfg.gamma, ent_coef if cfg.entropy_term else None)
        critic_loss = 0.5 * sum(F.mse_loss(q, target) for q in self.critic(obs, data.actions))
        optimizer_step(self.critic.optimizer, critic_loss)

        alpha = self.log_alpha_kl.exp().detach()
        regularised = alpha * kl + (ent_coef * log_pi if cfg.entropy_term else 0)
        if step >= cfg.warm_start:
            repeated = obs.repeat_interleave(cfg.kl_samples, dim=0)
            regularised = regularised - torch.cat(self.critic(repeated, actions), dim=1).min(dim=1).values
        actor_loss = regularised.mean()
        optimizer_step(self.actor.optimizer, actor_loss)
        if cfg.divergence_target is not None:  # dual ascent: α grows while KL > target
            alpha_loss = -(self.log_alpha_kl.exp() * (kl.detach().mean() - cfg.divergence_target))
            optimizer_step(self.alpha_kl_optimizer, alpha_loss)
        polyak_update(self.critic.parameters(), self.critic_target.parameters(), cfg.tau)
        return {"critic_loss": critic_loss.detach(), "actor_loss": actor_loss.detach(), "kl": kl.detach().mean(),
                "alpha": alpha.reshape(()), "ent_coef": ent_coef.detach().reshape(())}


class BRACP(SB3Agent, name="bracp", config=BRACConfig, learner=BRACLearner):
    """BRAC-p on the SB3 layer."""
    config: BRACConfig

    def learner_kwargs(self) -> dict[str, Any]:
        arch = {"pi": list(self.config.policy_arch), "qf": list(self.config.net_arch)}
        return super().learner_kwargs() | {"policy_kwargs": {"net_arch": arch}, "ent_coef": self.config.ent_coef}
