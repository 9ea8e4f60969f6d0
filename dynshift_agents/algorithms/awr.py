"""AWR: Advantage-Weighted Regression (Peng, Kumar, Zhang, Levine, 2019), on a fixed dataset.

The paper's off-policy algorithm with the dataset as its replay buffer (its offline experiments):

1. every ``value_refresh`` gradient steps, TD(λ) returns R^λ are computed over the dataset's
   trajectories with the current V (λ = 0.95): R_t = r_t + γ·((1 − λ)·V(s_{t+1}) + λ·R_{t+1}); a
   termination ends the sum (R_t = r_t), a truncation bootstraps from V(s_{t+1});
2. advantages A = R^λ − V(s) are normalised over the dataset (zero mean, unit std);
3. V regresses on R^λ; the actor maximises the log-likelihood of the dataset's actions weighted by
   exp(A / β), clipped at ``max_weight`` (20).

The actor is SB3's SAC actor with the likelihood of a Gaussian on tanh(μ(s)) (as IQL here); acting
deterministically gives tanh(μ(s)). TD(λ) targets, not Monte-Carlo returns-to-go: the paper's choice
(the DARA paper does not state its offline AWR settings). Deliberate deviations: Adam at
``learning_rate`` for both networks (the paper: SGD with momentum, 5e-5 for the policy, 1e-2 for V).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3 import SAC

from dynshift_agents.algorithms.agent import optimizer_step
from dynshift_agents.algorithms.behaviour_models import mlp
from dynshift_agents.algorithms.sb3 import OfflineLearner, SB3Agent, SB3Config, tanh_mean_log_likelihood
from dynshift_agents.checks import COUNT, FRACTION, POSITIVE, Range


@dataclass
class AWRConfig(SB3Config):
    """AWR's hyperparameters (paper, Table 2), with the dataset as the buffer."""

    RANGES: ClassVar[dict[str, Range]] = {"beta": POSITIVE, "max_weight": POSITIVE, "td_lambda": FRACTION,
                                          "value_refresh": COUNT}

    net_arch: tuple[int, ...] = (128, 64)
    """Hidden layers of the policy and of V (the paper's 128-64)."""
    beta: float = 1.0
    """β: temperature of the weights exp(A / β)."""
    max_weight: float = 20.0
    td_lambda: float = 0.95
    value_refresh: int = 1000
    """Gradient steps between recomputations of R^λ and A over the dataset."""
    standardise_states: bool = True


def td_lambda_returns(rewards: np.ndarray, values: np.ndarray, next_values: np.ndarray, terminals: np.ndarray,
                      ends: np.ndarray, gamma: float, lam: float) -> np.ndarray:
    """R^λ for transitions in trajectory order; ``ends`` marks the last transition of each stored
    trajectory (terminated or truncated); ``values`` are V(s_t), ``next_values`` V(s_{t+1})."""
    returns = np.empty(len(rewards), dtype=np.float64)
    following = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        if terminals[t]:
            following = rewards[t]
        elif ends[t]:
            following = rewards[t] + gamma * next_values[t]
        else:
            following = rewards[t] + gamma * ((1 - lam) * next_values[t] + lam * following)
        returns[t] = following
    return returns


def awr_weights(advantages: np.ndarray, beta: float, max_weight: float) -> np.ndarray:
    """exp(Â / β) with Â the advantages normalised to zero mean and unit std, clipped at ``max_weight``."""
    normalised = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    return np.minimum(np.exp(normalised / beta), max_weight)


class AWRLearner(OfflineLearner, SAC):
    """SB3's SAC actor (its critics unused) plus a state-value network, trained with AWR's losses on
    batches of dataset rows (:meth:`sample`: their advantage weights are the dataset's)."""

    config: AWRConfig

    def _setup_model(self) -> None:
        super()._setup_model()
        self.value_net = mlp(self.observation_space.shape[0], 1, self.config.net_arch).to(self.device)
        self.value_optimizer = torch.optim.Adam(self.value_net.parameters(), lr=self.config.learning_rate)
        self.rng = np.random.default_rng(self.seed)

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        return [*state_dicts, "value_net", "value_optimizer"], variables

    @torch.no_grad()
    def refresh(self) -> dict[str, float]:
        """Recompute R^λ and the advantage weights over the whole dataset with the current V."""
        real = self.replay_buffer.real
        values = self.value_net(real["observations"]).squeeze(-1).cpu().numpy()
        next_values = self.value_net(real["next_observations"]).squeeze(-1).cpu().numpy()
        returns = td_lambda_returns(real["rewards"][:, 0].cpu().numpy(), values, next_values,
                                    (real["dones"][:, 0] > 0).cpu().numpy(), self.ends, self.config.gamma,
                                    self.config.td_lambda)
        self.returns = torch.as_tensor(returns, dtype=torch.float32, device=self.device)
        self.weights = torch.as_tensor(awr_weights(returns - values, self.config.beta, self.config.max_weight),
                                       dtype=torch.float32, device=self.device)
        return {"advantage_std": float(np.std(returns - values)), "weight_mean": float(self.weights.mean())}

    def sample(self) -> torch.Tensor:
        """The dataset rows of a batch (drawn with the learner's generator)."""
        return torch.as_tensor(self.rng.integers(self.replay_buffer.real_size, size=self.config.batch_size),
                               device=self.device)

    def update(self, index: torch.Tensor, step: int) -> dict[str, torch.Tensor | float]:
        metrics = {}
        if step % self.config.value_refresh == 0 or not hasattr(self, "weights"):
            metrics |= self.refresh()
        real = self.replay_buffer.real
        obs, actions = real["observations"][index], real["actions"][index]
        value_loss = F.mse_loss(self.value_net(obs).squeeze(-1), self.returns[index])
        optimizer_step(self.value_optimizer, value_loss)
        actor_loss = -(self.weights[index] * tanh_mean_log_likelihood(self.actor, obs, actions)).mean()
        optimizer_step(self.actor.optimizer, actor_loss)
        return metrics | {"value_loss": value_loss.detach(), "actor_loss": actor_loss.detach()}


class AWR(SB3Agent, name="awr", config=AWRConfig, learner=AWRLearner):
    """AWR on the SB3 layer, offline."""
    config: AWRConfig

    def sample(self) -> torch.Tensor:
        return self.learner.sample()

    def attach_dataset(self, dataset) -> None:
        super().attach_dataset(dataset)
        ends = dataset.terminals | dataset.timeouts
        ends[-1] = True  # the dataset's last transition ends its trajectory
        self.learner.ends = ends
        if hasattr(self.learner, "weights"):
            del self.learner.weights  # recomputed for this dataset at the next step

    def q_mean(self) -> None:
        return None  # AWR has a state value, no Q

    def parameters(self) -> list[torch.Tensor]:
        return [*self.learner.actor.parameters(), *self.learner.value_net.parameters()]

