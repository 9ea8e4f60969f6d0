"""Evaluate policies on real DynShift envs: any policy with SB3's ``predict`` × dynamics × episodes."""

from __future__ import annotations

from typing import Any, Protocol

import gymnasium as gym
import numpy as np

import dynshift_envs  # noqa: F401  (registers the ids)


class Policy(Protocol):
    """Anything with Stable-Baselines3's ``predict`` signature (SB3 policies and algorithms, shipped
    behaviour policies, DynShift agents)."""

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[np.ndarray, Any]: ...


def episode_returns(policy: Policy, env_id: str, episodes: int, seed: int = 0, deterministic: bool = True,
                    **env_kwargs: Any) -> np.ndarray:
    """Undiscounted returns of ``episodes`` episodes run side by side, episode ``i`` reset with seed
    ``seed + i``; the policy sees all running episodes as one batch."""
    envs = gym.vector.SyncVectorEnv([lambda: gym.make(env_id, **env_kwargs) for _ in range(episodes)])
    try:
        obs, _ = envs.reset(seed=[seed + i for i in range(episodes)])
        returns = np.zeros(episodes)
        running = np.ones(episodes, dtype=bool)
        while running.any():
            actions, _ = policy.predict(obs, deterministic=deterministic)
            obs, rewards, terminated, truncated, _ = envs.step(actions)
            returns += np.where(running, rewards, 0.0)
            running &= ~(terminated | truncated)
        return returns
    finally:
        envs.close()
