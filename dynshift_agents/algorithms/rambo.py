"""RAMBO-RL: Robust Adversarial Model-Based Offline RL (Rigter, Lacerda, Hawes, NeurIPS 2022).

Conservatism without uncertainty estimates: after every block of SAC steps the world model is
trained *against* the policy. An adversary step rolls ``adversary_batch_size`` dataset states
``rollout_length`` steps forward under the current stochastic policy; at each step it samples
(s', r) from a random elite, takes log p(s', r | s, a) under the uniform mixture of the elites
(float64), and the advantage A = r + γ(1 − done)·Q(s', π_det(s')) − Q(s, a) from the online critics
(the pessimistic value: SAC's minimum over critics), normalised over the batch. The model minimises

    λ · reduce_batch(A · log p) + Gaussian NLL on ``adversary_batch_size`` real transitions,

so transitions that are good for the policy become less likely. ``adversary_reduction="sum"``
follows the official code (a public reimplementation takes the mean, 256× weaker at the same λ).
Before SAC, the actor is warm-started by behaviour cloning, and the policy sees standardised states
(the dataset's mean and std).

As in the public PyTorch reimplementation, one adversary step is one model update on one step of a
rollout, with a fresh batch of real transitions: 1000 adversary steps at h = 5 are 200 rollouts.
Choices where the sources are silent (stated, configurable): rows whose model state terminates
leave the rollout; BC maximises the tanh-Gaussian log-likelihood of the dataset's actions for
``bc_steps`` steps; with λ = 0 the adversarial phase is skipped, so the model stays as fitted (the
paper's (5, 0) configuration).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from dynshift_agents import precision
from dynshift_agents.algorithms.agent import optimizer_step
from dynshift_agents.algorithms.model_based import ModelBasedAgent, ModelBasedConfig
from dynshift_agents.checks import COUNT, NON_NEGATIVE, POSITIVE, Range, STEPS, check_choice
from dynshift_agents.data.catalog import robot_and_kind
from dynshift_agents.data.transitions import Transitions
from dynshift_agents.world_model import WorldModelConfig


@dataclass
class RAMBOConfig(ModelBasedConfig):
    """RAMBO's hyperparameters (paper Table 2 and official code); CPU-scale presets elsewhere."""

    RANGES: ClassVar[dict[str, Range]] = {"adversary_weight": NON_NEGATIVE, "adversary_steps": STEPS,
                                          "adversary_batch_size": COUNT, "adversary_learning_rate": POSITIVE,
                                          "bc_steps": STEPS, "bc_learning_rate": POSITIVE}

    rollout_length: int = 5
    """h: model steps per rollout, for the policy's data and for adversary steps."""
    adversary_weight: float = 3e-4
    """λ: weight of the adversarial term."""
    real_ratio: float = 0.5
    adversary_steps: int = 1000
    """Model updates after each block of ``rollout_freq`` SAC steps."""
    adversary_batch_size: int = 256
    """Dataset states rolled out per adversary step, and real transitions in its likelihood term."""
    adversary_learning_rate: float = 3e-4
    adversary_reduction: str = "sum"
    """``"sum"`` over the batch (official code) or ``"mean"``."""
    bc_steps: int = 10_000
    """Behaviour-cloning warm start of the actor (gradient steps, batch ``batch_size``)."""
    bc_learning_rate: float = 1e-4
    standardise_states: bool = True
    """The policy sees (s − mean) / std of the dataset's states."""

    def __post_init__(self):
        super().__post_init__()
        check_choice(self, "adversary_reduction", ("sum", "mean"))

    @classmethod
    def for_dataset(cls, dataset_id: str, **overrides) -> "RAMBOConfig":
        """The official (h, λ) for the dataset's robot and kind, if known."""
        h, lam = PRESETS.get(robot_and_kind(dataset_id), (cls.rollout_length, cls.adversary_weight))
        return cls.from_dict({"rollout_length": h, "adversary_weight": lam} | overrides)


