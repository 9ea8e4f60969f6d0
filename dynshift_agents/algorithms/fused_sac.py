"""SAC's update at identical maths with less overhead: the learner the model-based agents train with.

``FusedSAC`` is SB3's ``SAC`` with its own ``train()``. Per step it computes exactly what
``SAC.train()`` computes (the same batch, the same random draws in the same order, the same losses and
updates), but

- both critics (and both target critics) run as one batched pass: their SB3 weights are stacked into
  ``[critics, out, in]`` tensors and applied with ``baddbmm``, as the world model runs its members;
- the actor's loss reads the critics with their weights detached (SB3 also back-propagates it into the
  critics, whose gradients are then discarded: the parameters follow the same path);
- the optimisers are PyTorch's fused Adam (same hyperparameters), and Polyak averaging is one
  ``foreach`` multiply-add over all target tensors;
- losses are kept as tensors and read once per block of updates (no ``.item()`` per step).

The networks stay SB3's own modules (``policy.critic.qf0``, ``qf1``, …), so the saved policy is an SB3
``SACPolicy`` state dict that ``SAC.load``-style code reads. ``tests/test_fused_sac.py`` checks the
parameters after several updates against SB3's ``SAC.train()`` from the same start, to float tolerance.
"""

from __future__ import annotations

import math

import torch
from stable_baselines3 import SAC
from stable_baselines3.common.policies import ContinuousCritic
from torch import nn

from dynshift_agents.algorithms.agent import MetricMeans, optimizer_step


class StackedCritics:
    """Every Q network of an SB3 ``ContinuousCritic`` evaluated in one batched pass → ``[critics, batch, 1]``."""

    def __init__(self, critic: ContinuousCritic):
        self.critic = critic
        networks = critic.q_networks
        self.layers = list(zip(*[[m for m in net if isinstance(m, nn.Linear)] for net in networks]))
        activations = [m for m in networks[0] if not isinstance(m, nn.Linear)]
        self.activation = activations[0] if activations else nn.Identity()

    def __call__(self, obs: torch.Tensor, actions: torch.Tensor, detach_weights: bool = False) -> torch.Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.critic.share_features_extractor):
            features = self.critic.extract_features(obs, self.critic.features_extractor)
        x = torch.cat([features, actions], dim=1)
        h = x.expand(len(self.critic.q_networks), *x.shape)
        for index, linears in enumerate(self.layers):
            weight = torch.stack([layer.weight for layer in linears]).transpose(1, 2)
            bias = torch.stack([layer.bias for layer in linears]).unsqueeze(1)
            if detach_weights:
                weight, bias = weight.detach(), bias.detach()
            h = torch.baddbmm(bias, h, weight)
            if index < len(self.layers) - 1:
                h = self.activation(h)
        return h


def fused_adam(optimizer: torch.optim.Optimizer) -> torch.optim.Adam:
    """A fused Adam over the same parameters with the same hyperparameters."""
    keep = ("lr", "betas", "eps", "weight_decay", "amsgrad")
    defaults = {k: v for k, v in optimizer.defaults.items() if k in keep}
    return torch.optim.Adam([p for group in optimizer.param_groups for p in group["params"]], **defaults, fused=True)


