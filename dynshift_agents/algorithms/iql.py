"""IQL: Offline Reinforcement Learning with Implicit Q-Learning (Kostrikov, Nair, Levine, ICLR 2022).

No action outside the dataset is ever evaluated. Per step, in the order of the official code:

1. V(s) regresses on min_i Q̄_i(s, a) (target critics) with the expectile loss |τ − 1(u < 0)|·u², u = Q̄ − V;
2. the actor maximises the advantage-weighted log-likelihood of the dataset's actions,
   exp(β·(Q̄(s, a) − V(s))) clipped at 100, with the V just updated;
3. both critics regress on r + γ(1 − done)·V(s');
4. Polyak averaging of the target critics.

For MuJoCo the official code scales rewards by 1000 / (max − min episode return of the dataset);
``scale_rewards`` does the same.

Deliberate deviations: the actor is SB3's SAC actor (state-dependent log-std) and the likelihood is
that of a Gaussian with mean tanh(μ(s)), the official code's MuJoCo policy but for its
state-independent std; acting deterministically gives tanh(μ(s)), as SB3's deterministic ``predict``.
The actor's learning rate is constant (the official code decays it with a cosine schedule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3 import SAC
from stable_baselines3.common.torch_layers import create_mlp
from stable_baselines3.common.utils import polyak_update
from torch import nn

from dynshift_agents.algorithms.agent import optimizer_step
from dynshift_agents.algorithms.sb3 import OfflineLearner, SB3Agent, SB3Config, tanh_mean_log_likelihood
from dynshift_agents.checks import POSITIVE, Range
from dynshift_agents.data.transitions import Transitions


@dataclass
class IQLConfig(SB3Config):
    """IQL's hyperparameters for MuJoCo (paper, Appendix B)."""

    expectile: float = 0.7
    """τ of the expectile regression of V."""
    beta: float = 3.0
    """Inverse temperature of the advantage weights exp(β·A)."""
    max_weight: float = 100.0
    """Advantage weights are clipped at this."""
    scale_rewards: bool = True
    """Rewards × 1000 / (max − min episode return of the dataset), as the official code on MuJoCo."""

    RANGES: ClassVar[dict[str, Range]] = {"expectile": Range(0, 1, low_open=True, high_open=True), "beta": POSITIVE,
                                          "max_weight": POSITIVE}


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """mean |τ − 1(u < 0)|·u² of ``diff`` u = Q − V."""
    weight = torch.where(diff < 0, 1 - expectile, expectile)
    return (weight * diff.pow(2)).mean()


def advantage_weights(advantage: torch.Tensor, beta: float, max_weight: float) -> torch.Tensor:
    """exp(β·A), clipped at ``max_weight``."""
    return torch.exp(beta * advantage).clamp(max=max_weight)


class IQLLearner(OfflineLearner, SAC):
    """SB3's SAC networks (actor, twin critics and their targets) plus a state-value network,
    trained with IQL's losses."""

    config: IQLConfig

    def _setup_model(self) -> None:
        super()._setup_model()
        obs_dim = self.observation_space.shape[0]
        self.value_net = nn.Sequential(*create_mlp(obs_dim, 1, list(self.policy_kwargs["net_arch"]))).to(self.device)
        self.value_optimizer = torch.optim.Adam(self.value_net.parameters(), lr=self.lr_schedule(1))

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        return [*state_dicts, "value_net", "value_optimizer"], variables

    @torch.no_grad()
    def min_target_q(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """min_i Q̄_i(s, a) of the target critics, ``[batch, 1]``: V's regression target and the advantage's Q."""
        return torch.cat(self.critic_target(obs, actions), dim=1).min(dim=1, keepdim=True).values

    def update(self, data, step: int) -> dict[str, torch.Tensor]:
        cfg = self.config
        target_q = self.min_target_q(data.observations, data.actions)
        value_loss = expectile_loss(target_q - self.value_net(data.observations), cfg.expectile)
        optimizer_step(self.value_optimizer, value_loss)

        with torch.no_grad():
            advantage = target_q - self.value_net(data.observations)
            weights = advantage_weights(advantage, cfg.beta, cfg.max_weight).squeeze(-1)
        actor_loss = -(weights * tanh_mean_log_likelihood(self.actor, data.observations, data.actions)).mean()
        optimizer_step(self.actor.optimizer, actor_loss)

        with torch.no_grad():
            target = data.rewards + (1 - data.dones) * cfg.gamma * self.value_net(data.next_observations)
        critic_loss = 0.5 * sum(F.mse_loss(q, target) for q in self.critic(data.observations, data.actions))
        optimizer_step(self.critic.optimizer, critic_loss)
        polyak_update(self.critic.parameters(), self.critic_target.parameters(), cfg.tau)
        return {"value_loss": value_loss.detach(), "actor_loss": actor_loss.detach(),
                "critic_loss": critic_loss.detach(), "advantage": advantage.mean()}


class IQL(SB3Agent, name="iql", config=IQLConfig, learner=IQLLearner):
    """IQL on the SB3 layer."""
    config: IQLConfig
    q_on_dataset_actions = True  # IQL never evaluates other actions (Q in the scaled rewards' units)

    reward_scale: float | None = None
    """The factor the env's rewards were multiplied by for training (:func:`reward_scale` of the attached
    data when ``scale_rewards``, else 1): Q and V are in these units. Saved, so a loaded agent knows it
    (None: no data attached yet, or a checkpoint written before it was saved)."""

    def json_state(self) -> dict:
        return super().json_state() | {"reward_scale": self.reward_scale}

    def load_json_state(self, state: dict) -> None:
        super().load_json_state(state)
        self.reward_scale = state.get("reward_scale")

    def reward_units(self) -> float:
        if self.reward_scale is not None:
            return self.reward_scale
        if not self.config.scale_rewards:
            return 1.0
        # a checkpoint written before the scale was saved: recompute it from the data it trained on
        from dynshift_agents.data.transitions import concatenate, load_transitions

        dara = self.provenance.get("dara")
        if dara is None:
            return reward_scale(load_transitions(self.dataset_id))
        # DARA relabels rewards, not the episode returns the scale comes from: the union's original returns
        return reward_scale(concatenate(load_transitions(dara["target_dataset"]), load_transitions(dara["source_dataset"])))

    def attach_dataset(self, dataset: Transitions) -> None:
        self.reward_scale = reward_scale(dataset) if self.config.scale_rewards else 1.0
        if self.config.scale_rewards:
            dataset = Transitions(dataset.obs, dataset.actions, dataset.rewards * self.reward_scale, dataset.next_obs,
                                  dataset.terminals, dataset.timeouts, dataset.dynamics, dataset.episode_returns)
        super().attach_dataset(dataset)



def reward_scale(dataset: Transitions) -> float:
    """1000 / (max − min episode return), the official code's MuJoCo reward normalisation."""
    returns = dataset.episode_returns
    if returns is None or len(returns) < 2 or np.ptp(returns) == 0:
        raise ValueError("IQL's reward scaling needs the dataset's episode returns (two or more that differ); "
                         "pass scale_rewards=False")
    return float(1000.0 / np.ptp(returns))