CONFIGURATIONS = ((1, 3e-4), (2, 3e-4), (5, 3e-4), (5, 0.0))
"""The paper's four (h, λ) configurations."""

PRESETS: dict[tuple[str, str], tuple[int, float]] = {
    ("halfcheetah", "random"): (5, 0.0), ("halfcheetah", "medium"): (5, 3e-4),
    ("halfcheetah", "mixed"): (5, 3e-4), ("halfcheetah", "medium-expert"): (5, 3e-4),
    ("hopper", "random"): (2, 3e-4), ("hopper", "medium"): (5, 3e-4),
    ("hopper", "mixed"): (2, 3e-4), ("hopper", "medium-expert"): (5, 3e-4),
    ("walker2d", "random"): (5, 0.0), ("walker2d", "medium"): (5, 0.0),
    ("walker2d", "mixed"): (5, 0.0), ("walker2d", "medium-expert"): (2, 3e-4),
}
"""The official per-dataset (h, λ) (``mixed`` is D4RL's medium-replay)."""


def mixture_log_prob(sample: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log of the uniform mixture of diagonal Gaussians at ``sample``, in float64.

    ``sample [batch, d]``; ``mean``, ``logvar`` ``[members, batch, d]`` (the elites). Returns ``[batch]``.
    """
    sample, mean, logvar = sample.double(), mean.double(), logvar.double()
    per_member = -0.5 * (((sample - mean) ** 2) * torch.exp(-logvar) + logvar + math.log(2 * math.pi)).sum(-1)
    return torch.logsumexp(per_member, dim=0) - math.log(mean.shape[0])


class RAMBO(ModelBasedAgent, name="rambo", config=RAMBOConfig):
    """RAMBO on the model-based layer: adversarial model updates after each block of SAC steps."""
    config: RAMBOConfig

    def attach_dataset(self, dataset: Transitions) -> None:
        super().attach_dataset(dataset)
        self.model_optimizer = torch.optim.Adam(self.world_model.ensemble.parameters(),
                                                lr=self.config.adversary_learning_rate)

    @classmethod
    def world_model_config(cls) -> WorldModelConfig:
        return WorldModelConfig.rambo()

    def before_learn(self) -> None:
        super().before_learn()
        if self.gradient_steps == 0 and self.config.bc_steps and not getattr(self, "bc_done", False):
            loss = self.behaviour_cloning()
            print(f"rambo: behaviour cloning warm start, {self.config.bc_steps} steps, final NLL {loss:.3f}", flush=True)

    def json_state(self) -> dict:
        return super().json_state() | {"bc_done": True}

    def load_json_state(self, state: dict) -> None:
        super().load_json_state(state)
        self.bc_done = state.get("bc_done", False)

    # -- behaviour cloning ------------------------------------------------------------------------

    def behaviour_cloning(self) -> float:
        """Warm-start the actor: maximise the tanh-Gaussian log-likelihood of the dataset's actions."""
        cfg, actor = self.config, self.learner.policy.actor
        obs = torch.as_tensor(self.replay_buffer.real["observations"])
        actions = torch.as_tensor(self.replay_buffer.real["actions"]).clamp(-1 + 1e-6, 1 - 1e-6)
        optimizer = torch.optim.Adam(actor.parameters(), lr=cfg.bc_learning_rate)
        loss = torch.tensor(0.0)
        for _ in range(cfg.bc_steps):
            index = torch.as_tensor(self.rng.integers(len(obs), size=cfg.batch_size), device=obs.device)
            mean, log_std, _ = actor.get_action_dist_params(obs[index])
            log_prob = actor.action_dist.proba_distribution(mean, log_std).log_prob(actions[index])
            loss = -log_prob.mean()
            optimizer_step(optimizer, loss)
        self.bc_done = True
        return float(loss.detach())

    # -- the adversary ----------------------------------------------------------------------------

    def train_block(self, steps: int) -> dict[str, float]:
        """Rollouts and SAC steps, then the adversarial model updates."""
        stats = super().train_block(steps)
        if self.config.adversary_weight == 0:
            return stats
        updates = max(1, round(self.config.adversary_steps * steps / self.config.rollout_freq))
        self._adversary_rollout = None  # every block starts fresh rollouts (so resuming is exact)
        adversary = [self.adversary_step() for _ in range(updates)]
        return stats | {f"adversary/{key}": float(np.mean([s[key] for s in adversary])) for key in adversary[0]}

    def adversary_step(self) -> dict[str, float]:
        """One adversarial model update on one step of the current adversary rollout; returns its loss terms.

        The rollout (``adversary_batch_size`` dataset states, ``rollout_length`` steps under the current
        stochastic policy) advances by one model step per update, from the sampled next states; a
        new rollout starts when it is ``rollout_length`` steps long or every row has terminated.
        """
        cfg = self.config
        model = self.world_model
        n = cfg.adversary_batch_size
        rollout = getattr(self, "_adversary_rollout", None)
        if rollout is None or rollout[1] == cfg.rollout_length or len(rollout[0]) == 0:
            rollout = (torch.as_tensor(self.dataset.obs[self.rng.integers(len(self.dataset), size=n)], device=self.device), 0)
        obs, t = rollout
        model.train()
        with torch.no_grad():
            actions = self._act(obs, torch.arange(len(obs), device=obs.device))
        with precision.autocast(model.config.precision):
            mean, logvar = model(obs, actions)  # bf16 products if the model is fitted with them; float32 out
        elites = model.elite_index
        with torch.no_grad():
            member = elites[torch.randint(len(elites), (len(obs),), generator=self.generator).to(obs.device)]
            rows = torch.arange(len(obs), device=obs.device)
            std = torch.exp(0.5 * logvar[member, rows])
            sample = mean[member, rows] + std * torch.randn(std.shape, generator=self.generator).to(obs.device)
            next_obs, reward = obs + sample[:, :-1], sample[:, -1]
            done = torch.as_tensor(self.model_env.termination_fn(obs, actions, next_obs), device=obs.device)
            advantage = self._advantage(obs, actions, reward, next_obs, done)
        term = advantage.double() * mixture_log_prob(sample, mean[elites], logvar[elites])
        adversarial = term.sum() if cfg.adversary_reduction == "sum" else term.mean()
        real = self.rng.integers(len(self.dataset), size=n)
        x = model._inputs(self.dataset.obs[real], self.dataset.actions[real])
        y = torch.as_tensor(np.concatenate([self.dataset.next_obs[real] - self.dataset.obs[real],
                                            self.dataset.rewards[real, None]], 1), device=self.device)
        likelihood = model.loss(x.expand(model.config.members, -1, -1), y.expand(model.config.members, -1, -1))
        loss = cfg.adversary_weight * adversarial.float() + likelihood
        optimizer_step(self.model_optimizer, loss)
        model.eval()
        self._adversary_rollout = (next_obs[~done], t + 1)
        return {"adversarial": float(adversarial.detach()), "likelihood": float(likelihood.detach())}

    @torch.no_grad()
    def _advantage(self, obs, actions, reward, next_obs, done) -> torch.Tensor:
        """A = r + γ(1 − done)·Q(s', π_det(s')) − Q(s, a), normalised over the batch."""
        policy = self.learner.policy
        scaled = self.scale_actions(actions)
        s, s_next = self.encoder(obs), self.encoder(next_obs)
        q_next = self.q_values(s_next, policy.actor(s_next, deterministic=True))
        advantage = reward + self.config.gamma * (~done).float() * q_next - self.q_values(s, scaled)
        return (advantage - advantage.mean()) / (advantage.std() + 1e-6)
