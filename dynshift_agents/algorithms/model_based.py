"""The model-based layer: a world model, branched rollouts and the model FIFO, on the SB3 layer.

``ModelBasedAgent`` trains in blocks of ``rollout_freq`` gradient steps: before each block a branched
rollout (``rollout_batch_size`` dataset start states, ``rollout_length`` model steps under the current
stochastic policy, terminated rows stopped) fills the model FIFO of the :class:`MixedReplayBuffer`,
then the learner's own ``train()`` runs on batches mixed at ``real_ratio``. It never steps a real
environment. The learner is SB3's ``SAC`` (default) or sb3-contrib's ``TQC``. With no change to the
model data this is MBPO on a fixed dataset; an algorithm changes only its defining piece:
:meth:`process_model_step` (MOPO's reward penalty, AugWM's augmentation), :meth:`rollout_context`
(AugWM's z, which the encoder appends), or the block itself (RAMBO's adversarial model update).

A resumed run refills the model FIFO by a fresh rollout, so it is not bit-identical to an
uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from sb3_contrib import TQC
from stable_baselines3 import SAC

from dynshift_agents.algorithms.agent import AgentConfig
from dynshift_agents.algorithms.fused_sac import FusedSAC
from dynshift_agents.algorithms.sb3 import SB3Agent, SB3Config
from dynshift_agents.checks import COUNT, FRACTION, Range, check_choice, check_ent_coef
from dynshift_agents.data.transitions import Transitions
from dynshift_agents.rollout import ModelEnv, ModelStep, rollout
from dynshift_agents.termination import termination_fn
from dynshift_agents.world_model import WorldModel, WorldModelConfig

LEARNERS = {"sac": FusedSAC, "sac-sb3": SAC, "tqc": TQC}
"""Policy learners a model-based agent can train: SAC with the fused update (the default), SB3's own
SAC (the same maths, its own ``train()``), and sb3-contrib's TQC."""


@dataclass
class ModelBasedConfig(SB3Config):
    """Offline model-based training; defaults are MOPO's, except where a CPU-scale value is noted."""

    RANGES: ClassVar[dict[str, Range]] = {"rollout_freq": COUNT, "rollout_batch_size": COUNT, "rollout_length": COUNT,
                                          "retain_rounds": COUNT, "real_ratio": FRACTION, "rollout_chunk": COUNT,
                                          "actor_learning_rate": Range(0, low_open=True, optional=True),
                                          "ent_coef_learning_rate": Range(0, low_open=True, optional=True),
                                          "ent_coef_max": Range(0, low_open=True, optional=True)}

    learner: str = "sac"
    """``"sac"`` (SB3's SAC with the fused update), ``"sac-sb3"`` (SB3's own ``SAC.train()``) or
    ``"tqc"`` (sb3-contrib)."""
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
    ent_coef: str | float = "auto"
    """SAC's entropy coefficient; ``"auto"`` tunes it to a target entropy of −dim(A)."""
    actor_learning_rate: float | None = None
    """The actor's Adam step (default: ``learning_rate``, SB3's one rate; the public MOPO code: 1e-4)."""
    ent_coef_learning_rate: float | None = None
    """The entropy coefficient's Adam step (default: ``learning_rate``; the public MOPO code: 1e-4)."""
    ent_coef_max: float | None = None
    """A cap on the tuned entropy coefficient (default none; the public MOPO code: 1)."""

    def __post_init__(self):
        super().__post_init__()
        check_choice(self, "learner", sorted(LEARNERS))
        check_ent_coef(self)
        extra = {k: v for k, v in self.sac_options().items() if v is not None}
        if extra and self.learner != "sac":
            raise ValueError(f"{sorted(extra)} need learner 'sac' (the fused update), not {self.learner!r}")

    def sac_options(self) -> dict[str, float | None]:
        return {"actor_learning_rate": self.actor_learning_rate, "ent_coef_learning_rate": self.ent_coef_learning_rate,
                "ent_coef_max": self.ent_coef_max}


