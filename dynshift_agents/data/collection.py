"""Collect Minari datasets from the shipped behaviour policies, on the nominal or any shifted robot.

A collection is a *plan*: segments of ``(policy, steps)`` run in order (D4RL's recipe):

- ``random``: uniform random actions;
- ``medium`` / ``expert``: the shipped SAC actor, sampling its stochastic (tanh-Gaussian) actions;
- ``medium-expert``: half medium, then half expert;
- ``mixed`` (D4RL's *medium-replay*): the data a SAC run generated on its way to the medium policy,
  replayed at snapshot resolution — uniform actions for the run's random warm-up, then each shipped
  snapshot of that run for as many steps as the run spent with it. Its natural size is the run's
  length; ``size`` rescales every segment in proportion;
- ``diverse`` (DynShift's, not D4RL's): a third random, a third the mixed replay rescaled (whose own
  random warm-up joins the random segment), a third expert — from standing still to running, for
  reward-free pre-training (FB is known to fail on narrow medium data).

Every segment is collected in *chunks* of episodes run side by side (batched policy inference); a
chunk's randomness (env seeds, action noise) is derived from ``(seed, segment, chunk)`` only, and each
finished chunk is saved in a hidden staging folder of the dataset store. An interrupted collection
leaves no dataset behind, and the same call again resumes from the saved chunks and produces exactly
the dataset an uninterrupted run would have. The dataset appears atomically (a directory rename).
Shipped policies act through :class:`~dynshift_agents.behaviour.SampledActor` (float64, numpy noise),
so a row's action does not depend on its batch or on the CPU's float32 kernels, which MuJoCo would
turn into other episodes (``tests/test_data.py`` pins a digest of a small collection, to check each
new kind of machine).

Every dataset records, beside Minari's fields: the env id and keyword arguments (so
``dataset.recover_environment()`` rebuilds the same shifted env), the behaviour policies (with their
files' SHA-256), reference returns (``ref_min_score``/``ref_max_score``: the robot's uniform-random and
expert mean returns at nominal dynamics), and per step the active dynamics as ``infos["dynamics"]``
(one row per observation, columns named in the metadata's ``dynshift.context_names``; transition t
ran under row t + 1, the info the env returned with its next observation).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

import gymnasium as gym
import minari
import minari.namespace
import numpy as np
from minari.data_collector.episode_buffer import EpisodeBuffer
from tqdm.auto import tqdm

import dynshift_envs  # noqa: F401  (registers the ids)
from dynshift_agents.behaviour import SampledActor, UniformPolicy, index, load_policy, policy_info, policy_set, references
from dynshift_agents.data.catalog import (KINDS, _number, check_dataset_id, check_kind, dataset_id_for, datasets_root,
                                          load_dataset)
from dynshift_agents.episodes import Episode, run_episodes
from dynshift_envs import get_robot

DEFAULT_SIZES = {"random": 100_000, "medium": 100_000, "expert": 100_000, "medium-expert": 200_000, "mixed": None,
                 "diverse": 150_000}
"""Default transitions per kind, sized for a 2-core CPU (a minute or two each). ``None``: the SAC
run's own length up to the medium policy."""

POLICY_SOURCES = ("nominal", "own")
"""Whose behaviour policies collect a dataset: those trained on the nominal robot, or on the shifted one."""

D4RL_SIZES = {"random": 1_000_000, "medium": 1_000_000, "expert": 1_000_000, "medium-expert": 2_000_000,
              "mixed": None, "diverse": 3_000_000}
"""D4RL's sizes (its medium-replay is its run's own length, as here)."""

CHUNK_STEPS = 20_000
"""Transitions per saved chunk: what an interruption can lose at most."""

EPISODES_SIDE_BY_SIDE = 10


@dataclass(frozen=True)
class Segment:
    policy: str
    """``"random"`` or the name of a shipped policy (``"medium"``, ``"expert"``, ``"mixed-3"``)."""
    steps: int


