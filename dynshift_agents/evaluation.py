"""Evaluate policies on real DynShift envs: any policy × any list of dynamics × episodes → tidy records.

Settings run batched: every (setting, episode) pair of a batch is its own env, stepped in lockstep with
one policy call per step for all of them (:mod:`dynshift_agents.episodes`); batches can go to worker
processes, one per core. Episode ``i`` of every setting is reset with seed ``seed + i``, so policies
and settings are compared on the same initial states. A context-conditioned agent (AugWM's LM) gets
its context from an :class:`~dynshift_agents.context.OnlineContextEstimator` per episode, updated at
every real step.

Records are plain dicts (one per episode): ``policy``, ``env_id``, ``setting_index``, ``setting``,
``episode``, ``seed``, ``return``, ``length``.

Policies that sample inside ``predict`` (BCQ's and BEAR's VAE actions) draw from torch's global
generator. An evaluation seeds it from its own ``seed`` and gives the caller's state back afterwards
(:func:`evaluation_randomness`), so its returns depend on the policy and the seed alone, and a training
run that evaluates periodically trains exactly as one that does not.
"""

from __future__ import annotations

import contextlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

from dynshift_agents.algorithms import load as load_agent
from dynshift_agents.episodes import run_episodes
from dynshift_envs import OBSERVATION_KEYWORDS  # (importing dynshift_envs registers the ids)


class Policy(Protocol):
    """Anything with Stable-Baselines3's ``predict`` signature (SB3 policies and algorithms, shipped
    behaviour policies, DynShift agents)."""

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[np.ndarray, Any]: ...


def uses_context(policy: Policy) -> bool:
    """Whether ``policy`` is a context-conditioned agent (its encoder appends a context, which its
    ``predict`` takes as ``context=``)."""
    return bool(getattr(getattr(policy, "encoder", None), "context_dim", 0))


def observation_kwargs(policy: Policy) -> dict[str, Any]:
    """The observation keywords (:data:`dynshift_envs.OBSERVATION_KEYWORDS`) of the env a DynShift
    agent was trained on: every env the policy acts in needs them; ``{}`` for other policies."""
    return {k: v for k, v in (getattr(policy, "env_kwargs", None) or {}).items() if k in OBSERVATION_KEYWORDS}


def acting(policy: Policy, envs: list[gym.Env], deterministic: bool = True, online_context: bool = True):
    """``act``, ``observe`` (for :func:`run_episodes`) and the online context estimator (``None``
    unless ``policy`` is context-conditioned and ``online_context`` is on), one estimate per env."""
    if not (online_context and uses_context(policy)):
        return (lambda obs, rows: policy.predict(obs, deterministic=deterministic)[0]), None, None
    from dynshift_agents.context import OnlineContextEstimator

    estimator = OnlineContextEstimator(policy.world_model, envs[0].observation_space.shape[0], episodes=len(envs))

    def act(obs, rows):
        return policy.predict(obs, deterministic=deterministic, context=estimator.z[rows])[0]

    def observe(rows, obs, actions, next_obs):
        estimator.update(obs, actions, next_obs, rows=rows)

    return act, observe, estimator


@contextlib.contextmanager
def evaluation_randomness(seed: int):
    """torch's global generator seeded with ``seed`` for the block, and restored to the caller's state after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def episode_returns(policy: Policy, env_id: str, episodes: int, seed: int = 0, deterministic: bool = True,
                    online_context: bool = True, **env_kwargs: Any) -> np.ndarray:
    """Undiscounted returns of ``episodes`` episodes run side by side, episode ``i`` reset with seed
    ``seed + i``; the policy's observation keywords are kept."""
    return episode_totals(policy, env_id, episodes, seed, deterministic, online_context, **env_kwargs)["return"]


def episode_totals(policy: Policy, env_id: str, episodes: int, seed: int = 0, deterministic: bool = True,
                   online_context: bool = True, info_keys: tuple[str, ...] = (), **env_kwargs: Any
                   ) -> dict[str, np.ndarray]:
    """:func:`episode_returns`'s episodes, with ``"return"``, ``"length"`` and the per-episode sum of
    each ``info`` term in ``info_keys`` (``"reward_forward"``: the return for progress alone), one
    entry per episode: :func:`evaluate_settings` at the one setting ``env_kwargs``."""
    records = evaluate_settings(policy, env_id, [env_kwargs], episodes, seed, deterministic=deterministic,
                                online_context=online_context, info_keys=info_keys)
    return {key: np.array([record[key] for record in records]) for key in ("return", "length", *info_keys)}


