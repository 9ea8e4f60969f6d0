"""CQL: Conservative Q-Learning for Offline Reinforcement Learning (Kumar, Zhou, Tucker, Levine, NeurIPS 2020).

SAC whose critics also minimise the conservative term CQL(H) of the paper's official code: for each
critic,

    α · ( log Σ exp over 3N sampled actions  −  mean Q(s, a_data) ),

with N = ``n_actions`` actions each from the uniform distribution on [-1, 1]^|A|, from π(·|s) and from
π(·|s') (all evaluated at s), importance-sampled: every Q is reduced by the log-density of its
proposal (log 0.5^|A|, log π(a|s), log π(a'|s')). α is fixed (``conservative_weight``, the paper's
α = 5 on MuJoCo) or, with ``lagrange_gap`` set, the weight is α'·α with α' ≥ 0 learnt by dual
gradient ascent on α'·(α·term − τ), which keeps the weighted term near the gap τ. The backup is deterministic (no entropy in
the target, ``backup_entropy=False``), as the official MuJoCo runs; the actor is SAC's, with its own
learning rate (1e-4, the entropy coefficient's too) beside the critics' 3e-4.

Deliberate deviations: the actor is updated after the critics in each step (SB3's SAC order; the
official code computes the actor loss first); the original's 40 000-step behaviour-cloning start of
the actor is not used (as CORL).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from stable_baselines3 import SAC
from stable_baselines3.common.utils import polyak_update

from dynshift_agents.algorithms.agent import optimizer_step
from dynshift_agents.algorithms.fused_sac import sac_target, sample_with_entropy_step
from dynshift_agents.algorithms.sb3 import OfflineLearner, SB3Agent, SB3Config
from dynshift_agents.checks import COUNT, NON_NEGATIVE, POSITIVE, Range, check_ent_coef


@dataclass
class CQLConfig(SB3Config):
    """CQL's hyperparameters on MuJoCo (official code and paper)."""

    RANGES: ClassVar[dict[str, Range]] = {"actor_learning_rate": POSITIVE, "conservative_weight": NON_NEGATIVE,
                                          "n_actions": COUNT, "lagrange_gap": Range(optional=True),
                                          "lagrange_learning_rate": POSITIVE}

    net_arch: tuple[int, ...] = (256, 256, 256)
    """Hidden layers of actor and critics (3×256 in the official code)."""
    actor_learning_rate: float = 1e-4
    """The actor's and the entropy coefficient's learning rate (``learning_rate`` is the critics')."""
    conservative_weight: float = 5.0
    """α: weight of the conservative term."""
    n_actions: int = 10
    """N: actions sampled from each of the three proposals."""
    lagrange_gap: float | None = None
    """τ: with a value, the conservative weight is tuned by a Lagrange multiplier to keep the term near τ."""
    lagrange_learning_rate: float = 3e-4
    backup_entropy: bool = False
    """Subtract the entropy term in the target (SAC's backup); ``False``: the deterministic backup."""
    ent_coef: str | float = "auto"
    """SAC's entropy coefficient; ``"auto"`` tunes it to a target entropy of −dim(A)."""

    def __post_init__(self):
        super().__post_init__()
        check_ent_coef(self)


def conservative_term(q_data: torch.Tensor, q_random: torch.Tensor, q_current: torch.Tensor,
                      log_pi_current: torch.Tensor, q_next: torch.Tensor, log_pi_next: torch.Tensor,
                      action_dim: int) -> torch.Tensor:
    """CQL(H) with importance sampling: mean over the batch of log Σ exp over the 3N sampled
    actions' Q minus their proposal log-densities, minus mean Q on the data. ``q_data`` is
    ``[batch, 1]``; the others ``[batch, N]``."""
    uniform_log_density = action_dim * math.log(0.5)
    cat = torch.cat([q_random - uniform_log_density, q_current - log_pi_current, q_next - log_pi_next], dim=1)
    return torch.logsumexp(cat, dim=1).mean() - q_data.mean()


