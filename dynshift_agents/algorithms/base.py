"""The offline model-based base: a Stable-Baselines3 learner trained on a dataset plus model rollouts.

``OfflineAgent.learn(gradient_steps)`` alternates, every ``rollout_freq`` gradient steps, a branched
rollout (``rollout_batch_size`` dataset start states, ``rollout_length`` model steps under the current
stochastic policy, terminated rows stopped) into the model FIFO of a :class:`MixedReplayBuffer`, and
``rollout_freq`` steps of the learner's own ``train()`` on batches mixed at ``real_ratio``. It never
steps a real environment: the learner is built on an env that only carries the spaces and raises if
stepped. Real envs are used only for the optional periodic evaluation.

The learner is SB3's ``SAC`` (default) or sb3-contrib's ``TQC``. An algorithm is a subclass that
changes only its defining piece: :meth:`process_model_step` (MOPO's reward penalty, AugWM's
augmentation), :meth:`after_train` (RAMBO's adversarial model update), or the buffer ``transform``.

Logging is SB3's logger (stdout, CSV, and TensorBoard when installed); ``num_timesteps`` counts
gradient steps. Checkpoints are directories written atomically; a run resumes from its checkpoint
(the model FIFO is refilled by a fresh rollout, so a resumed run is not bit-identical to an
uninterrupted one).
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
from sb3_contrib import TQC
from stable_baselines3 import SAC
from stable_baselines3.common.logger import CSVOutputFormat, Logger, configure
from tqdm.auto import tqdm

from dynshift_agents.buffers import MixedReplayBuffer
from dynshift_agents.data.transitions import Transitions
from dynshift_agents.rollout import ModelEnv, ModelStep, rollout
from dynshift_agents.termination import termination_fn
from dynshift_agents.world_model import WorldModel, WorldModelConfig

LEARNERS = {"sac": SAC, "tqc": TQC}
"""Policy learners an offline agent can train: SB3's SAC and sb3-contrib's TQC."""


@dataclass
class OfflineConfig:
    """Offline model-based training; defaults are MOPO's, except where a CPU-scale value is noted."""

    learner: str = "sac"
    """``"sac"`` (Stable-Baselines3) or ``"tqc"`` (sb3-contrib)."""
    rollout_freq: int = 1000
    """Gradient steps between rollouts."""
    rollout_batch_size: int = 50_000
    """Dataset start states per rollout."""
    rollout_length: int = 5
    """Model steps per rollout (h)."""
    retain_rounds: int = 5
    """Rollouts the model FIFO keeps: capacity = batch × length × rounds."""
    real_ratio: float = 0.05
    """Fraction of each batch from the dataset."""
    rollout_chunk: int = 4096
    """Start states per batched model pass (a speed setting; results do not depend on it)."""
    batch_size: int = 256
    learning_rate: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    net_arch: tuple[int, ...] = (256, 256)
    """Hidden layers of actor and critics."""
    ent_coef: str | float = "auto"
    """SAC's entropy coefficient; ``"auto"`` tunes it to a target entropy of −dim(A)."""
    q_limit: float = 1e5
    """Divergence guard: training stops (keeping the last checkpoint) when a loss is not finite or
    the mean |Q| on a buffer batch exceeds this (RAMBO's "—", a value function that diverged)."""
    learner_kwargs: dict = dataclasses.field(default_factory=dict)
    """Extra keyword arguments of the learner (e.g. TQC's ``top_quantiles_to_drop_per_net``)."""

    def __post_init__(self):
        self.net_arch = tuple(self.net_arch)
        if self.learner not in LEARNERS:
            raise ValueError(f"unknown learner {self.learner!r}; choose one of {sorted(LEARNERS)}")
        for name in ("rollout_freq", "rollout_batch_size", "rollout_length", "retain_rounds", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")

    @classmethod
    def for_dataset(cls, dataset_id: str, **overrides) -> "OfflineConfig":
        """The settings for a dataset (algorithms with per-dataset presets override this)."""
        return cls.from_dict(overrides)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "OfflineConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {sorted(unknown)}; valid: {sorted(names)}")
        return cls(**values)


class DivergenceError(RuntimeError):
    """Training stopped because the value function diverged (losses not finite or |Q| too large)."""


