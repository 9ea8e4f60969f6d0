"""A probabilistic ensemble world model (the PETS / MBPO / MOPO / RAMBO lineage). It knows nothing of RL.

Each of ``members`` networks maps a standardised ``(state, action)`` to a diagonal Gaussian over
``(Δstate, reward)``. The members are one module whose layers hold ``[members, in, out]`` weights, so
the whole ensemble runs as batched matrix products, never a Python loop over members.

Fitting follows MBPO/MOPO: a holdout of ``min(N · holdout_ratio, max_holdout)`` transitions; each
member trains on its own bootstrap of the rest; Gaussian negative log-likelihood plus a penalty on
the learnable log-variance bounds and per-layer weight decay; a member's weights are kept when its
holdout MSE improves by more than ``improvement`` (relative), and training stops after ``patience``
epochs in which no member improved. The ``elites`` members with the lowest holdout MSE are used to
sample. Everything about RL (rewards penalties, rollouts, terminations) lives elsewhere.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dynshift_agents import precision


@dataclass
class WorldModelConfig:
    """Ensemble architecture and fitting; defaults are MOPO's (RAMBO's in :meth:`rambo`)."""

    members: int = 7
    """Networks in the ensemble."""
    elites: int = 5
    """Members used for sampling: those with the lowest holdout MSE."""
    hidden: tuple[int, ...] = (200, 200, 200, 200)
    """Hidden layer widths (SiLU activations)."""
    weight_decay: tuple[float, ...] = (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4)
    """L2 coefficient per layer (input layer first), as ``coef · ½‖W‖²`` in the loss."""
    learning_rate: float = 1e-3
    batch_size: int = 256
    holdout_ratio: float = 0.2
    max_holdout: int = 1000
    improvement: float = 0.01
    """Relative drop of a member's holdout MSE that counts as an improvement."""
    patience: int = 5
    """Stop after this many epochs without any member improving."""
    max_epochs: int | None = None
    """Cap on epochs (``None``: until the patience runs out)."""
    max_logvar: float = 0.5
    """Initial value of the learnable upper log-variance bound."""
    min_logvar: float = -10.0
    """Initial value of the learnable lower log-variance bound."""
    logvar_bound_coef: float = 0.01
    """Weight of ``Σ max_logvar − Σ min_logvar`` in the loss."""
    bootstrap: bool = True
    """Each member trains on its own bootstrap resample of the training rows."""
    precision: str = "auto"
    """Matrix products while fitting: ``"fp32"``, ``"bf16"`` (autocast; the loss itself stays float32;
    about 2× faster on CPUs with bf16 units, ten times slower on CPUs without), or ``"auto"``: bf16
    only where this CPU has bf16 units and a short measurement confirms the gain
    (:mod:`dynshift_agents.precision`). A built model holds the resolved value, so its saved config
    records what was used. RAMBO's adversarial updates use it too; sampling and prediction stay fp32."""

    def __post_init__(self):
        self.hidden = tuple(self.hidden)
        self.weight_decay = tuple(self.weight_decay)
        if not 0 < self.elites <= self.members:
            raise ValueError(f"elites must be in 1..members ({self.members}), got {self.elites}")
        precision.validate(self.precision)
        if len(self.weight_decay) != len(self.hidden) + 1:
            raise ValueError(f"weight_decay needs one value per layer ({len(self.hidden) + 1}), got {self.weight_decay}")

    @classmethod
    def rambo(cls, **overrides) -> "WorldModelConfig":
        """RAMBO's settings: lr 3e-4, holdout 10 %, patience 10, log-variance bounds 1 / −6, penalty 0.001."""
        values = dict(learning_rate=3e-4, holdout_ratio=0.1, patience=10, max_logvar=1.0, min_logvar=-6.0,
                      logvar_bound_coef=0.001)
        return cls(**(values | overrides))


class EnsembleLinear(nn.Module):
    """``y[m] = x[m] @ W[m] + b[m]`` for every member ``m`` at once; ``x`` is ``[members, batch, in]``
    or ``[batch, in]`` (the same input for every member)."""

    def __init__(self, members: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(members, 1, out_features))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Truncated-normal weights (std 1 / (2·√in)), zero biases, drawn from torch's global generator."""
        nn.init.trunc_normal_(self.weight, std=1 / (2 * math.sqrt(self.weight.shape[1])))
        self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return torch.matmul(x, self.weight) + self.bias
        return torch.baddbmm(self.bias, x, self.weight)


