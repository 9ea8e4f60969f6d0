"""Any local Minari dataset → flat transition arrays, the form every offline learner consumes."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from dynshift_agents.data.catalog import datasets_root, load_dataset

if TYPE_CHECKING:
    import minari


@dataclass(frozen=True)
class Transitions:
    """Flat transitions, in dataset order; row t is (obs, action, reward, next_obs, terminal, timeout).

    ``terminals`` are true terminations (no bootstrapping past them); ``timeouts`` are truncations
    (time limit or the dataset's size cut), after which the value still bootstraps. Observations are
    float32. ``dynamics`` (DynShift datasets) is the context vector the transition ran under.
    """

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    dynamics: np.ndarray | None = None
    episode_returns: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rewards)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{f.name}={getattr(self, f.name).shape}" for f in fields(self)
                           if getattr(self, f.name) is not None)
        return f"Transitions({shapes})"


def concatenate(first: Transitions, second: Transitions) -> Transitions:
    """Rows of ``first`` then ``second`` (each trajectory's order kept); per-episode returns of both."""
    def join(a, b):
        return None if a is None or b is None else np.concatenate([a, b])

    return Transitions(np.concatenate([first.obs, second.obs]), np.concatenate([first.actions, second.actions]),
                       np.concatenate([first.rewards, second.rewards]), np.concatenate([first.next_obs, second.next_obs]),
                       np.concatenate([first.terminals, second.terminals]),
                       np.concatenate([first.timeouts, second.timeouts]), join(first.dynamics, second.dynamics),
                       join(first.episode_returns, second.episode_returns))


def load_transitions(dataset_id: str, dataset: minari.MinariDataset | None = None) -> Transitions:
    """Read ``dataset_id`` (a DynShift dataset or Minari's ``mujoco/<env>/<kind>-v0`` if present
    locally) into :class:`Transitions`; ``dataset``, when given, is that dataset already opened. A
    missing dataset is an error naming the command that makes it; nothing is downloaded."""
    dataset = load_dataset(dataset_id) if dataset is None else dataset
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "actions", "rewards", "next_obs", "terminals",
                                                            "timeouts", "dynamics")}
    returns = []
    try:
        for episode in dataset.iterate_episodes():
            observations = np.asarray(episode.observations)
            if observations.dtype == object or observations.ndim != 2:
                raise ValueError(f"dataset {dataset_id!r} has structured observations; only flat Box "
                                 f"observations convert to transitions")
            parts["obs"].append(observations[:-1])
            parts["next_obs"].append(observations[1:])
            parts["actions"].append(np.asarray(episode.actions))
            parts["rewards"].append(np.asarray(episode.rewards))
            parts["terminals"].append(np.asarray(episode.terminations))
            parts["timeouts"].append(np.asarray(episode.truncations))
            infos = episode.infos or {}
            if "dynamics" in infos:
                parts["dynamics"].append(np.asarray(infos["dynamics"])[1:])
            returns.append(float(np.sum(episode.rewards)))
    except (OSError, KeyError) as error:
        raise OSError(f"dataset {dataset_id!r} at {datasets_root() / dataset_id} is unreadable "
                      f"({type(error).__name__}: {error}); delete it and collect it again") from error
    if not returns:
        raise ValueError(f"dataset {dataset_id!r} has no episodes")
    has_dynamics = len(parts["dynamics"]) == len(returns)
    return Transitions(
        obs=np.concatenate(parts["obs"]).astype(np.float32),
        actions=np.concatenate(parts["actions"]).astype(np.float32),
        rewards=np.concatenate(parts["rewards"]).astype(np.float32),
        next_obs=np.concatenate(parts["next_obs"]).astype(np.float32),
        terminals=np.concatenate(parts["terminals"]).astype(bool),
        timeouts=np.concatenate(parts["timeouts"]).astype(bool),
        dynamics=np.concatenate(parts["dynamics"]).astype(np.float32) if has_dynamics else None,
        episode_returns=np.asarray(returns),
    )