def entropy_step(learner: SAC, log_prob: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """SAC's entropy coefficient for this step (before its update) and, when it is tuned, one step of
    its loss −log α·(log π + target entropy) (returned detached; ``None`` for a fixed coefficient)."""
    if learner.ent_coef_optimizer is None:
        return learner.ent_coef_tensor, None
    ent_coef = torch.exp(learner.log_ent_coef.detach())
    loss = -(learner.log_ent_coef * (log_prob + learner.target_entropy).detach()).mean()
    optimizer_step(learner.ent_coef_optimizer, loss)
    cap = getattr(learner, "ent_coef_max", None)
    if cap is not None:  # α ≤ cap (the public MOPO code's α ≤ 1)
        with torch.no_grad():
            learner.log_ent_coef.clamp_(max=math.log(cap))
    return ent_coef, loss.detach()


def sample_with_entropy_step(learner: SAC, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
    """SAC's first move in an update: reparameterised actions a ~ π(·|s) with log π ``[batch, 1]``, then one
    step of the entropy coefficient (:func:`entropy_step`). Returns the actions, log π, the coefficient
    before its step, and its metrics."""
    actions, log_prob = learner.actor.action_log_prob(obs)
    log_prob = log_prob.reshape(-1, 1)
    ent_coef, ent_coef_loss = entropy_step(learner, log_prob)
    metrics = {"ent_coef": ent_coef.detach().reshape(())}
    if ent_coef_loss is not None:
        metrics["ent_coef_loss"] = ent_coef_loss
    return actions, log_prob, ent_coef, metrics


@torch.no_grad()
def sac_target(learner: SAC, data, gamma: float, ent_coef: torch.Tensor | None = None) -> torch.Tensor:
    """r + γ(1 − done)·(min_i Q̄_i(s', a') − α·log π(a'|s')), a' ~ π(·|s') from SB3's target critics; without
    ``ent_coef`` the deterministic backup, r + γ(1 − done)·min_i Q̄_i(s', a')."""
    next_actions, next_log_prob = learner.actor.action_log_prob(data.next_observations)
    next_q = torch.cat(learner.critic_target(data.next_observations, next_actions), dim=1).min(dim=1, keepdim=True).values
    if ent_coef is not None:
        next_q = next_q - ent_coef * next_log_prob.reshape(-1, 1)
    return data.rewards + (1 - data.dones) * gamma * next_q


class FusedSAC(SAC):
    """SB3's SAC with a faster ``train()`` at identical maths (see the module docstring).

    Three options SB3's SAC lacks, all off by default (SB3's single learning rate, no cap): the
    actor's and the entropy coefficient's own learning rates, and a cap on the tuned coefficient
    α (the public MOPO code: 1e-4 for both, 3e-4 for the critics, α ≤ 1)."""

    def __init__(self, *args, actor_learning_rate: float | None = None, ent_coef_learning_rate: float | None = None,
                 ent_coef_max: float | None = None, **kwargs):
        self.actor_learning_rate, self.ent_coef_learning_rate = actor_learning_rate, ent_coef_learning_rate
        self.ent_coef_max = ent_coef_max
        super().__init__(*args, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        self.actor.optimizer = fused_adam(self.actor.optimizer)
        self.critic.optimizer = fused_adam(self.critic.optimizer)
        if self.ent_coef_optimizer is not None:
            self.ent_coef_optimizer = fused_adam(self.ent_coef_optimizer)
        self._critics, self._targets = StackedCritics(self.critic), StackedCritics(self.critic_target)
        self._online, self._target = list(self.critic.parameters()), list(self.critic_target.parameters())

    @torch.no_grad()
    def _polyak(self) -> None:
        """target ← (1 − τ)·target + τ·online over all tensors at once (SB3's ``polyak_update``)."""
        torch._foreach_mul_(self._target, 1 - self.tau)
        torch._foreach_add_(self._target, self._online, alpha=self.tau)
        for stat, target in zip(self.batch_norm_stats, self.batch_norm_stats_target):  # copied, as SB3 does
            target.copy_(stat)

    def begin_block(self) -> None:
        """Before a block of updates: training mode and the learning rates (SB3's schedule, then the
        actor's and the entropy coefficient's own rates where set)."""
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers.append(self.ent_coef_optimizer)
        self._update_learning_rate(optimizers)
        for optimizer, rate in ((self.actor.optimizer, self.actor_learning_rate),
                                (self.ent_coef_optimizer, self.ent_coef_learning_rate)):
            if optimizer is not None and rate is not None:
                for group in optimizer.param_groups:
                    group["lr"] = rate

    def update(self, data, step: int) -> dict[str, torch.Tensor]:
        """One SAC update on ``data``; ``step`` counts the updates before it (Polyak averaging every
        ``target_update_interval``-th)."""
        discounts = data.discounts if data.discounts is not None else self.gamma
        if self.use_sde:
            self.actor.reset_noise()
        actions_pi, log_prob, ent_coef, metrics = sample_with_entropy_step(self, data.observations)

        with torch.no_grad():
            next_actions, next_log_prob = self.actor.action_log_prob(data.next_observations)
            next_q = self._targets(data.next_observations, next_actions).min(dim=0).values
            next_q = next_q - ent_coef * next_log_prob.reshape(-1, 1)
            target_q = data.rewards + (1 - data.dones) * discounts * next_q
        current_q = self._critics(data.observations, data.actions)
        critic_loss = 0.5 * (current_q - target_q).pow(2).mean(dim=(1, 2)).sum()
        optimizer_step(self.critic.optimizer, critic_loss)
        metrics["critic_loss"] = critic_loss.detach()

        min_q_pi = self._critics(data.observations, actions_pi, detach_weights=True).min(dim=0).values
        actor_loss = (ent_coef * log_prob - min_q_pi).mean()
        optimizer_step(self.actor.optimizer, actor_loss)
        metrics["actor_loss"] = actor_loss.detach()
        if step % self.target_update_interval == 0:
            self._polyak()
        return metrics

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """SB3's entry point (online ``learn()``, and the comparison with ``SAC.train()``): ``gradient_steps``
        updates on batches of the replay buffer, the mean of each metric logged once. Offline, DynShift's
        agents call :meth:`update` from their own loop instead."""
        self.begin_block()
        means = MetricMeans()
        for gradient_step in range(gradient_steps):
            means.add(self.update(self.replay_buffer.sample(batch_size, env=self._vec_normalize_env), gradient_step))
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for key, mean in means.read().items():
            self.logger.record(f"train/{key}", mean)
