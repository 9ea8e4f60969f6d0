"""``MixedReplayBuffer``: an offline dataset plus a FIFO of world-model transitions, for SB3's SAC.

A subclass of Stable-Baselines3's ``ReplayBuffer`` (so SB3's learners sample from it): a circular
store (first in, first out) holds the model transitions, the dataset sits beside it, both as tensors
on the run's device, and :meth:`sample` returns SB3's
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

    Both parts are torch tensors on ``device``, put there once: the dataset when the buffer is built,
    each model rollout when it is added, so a batch never leaves the device (SB3's own storage, NumPy
    arrays copied to the device per batch, is not used). Rows are drawn by the buffer's own NumPy
    generator, so a CPU run samples exactly the rows it did when the storage was SB3's.

    :param buffer_size: capacity of the model FIFO (e.g. rollout batch × horizon × rounds kept).
    :param dataset: the offline transitions (actions in the policy's [-1, 1] units, see ``scale_action``).
    :param real_ratio: fraction of each batch drawn from the dataset (MOPO: 0.05).
    :param transform: optional per-batch transform, ``(samples, is_model) -> samples``.
    :param seed: the buffer's own sampling generator (SB3's buffers use NumPy's global one).
    """

    FIELDS = ("observations", "actions", "next_observations", "dones", "rewards")

    def __init__(self, buffer_size: int, observation_space: spaces.Box, action_space: spaces.Box,
                 device: torch.device | str = "cpu", n_envs: int = 1, optimize_memory_usage: bool = False,
                 *, dataset: Transitions, real_ratio: float = 0.05, transform: Transform | None = None,
                 seed: int | None = None, handle_timeout_termination: bool = False):
        if not 0.0 <= real_ratio <= 1.0:
            raise ValueError(f"real_ratio must be in [0, 1], got {real_ratio}")
        if n_envs != 1:
            raise ValueError("MixedReplayBuffer holds model rollouts, not parallel envs: n_envs must be 1")
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be ≥ 1, got {buffer_size}")
        observation_space = spaces.Box(observation_space.low.astype(np.float32), observation_space.high.astype(np.float32),
                                       dtype=np.float32)
        # SB3's base keeps the spaces, shapes and device; its NumPy storage is not used (one row)
        super().__init__(1, observation_space, action_space, device=device, n_envs=1, optimize_memory_usage=False,
                         handle_timeout_termination=False)
        self.buffer_size = buffer_size
        if dataset.obs.shape[1:] != self.obs_shape or dataset.actions.shape[1:] != (self.action_dim,):
            raise ValueError(f"dataset shapes obs {dataset.obs.shape[1:]}, actions {dataset.actions.shape[1:]} do not "
                             f"match the spaces' {self.obs_shape}, {(self.action_dim,)}")
        columns = {"observations": dataset.obs, "actions": dataset.actions, "next_observations": dataset.next_obs,
                   "dones": dataset.terminals[:, None], "rewards": dataset.rewards[:, None]}
        self.real = {name: torch.as_tensor(np.ascontiguousarray(column, dtype=np.float32)).to(self.device)
                     for name, column in columns.items()}
        """The dataset's columns, float32 ``[rows, ·]`` on the device (``dones`` are terminations only)."""
        widths = {"observations": self.obs_shape[0], "actions": self.action_dim, "next_observations": self.obs_shape[0],
                  "dones": 1, "rewards": 1}
        self.model = {name: torch.empty((buffer_size, width), dtype=torch.float32, device=self.device)
                      for name, width in widths.items()}
        """The model FIFO's columns (the first :meth:`size` rows hold data)."""
        self.real_ratio = real_ratio
        self.transform = transform
        self.rng = np.random.default_rng(seed)

    @property
    def real_size(self) -> int:
        return len(self.real["rewards"])

    def size(self) -> int:
        """Model rows held."""
        return self.buffer_size if self.full else self.pos

    def add_model(self, obs, next_obs, actions, rewards, dones) -> None:
        """Append a batch of model transitions (arrays or tensors), evicting the oldest when full."""
        columns = {"observations": obs, "next_observations": next_obs, "actions": actions, "rewards": rewards,
                   "dones": dones}
        n = len(obs)
        if n > self.buffer_size:  # only the newest fit
            columns = {k: v[-self.buffer_size:] for k, v in columns.items()}
            n = self.buffer_size
        index = torch.as_tensor((self.pos + np.arange(n)) % self.buffer_size, device=self.device)
        for name, values in columns.items():
            self.model[name][index] = torch.as_tensor(values).to(self.device, torch.float32).reshape(n, -1)
        self.full = self.full or self.pos + n >= self.buffer_size
        self.pos = (self.pos + n) % self.buffer_size

    def sample(self, batch_size: int, env=None) -> ReplayBufferSamples:
        model_rows = self.size()
        n_real = batch_size if model_rows == 0 else int(round(batch_size * self.real_ratio))
        real = torch.as_tensor(self.rng.integers(self.real_size, size=n_real), device=self.device)
        model = torch.as_tensor(self.rng.integers(model_rows, size=batch_size - n_real) if model_rows
                                else np.empty(0, int), device=self.device)
        samples = ReplayBufferSamples(*(torch.cat([self.real[name][real], self.model[name][model]])
                                        for name in self.FIELDS))
        if self.transform is not None:
            is_model = torch.zeros(batch_size, dtype=torch.bool, device=self.device)
            is_model[n_real:] = True
            samples = self.transform(samples, is_model)
        return samples