class GaussianEnsemble(nn.Module):
    """The networks: standardised input → mean and log-variance, ``[members, batch, out]`` each."""

    def __init__(self, in_dim: int, out_dim: int, config: WorldModelConfig):
        super().__init__()
        widths = (in_dim, *config.hidden)
        self.hidden = nn.ModuleList(EnsembleLinear(config.members, a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.head = EnsembleLinear(config.members, widths[-1], 2 * out_dim)
        self.max_logvar = nn.Parameter(torch.full((1, 1, out_dim), float(config.max_logvar)))
        self.min_logvar = nn.Parameter(torch.full((1, 1, out_dim), float(config.min_logvar)))
        self.register_buffer("decay", torch.tensor(config.weight_decay, dtype=torch.float32))
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for layer in self.hidden:
            x = F.silu(layer(x))
        mean, raw = self.head(x).float().split(self.out_dim, dim=-1)  # float32 even under bf16 autocast
        # soft clamp into [min_logvar, max_logvar], differentiable in the bounds
        logvar = self.max_logvar - F.softplus(self.max_logvar - raw)
        logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)
        return mean, logvar

    @torch.no_grad()
    def reset_parameters(self, config: "WorldModelConfig") -> None:
        """Every member's initial weights anew (from torch's global generator) and the log-variance bounds."""
        for layer in [*self.hidden, self.head]:
            layer.reset_parameters()
        self.max_logvar.fill_(float(config.max_logvar))
        self.min_logvar.fill_(float(config.min_logvar))

    def decay_loss(self) -> torch.Tensor:
        layers = [*self.hidden, self.head]
        return sum(c * 0.5 * layer.weight.pow(2).sum() for c, layer in zip(self.decay, layers))


@dataclass
class FitReport:
    """What :meth:`WorldModel.fit` did."""

    epochs: int
    seconds: float
    train_rows: int
    holdout_rows: int
    holdout_mse: list[float]
    """Per member, of the kept weights (mean prediction, standardised-free raw targets)."""
    elites: list[int]
    gradient_steps: int
    history: list[float] = field(default_factory=list)
    """Mean holdout MSE over members after each epoch."""


class WorldModel(nn.Module):
    """Standardised inputs → Gaussian over ``(Δstate, reward)``; fit, predict, sample, save, load."""

    def __init__(self, obs_dim: int, action_dim: int, config: WorldModelConfig | None = None):
        super().__init__()
        config = config or WorldModelConfig()
        self.config = dataclasses.replace(config, precision=precision.resolve(config.precision))
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self.ensemble = GaussianEnsemble(obs_dim + action_dim, obs_dim + 1, self.config)
        self.register_buffer("input_mean", torch.zeros(obs_dim + action_dim))
        self.register_buffer("input_std", torch.ones(obs_dim + action_dim))
        self.register_buffer("elite_index", torch.arange(self.config.elites))

    # -- inputs and outputs -------------------------------------------------------------------------

    def _inputs(self, obs, actions) -> torch.Tensor:
        device = self.input_mean.device
        x = torch.cat([torch.as_tensor(obs, dtype=torch.float32, device=device),
                       torch.as_tensor(actions, dtype=torch.float32, device=device)], -1)
        return (x - self.input_mean) / self.input_std

    def forward(self, obs, actions) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of ``(Δstate, reward)`` for every member: ``[members, batch, obs_dim + 1]``."""
        return self.ensemble(self._inputs(obs, actions))

    @torch.no_grad()
    def predict_mean(self, obs, actions) -> tuple[torch.Tensor, torch.Tensor]:
        """The elites' average mean prediction: ``Δstate [batch, obs_dim]`` and ``reward [batch]``."""
        mean, _ = self(obs, actions)
        average = mean[self.elite_index].mean(0)
        return average[:, :-1], average[:, -1]

    @torch.no_grad()
    def sample(self, obs, actions, generator: torch.Generator | None = None,
               deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One model step for a batch: each row uses an elite member drawn uniformly at random.

        Returns ``next_obs [batch, obs_dim]``, ``reward [batch]``, and every member's ``mean`` and
        ``std`` (``[members, batch, obs_dim + 1]``) for uncertainty estimates.
        """
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.input_mean.device)
        mean, logvar = self(obs, actions)
        std = torch.exp(0.5 * logvar)
        rows = torch.arange(obs.shape[0], device=obs.device)
        # draws by the (CPU) generator, moved: a run's random numbers do not depend on its device
        member = self.elite_index[torch.randint(len(self.elite_index), (obs.shape[0],), generator=generator).to(obs.device)]
        chosen_mean, chosen_std = mean[member, rows], std[member, rows]
        if deterministic:
            out = chosen_mean
        else:
            noise = torch.randn(chosen_mean.shape, generator=generator).to(obs.device)
            out = chosen_mean + chosen_std * noise
        return obs + out[:, :-1], out[:, -1], mean, std

    # -- fitting ------------------------------------------------------------------------------------

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Training loss on standardised inputs ``x`` and raw targets ``y`` (``[members, batch, ·]``)."""
        with precision.autocast(self.config.precision):
            mean, logvar = self.ensemble(x)
        nll = ((mean - y).pow(2) * torch.exp(-logvar) + logvar).mean(dim=(1, 2)).sum()
        bounds = self.config.logvar_bound_coef * (self.ensemble.max_logvar.sum() - self.ensemble.min_logvar.sum())
        return nll + bounds + self.ensemble.decay_loss()

    @torch.no_grad()
    def holdout_mse(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-member MSE of the mean prediction on standardised ``x`` and raw ``y`` (``[members]``)."""
        mean, _ = self.ensemble(x)
        return (mean - y).pow(2).mean(dim=(1, 2))

    def fit(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray, seed: int = 0,
            log: Callable[[int, dict], None] | None = None) -> FitReport:
        """Fit on transitions (from scratch: the input statistics are those of this data), on the device the
        model is on (``model.to(device)`` first); the shuffles are NumPy's, so any device sees the same batches."""
        cfg = self.config
        device = self.input_mean.device
        start = time.perf_counter()
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        # the initial weights from the seed, not from whatever state torch's generator had at construction
        # (torch seeds it randomly in every process): the same data and seed give the same model anywhere
        self.ensemble.reset_parameters(cfg)
        inputs = np.concatenate([obs, actions], axis=-1).astype(np.float32)
        targets = np.concatenate([next_obs - obs, np.reshape(rewards, (-1, 1))], axis=-1).astype(np.float32)
        n = len(inputs)
        holdout = min(int(n * cfg.holdout_ratio), cfg.max_holdout)
        if holdout < 1 or n - holdout < cfg.batch_size:
            raise ValueError(f"{n} transitions are too few to fit with a holdout and batch {cfg.batch_size}")
        order = rng.permutation(n)
        train_idx, holdout_idx = order[holdout:], order[:holdout]

        mean = inputs[train_idx].mean(0)
        std = inputs[train_idx].std(0)
        std[std < 1e-12] = 1.0
        self.input_mean.copy_(torch.as_tensor(mean))
        self.input_std.copy_(torch.as_tensor(std))
        x = (torch.as_tensor(inputs, device=device) - self.input_mean) / self.input_std
        y = torch.as_tensor(targets, device=device)
        held = torch.as_tensor(holdout_idx, device=device)
        x_hold, y_hold = x[held].expand(cfg.members, -1, -1), y[held].expand(cfg.members, -1, -1)

        m, n_train = cfg.members, len(train_idx)
        rows = train_idx[rng.integers(n_train, size=(m, n_train))] if cfg.bootstrap else np.tile(train_idx, (m, 1))
        optimizer = torch.optim.Adam(self.ensemble.parameters(), lr=cfg.learning_rate, fused=True)
        best = self.holdout_mse(x_hold, y_hold).clone()
        best_state = {k: v.clone() for k, v in self.ensemble.state_dict().items()}
        epochs = since_improvement = steps = 0
        history = []
        while since_improvement < cfg.patience and (cfg.max_epochs is None or epochs < cfg.max_epochs):
            rows = np.take_along_axis(rows, rng.random(rows.shape).argsort(axis=1), axis=1)
            batches = torch.as_tensor(rows, device=device)
            for b in range(0, n_train, cfg.batch_size):
                index = batches[:, b:b + cfg.batch_size]
                loss = self.loss(x[index], y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                steps += 1
            epochs += 1
            current = self.holdout_mse(x_hold, y_hold)
            improved = (best - current) / best > cfg.improvement
            if improved.any():
                state = self.ensemble.state_dict()
                for key, value in state.items():
                    if value.shape[:1] == (m,):  # per-member tensors: keep the improved members' weights
                        best_state[key][improved] = value[improved]
                    else:
                        best_state[key] = value.clone()
                best = torch.where(improved, current, best)
                since_improvement = 0
            else:
                since_improvement += 1
            history.append(float(current.mean()))
            if log is not None:
                log(epochs, {"holdout_mse": float(current.mean()), "best_mse": float(best.mean()), "loss": float(loss.detach())})
        self.ensemble.load_state_dict(best_state)
        final = self.holdout_mse(x_hold, y_hold)
        self.elite_index.copy_(torch.argsort(final)[: cfg.elites])
        return FitReport(epochs=epochs, seconds=time.perf_counter() - start, train_rows=n_train,
                         holdout_rows=holdout, holdout_mse=final.tolist(), elites=self.elite_index.tolist(),
                         gradient_steps=steps, history=history)

    # -- persistence --------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike, metadata: dict | None = None) -> None:
        """One file, written atomically; readable with ``torch.load(weights_only=True)``."""
        path = Path(path)
        payload = {"config": json.dumps(asdict(self.config)), "obs_dim": self.obs_dim, "action_dim": self.action_dim,
                   "state": self.state_dict(), "metadata": json.dumps(metadata or {})}
        tmp = path.with_name(path.name + ".tmp")
        torch.save(payload, tmp)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "WorldModel":
        payload = torch.load(path, map_location="cpu", weights_only=True)
        values = json.loads(payload["config"])
        if "fit_bf16" in values:  # written before the precision setting existed
            values["precision"] = "bf16" if values.pop("fit_bf16") else "fp32"
        model = cls(payload["obs_dim"], payload["action_dim"], WorldModelConfig(**values))
        model.load_state_dict(payload["state"])
        model.metadata = json.loads(payload["metadata"])
        return model
