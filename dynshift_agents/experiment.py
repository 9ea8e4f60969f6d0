"""Runs that combine the pieces: a cached world model per dataset, training an agent into a resumable
run directory, evaluating a checkpoint. The command line (:mod:`dynshift_agents.cli`) is a thin layer
over these functions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from dynshift_envs import get_robot

from dynshift_agents import precision
from dynshift_agents.adaptation import DARA, DARAConfig
from dynshift_agents.algorithms import algorithm_class, describe, needs_world_model
from dynshift_agents.behaviour import references
from dynshift_agents.data import Transitions, load_dataset, load_transitions
from dynshift_agents.data.scores import d4rl_score, normalised_score
from dynshift_agents.data.transitions import concatenate
from dynshift_agents.evaluation import episode_returns, episode_totals
from dynshift_agents.home import dynshift_home
from dynshift_agents.run_options import RunOptions, resolve_device
from dynshift_agents.world_model import WorldModel, WorldModelConfig



def _digest(values: dict) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:10]


def dataset_env(dataset_id: str, dataset=None) -> tuple[str, dict[str, Any]]:
    """The env id and keywords a dataset was collected on (from its recorded env spec); ``dataset``,
    when given, is the Minari dataset already opened."""
    spec = (load_dataset(dataset_id) if dataset is None else dataset).spec.env_spec
    if spec is None:
        raise ValueError(f"dataset {dataset_id!r} records no env spec; pass the env explicitly")
    try:
        robot = get_robot(spec.id)
    except ValueError:
        raise ValueError(f"dataset {dataset_id!r} was collected on {spec.id}, which has no DynShift twin") from None
    if spec.id == robot.v5_id:  # e.g. Minari's mujoco/* datasets: the matching DynShift env
        return robot.env_id, {}
    return spec.id, dict(spec.kwargs)


def world_model_path(dataset_id: str, config: WorldModelConfig, seed: int) -> Path:
    """The cache file of a dataset's world model; ``"auto"`` precision is resolved first, so a file
    is named by the precision it was fitted with."""
    config = dataclasses.replace(config, precision=precision.resolve(config.precision))
    return dynshift_home() / "world_models" / dataset_id / f"{_digest(dataclasses.asdict(config))}-seed{seed}.pt"


def world_model_for(dataset_id: str, config: WorldModelConfig | None = None, seed: int = 0,
                    log: Callable[[int, dict], None] | None = None, progress: bool = True,
                    data: Transitions | None = None, device: str = "cpu") -> WorldModel:
    """The world model of ``dataset_id`` for this config and seed: loaded from the cache, or fitted
    (on ``data``, the dataset's transitions when already read) and cached (atomically) so every
    algorithm reuses it. ``progress`` shows a bar over the epochs of a fit; ``log`` is called after
    each epoch with its statistics."""
    config = config or WorldModelConfig()
    path = world_model_path(dataset_id, config, seed)
    if path.exists():
        return WorldModel.load(path)
    model = fit_world_model(load_transitions(dataset_id) if data is None else data, config, seed, log, progress, device)
    model.metadata = {"dataset_id": dataset_id, "seed": seed} | model.metadata
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path, model.metadata)
    return model


def fit_world_model(data: Transitions, config: WorldModelConfig, seed: int = 0,
                    log: Callable[[int, dict], None] | None = None, progress: bool = True,
                    device: str = "cpu") -> WorldModel:
    """A world model with ``config`` fitted on ``data`` (seeded) on ``device``, with a progress bar over its
    epochs; its fit report is in ``metadata["fit"]``."""
    model = WorldModel(data.obs.shape[1], data.actions.shape[1], config).to(device)
    bar = tqdm(total=config.max_epochs, desc=f"world model ({model.config.precision})", unit="epoch",
               disable=not progress, smoothing=0.1)

    def on_epoch(epoch: int, stats: dict) -> None:
        bar.update(1)
        bar.set_postfix(holdout_mse=f"{stats['holdout_mse']:.4f}", refresh=False)
        if log is not None:
            log(epoch, stats)

    with bar:
        report = model.fit(data.obs, data.actions, data.rewards, data.next_obs, seed=seed, log=on_epoch)
    model.metadata = {"fit": dataclasses.asdict(report) | {"history": None}}
    return model


def evaluate(agent, env_id: str, episodes: int = 10, seed: int = 0, **env_kwargs) -> dict[str, Any]:
    """Return statistics and normalised scores (D4RL's constants and DynShift's references), with each
    episode's length and forward return (``info["reward_forward"]`` summed: the return for progress
    alone, which tells a robot that moves from one that only stays up)."""
    totals = episode_totals(agent, env_id, episodes, seed=seed, info_keys=("reward_forward",), **env_kwargs)
    returns = totals["return"]
    robot = get_robot(env_id).name
    ref = references(robot)
    return {
        "env_id": env_id, "env_kwargs": env_kwargs, "episodes": episodes, "seed": seed,
        "return_mean": float(returns.mean()), "return_std": float(returns.std()),
        "returns": returns.tolist(), "lengths": totals["length"].tolist(),
        "forward_returns": totals["reward_forward"].tolist(),
        "normalised_score": float(np.mean(d4rl_score(robot, returns))),
        "normalised_score_dynshift": float(np.mean(normalised_score(returns, ref["random"], ref["expert"]))),
    }


def default_run_dir(algorithm: str, dataset_id: str, seed: int) -> Path:
    return Path("runs") / algorithm / dataset_id.replace("/", "__") / f"seed{seed}"


def train(algorithm: str, dataset_id: str, gradient_steps: int | None = None, seed: int = 0,
          out: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None,
          world_model_config: WorldModelConfig | None = None, world_model: str | os.PathLike | None = None,
          options: RunOptions | None = None, log_formats=("stdout", "csv"), progress_position: int = 0,
          data: Transitions | None = None, provenance: dict | None = None, **run_options):
    """Train ``algorithm`` on ``dataset_id`` into ``out`` (logs, ``checkpoint/``); an existing
    checkpoint there is resumed up to the run's gradient steps.

    How the run is driven is a :class:`~dynshift_agents.run_options.RunOptions`: ``options``, with any
    of its fields given here by name (``gradient_steps``, ``eval_every``, ``eval_episodes``,
    ``checkpoint_every``, ``keep_checkpoints``, ``threads``, ``device``, ``progress``) replacing its
    values; the defaults are the command line's. The world model is ``world_model`` (a file) if given,
    else the dataset's cached one for ``world_model_config`` and ``seed``. ``progress_position`` is the
    line of the progress bar (for runs side by side). ``data`` replaces the dataset's own transitions
    (DARA's relabelled union; ``dataset_id`` still names the env and the run), and ``provenance`` is
    recorded in the checkpoint. The dataset is opened once. Returns the agent."""
    options = RunOptions.of(options, gradient_steps=gradient_steps, **run_options)
    device = resolve_device(options.device)
    torch.set_num_threads(options.threads)
    agent_class = algorithm_class(algorithm)
    out = Path(out) if out is not None else default_run_dir(algorithm, dataset_id, seed)
    checkpoint = out / "checkpoint"
    config = agent_class.config_class.for_dataset(dataset_id, **(overrides or {}))  # bad settings fail first
    dataset = load_dataset(dataset_id)
    own_data = data is None
    data = load_transitions(dataset_id, dataset) if own_data else data
    out.mkdir(parents=True, exist_ok=True)
    with _exclusive(out):
        if (checkpoint / "agent.json").exists():
            meta = describe(checkpoint)
            same = (meta["algorithm"] == algorithm and meta["dataset_id"] == dataset_id and meta["seed"] == seed
                    and agent_class.config_class.from_checkpoint(meta["config"]) == config)
            if not same:  # decided from agent.json alone: a different run is never loaded
                raise FileExistsError(f"{out} holds a different run ({meta['algorithm']} on {meta['dataset_id']}, seed "
                                      f"{meta['seed']}, config {meta['config']}); choose another --out")
            agent = agent_class.load(checkpoint, dataset=data, device=device)
            print(f"resuming {out} at {agent.gradient_steps} gradient steps", flush=True)
        else:
            env_id, env_kwargs = dataset_env(dataset_id, dataset)
            common = dict(seed=seed, env_kwargs=env_kwargs, dataset_id=dataset_id, device=device)
            if not needs_world_model(algorithm):
                agent = agent_class(env_id, data, config, **common)
            else:
                if world_model is not None:
                    model = WorldModel.load(world_model)
                else:
                    model = world_model_for(dataset_id, world_model_config or agent_class.world_model_config(),
                                            seed=seed, log=None if options.progress else log_every_tenth_epoch,
                                            progress=options.progress, data=data if own_data else None, device=device)
                agent = agent_class(env_id, model, data, config, **common)
            agent.provenance = provenance or {}
        agent.learn(options.gradient_steps, log_dir=out, log_formats=log_formats, progress_bar=options.progress,
                    eval_callback=evaluation_callback(options.eval_episodes), eval_every=options.eval_every,
                    checkpoint_dir=checkpoint, checkpoint_every=options.checkpoint_every,
                    progress_position=progress_position,
                    keep_checkpoints=out / "checkpoints" if options.keep_checkpoints else None)
    return agent


def train_dara(base: str, target_id: str, source_id: str, gradient_steps: int | None = None, seed: int = 0,
               out: str | os.PathLike | None = None, dara_overrides: dict[str, Any] | None = None,
               world_model_config: WorldModelConfig | None = None, **train_kwargs):
    """DARA in front of a ``base`` learner: the classifiers are fitted on the source and target
    datasets (seeded, once: ``out/dara.pt``, resumed runs reuse them), the source rewards relabelled,
    and ``base`` trained on target ∪ relabelled source. A model-based base (MOPO) also gets a world
    model fitted on both robots' data (``out/world_model.pt``, once; rewards per DARA's
    ``model_data``). The run (and its checkpoint) records both dataset ids, DARA's settings, the
    classifiers' report and what the world model was fitted on. ``train_kwargs`` are :func:`train`'s,
    run options included; the classifiers and the world model use the run's device."""
    option_names = {f.name for f in dataclasses.fields(RunOptions)}
    options = RunOptions.of(train_kwargs.pop("options", None), gradient_steps=gradient_steps,
                            **{k: train_kwargs.pop(k) for k in option_names & set(train_kwargs)})
    device = resolve_device(options.device)
    agent_class = algorithm_class(base)
    model_based = needs_world_model(base)
    out = Path(out) if out is not None else (Path("runs") / f"dara-{base}" / target_id.replace("/", "__")
                                             / source_id.replace("/", "__") / f"seed{seed}")
    out.mkdir(parents=True, exist_ok=True)
    target, source = load_transitions(target_id), load_transitions(source_id)
    config = DARAConfig(**(dara_overrides or {}))
    classifiers = out / "dara.pt"
    if classifiers.exists():
        dara = DARA.load(classifiers, device=device)
        if dara.config != config:
            raise FileExistsError(f"{out} holds DARA classifiers with other settings ({dataclasses.asdict(dara.config)}); "
                                  "choose another --out")
    else:
        dara = DARA(target.obs.shape[1], target.actions.shape[1], config, device=device)
        report = dara.fit(source, target, seed=seed)
        dara.save(classifiers)
        print(f"DARA classifiers: held-out accuracy (s,a,s') {report['sas_accuracy']:.3f}, (s,a) "
              f"{report['sa_accuracy']:.3f}; Δr on the source {report['delta_r']['mean']:.3f} ± "
              f"{report['delta_r']['std']:.3f}", flush=True)
    provenance = {"dara": {"target_dataset": target_id, "source_dataset": source_id, "config": dataclasses.asdict(config),
                           "classifiers": str(classifiers), "report": dara.report}}
    data = dara.dataset(source, target)
    if model_based:
        world_model = out / "world_model.pt"
        if not world_model.exists():
            fitted_on = data if config.model_data == "relabelled" else concatenate(target, source)
            model = fit_world_model(fitted_on, world_model_config or agent_class.world_model_config(), seed,
                                    log=None if options.progress else log_every_tenth_epoch, progress=options.progress,
                                    device=device)
            model.metadata |= {"dataset_id": f"{target_id} + {source_id} ({config.model_data} source rewards)",
                               "seed": seed}
            model.save(world_model, model.metadata)
        train_kwargs["world_model"] = world_model
        provenance["dara"]["world_model"] = {"file": str(world_model), "fitted_on": "target ∪ source",
                                             "source_rewards": config.model_data}
    return train(base, target_id, seed=seed, out=out, data=data, provenance=provenance, options=options, **train_kwargs)


