"""The generic offline trainer every algorithm runs on (d3rlpy's ``fit``, SB3's ``learn``).

The seam is one gradient step: an algorithm supplies :meth:`Agent.sample` (a batch) and
:meth:`Agent.update` (its losses and optimiser steps on that batch, returning metrics as tensors), in
the shape of d3rlpy's ``inner_update`` and CORL's ``train(batch)``. The one loop,
:meth:`Agent.train_block`, runs ``block_steps()`` of them, keeps the one step counter
(``gradient_steps``, which drives policy delays and warm-ups) and reads the metrics once per block (no
host sync per step). ``Agent.learn(gradient_steps)`` runs the blocks; a layer above adds its own work
around a block (the model-based agents' rollouts, RAMBO's adversary). Around the blocks the base owns
everything an algorithm must not rewrite: SB3's logger (stdout, CSV, TensorBoard when installed; a
resumed run keeps its earlier CSV rows), the progress bar, the divergence guard, periodic evaluation (a callback the caller
passes in, as SB3's ``EvalCallback``: nothing under ``algorithms/`` imports the evaluation layer),
atomic checkpoint directories, and resuming. :meth:`Agent.predict` has SB3's signature and encodes
observations with the agent's :class:`~dynshift_agents.algorithms.encoder.ObservationEncoder`.

A checkpoint directory holds ``agent.json`` (config, env, dataset, step count, the encoder's
numbers), ``tensors.pt`` (every tensor: weights, optimiser states, statistics) and the files of the
layer above (a world model). It also holds the state of every random generator training draws from
(torch's global one, the agent's own, its NumPy generators: :meth:`Agent.numpy_generators`), put back
when a loaded agent starts to learn: a model-free run interrupted at a checkpoint and resumed trains
exactly as one never interrupted (tested). A model-based run does not yet: its buffer of model
rollouts is not saved, and starts empty. Nothing in it is unpickled: ``tensors.pt`` is read with
``torch.load(weights_only=True)``, which refuses any other payload.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.logger import CSVOutputFormat, Logger, configure
from tqdm.auto import tqdm

from dynshift_agents.algorithms.encoder import ObservationEncoder
from dynshift_agents.checks import POSITIVE, Range, check_ranges
from dynshift_agents.data.transitions import Transitions
from dynshift_agents.run_options import resolve_device

BLOCK_STEPS = 1000
"""Gradient steps per training block of learners without a block of their own (logging, the
divergence check and checkpoints happen between blocks)."""


@dataclass
class AgentConfig:
    """What every algorithm has."""

    q_limit: float = 1e5
    """Divergence guard: training stops (keeping the last checkpoint) when a loss is not finite or
    the mean |Q| on a batch exceeds this (RAMBO's "—", a value function that diverged)."""
    standardise_states: bool = False
    """The policy sees (s − mean) / std of the dataset's states."""

    RANGES: ClassVar[dict[str, Range]] = {"q_limit": POSITIVE}
    """Each field's valid range (a subclass adds its own): checked when the config is built."""

    def __post_init__(self):
        check_ranges(self)

    @classmethod
    def for_dataset(cls, dataset_id: str, **overrides) -> "AgentConfig":
        """The settings for a dataset (algorithms with per-dataset presets override this)."""
        return cls.from_dict(overrides)

    absent_from_older_checkpoints: ClassVar[dict[str, Any]] = {}
    """Fields added after checkpoints were written, with the value those checkpoints were trained with
    (a checkpoint's config that lacks the field gets it, not today's default)."""

    @classmethod
    def from_checkpoint(cls, values: dict[str, Any]) -> "AgentConfig":
        """The config a checkpoint (``agent.json``) records."""
        return cls.from_dict(cls.absent_from_older_checkpoints | values)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "AgentConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {sorted(unknown)}; valid: {sorted(names)}")
        return cls(**values)


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One descent step of ``optimizer`` on ``loss`` (gradients zeroed, back-propagated, applied)."""
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


class MetricMeans:
    """Per-step metrics summed as they come (tensors stay where they are: no host sync per step) and read
    once: each metric's mean over the steps that reported it."""

    def __init__(self):
        self.totals: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def add(self, metrics: dict[str, Any]) -> None:
        for key, value in metrics.items():
            self.totals[key] = self.totals[key] + value if key in self.totals else value
            self.counts[key] = self.counts.get(key, 0) + 1

    def read(self) -> dict[str, float]:
        return {key: float(total) / self.counts[key] for key, total in self.totals.items()}