class CQLLearner(OfflineLearner, SAC):
    """SB3's SAC with CQL's critic loss."""

    config: CQLConfig

    def _setup_model(self) -> None:
        super()._setup_model()
        cfg = self.config
        optimizers = [self.actor.optimizer] + ([self.ent_coef_optimizer] if self.ent_coef_optimizer else [])
        for optimizer in optimizers:
            for group in optimizer.param_groups:
                group["lr"] = cfg.actor_learning_rate
        if cfg.lagrange_gap is not None:
            self.log_alpha_prime = torch.zeros(1, requires_grad=True, device=self.device)
            self.alpha_prime_optimizer = torch.optim.Adam([self.log_alpha_prime], lr=cfg.lagrange_learning_rate)

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        if self.config.lagrange_gap is None:
            return state_dicts, variables
        return [*state_dicts, "alpha_prime_optimizer"], [*variables, "log_alpha_prime"]

    def _sampled_q(self, obs: torch.Tensor, next_obs: torch.Tensor) -> tuple[list[torch.Tensor], ...]:
        """Q at s of N uniform, N π(·|s) and N π(·|s') actions (one ``[batch, N]`` per critic for each
        proposal), and the two policies' log-densities ``[batch, N]``."""
        batch, n = obs.shape[0], self.config.n_actions
        obs_rep = obs.repeat_interleave(n, dim=0)
        with torch.no_grad():
            random = torch.empty(batch * n, self.action_space.shape[0], device=self.device).uniform_(-1, 1)
            current, log_pi_current = self.actor.action_log_prob(obs_rep)
            following, log_pi_next = self.actor.action_log_prob(next_obs.repeat_interleave(n, dim=0))
        q_random, q_current, q_next = ([q.view(batch, n) for q in self.critic(obs_rep, a)]
                                       for a in (random, current, following))
        return q_random, q_current, q_next, log_pi_current.view(batch, n), log_pi_next.view(batch, n)

    def update(self, data, step: int) -> dict[str, torch.Tensor]:
        cfg = self.config
        actions_pi, log_prob, ent_coef, metrics = sample_with_entropy_step(self, data.observations)
        target = sac_target(self, data, cfg.gamma, ent_coef if cfg.backup_entropy else None)
        q_data = self.critic(data.observations, data.actions)
        q_random, q_current, q_next, log_pi_current, log_pi_next = self._sampled_q(data.observations,
                                                                                    data.next_observations)
        terms = [conservative_term(q, r, c, log_pi_current, n, log_pi_next, self.action_space.shape[0])
                 for q, r, c, n in zip(q_data, q_random, q_current, q_next)]
        if cfg.lagrange_gap is not None:
            alpha_prime = self.log_alpha_prime.exp().clamp(0.0, 1e6)
            gaps = [cfg.conservative_weight * term - cfg.lagrange_gap for term in terms]
            alpha_prime_loss = -alpha_prime * sum(gap.detach() for gap in gaps) / len(gaps)
            optimizer_step(self.alpha_prime_optimizer, alpha_prime_loss)
            penalty = alpha_prime.detach() * sum(gaps)
            metrics["alpha_prime"] = alpha_prime.detach().reshape(())
        else:
            penalty = cfg.conservative_weight * sum(terms)
        critic_loss = 0.5 * sum(F.mse_loss(q, target) for q in q_data) + penalty
        optimizer_step(self.critic.optimizer, critic_loss)
        metrics["critic_loss"] = critic_loss.detach()
        metrics["conservative_term"] = sum(t.detach() for t in terms) / len(terms)

        min_q_pi = torch.cat(self.critic(data.observations, actions_pi), dim=1).min(dim=1, keepdim=True).values
        actor_loss = (ent_coef * log_prob - min_q_pi).mean()
        optimizer_step(self.actor.optimizer, actor_loss)
        metrics["actor_loss"] = actor_loss.detach()
        if step % self.target_update_interval == 0:
            polyak_update(self.critic.parameters(), self.critic_target.parameters(), cfg.tau)
        return metrics


class CQL(SB3Agent, name="cql", config=CQLConfig, learner=CQLLearner):
    """CQL on the SB3 layer."""
    config: CQLConfig

    def learner_kwargs(self) -> dict[str, Any]:
        return super().learner_kwargs() | {"ent_coef": self.config.ent_coef}

