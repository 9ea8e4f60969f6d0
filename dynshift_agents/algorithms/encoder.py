"""What the policy sees: one object, saved with the agent (as d3rlpy's observation scalers).

``ObservationEncoder`` maps an env observation to the policy's input: optionally standardised by the
dataset's state statistics (RAMBO, TD3+BC), then optionally followed by a context vector (AugWM's
context-conditioned policy sees ``[s, z]``; rows of the training dynamics get ``default_context``).
The same encoder is applied to the dataset once (the buffer stores policy inputs), to model states
during rollouts (torch) and to real observations when acting (NumPy), so the three can never drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch


@dataclass
class ObservationEncoder:
    """``s → [(s − mean) / std, context]``; each part optional."""

    obs_dim: int
    context_dim: int = 0
    """Length of the context appended to the observation (0: none)."""
    default_context: float = 1.0
    """The context of the training data's own dynamics (AugWM: z = 1)."""
    mean: np.ndarray | None = None
    """Per-dimension state mean (float32), or ``None``: no standardisation."""
    std: np.ndarray | None = None

    def fit(self, obs: np.ndarray) -> None:
        """Standardise by the statistics of ``obs`` (a dataset's states); std floored at 1e-6."""
        self.mean = obs.mean(0).astype(np.float32)
        self.std = np.maximum(obs.std(0), 1e-6).astype(np.float32)

    @property
    def standardises(self) -> bool:
        return self.mean is not None

    def space(self, env_space: gym.spaces.Box) -> gym.spaces.Box:
        """The policy's observation space."""
        low, high = env_space.low, env_space.high
        if self.standardises:
            low, high = np.full_like(low, -np.inf), np.full_like(high, np.inf)
        if not self.context_dim:
            return gym.spaces.Box(low, high, dtype=np.float64)
        return gym.spaces.Box(np.concatenate([low, np.zeros(self.context_dim)]),
                              np.concatenate([high, np.full(self.context_dim, np.inf)]), dtype=np.float64)

    def __call__(self, obs, context=None):
        """Encode a batch (or one observation): NumPy in, float32 NumPy out; torch in, torch out.
        ``context`` is ``[batch, context_dim]`` (or broadcastable); default :attr:`default_context`."""
        if isinstance(obs, torch.Tensor):
            if self.standardises:
                obs = (obs - torch.as_tensor(self.mean, device=obs.device)) / torch.as_tensor(self.std, device=obs.device)
            if not self.context_dim:
                return obs
            if context is None:
                context = torch.full((*obs.shape[:-1], self.context_dim), self.default_context, dtype=obs.dtype,
                                     device=obs.device)
            return torch.cat([obs, context], dim=-1)
        obs = np.asarray(obs)
        if self.standardises:
            obs = (obs - self.mean) / self.std
        if self.context_dim:
            z = np.full(self.context_dim, self.default_context) if context is None else np.asarray(context, np.float64)
            obs = np.concatenate([obs, np.broadcast_to(z, (*obs.shape[:-1], self.context_dim))], axis=-1)
        return obs.astype(np.float32)

    def encodes(self, obs) -> bool:
        """Whether ``obs`` is a raw env observation (not already a policy input)."""
        return np.shape(obs)[-1] == self.obs_dim

    # -- persistence: numbers as JSON, arrays as tensors --------------------------------------------

    def to_json(self) -> dict:
        return {"obs_dim": self.obs_dim, "context_dim": self.context_dim, "default_context": self.default_context}

    def tensors(self) -> dict[str, torch.Tensor]:
        return {} if not self.standardises else {"mean": torch.as_tensor(self.mean), "std": torch.as_tensor(self.std)}

    @classmethod
    def restore(cls, values: dict, tensors: dict[str, torch.Tensor]) -> "ObservationEncoder":
        encoder = cls(**values)
        if tensors:
            encoder.mean, encoder.std = tensors["mean"].numpy(), tensors["std"].numpy()
        return encoder