class ModelBasedAgent(SB3Agent, name="mbpo", config=ModelBasedConfig):
    """A policy learner trained on a dataset and world-model rollouts, without penalty (MBPO on a
    fixed dataset). Subclasses are the model-based algorithms."""
    config: ModelBasedConfig

    def __init__(self, env_id: str, world_model: WorldModel, dataset: Transitions | None = None,
                 config: ModelBasedConfig | None = None, seed: int = 0, env_kwargs: dict | None = None,
                 dataset_id: str | None = None, device: str = "cpu"):
        self.world_model = world_model.to(device).eval()
        self.model_env = ModelEnv(self.world_model, termination_fn(env_id))
        super().__init__(env_id, dataset, config, seed, env_kwargs, dataset_id, device)

    @classmethod
    def world_model_config(cls) -> WorldModelConfig:
        """The world-model settings this algorithm's paper uses (MOPO's by default)."""
        return WorldModelConfig()

    # -- the SB3 layer's seams ------------------------------------------------------------------------

    def learner_class(self):
        return LEARNERS[self.config.learner]

    def learner_kwargs(self) -> dict[str, Any]:
        options = {k: v for k, v in self.config.sac_options().items() if v is not None}
        return super().learner_kwargs() | {"ent_coef": self.config.ent_coef} | options

    def model_capacity(self) -> int:
        cfg = self.config
        return cfg.rollout_batch_size * cfg.rollout_length * cfg.retain_rounds

    def real_ratio(self) -> float:
        return self.config.real_ratio

    def block_steps(self) -> int:
        return self.config.rollout_freq

    # -- what an algorithm changes ------------------------------------------------------------------

    def begin_rollout(self, start_states: int) -> None:
        """Called before each rollout (AugWM draws one z per rollout here)."""

    def rollout_context(self, rollout_index: torch.Tensor) -> torch.Tensor | None:
        """The context the policy acts on at model states of these rollout rows (AugWM's z)."""
        return None

    def process_model_step(self, step: ModelStep) -> ModelStep:
        """Change model transitions (env units) before they are encoded into the buffer (MOPO
        penalises the reward here, AugWM augments the states and sets the step's ``context``)."""
        return step

    # -- rollouts -----------------------------------------------------------------------------------

    def _act(self, obs: torch.Tensor, rollout_index: torch.Tensor) -> torch.Tensor:
        """The current stochastic policy's actions in env units, for rollouts."""
        policy_obs = self.encoder(obs, self.rollout_context(rollout_index))
        squashed = self.learner.policy.actor(policy_obs, deterministic=False)
        low, high = self._action_bounds(squashed.device)
        return low + 0.5 * (squashed + 1.0) * (high - low)

    def _action_bounds(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.as_tensor(self.action_space.low, device=device),
                torch.as_tensor(self.action_space.high, device=device))

    def scale_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Env-unit actions in the policy's [−1, 1] units, on their device (SB3's ``scale_action``, the same
        float32 operations)."""
        low, high = self._action_bounds(actions.device)
        return 2.0 * ((actions - low) / (high - low)) - 1.0

    def encode_model_step(self, step: ModelStep) -> ModelStep:
        """A model step as it enters the buffer: changed by the algorithm, then encoded."""
        step = self.process_model_step(step)
        return step.replace(obs=self.encoder(step.obs, step.context), next_obs=self.encoder(step.next_obs, step.context))

    @torch.no_grad()
    def rollout(self) -> dict[str, float]:
        """One branched rollout into the model FIFO; returns statistics for the logger."""
        cfg = self.config
        start = torch.as_tensor(self.dataset.obs[self.rng.integers(len(self.dataset), size=cfg.rollout_batch_size)],
                                device=self.device)
        self.learner.policy.set_training_mode(False)
        self.begin_rollout(cfg.rollout_batch_size)
        count, reward_sum, lengths = 0, 0.0, torch.zeros(cfg.rollout_batch_size, device=self.device)
        for step in rollout(self.model_env, self._act, start, cfg.rollout_length, cfg.rollout_chunk,
                            self.generator, self.encode_model_step):
            self.replay_buffer.add_model(step.obs, step.next_obs, self.scale_actions(step.actions), step.rewards,
                                         step.dones)
            count += len(step)
            reward_sum += float(step.rewards.sum())
            lengths[step.rollout_index] += 1
        self.learner.policy.set_training_mode(True)
        return {"rollout/transitions": count, "rollout/reward_mean": reward_sum / max(count, 1),
                "rollout/length_mean": float(lengths.mean())}

    def train_block(self, steps: int) -> dict[str, float]:
        stats = self.rollout()
        return stats | super().train_block(steps)

    # -- persistence --------------------------------------------------------------------------------

    def save_parts(self, directory: Path) -> None:
        self.world_model.save(directory / "world_model.pt", getattr(self.world_model, "metadata", None))

    @classmethod
    def from_checkpoint(cls, path: Path, meta: dict, config: AgentConfig, device: str) -> "ModelBasedAgent":
        return cls(meta["env_id"], WorldModel.load(path / "world_model.pt"), None, config, meta["seed"],
                   meta["env_kwargs"], meta["dataset_id"], device)
