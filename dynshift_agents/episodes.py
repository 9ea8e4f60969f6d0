"""Real episodes run side by side: one env per episode, one batched policy call per step.

The single lockstep loop behind dataset collection and evaluation. Each env is reset with its own
seed; at every step the still-running episodes' observations are stacked and ``act`` returns their
actions in one call (batched inference); an optional ``observe`` sees every transition (online
context estimators update there). With ``record=False`` only rewards are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import gymnasium as gym
import numpy as np


@dataclass
class Episode:
    seed: int
    observations: np.ndarray | None
    """``[T + 1, obs_dim]`` (``None`` when not recorded)."""
    actions: np.ndarray | None
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    dynamics: np.ndarray | None
    """``[T + 1, context_dim]``: row 0 at reset, row t + 1 the dynamics that ran transition t."""
    info_totals: dict[str, float] = field(default_factory=dict)
    """The episode's sum of each ``info`` term asked for (``run_episodes(info_keys=...)``; a term the env
    does not report sums to 0), e.g. ``reward_forward``: the reward for progress alone."""

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def total_reward(self) -> float:
        return float(np.sum(self.rewards))

    def discounted_returns(self, gamma: float) -> np.ndarray:
        """G_t = Σ_k γ^k r_{t+k} from every step t to the episode's end."""
        returns, running = np.zeros(len(self)), 0.0
        for t in reversed(range(len(self))):
            running = self.rewards[t] + gamma * running
            returns[t] = running
        return returns

    def cut(self, steps: int) -> "Episode":
        """The first ``steps`` transitions; a cut episode ends in a truncation."""
        if steps >= len(self):
            return self
        truncations = self.truncations[:steps].copy()
        truncations[-1] = True
        return Episode(self.seed, self.observations[: steps + 1], self.actions[:steps], self.rewards[:steps],
                       self.terminations[:steps], truncations, self.dynamics[: steps + 1])


def context_of(env: gym.Env) -> np.ndarray:
    """The active dynamics of a DynShift env as its context vector."""
    unwrapped = env.unwrapped
    return unwrapped.context_vector(unwrapped.dynamics)


Act = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``act(observations, rows) -> actions`` for the running episodes (``rows`` index the envs)."""
Observe = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]
"""``observe(rows, obs, actions, next_obs)`` after every step."""


def run_episodes(envs: list[gym.Env], seeds: list[int], act: Act, observe: Observe | None = None,
                 record: bool = True, info_keys: tuple[str, ...] = ()) -> list[Episode]:
    """One episode per env, side by side, env i reset with ``seeds[i]``; the ``info`` terms named in
    ``info_keys`` are summed per episode (:attr:`Episode.info_totals`)."""
    n = len(envs)
    current = np.stack([env.reset(seed=int(seed))[0] for env, seed in zip(envs, seeds)])
    obs = [[o.copy()] for o in current] if record else None
    ctx = [[context_of(env)] for env in envs] if record else None
    actions = [[] for _ in range(n)]
    rewards, terms, truncs = ([[] for _ in range(n)] for _ in range(3))
    totals = [dict.fromkeys(info_keys, 0.0) for _ in range(n)]
    running = np.arange(n)
    while len(running):
        batch = act(current[running], running)
        next_obs = np.empty_like(current[running])
        done = np.zeros(len(running), bool)
        for row, i in enumerate(running):
            o, r, term, trunc, info = envs[i].step(batch[row])
            for key in info_keys:
                totals[i][key] += float(info.get(key, 0.0))
            next_obs[row] = o
            rewards[i].append(r)
            terms[i].append(term)
            truncs[i].append(trunc)
            if record:
                obs[i].append(o)
                ctx[i].append(context_of(envs[i]))
                actions[i].append(batch[row])
            done[row] = term or trunc
        if observe is not None:
            observe(running, current[running], batch, next_obs)
        current[running] = next_obs
        running = running[~done]
    return [
        Episode(int(seeds[i]), np.asarray(obs[i]) if record else None,
                np.asarray(actions[i], dtype=np.float32) if record else None,
                np.asarray(rewards[i], dtype=np.float64), np.asarray(terms[i]), np.asarray(truncs[i]),
                np.asarray(ctx[i]) if record else None, totals[i])
        for i in range(n)
    ]
