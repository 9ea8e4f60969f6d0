"""Online context inference (AugWM's test-time "LM"): estimate z from real transitions as they arrive.

Per state dimension i, real changes δ = s' − s are regressed through the origin on the world model's
predicted changes δ̂ (the elites' mean):

    ẑ_i = (Σ_t w_t δ_t,i δ̂_t,i + κ) / (Σ_t w_t δ̂²_t,i + κ),    w_t = γ^(T − t)

The forgetting factor γ keeps the estimate following a mid-episode switch (an effective window of
about 1 / (1 − γ) steps); κ is a weak prior towards z = 1 that also keeps dimensions with no signal
at 1. Before ``warmup`` transitions the estimate is not trusted and z = 1 is returned. Estimates are
clipped to ``clip``. Everything is batched over parallel episodes, one estimate per row.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from dynshift_agents.world_model import WorldModel


class OnlineContextEstimator:
    """ẑ per parallel episode, updated from real transitions.

    :param predict_delta: ``(obs, actions) -> δ̂`` for a batch (a :class:`WorldModel` uses its elites' mean).
    :param episodes: rows estimated side by side.
    :param warmup: transitions before the estimate is used (z = 1 until then).
    :param forgetting: γ, the weight of the previous sums at each update (1.0: never forget).
    :param prior: κ, the prior's weight towards z = 1.
    :param clip: bounds of the returned estimate.
    """

    def __init__(self, predict_delta: Callable | WorldModel, dim: int, episodes: int = 1, warmup: int = 10,
                 forgetting: float = 0.98, prior: float = 1e-4, clip: tuple[float, float] = (0.1, 3.0)):
        if isinstance(predict_delta, WorldModel):
            model = predict_delta
            predict_delta = lambda obs, actions: model.predict_mean(obs, actions)[0].numpy()  # noqa: E731
        if not 0.0 < forgetting <= 1.0:
            raise ValueError(f"forgetting must be in (0, 1], got {forgetting}")
        self.predict_delta, self.dim, self.warmup = predict_delta, dim, warmup
        self.forgetting, self.prior, self.clip = forgetting, prior, clip
        self.cross = np.zeros((episodes, dim))
        self.square = np.zeros((episodes, dim))
        self.count = np.zeros(episodes, dtype=int)

    def reset(self, rows: np.ndarray | None = None) -> None:
        """Forget everything (or only ``rows``, a boolean mask or indices), e.g. at a new episode."""
        rows = slice(None) if rows is None else rows
        self.cross[rows] = 0.0
        self.square[rows] = 0.0
        self.count[rows] = 0

    def update(self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray, rows: np.ndarray | None = None) -> None:
        """Add one real transition per row (``rows`` selects which rows they belong to)."""
        rows = np.arange(len(self.count)) if rows is None else rows
        obs = np.asarray(obs, dtype=np.float32)
        delta = np.asarray(next_obs, dtype=np.float64) - obs
        predicted = np.asarray(self.predict_delta(torch.as_tensor(obs), torch.as_tensor(actions, dtype=torch.float32)),
                               dtype=np.float64)
        self.cross[rows] = self.forgetting * self.cross[rows] + delta * predicted
        self.square[rows] = self.forgetting * self.square[rows] + predicted**2
        self.count[rows] += 1

    @property
    def raw(self) -> np.ndarray:
        """The regression estimate of every row, ignoring warm-up and clipping."""
        return (self.cross + self.prior) / (self.square + self.prior)

    @property
    def z(self) -> np.ndarray:
        """The estimate to use: ``[episodes, dim]``, 1 during warm-up."""
        z = np.clip(self.raw, *self.clip)
        z[self.count < self.warmup] = 1.0
        return z