PERIODIC_EVALUATION_SEED = 10_000
"""The first env seed of the periodic evaluations during training (the final evaluation's start at 0)."""


def evaluation_callback(episodes: int, seed: int = PERIODIC_EVALUATION_SEED):
    """Periodic evaluation during training: ``episodes`` seeded, deterministic episodes on the env
    the agent was trained on; their mean return and D4RL-normalised score."""
    def evaluate_agent(agent) -> dict[str, float]:
        returns = episode_returns(agent, agent.env_id, episodes, seed=seed, **agent.env_kwargs)
        return {"eval/return_mean": float(returns.mean()), "eval/return_std": float(returns.std()),
                "eval/d4rl_score": float(np.mean(d4rl_score(agent.env_id, returns)))}

    return evaluate_agent


def log_every_tenth_epoch(epoch: int, stats: dict) -> None:
    """A world-model fit's progress in logs without a progress bar."""
    if epoch % 10 == 0:
        print(f"world model epoch {epoch}: {stats}", flush=True)


@contextlib.contextmanager
def _exclusive(run_dir: Path):
    """Hold the run directory's lock: a second process asked to train the same run waits for the
    first, then resumes (or finds the run finished) instead of writing over it."""
    with open(run_dir / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting: another process is training {run_dir}", flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield
