"""``MixedReplayBuffer``: an offline dataset plus a FIFO of world-model transitions, for SB3's SAC.

A subclass of Stable-Baselines3's ``ReplayBuffer``: SB3's circular storage (first in, first out) holds
the model transitions, the dataset sits beside it, and :meth:`sample` returns SB3's
``ReplayBufferSamples`` with ``round(batch_size · real_ratio)`` dataset rows and the rest model rows
(all dataset rows while the model part is empty). ``dones`` are true terminations only, so values
bootstrap through time limits.

Per-sample transforms — data changes such as AugWM's augmentations or DARA's reward change — plug
in as ``transform(samples, is_model) -> samples``, applied to each batch before it is returned.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from dynshift_agents.data.transitions import Transitions

Transform = Callable[[ReplayBufferSamples, torch.Tensor], ReplayBufferSamples]


class MixedReplayBuffer(ReplayBuffer):
    """Dataset rows plus a FIFO of model rows, mixed at ``real_ratio`` in every batch.

    :param buffer_size: capacity of the model FIFO (e.g. rollout batch × horizon × rounds kept).
    :param dataset: the offline transitions (actions in the policy's [-1, 1] units, see ``scale_action``).
    :param real_ratio: fraction of each batch drawn from the dataset (MOPO: 0.05).
    :param transform: optional per-batch transform, ``(samples, is_model) -> samples``.
    :param seed: the buffer's own sampling generator (SB3's buffers use NumPy's global one).
    """

    def __init__(self, buffer_size: int, observation_space: spaces.Box, action_space: spaces.Box,
                 device: torch.device | str = "cpu", n_envs: int = 1, optimize_memory_usage: bool = False,
                 *, dataset: Transitions, real_ratio: float = 0.05, transform: Transform | None = None,
                 seed: int | None = None, handle_timeout_termination: bool = False):
        if not 0.0 <= real_ratio <= 1.0:
            raise ValueError(f"real_ratio must be in [0, 1], got {real_ratio}")
        if n_envs != 1:
            raise ValueError("MixedReplayBuffer holds model rollouts, not parallel envs: n_envs must be 1")
        observation_space = spaces.Box(observation_space.low.astype(np.float32), observation_space.high.astype(np.float32),
                                       dtype=np.float32)
        super().__init__(buffer_size, observation_space, action_space, device=device, n_envs=1,
                         optimize_memory_usage=False, handle_timeout_termination=False)
        if dataset.obs.shape[1:] != self.obs_shape or dataset.actions.shape[1:] != (self.action_dim,):
            raise ValueError(f"dataset shapes obs {dataset.obs.shape[1:]}, actions {dataset.actions.shape[1:]} do not "
                             f"match the spaces' {self.obs_shape}, {(self.action_dim,)}")
        self.real = {
            "observations": np.ascontiguousarray(dataset.obs, dtype=np.float32),
            "actions": np.ascontiguousarray(dataset.actions, dtype=np.float32),
            "next_observations": np.ascontiguousarray(dataset.next_obs, dtype=np.float32),
            "dones": dataset.terminals.astype(np.float32)[:, None],
            "rewards": dataset.rewards.astype(np.float32)[:, None],
        }
        self.real_ratio = real_ratio
        self.transform = transform
        self.rng = np.random.default_rng(seed)

    @property
    def real_size(self) -> int:
        return len(self.real["rewards"])

    def add_model(self, obs: np.ndarray, next_obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                  dones: np.ndarray) -> None:
        """Append a batch of model transitions, evicting the oldest when full."""
        n = len(obs)
        if n > self.buffer_size:  # only the newest fit
            obs, next_obs, actions, rewards, dones = (a[-self.buffer_size:] for a in (obs, next_obs, actions, rewards, dones))
            n = self.buffer_size
        index = (self.pos + np.arange(n)) % self.buffer_size
        self.observations[index, 0] = obs
        self.next_observations[index, 0] = next_obs
        self.actions[index, 0] = actions
        self.rewards[index, 0] = rewards
        self.dones[index, 0] = dones
        self.full = self.full or self.pos + n >= self.buffer_size
        self.pos = (self.pos + n) % self.buffer_size

    def sample(self, batch_size: int, env=None) -> ReplayBufferSamples:
        model_rows = self.size()
        n_real = batch_size if model_rows == 0 else int(round(batch_size * self.real_ratio))
        real = self.rng.integers(self.real_size, size=n_real)
        model = self.rng.integers(model_rows, size=batch_size - n_real) if model_rows else np.empty(0, int)
        parts = []
        for name in ("observations", "actions", "next_observations", "dones", "rewards"):
            stored = getattr(self, name)[model, 0]
            if name in ("dones", "rewards"):
                stored = stored[:, None]
            parts.append(np.concatenate([self.real[name][real], stored]))
        samples = ReplayBufferSamples(*(self.to_torch(p) for p in parts))
        if self.transform is not None:
            is_model = torch.zeros(batch_size, dtype=torch.bool, device=self.device)
            is_model[n_real:] = True
            samples = self.transform(samples, is_model)
        return samples