def evaluate_settings(policy: Policy, env_id: str, settings: list[dict[str, Any]], episodes: int, seed: int = 0,
                      name: str = "policy", indices: list[int] | None = None, deterministic: bool = True,
                      online_context: bool = True, info_keys: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every setting × ``episodes`` as one lockstep batch; returns one record per episode. Settings are
    absolute (a policy trained on shifted data is evaluated at the setting's dynamics); the policy's
    observation keywords are kept. Each ``info`` term in ``info_keys`` adds its episode sum to the
    records (``"reward_forward"``: the return for progress alone)."""
    indices = list(range(len(settings))) if indices is None else indices
    pairs = [(index, setting, episode) for index, setting in zip(indices, settings) for episode in range(episodes)]
    keywords = observation_kwargs(policy)
    envs = [gym.make(env_id, **(keywords | setting)) for _, setting, _ in pairs]
    try:
        act, observe, _ = acting(policy, envs, deterministic, online_context)
        with evaluation_randomness(seed):
            runs = run_episodes(envs, [seed + episode for _, _, episode in pairs], act, observe, record=False,
                                info_keys=info_keys)
    finally:
        for env in envs:
            env.close()
    return [
        {"policy": name, "env_id": env_id, "setting_index": index, "setting": setting, "episode": episode,
         "seed": seed + episode, "return": run.total_reward, "length": len(run)} | run.info_totals
        for (index, setting, episode), run in zip(pairs, runs)
    ]


# ---------------------------------------------------------------------------------------------------
# Resumable grids


@dataclass(frozen=True)
class PerSetting:
    """A policy that differs per setting of a grid: {setting index: what the loader loads} (an FB
    agent with the task z inferred for each setting's robot)."""

    sources: dict[int, Any]


def _done_settings(path: Path) -> dict[str, set[int]]:
    """Settings with records, per policy; a torn last line (an interrupted write) is cut off first."""
    done: dict[str, set[int]] = {}
    if path.exists():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            path.write_bytes(data[: data.rfind(b"\n") + 1])
        for record in read_records(path):
            done.setdefault(record["policy"], set()).add(record["setting_index"])
    return done


def _check_grid(path: Path, description: dict[str, Any]) -> None:
    """A records file belongs to one grid (env, settings, episodes, seed), kept beside it."""
    sidecar = path.with_suffix(".grid.json")
    if sidecar.exists():
        if json.loads(sidecar.read_text()) != json.loads(json.dumps(description)):
            raise FileExistsError(f"{path} holds records of another grid (see {sidecar}); choose another output")
    else:
        sidecar.write_text(json.dumps(description, indent=1))


def _batch_job(args) -> list[dict[str, Any]]:
    loader, source, name, env_id, settings, indices, episodes, seed, threads = args
    import torch

    if threads:
        torch.set_num_threads(threads)
    policy = loader(source)
    return evaluate_settings(policy, env_id, settings, episodes, seed, name=name, indices=indices)


def run_grid(policies: dict[str, Any], env_id: str, settings: list[dict[str, Any]], episodes: int,
             records_path: str | os.PathLike, seed: int = 0, loader: Callable[[Any], Policy] | None = None,
             workers: int = 1, settings_per_batch: int = 8, progress: bool = False) -> list[dict[str, Any]]:
    """Evaluate every policy on every setting, appending each finished batch's records to
    ``records_path`` (JSON lines). Settings already recorded there are skipped, so an interrupted
    grid resumes without losing or repeating a setting. ``policies`` maps names to whatever
    ``loader`` turns into a policy (default: checkpoint or run directories, :func:`algorithms.load`),
    or to a :class:`PerSetting` of them (one per setting, each evaluated on its own setting); with
    ``workers`` > 1 batches run in that many processes, one torch thread each. ``progress`` shows a
    bar over the (policy, setting) pairs still to run."""
    loader = loader or load_agent
    path = Path(records_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _check_grid(path, {"env_id": env_id, "settings": settings, "episodes": episodes, "seed": seed})
    done = _done_settings(path)
    jobs = []
    for name, source in policies.items():
        todo = [i for i in range(len(settings)) if i not in done.get(name, set())]
        if isinstance(source, PerSetting):
            missing = [i for i in range(len(settings)) if i not in source.sources]
            if missing:
                raise ValueError(f"policy {name!r} has no variant for settings {missing}")
        batch = 1 if isinstance(source, PerSetting) else settings_per_batch
        for b in range(0, len(todo), batch):
            indices = todo[b:b + batch]
            variant = source.sources[indices[0]] if isinstance(source, PerSetting) else source
            jobs.append((loader, variant, name, env_id, [settings[i] for i in indices], indices, episodes, seed,
                         1 if workers > 1 else None))
    bar = tqdm(total=sum(len(j[5]) for j in jobs), desc=f"grid on {env_id}", unit="setting", disable=not progress)

    def write(job, records: Iterable[dict[str, Any]]) -> None:
        with path.open("a") as f:  # one write per batch; a torn last line is dropped on reading
            f.write("".join(json.dumps(r) + "\n" for r in records))
            f.flush()
            os.fsync(f.fileno())
        bar.update(len(job[5]))

    with bar:
        if workers > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(workers) as pool:
                for job, records in zip(jobs, pool.map(_batch_job, jobs)):
                    write(job, records)
        else:
            for job in jobs:
                write(job, _batch_job(job))
    return read_records(path)


def read_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a grid file (a torn last line from an interruption is ignored)."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