def plan(robot: str, kind: str, size: int | None, policy_shift: dict | None = None) -> list[Segment]:
    """The segments of a ``kind`` dataset of ``size`` transitions (``None``: the kind's default), with
    the policies trained on the nominal robot (or on the one ``policy_shift`` describes)."""
    check_kind(kind)
    if size is None:
        size = DEFAULT_SIZES[kind]
    if size is not None and (not isinstance(size, (int, np.integer)) or size < 1):
        raise ValueError(f"size must be a positive number of transitions, got {size!r}")
    if kind == "random":
        return [Segment("random", size)]
    if kind in ("medium", "expert"):
        return [Segment(kind, size)]
    if kind == "medium-expert":
        return [Segment("medium", size // 2), Segment("expert", size - size // 2)]
    if kind == "diverse":
        third = size // 3
        replay = [s for s in plan(robot, "mixed", third, policy_shift) if s.policy != "random"]  # its random part joins the first third
        return [Segment("random", size - third - sum(s.steps for s in replay)), *replay, Segment("expert", third)]
    # mixed: snapshot i acts from its own step count until the next snapshot's; random before the first
    medium = policy_info(robot, "medium", policy_shift)  # a clear error when the policy set is not shipped
    shipped = index().get(policy_set(robot, policy_shift), {})
    snapshots = sorted((info for name, info in shipped.items() if name.startswith("mixed-")), key=lambda i: i.steps)
    if not snapshots:
        raise ValueError(f"no shipped mixed-data snapshots for {policy_set(robot, policy_shift)}")
    bounds = [0] + [s.steps for s in snapshots] + [medium.steps]
    names = ["random"] + [s.name for s in snapshots]
    natural = bounds[-1]
    size = natural if size is None else int(size)
    ends = [round(b * size / natural) for b in bounds[1:]]
    starts = [0] + ends[:-1]
    return [Segment(name, end - start) for name, start, end in zip(names, starts, ends) if end > start]


def _policy_record(robot: str, name: str, policy_shift: dict | None = None) -> dict[str, Any]:
    if name == "random":
        return {"name": "random", "description": "uniform random actions"}
    info = policy_info(robot, name, policy_shift)
    data = resources.files("dynshift_agents.policies").joinpath(info.file).read_bytes()
    return {"name": name, "file": info.file, "sha256": hashlib.sha256(data).hexdigest(), "sac_steps": info.steps,
            "return_mean": info.return_mean, "return_std": info.return_std, "actions": "stochastic (SAC sampling, float64, numpy noise)"}


def _actor(robot: str, name: str, envs: list[gym.Env], rng: np.random.Generator, policy_shift: dict | None = None):
    """The acting function of segment policy ``name`` on ``envs``; its randomness (uniform actions, SAC's
    sampling) draws from ``rng``. A shipped policy acts through :class:`SampledActor` (the same data on
    every CPU), on the observation v5's defaults make of each env's state, so that observation
    keywords (Ant without contact forces) change what is recorded, not how it behaves."""
    if name == "random":
        policy = UniformPolicy(envs[0].action_space, rng)
        return lambda obs, rows: policy.predict(obs, deterministic=False)[0]
    policy = SampledActor(load_policy(robot, name, policy_shift), rng)
    if policy.observation_space.shape == envs[0].observation_space.shape:
        return lambda obs, rows: policy.predict(obs, deterministic=False)[0]
    return lambda obs, rows: policy.predict(np.stack([envs[r].unwrapped.default_observation() for r in rows]),
                                            deterministic=False)[0]


# ---------------------------------------------------------------------------------------------------
# Staging and the dataset itself


def _staging_dir(dataset_id: str) -> Path:
    return datasets_root() / ".dynshift-partial" / dataset_id.replace("/", "__")


def _save_chunk(path: Path, episodes: list[Episode]) -> None:
    arrays: dict[str, np.ndarray] = {"seeds": np.array([e.seed for e in episodes])}
    for field in ("observations", "actions", "rewards", "terminations", "truncations", "dynamics"):
        parts = [getattr(e, field) for e in episodes]
        arrays[field] = np.concatenate(parts)
        arrays[field + "_lengths"] = np.array([len(p) for p in parts])
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _load_chunk(path: Path) -> list[Episode]:
    with np.load(path) as data:
        split = {f: np.split(data[f], np.cumsum(data[f + "_lengths"])[:-1])
                 for f in ("observations", "actions", "rewards", "terminations", "truncations", "dynamics")}
        return [Episode(int(seed), *(split[f][i] for f in split)) for i, seed in enumerate(data["seeds"])]


def _chunks(robot: str, env_id: str, env_kwargs: dict, segment: Segment, index_: int, seed: int,
            staging: Path, progress: tqdm, policy_shift: dict | None = None) -> Iterator[list[Episode]]:
    """The episodes of one segment, chunk by chunk, from staging when saved, else collected and saved."""
    envs: list[gym.Env] | None = None
    collected, chunk = 0, 0
    try:
        while collected < segment.steps:
            path = staging / f"segment{index_:02d}_chunk{chunk:04d}.npz"
            if path.exists():
                episodes = _load_chunk(path)
            else:
                if envs is None:
                    envs = [gym.make(env_id, **env_kwargs) for _ in range(EPISODES_SIDE_BY_SIDE)]
                sequence = np.random.SeedSequence([seed, index_, chunk])
                rng = np.random.default_rng(sequence)
                act = _actor(robot, segment.policy, envs, rng, policy_shift)
                target = min(CHUNK_STEPS, segment.steps - collected)
                episodes = []
                while sum(map(len, episodes)) < target:
                    seeds = rng.integers(0, 2**31 - 1, size=len(envs))
                    episodes += run_episodes(envs, list(seeds), act)
                _save_chunk(path, episodes)
            steps = sum(map(len, episodes))
            progress.update(min(steps, segment.steps - collected))
            collected += steps
            chunk += 1
            yield episodes
    finally:
        for env in envs or []:
            env.close()


def _trim(episodes: list[Episode], steps: int) -> list[Episode]:
    """The first ``steps`` transitions of a sequence of episodes (the last one cut)."""
    kept, total = [], 0
    for episode in episodes:
        if total >= steps:
            break
        kept.append(episode.cut(steps - total))
        total += len(kept[-1])
    return kept


@contextlib.contextmanager
def _minari_root(path: Path):
    """Point Minari's store at ``path`` for the duration (Minari reads the variable at each call)."""
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous


def collect(env: str, kind: str, size: int | None = None, seed: int = 0, dataset_id: str | None = None,
            env_kwargs: dict[str, Any] | None = None, overwrite: bool = False,
            progress: bool = True, policies: str = "nominal") -> minari.MinariDataset:
    """Collect (or finish collecting) a ``kind`` dataset on ``env`` and return it.

    :param env: ``"halfcheetah"``, ``"walker2d"``, ``"hopper"``, ``"ant"`` or a DynShift env id.
    :param kind: one of :data:`KINDS`.
    :param size: transitions (default :data:`DEFAULT_SIZES`; :data:`D4RL_SIZES` for D4RL's).
    :param seed: derives every env seed and action noise; the same call gives the same dataset.
    :param dataset_id: default ``dynshift/<robot>/<kind>[-<shift>]-v0`` (:func:`dataset_id_for`).
    :param env_kwargs: DynShift env keywords (``mass``, ``damping``, ``crippled_legs``, ``morphology``,
        ``schedule``, ...): collect on that shifted robot.
    :param overwrite: replace an existing dataset of that id instead of returning it.
    :param policies: ``"nominal"``: the behaviour policies trained on the nominal robot; ``"own"``:
        those trained on this shifted robot (DARA's source data, the D4RL protocol; shipped with
        ``scripts/ship_behaviour.py --env-kwargs``). The default id of ``own`` data ends ``-own-v0``.
    """
    if policies not in POLICY_SOURCES:
        raise ValueError(f"policies must be one of {', '.join(map(repr, POLICY_SOURCES))}, got {policies!r}")
    robot, env_id = get_robot(env).name, get_robot(env).env_id
    if dataset_id is not None:
        check_dataset_id(dataset_id)  # now: Minari would refuse a malformed id only when saving the collection
    env_kwargs = dict(env_kwargs or {})
    if env_kwargs.get("context_in_obs"):
        raise ValueError("context_in_obs is not for datasets: the behaviour policies see plain observations, "
                         "and every step's dynamics are recorded in infos['dynamics'] anyway")
    gym.make(env_id, **env_kwargs).close()  # bad keywords fail here, with the env's own message
    references(robot)  # fails now, not after the collection, if nothing is shipped for the robot
    policy_shift = env_kwargs if policies == "own" else None
    if policy_shift is not None and not policy_set(robot, policy_shift).count("@"):
        raise ValueError("policies='own' is for a shifted robot; at nominal dynamics the nominal policies are its own")
    segments = plan(robot, kind, size, policy_shift)
    size = sum(s.steps for s in segments)
    default_id = dataset_id_for(robot, kind, env_kwargs)
    dataset_id = dataset_id or (default_id.removesuffix("-v0") + "-own-v0" if policy_shift else default_id)
    final = datasets_root() / dataset_id
    request = {"env_id": env_id, "env_kwargs": env_kwargs, "kind": kind, "size": size, "seed": seed,
               "segments": [[s.policy, s.steps] for s in segments],
               "policies": {s.policy: _policy_record(robot, s.policy, policy_shift) for s in segments}}
    if policy_shift is not None:  # recorded only then: the requests of nominal-policy datasets stay as they were
        request["policies_trained_on"] = policy_shift

    if final.exists():
        if not overwrite:
            dataset = minari.load_dataset(dataset_id)
            recorded = json.loads(dataset.storage.metadata.get("dynshift", "{}")).get("request")
            if recorded != json.loads(json.dumps(request)):
                raise FileExistsError(f"dataset {dataset_id!r} exists with other settings; pass overwrite=True "
                                      f"(--overwrite) to replace it, or choose another dataset id")
            return dataset
    staging = _staging_dir(dataset_id)
    staging.mkdir(parents=True, exist_ok=True)
    request_file = staging / "request.json"
    if request_file.exists() and json.loads(request_file.read_text()) != json.loads(json.dumps(request)):
        raise FileExistsError(f"{staging} holds a partial collection of {dataset_id!r} with other settings; "
                              f"delete that folder to start over, or choose another dataset id")
    request_file.write_text(json.dumps(request, indent=1))

    start = time.perf_counter()
    episodes: list[Episode] = []
    with tqdm(total=size, desc=dataset_id, unit="step", disable=not progress, smoothing=0.05) as bar:
        for i, segment in enumerate(segments):
            segment_episodes = [e for chunk in _chunks(robot, env_id, env_kwargs, segment, i, seed, staging, bar,
                                                                 policy_shift)
                                for e in chunk]
            episodes += _trim(segment_episodes, segment.steps)
    seconds = time.perf_counter() - start

    dataset = _write(dataset_id, env_id, env_kwargs, robot, kind, episodes, request, seconds, overwrite)
    shutil.rmtree(staging)
    with contextlib.suppress(OSError):
        staging.parent.rmdir()  # only if no other collection is staged there
    return dataset


def first_fraction(dataset_id: str, fraction: float = 0.1, new_id: str | None = None,
                   overwrite: bool = False) -> minari.MinariDataset:
    """The first ``fraction`` of a collected dataset's transitions as a dataset of its own: DARA's
    ``1T`` (the first tenth of the target data). Each segment contributes the first ``fraction`` of
    its own transitions, so a *medium-expert* dataset gives half medium and half expert data (as the
    code that uses DARA's data cuts it); other kinds have one segment, or (*mixed*) the first tenth
    of the replay, in order. The last episode kept of a segment is cut (a truncation). The new
    dataset (default id: ``<kind>-first<fraction>`` in place of the kind, e.g.
    ``dynshift/hopper/medium-first0p1-v0``) records where it came from."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ValueError(f"fraction must be a number in (0, 1), got {fraction!r}")
    source = load_dataset(dataset_id)
    record = json.loads(source.storage.metadata.get("dynshift", "{}"))
    request = record.get("request")
    if request is None:
        raise ValueError(f"{dataset_id!r} was not collected by `dynshift collect` (no segments recorded)")
    robot, kind = record["robot"], record["kind"]
    if new_id is None:
        prefix, _, name = dataset_id.rpartition("/")
        stem, version = name.rsplit("-v", 1)
        new_id = f"{prefix}/{stem}-first{_number(fraction)}-v{version}"
    seeds = [m.get("seed") for m in source.storage.get_episode_metadata(range(source.total_episodes))]
    episodes = [Episode(seed, np.asarray(e.observations), np.asarray(e.actions), np.asarray(e.rewards),
                        np.asarray(e.terminations), np.asarray(e.truncations), np.asarray((e.infos or {})["dynamics"]))
                for seed, e in zip(seeds, source.iterate_episodes())]
    kept, start = [], 0
    for _, steps in request["segments"]:  # episodes are stored segment after segment
        segment, total = [], 0
        while total < steps and start < len(episodes):
            segment.append(episodes[start])
            total += len(episodes[start])
            start += 1
        kept += _trim(segment, max(1, round(steps * fraction)))
    subset_request = {"env_id": request["env_id"], "env_kwargs": request["env_kwargs"], "kind": kind,
                      "subset_of": dataset_id, "fraction": fraction, "source_request": request,
                      "segments": [[policy, max(1, round(steps * fraction))] for policy, steps in request["segments"]]}
    if (datasets_root() / new_id).exists() and not overwrite:
        existing = load_dataset(new_id)
        if json.loads(existing.storage.metadata.get("dynshift", "{}")).get("request") != \
                json.loads(json.dumps(subset_request)):
            raise FileExistsError(f"dataset {new_id!r} exists with other settings; pass overwrite=True "
                                  "(--overwrite) to replace it, or choose another dataset id")
        return existing
    return _write(new_id, request["env_id"], request["env_kwargs"], robot, kind, kept, subset_request, 0.0, overwrite)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dynshift")
    except PackageNotFoundError:
        return "unknown"


def _write(dataset_id: str, env_id: str, env_kwargs: dict, robot: str, kind: str, episodes: list[Episode],
           request: dict, seconds: float, overwrite: bool) -> minari.MinariDataset:
    """Write the Minari dataset next to the store, then move it into place in one rename."""
    env = gym.make(env_id, **env_kwargs)
    root = datasets_root()
    build = root / ".dynshift-partial" / f"build-{os.getpid()}-{time.time_ns()}"
    reference = references(robot)
    # return statistics over complete episodes: those the env ended (termination or its time limit),
    # not the ones cut by the dataset's size or a segment boundary
    limit = env.spec.max_episode_steps
    complete = [e for e in episodes if e.terminations[-1] or (limit and len(e) == limit)] or episodes
    returns = np.array([e.rewards.sum() for e in complete])
    buffers = [
        EpisodeBuffer(id=i, seed=e.seed, observations=e.observations, actions=e.actions, rewards=e.rewards,
                      terminations=e.terminations, truncations=e.truncations, infos={"dynamics": e.dynamics})
        for i, e in enumerate(episodes)
    ]
    record = {
        "request": request,
        "robot": robot,
        "kind": kind,
        "context_names": list(env.unwrapped.context_names),
        "collection_seconds": round(seconds, 1),
        "references": reference,
        "episode_returns": {"mean": float(returns.mean()), "std": float(returns.std()), "episodes": len(returns),
                            "min": float(returns.min()), "max": float(returns.max())},
    }
    try:
        with _minari_root(build), warnings.catch_warnings():
            # Minari nags about fields left empty on purpose (no e-mail, no separate eval env).
            warnings.filterwarnings("ignore", message=r"`(author_email|eval_env)` is set to None")
            minari.create_dataset_from_buffers(
                dataset_id, buffers, env=env, algorithm_name=f"DynShift {kind} (SB3 SAC behaviour policies)",
                author="DynShift", code_permalink=f"dynshift_agents/data/collection.py (dynshift {_version()})",
                ref_min_score=reference["random"], ref_max_score=reference["expert"],
                description=f"{kind} data on {env_id} with {json.dumps(env_kwargs) if env_kwargs else 'nominal dynamics'}"
                            f", collected by `dynshift collect`; segments {request['segments']}",
                requirements=["dynshift", "gymnasium>=1.4,<1.5", "mujoco>=4.0,<4.1"],
            )
            minari.load_dataset(dataset_id).storage.update_metadata({"dynshift": json.dumps(record)})
        namespace = dataset_id.rsplit("/", 1)[0] if "/" in dataset_id else None
        if namespace and namespace not in minari.namespace.list_local_namespaces():
            minari.namespace.create_namespace(namespace)
        final = root / dataset_id
        if final.exists() and overwrite:
            shutil.rmtree(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(build / dataset_id, final)
    finally:
        env.close()
        shutil.rmtree(build, ignore_errors=True)
    return minari.load_dataset(dataset_id)


__all__ = ["D4RL_SIZES", "DEFAULT_SIZES", "KINDS", "Segment", "collect", "plan"]