class SpacesOnlyEnv(gym.Env):
    """Carries the spaces an SB3 learner is built on; stepping or resetting it is an error."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space):
        self.observation_space, self.action_space = observation_space, action_space

    def reset(self, *, seed=None, options=None):
        raise RuntimeError("offline agents never reset or step an environment")

    def step(self, action):
        raise RuntimeError("offline agents never reset or step an environment")


class OfflineAgent:
    """A policy learner trained offline on a dataset and world-model rollouts (no penalty: plain MBPO
    on a fixed dataset). Subclasses are the algorithms."""

    name: ClassVar[str] = "offline"
    config_class: ClassVar[type[OfflineConfig]] = OfflineConfig

    def __init__(self, env_id: str, world_model: WorldModel, dataset: Transitions | None = None,
                 config: OfflineConfig | None = None, seed: int = 0, env_kwargs: dict | None = None,
                 dataset_id: str | None = None, device: str = "cpu"):
        self.config = config or self.config_class()
        if not isinstance(self.config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(self.config).__name__}")
        self.env_id, self.env_kwargs, self.dataset_id, self.seed = env_id, dict(env_kwargs or {}), dataset_id, seed
        self.world_model = world_model.eval()
        self.model_env = ModelEnv(world_model, termination_fn(env_id))
        env = gym.make(env_id, **self.env_kwargs)
        self.env_observation_space, self.action_space = env.observation_space, env.action_space
        env.close()
        cfg = self.config
        self.learner = LEARNERS[cfg.learner](
            "MlpPolicy", SpacesOnlyEnv(self.policy_observation_space(), self.action_space), buffer_size=1,
            learning_starts=0, batch_size=cfg.batch_size, learning_rate=cfg.learning_rate, gamma=cfg.gamma,
            tau=cfg.tau, ent_coef=cfg.ent_coef, policy_kwargs={"net_arch": list(cfg.net_arch)}, seed=seed,
            device=device, **cfg.learner_kwargs,
        )
        self.generator = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.gradient_steps = 0
        self.dataset: Transitions | None = None
        if dataset is not None:
            self.attach_dataset(dataset)

    # -- hooks for algorithms -----------------------------------------------------------------------

    def policy_observation_space(self) -> gym.spaces.Box:
        """What the policy sees (AugWM's context-conditioned policy appends z)."""
        return self.env_observation_space

    def policy_input(self, obs: torch.Tensor, rollout_index: torch.Tensor) -> torch.Tensor:
        """What the policy sees at a model state during rollouts (AugWM's LM variant appends z)."""
        return obs

    def buffer_dataset(self, dataset: Transitions) -> Transitions:
        """The dataset as the buffer stores it, in policy observations (default: unchanged)."""
        return dataset

    def begin_rollout(self, start_states: int) -> None:
        """Called before each rollout (AugWM draws one z per rollout here)."""

    def process_model_step(self, step: ModelStep) -> ModelStep:
        """Change model transitions before they enter the buffer (MOPO penalises the reward here);
        ``obs``/``next_obs`` of the result are what the policy sees."""
        return step

    @classmethod
    def world_model_config(cls) -> WorldModelConfig:
        """The world-model settings this algorithm's paper uses (MOPO's by default)."""
        return WorldModelConfig()

    def before_learn(self) -> None:
        """Called at the start of :meth:`learn` (RAMBO's behaviour-cloning warm start)."""

    def after_train(self, gradient_steps: int) -> None:
        """Called after each block of ``rollout_freq`` learner steps (RAMBO updates the model here)."""

    transform: Callable | None = None
    """Optional per-batch buffer transform ``(samples, is_model) -> samples``."""

    # -- data ---------------------------------------------------------------------------------------

    def attach_dataset(self, dataset: Transitions) -> None:
        """Give the agent its offline data (needed for ``learn``, not for ``predict``)."""
        cfg = self.config
        policy = self.learner.policy
        stored = self.buffer_dataset(dataset)
        scaled = dataclasses.replace(stored, actions=policy.scale_action(stored.actions).astype(np.float32))
        self.dataset = dataset
        self.learner.replay_buffer = MixedReplayBuffer(
            cfg.rollout_batch_size * cfg.rollout_length * cfg.retain_rounds, self.policy_observation_space(),
            self.action_space, device=self.learner.device, dataset=scaled, real_ratio=cfg.real_ratio,
            transform=self.transform, seed=self.seed,
        )

    @property
    def replay_buffer(self) -> MixedReplayBuffer:
        return self.learner.replay_buffer

    def _act(self, obs: torch.Tensor, rollout_index: torch.Tensor) -> torch.Tensor:
        """The current stochastic policy's actions in env units, for rollouts."""
        policy_obs = self.policy_input(obs, rollout_index).to(self.learner.device)
        squashed = self.learner.policy.actor(policy_obs, deterministic=False).cpu()
        low = torch.as_tensor(self.action_space.low)
        high = torch.as_tensor(self.action_space.high)
        return low + 0.5 * (squashed + 1.0) * (high - low)

    @torch.no_grad()
    def rollout(self) -> dict[str, float]:
        """One branched rollout into the model FIFO; returns statistics for the logger."""
        cfg = self.config
        start = torch.as_tensor(self.dataset.obs[self.rng.integers(len(self.dataset), size=cfg.rollout_batch_size)])
        self.learner.policy.set_training_mode(False)
        self.begin_rollout(cfg.rollout_batch_size)
        count, reward_sum, lengths = 0, 0.0, torch.zeros(cfg.rollout_batch_size)
        scale = self.learner.policy.scale_action
        for step in rollout(self.model_env, self._act, start, cfg.rollout_length, cfg.rollout_chunk,
                            self.generator, self.process_model_step):
            self.replay_buffer.add_model(step.obs.numpy(), step.next_obs.numpy(), scale(step.actions.numpy()),
                                         step.rewards.numpy(), step.dones.numpy())
            count += len(step)
            reward_sum += float(step.rewards.sum())
            lengths[step.rollout_index] += 1
        return {"rollout/transitions": count, "rollout/reward_mean": reward_sum / max(count, 1),
                "rollout/length_mean": float(lengths.mean())}

    # -- training -----------------------------------------------------------------------------------

    def learn(self, gradient_steps: int, *, log_dir: str | os.PathLike | None = None, log_formats=("stdout", "csv"),
              progress_bar: bool = True, eval_every: int = 0, eval_episodes: int = 5,
              checkpoint_dir: str | os.PathLike | None = None, checkpoint_every: int = 0,
              callback: Callable[["OfflineAgent"], None] | None = None) -> "OfflineAgent":
        """Train until ``gradient_steps`` learner steps in total (a loaded checkpoint continues).

        :param eval_every: evaluate every this many gradient steps on the real env (0: never).
        :param checkpoint_every: save to ``checkpoint_dir`` every this many steps (and at the end).
        :param callback: called with the agent after every block of ``rollout_freq`` steps.
        """
        if self.dataset is None:
            raise ValueError("no dataset attached: pass dataset= or call attach_dataset() before learn()")
        cfg = self.config
        learner = self.learner
        learner.set_logger(self._logger(log_dir, log_formats))
        self.before_learn()
        learner.policy.set_training_mode(True)
        start_time, start_steps = time.perf_counter(), self.gradient_steps
        with tqdm(total=gradient_steps, initial=self.gradient_steps, desc=f"{self.name} gradient steps",
                  disable=not progress_bar, smoothing=0.05) as bar:
            while self.gradient_steps < gradient_steps:
                stats = self.rollout()
                block = min(cfg.rollout_freq, gradient_steps - self.gradient_steps)
                learner._current_progress_remaining = 1.0 - self.gradient_steps / gradient_steps
                try:
                    learner.train(gradient_steps=block, batch_size=cfg.batch_size)
                    self.after_train(block)
                except (ValueError, RuntimeError) as error:  # e.g. a distribution refusing NaN parameters
                    if all(torch.isfinite(p).all() for p in learner.policy.parameters()):
                        raise
                    raise DivergenceError(self._divergence_message(float("nan"), {}, checkpoint_dir)) from error
                self.gradient_steps += block
                stats |= self._check_divergence(checkpoint_dir)
                learner.num_timesteps = self.gradient_steps
                bar.update(block)
                for key, value in stats.items():
                    learner.logger.record(key, value)
                done_steps = self.gradient_steps - start_steps
                learner.logger.record("time/gradient_steps_per_s", done_steps / (time.perf_counter() - start_time))
                if eval_every and self._crossed(eval_every, block):
                    self._record_evaluation(eval_episodes)
                learner.logger.dump(step=self.gradient_steps)
                if checkpoint_dir and checkpoint_every and self._crossed(checkpoint_every, block):
                    self.save(checkpoint_dir)
                if callback is not None:
                    callback(self)
        if checkpoint_dir and (self.gradient_steps > start_steps or not (Path(checkpoint_dir) / "agent.json").exists()):
            self.save(checkpoint_dir)  # a finished run asked again is left untouched
        return self

    def q_values(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The online critics' pessimistic value ``[batch]``: the minimum over SAC's critics, or the
        mean over TQC's quantiles and critics."""
        out = self.learner.policy.critic(obs, actions)
        if isinstance(out, torch.Tensor):  # TQC: [batch, critics, quantiles]
            return out.mean(dim=(1, 2))
        return torch.cat(out, dim=1).min(dim=1).values

    @torch.no_grad()
    def _check_divergence(self, checkpoint_dir) -> dict[str, float]:
        """Raise :class:`DivergenceError` (before anything is saved) if training diverged; returns the
        mean Q on a buffer batch for the logger."""
        values = self.learner.logger.name_to_value
        samples = self.replay_buffer.sample(self.config.batch_size)
        policy = self.learner.policy
        q_mean = float(self.q_values(samples.observations, policy.actor(samples.observations, deterministic=True)).mean())
        losses = {k: v for k, v in values.items() if k.endswith("_loss")}
        if not np.isfinite(q_mean) or abs(q_mean) > self.config.q_limit or not all(np.isfinite(list(losses.values()))):
            raise DivergenceError(self._divergence_message(q_mean, losses, checkpoint_dir))
        return {"train/q_mean": q_mean}

    def _divergence_message(self, q_mean: float, losses: dict, checkpoint_dir) -> str:
        kept = f"the last good checkpoint in {checkpoint_dir} is kept" if checkpoint_dir else "nothing was saved"
        return (f"{self.name} diverged at gradient step {self.gradient_steps}: mean Q {q_mean:.3g} "
                f"(limit {self.config.q_limit:g}), losses {losses}, non-finite parameters: "
                f"{not all(torch.isfinite(p).all() for p in self.learner.policy.parameters())}; {kept}")

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
        return [row for row in rows if row.get("train/n_updates", 0) <= self.gradient_steps]

    def _record_evaluation(self, episodes: int) -> None:
        from dynshift_agents.data.scores import d4rl_score
        from dynshift_agents.evaluation import episode_returns

        returns = episode_returns(self, self.env_id, episodes, seed=10_000, **self.env_kwargs)
        self.learner.logger.record("eval/return_mean", float(returns.mean()))
        self.learner.logger.record("eval/return_std", float(returns.std()))
        self.learner.logger.record("eval/d4rl_score", float(np.mean(d4rl_score(self.env_id, returns))))
        self.learner.policy.set_training_mode(True)

    # -- acting -------------------------------------------------------------------------------------

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = True):
        """SB3's ``predict`` (deterministic by default, as for evaluation)."""
        return self.learner.predict(observation, state, episode_start, deterministic=deterministic)

    # -- persistence --------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """A checkpoint directory: ``agent.json``, ``learner.zip`` (SB3, without the buffer),
        ``world_model.pt``. Written beside and renamed into place."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.learner.save(tmp / "learner.zip", exclude=["replay_buffer"])
        self.world_model.save(tmp / "world_model.pt", getattr(self.world_model, "metadata", None))
        meta = {"algorithm": self.name, "config": asdict(self.config), "env_id": self.env_id,
                "env_kwargs": self.env_kwargs, "dataset_id": self.dataset_id, "seed": self.seed,
                "gradient_steps": self.gradient_steps, "learner_state": self._extra_state()}
        (tmp / "agent.json").write_text(json.dumps(meta, indent=1))
        old = path.with_name(path.name + ".old")
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)

    def _extra_state(self) -> dict:
        return {}

    @classmethod
    def load(cls, path: str | os.PathLike, dataset: Transitions | None = None, device: str = "cpu") -> "OfflineAgent":
        """Load a checkpoint saved by :meth:`save` (any algorithm: the class is read from it)."""
        from dynshift_agents.algorithms import ALGORITHMS

        path = Path(path)
        if not (path / "agent.json").exists():
            raise FileNotFoundError(f"{path} is not an agent checkpoint (no agent.json)")
        meta = json.loads((path / "agent.json").read_text())
        agent_class = ALGORITHMS[meta["algorithm"]] if cls is OfflineAgent or cls.name != meta["algorithm"] else cls
        config = agent_class.config_class.from_dict(meta["config"])
        agent = agent_class(meta["env_id"], WorldModel.load(path / "world_model.pt"), None, config, meta["seed"],
                            meta["env_kwargs"], meta["dataset_id"], device)
        learner = LEARNERS[config.learner].load(path / "learner.zip", env=agent.learner.env, device=device)
        learner.replay_buffer = agent.learner.replay_buffer
        agent.learner = learner
        agent.gradient_steps = meta["gradient_steps"]
        agent._load_extra_state(meta.get("learner_state", {}))
        if dataset is not None:
            agent.attach_dataset(dataset)
        return agent

    def _load_extra_state(self, state: dict) -> None:
        pass


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text