class DivergenceError(RuntimeError):
    """Training stopped because the value function diverged (losses not finite or |Q| too large)."""


class UnsafeCheckpointError(ValueError):
    """A checkpoint file holds something other than tensors and plain numbers (it would unpickle)."""


EvalCallback = Callable[["Agent"], dict[str, float]]
"""Periodic evaluation: the agent → statistics to log (e.g. ``eval/return_mean``)."""


class Agent:
    """An offline learner: config, dataset, encoder, the training loop, checkpoints. Subclasses
    supply :meth:`sample`, :meth:`update`, :meth:`act`, and their tensors."""

    name: ClassVar[str] = "agent"
    """The algorithm's name (``dynshift train NAME``, ``agent.json``)."""
    config_class: ClassVar[type[AgentConfig]] = AgentConfig

    def __init_subclass__(cls, name: str | None = None, config: type[AgentConfig] | None = None, **kwargs):
        """An algorithm names itself and its config class where it is declared:
        ``class BC(SB3Agent, name="bc", config=BCConfig, learner=BCLearner)``."""
        super().__init_subclass__(**kwargs)
        if name is not None:
            cls.name = name
        if config is not None:
            cls.config_class = config

    def __init__(self, env_id: str, dataset: Transitions | None = None, config: AgentConfig | None = None,
                 seed: int = 0, env_kwargs: dict | None = None, dataset_id: str | None = None, device: str = "cpu"):
        self.config = config or self.config_class()
        if not isinstance(self.config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(self.config).__name__}")
        self.env_id, self.env_kwargs, self.dataset_id, self.seed = env_id, dict(env_kwargs or {}), dataset_id, seed
        self.device = resolve_device(device)
        """The torch device everything the agent allocates lives on (``auto`` resolved when built)."""
        env = gym.make(env_id, **self.env_kwargs)
        self.env_observation_space, self.action_space = env.observation_space, env.action_space
        env.close()
        self.encoder = ObservationEncoder(self.env_observation_space.shape[0], context_dim=self.context_dim())
        self.generator = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.gradient_steps = 0
        self._progress_remaining = 1.0
        """The share of the current ``learn`` call still to run (SB3's schedules read it)."""
        self._saved_random: tuple[dict | None, dict | None] | None = None
        """A loaded checkpoint's generator states, put back when the agent starts to learn."""
        self.dataset: Transitions | None = None
        self.provenance: dict = {}
        """Where the training data came from, beyond ``dataset_id`` (DARA's datasets and classifiers)."""
        self.logger: Logger = configure(None, [])
        self.build()
        if dataset is not None:
            self.attach_dataset(dataset)

    # -- what an algorithm supplies -------------------------------------------------------------------

    def context_dim(self) -> int:
        """Length of the context the policy sees beside the state (0: none)."""
        return 0

    def build(self) -> None:
        """Create the networks (the encoder's dimensions are known, its statistics not yet)."""

    def attach_dataset(self, dataset: Transitions) -> None:
        """Give the agent its offline data (needed for ``learn``, not for ``predict``). When the config
        standardises states, a new agent's encoder takes this data's statistics; a loaded one keeps
        those it was trained with."""
        if self.config.standardise_states and not self.encoder.standardises:
            self.encoder.fit(dataset.obs)
        self.dataset = dataset

    def block_steps(self) -> int:
        return BLOCK_STEPS

    def sample(self) -> Any:
        """One training batch, drawn with the agent's generators (what :meth:`update` takes)."""
        raise NotImplementedError

    def update(self, batch: Any) -> dict[str, torch.Tensor | float]:
        """One gradient step on ``batch``: the algorithm's losses and optimiser steps. ``self.gradient_steps``
        is the number of updates before this one (the one step counter: policy delays, warm-ups and
        schedules read it). Returns the step's metrics, detached tensors (no host sync) or numbers."""
        raise NotImplementedError

    def train_block(self, steps: int) -> dict[str, float]:
        """The one training loop: ``steps`` times a batch from :meth:`sample` and an :meth:`update` on it,
        counting each step. Metrics are summed as tensors and read once, at the block's end; each is
        logged as ``train/<name>``, its mean over the steps that reported it (a delayed actor's loss
        over the steps it was updated). A layer above wraps this (the model-based agents' rollouts)."""
        means = MetricMeans()
        for _ in range(steps):
            means.add(self.update(self.sample()))
            self.gradient_steps += 1
        self.block_means = means.read()
        """The last block's mean of every metric (FB's guard reads its mean Q here)."""
        return {f"train/{key}": value for key, value in self.block_means.items()}

    def q_mean(self) -> float | None:
        """The mean value estimate on a batch, for the divergence guard (``None``: no critic)."""
        return None

    def act(self, policy_obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """Actions in env units for a batch of encoded observations."""
        raise NotImplementedError

    def parameters(self) -> list[torch.Tensor]:
        """Every trained tensor (checked for finiteness when training fails)."""
        return []

    def reward_units(self) -> float:
        """The factor the learner multiplied the env's rewards by: its Q and V are in env reward × this."""
        return 1.0

    def tensors(self) -> dict[str, Any]:
        """Everything to restore the agent's training state: tensors and plain containers of them."""
        return {}

    def load_tensors(self, tensors: dict[str, Any]) -> None:
        pass

    def json_state(self) -> dict:
        """Numbers and flags to restore beside the tensors."""
        return {}

    def load_json_state(self, state: dict) -> None:
        pass

    def before_learn(self) -> None:
        """Called at the start of :meth:`learn` (RAMBO's behaviour-cloning warm start)."""

    def numpy_generators(self) -> dict[str, np.random.Generator]:
        """The NumPy generators training draws from, by name: their states are saved with a checkpoint."""
        return {"agent": self.rng}

    # -- training -----------------------------------------------------------------------------------

    def learn(self, gradient_steps: int, *, log_dir: str | os.PathLike | None = None, log_formats=("stdout", "csv"),
              progress_bar: bool = True, eval_callback: EvalCallback | None = None, eval_every: int = 0,
              checkpoint_dir: str | os.PathLike | None = None, checkpoint_every: int = 0,
              keep_checkpoints: str | os.PathLike | None = None,
              callback: Callable[["Agent"], None] | None = None, progress_position: int = 0) -> "Agent":
        """Train until ``gradient_steps`` gradient steps in total (a loaded checkpoint continues).

        :param eval_callback: called every ``eval_every`` gradient steps; what it returns is logged.
        :param checkpoint_every: save to ``checkpoint_dir`` every this many steps (and at the end).
        :param keep_checkpoints: also keep each of those checkpoints as ``KEEP/step_<steps>/`` (hard links
            to the files just written: no copy), so any point of the learning curve can be evaluated later.
        :param callback: called with the agent after every training block.
        :param progress_position: the progress bar's line (for runs side by side).
        """
        if self.dataset is None:
            raise ValueError("no dataset attached: pass dataset= or call attach_dataset() before learn()")
        self.set_logger(self._logger(log_dir, log_formats))
        self._restore_random_state()
        self.before_learn()
        start_time, start_steps = time.perf_counter(), self.gradient_steps
        saved_at = None
        with tqdm(total=gradient_steps, initial=self.gradient_steps, desc=f"{self.name} gradient steps",
                  disable=not progress_bar, smoothing=0.05, position=progress_position) as bar:
            while self.gradient_steps < gradient_steps:
                block = min(self.block_steps(), gradient_steps - self.gradient_steps)
                self._progress_remaining = 1.0 - self.gradient_steps / gradient_steps
                try:
                    stats = self.train_block(block)
                except (ValueError, RuntimeError) as error:  # e.g. a distribution refusing NaN parameters
                    if all(torch.isfinite(p).all() for p in self.parameters()):
                        raise
                    raise DivergenceError(self._divergence_message(float("nan"), {}, checkpoint_dir)) from error
                stats |= self._check_divergence(checkpoint_dir, stats)
                self.after_block()
                bar.update(block)
                for key, value in stats.items():
                    self.logger.record(key, value)
                done_steps = self.gradient_steps - start_steps
                self.logger.record("time/gradient_steps", self.gradient_steps)
                self.logger.record("time/gradient_steps_per_s", done_steps / (time.perf_counter() - start_time))
                if eval_callback is not None and eval_every and self._crossed(eval_every, block):
                    for key, value in eval_callback(self).items():
                        self.logger.record(key, value)
                self.logger.dump(step=self.gradient_steps)
                if checkpoint_dir and checkpoint_every and self._crossed(checkpoint_every, block):
                    self._checkpoint(checkpoint_dir, keep_checkpoints)
                    saved_at = self.gradient_steps
                if callback is not None:
                    callback(self)
        if checkpoint_dir and saved_at != self.gradient_steps and (
                self.gradient_steps > start_steps or not (Path(checkpoint_dir) / "agent.json").exists()):
            self._checkpoint(checkpoint_dir, keep_checkpoints)  # a finished run asked again is left untouched
        return self

    def _checkpoint(self, checkpoint_dir: str | os.PathLike, keep: str | os.PathLike | None) -> None:
        """Save to ``checkpoint_dir``; with ``keep``, also keep it as ``keep/step_<steps>/`` (once), its
        files hard-linked: each save writes new files, so the kept ones never change."""
        self.save(checkpoint_dir)
        target = Path(keep) / f"step_{self.gradient_steps:08d}" if keep else None
        if target is None or target.exists():
            return
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(checkpoint_dir, tmp, copy_function=_link_or_copy)
        os.replace(tmp, target)

    def set_logger(self, logger: Logger) -> None:
        self.logger = logger

    def after_block(self) -> None:
        """Called after each block, once the step count is updated (the SB3 layer syncs its learner)."""

    @torch.no_grad()
    def _check_divergence(self, checkpoint_dir, stats: dict[str, float]) -> dict[str, float]:
        """Raise :class:`DivergenceError` (before anything is saved) if training diverged: a loss of the
        block's statistics (or one recorded in the logger) not finite, or |mean Q| past the limit;
        returns the mean Q for the logger."""
        losses = {k: v for k, v in (self.logger.name_to_value | stats).items() if k.endswith("_loss")}
        q_mean = self.q_mean()
        q_bad = q_mean is not None and (not np.isfinite(q_mean) or abs(q_mean) > self.config.q_limit)
        if q_bad or not all(np.isfinite(list(losses.values()))):
            raise DivergenceError(self._divergence_message(q_mean, losses, checkpoint_dir))
        return {} if q_mean is None else {"train/q_mean": q_mean}

    def _divergence_message(self, q_mean: float | None, losses: dict, checkpoint_dir) -> str:
        kept = f"the last good checkpoint in {checkpoint_dir} is kept" if checkpoint_dir else "nothing was saved"
        q = "no critic" if q_mean is None else f"{q_mean:.3g}"
        return (f"{self.name} diverged at gradient step {self.gradient_steps}: mean Q {q} "
                f"(limit {self.config.q_limit:g}), losses {losses}, non-finite parameters: "
                f"{not all(torch.isfinite(p).all() for p in self.parameters())}; {kept}")

    def _crossed(self, every: int, block: int) -> bool:
        return self.gradient_steps // every > (self.gradient_steps - block) // every

    def _logger(self, log_dir, formats) -> Logger:
        formats = list(formats)
        if log_dir is not None and "tensorboard" not in formats:
            try:
                import tensorboard  # noqa: F401

                formats.append("tensorboard")
            except ImportError:
                pass
        if log_dir is None:
            formats = [f for f in formats if f == "stdout"]
        earlier = self._earlier_progress(log_dir) if "csv" in formats else []
        logger = configure(str(log_dir) if log_dir is not None else None, formats)
        for output in logger.output_formats:  # configure() truncates progress.csv: put back the rows
            if isinstance(output, CSVOutputFormat):  # of earlier sessions up to this checkpoint
                for row in earlier:
                    output.write(row, {})
        return logger

    def _earlier_progress(self, log_dir) -> list[dict[str, Any]]:
        path = Path(log_dir) / "progress.csv" if log_dir is not None else None
        if path is None or not path.exists():
            return []
        with path.open(newline="") as f:
            rows = [{k: _number(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
        return [row for row in rows if row.get("time/gradient_steps", row.get("train/n_updates", 0)) <= self.gradient_steps]

    # -- acting -------------------------------------------------------------------------------------

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = True, context=None):
        """SB3's ``predict`` (deterministic by default, as for evaluation). Env observations are
        encoded first; a context-conditioned policy gets ``context`` (default: the training data's),
        or the context already appended to each observation."""
        observation = np.asarray(observation)
        single = observation.ndim == 1
        batch = observation[None] if single else observation
        if context is None and self.encoder.context_dim and batch.shape[-1] == self.encoder.obs_dim + self.encoder.context_dim:
            batch, context = batch[:, :self.encoder.obs_dim], batch[:, self.encoder.obs_dim:]  # the context given inline
        policy_obs = self.encoder(batch, context)
        actions = self.act(policy_obs, deterministic)
        return (actions[0] if single else actions), None

    # -- persistence --------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """A checkpoint directory, written beside and renamed into place."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        random_tensors = {"torch": torch.get_rng_state(), "generator": self.generator.get_state()}
        torch.save({"agent": self.tensors(), "encoder": self.encoder.tensors(), "random": random_tensors},
                   tmp / "tensors.pt")
        self.save_parts(tmp)
        meta = {"algorithm": self.name, "config": asdict(self.config), "env_id": self.env_id,
                "env_kwargs": self.env_kwargs, "dataset_id": self.dataset_id, "seed": self.seed,
                "gradient_steps": self.gradient_steps, "device": str(self.device), "encoder": self.encoder.to_json(),
                "state": self.json_state(),
                "provenance": self.provenance,
                "random": {name: g.bit_generator.state for name, g in self.numpy_generators().items()}}
        (tmp / "agent.json").write_text(json.dumps(meta, indent=1))
        old = path.with_name(path.name + ".old")
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)

    def _restore_random_state(self) -> None:
        """The generators as they were when the loaded checkpoint was saved (once; a fresh agent keeps its own)."""
        saved, self._saved_random = self._saved_random, None
        if saved is None:
            return
        tensors, states = saved
        if tensors:  # checkpoints written before the generators were saved resume with fresh ones
            torch.set_rng_state(tensors["torch"])
            self.generator.set_state(tensors["generator"])
        generators = self.numpy_generators()
        for name, state in (states or {}).items():
            if name in generators:
                generators[name].bit_generator.state = state

    def save_parts(self, directory: Path) -> None:
        """Write the files of a layer above (a world model) into the checkpoint being written."""

    @classmethod
    def from_checkpoint(cls, path: Path, meta: dict, config: AgentConfig, device: str) -> "Agent":
        """A fresh agent of this class built as the checkpoint was (its trained state not yet loaded)."""
        return cls(meta["env_id"], None, config, meta["seed"], meta["env_kwargs"], meta["dataset_id"], device)

    @classmethod
    def load(cls, path: str | os.PathLike, dataset: Transitions | None = None, device: str = "cpu") -> "Agent":
        """Load a checkpoint of this class saved by :meth:`save` (``path`` is the checkpoint or its run
        directory); nothing is unpickled. :func:`dynshift_agents.algorithms.load` loads any class."""
        path = checkpoint_dir(path)
        meta = read_meta(path)
        if meta["algorithm"] != cls.name:
            raise ValueError(f"{path} holds a {meta['algorithm']} agent, not {cls.name}; load it with "
                             "dynshift_agents.algorithms.load")
        agent = cls.from_checkpoint(path, meta, cls.config_class.from_checkpoint(meta["config"]), device)
        tensors = read_tensors(path / "tensors.pt")
        agent.encoder = ObservationEncoder.restore(meta["encoder"], tensors["encoder"])
        agent.gradient_steps = meta["gradient_steps"]
        agent.provenance = meta.get("provenance", {})
        agent.load_tensors(tensors["agent"])
        agent.load_json_state(meta.get("state", {}))
        agent._saved_random = (tensors.get("random"), meta.get("random"))
        if dataset is not None:
            agent.attach_dataset(dataset)
        return agent


def _link_or_copy(source: str, destination: str) -> None:
    """A hard link, or a copy where links are not possible (another file system)."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def checkpoint_dir(path: str | os.PathLike) -> Path:
    """The checkpoint directory of ``path``: the path itself, or its ``checkpoint/`` (a run directory)."""
    path = Path(path)
    if (path / "agent.json").exists():
        return path
    if (path / "checkpoint" / "agent.json").exists():
        return path / "checkpoint"
    raise FileNotFoundError(f"{path} is neither an agent checkpoint nor a run directory with one (no agent.json)")


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint's ``agent.json``; checkpoints of the older, unsafe format are refused."""
    path = checkpoint_dir(path)
    if (path / "learner.zip").exists() and not (path / "tensors.pt").exists():
        raise UnsafeCheckpointError(
            f"{path} was written by DynShift before checkpoints became safe: its learner.zip is Stable-Baselines3's "
            "format, which runs pickled code when loaded, so it is not loaded. Retrain it, or convert it where you "
            "trust its origin with `python scripts/convert_checkpoint.py PATH`.")
    return json.loads((path / "agent.json").read_text())


def read_tensors(path: str | os.PathLike) -> dict:
    """A tensors file of a checkpoint, read with ``weights_only=True``: a file with any other payload
    (code that would run when unpickled) is refused before anything in it runs."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle.UnpicklingError (or RuntimeError) for unsafe payloads
        raise UnsafeCheckpointError(f"{path} holds more than tensors and numbers and was not loaded "
                                    f"(a checkpoint must never need unpickling): {error}") from error


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text
