"""The Stable-Baselines3 learner layer: an SB3 algorithm built on spaces, trained on a dataset.

``SB3Agent`` builds its learner (an :class:`OfflineLearner` on SB3's ``SAC`` or ``TD3`` — CQL, IQL,
TD3+BC, BC and the others — or SB3's ``SAC``, sb3-contrib's ``TQC`` as they are) on an env that only
carries the spaces and raises if stepped, and hands it the dataset through SB3's buffer seam: a
:class:`MixedReplayBuffer` whose dataset part holds the encoded transitions (its model part stays empty
for model-free learners). SB3's modules (policy,
critics, optimisers) stay; SB3's ``train()`` is not the seam: an algorithm's learner is an
:class:`OfflineLearner`, built with the algorithm's typed config and supplying ``update(batch, step)``,
which the agent's one loop (:meth:`~dynshift_agents.algorithms.agent.Agent.train_block`) calls once per
batch. Learners DynShift takes as they are (SB3's ``SAC``, sb3-contrib's ``TQC``: the references the
model-based agents can train with) run their own ``train()`` one step at a time inside that loop.

Checkpoints keep what SB3's ``save`` would (the policy's and optimisers' state dicts, and tensor
variables such as SAC's ``log_ent_coef``, as listed by the learner's ``_get_torch_save_params``) as
tensors, never SB3's zip, whose ``data`` part is unpickled by ``SAC.load``. The saved
``tensors.pt["agent"]["parameters"]["policy"]`` is an SB3 policy state dict: ``SAC.load``-compatible
weights (``policy.load_state_dict``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from dynshift_agents.algorithms.agent import Agent, AgentConfig
from dynshift_agents.buffers import MixedReplayBuffer
from dynshift_agents.checks import COUNT, DISCOUNT, POSITIVE, SIZES, Range
from dynshift_agents.data.transitions import Transitions


@dataclass
class SB3Config(AgentConfig):
    """Settings every SB3-layer learner shares."""

    batch_size: int = 256
    learning_rate: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    net_arch: tuple[int, ...] = (256, 256)
    """Hidden layers of actor and critics."""
    learner_kwargs: dict = dataclasses.field(default_factory=dict)
    """Extra keyword arguments of the SB3 learner (e.g. TQC's ``top_quantiles_to_drop_per_net``)."""

    RANGES: ClassVar[dict[str, Range]] = {"batch_size": COUNT, "learning_rate": POSITIVE, "gamma": DISCOUNT,
                                          "tau": Range(0, 1, low_open=True), "net_arch": SIZES}

    def __post_init__(self):
        self.net_arch = tuple(self.net_arch) if isinstance(self.net_arch, (list, tuple)) else self.net_arch
        super().__post_init__()


class OfflineLearner:
    """What DynShift adds to an SB3 algorithm it trains offline (a mixin, listed before the SB3 class).

    Its configuration is the algorithm's typed config, handed over at construction (``config=``) and
    read where it is used (extra modules are built from it in ``_setup_model``); no setting is copied
    onto the learner. :meth:`update` is one gradient step on a batch."""

    config: SB3Config

    def __init__(self, *args, config: SB3Config, **kwargs):
        self.config = config
        super().__init__(*args, **kwargs)

    def begin_block(self) -> None:
        """Called before each block of updates."""
        self.policy.set_training_mode(True)

    def update(self, batch: ReplayBufferSamples, step: int) -> dict[str, torch.Tensor]:
        """One gradient step on ``batch``; ``step`` counts the updates before it. Returns detached metrics."""
        raise NotImplementedError

    def train(self, gradient_steps: int, batch_size: int = 256) -> None:
        """Refused: the inherited SB3 ``train()`` would run SB3's own algorithm (TD3, SAC), not this one."""
        raise TypeError(f"{type(self).__name__} trains through its agent (agent.learn or agent.train_block), "
                        "one update(batch, step) per batch; SB3's train() would run a different algorithm")


class SpacesOnlyEnv(gym.Env):
    """Carries the spaces an SB3 learner is built on; stepping or resetting it is an error."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space):
        self.observation_space, self.action_space = observation_space, action_space

    def reset(self, *, seed=None, options=None):
        raise RuntimeError("offline agents never reset or step an environment")

    def step(self, action):
        raise RuntimeError("offline agents never reset or step an environment")


class SB3Agent(Agent):
    """An SB3 learner trained offline on a dataset (plus whatever the buffer's model part receives)."""

    name: ClassVar[str] = "sb3"
    config_class: ClassVar[type[SB3Config]] = SB3Config
    config: SB3Config
    learner: BaseAlgorithm
    learner_type: ClassVar[type[BaseAlgorithm] | None] = None
    """The SB3 algorithm class the agent trains (declared as ``learner=`` beside ``name=``)."""

    def __init_subclass__(cls, learner: type[BaseAlgorithm] | None = None, **kwargs):
        super().__init_subclass__(**kwargs)
        if learner is not None:
            cls.learner_type = learner

    def learner_class(self) -> type[BaseAlgorithm]:
        if self.learner_type is None:
            raise NotImplementedError(f"{type(self).__name__} declares no learner (learner=... in its class line)")
        return self.learner_type

    def learner_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the learner class (a subclass adds its own)."""
        cfg = self.config
        return dict(buffer_size=1, learning_starts=0, batch_size=cfg.batch_size, learning_rate=cfg.learning_rate,
                    gamma=cfg.gamma, tau=cfg.tau, policy_kwargs={"net_arch": list(cfg.net_arch)}, seed=self.seed,
                    device=self.device)

    def build(self) -> None:
        learner_class = self.learner_class()
        config = {"config": self.config} if issubclass(learner_class, OfflineLearner) else {}
        self.learner = learner_class(
            "MlpPolicy", SpacesOnlyEnv(self.encoder.space(self.env_observation_space), self.action_space),
            **(self.learner_kwargs() | self.config.learner_kwargs | config))

    def model_capacity(self) -> int:
        """Rows of the buffer's model FIFO (model-free learners: none to speak of)."""
        return 1

    def real_ratio(self) -> float:
        return 1.0

    def buffer_transform(self):
        """Optional per-batch buffer transform ``(samples, is_model) -> samples``."""
        return None

    def attach_dataset(self, dataset: Transitions) -> None:
        super().attach_dataset(dataset)
        policy = self.learner.policy
        encoded = dataclasses.replace(dataset, obs=self.encoder(dataset.obs), next_obs=self.encoder(dataset.next_obs),
                                      actions=policy.scale_action(dataset.actions).astype(np.float32))
        self.learner.replay_buffer = MixedReplayBuffer(
            self.model_capacity(), self.encoder.space(self.env_observation_space), self.action_space,
            device=self.learner.device, dataset=encoded, real_ratio=self.real_ratio(), transform=self.buffer_transform(),
            seed=self.seed,
        )

    @property
    def replay_buffer(self) -> MixedReplayBuffer:
        return self.learner.replay_buffer

    def numpy_generators(self) -> dict[str, np.random.Generator]:
        """The agent's, the buffer's sampling generator (once a dataset is attached), and the learner's
        own where it has one (AWR's)."""
        generators = super().numpy_generators()
        if getattr(self.learner, "replay_buffer", None) is not None:
            generators["buffer"] = self.replay_buffer.rng
        if isinstance(getattr(self.learner, "rng", None), np.random.Generator):
            generators["learner"] = self.learner.rng
        return generators

    def set_logger(self, logger: Logger) -> None:
        super().set_logger(logger)
        self.learner.set_logger(logger)

    def before_learn(self) -> None:
        self.learner.policy.set_training_mode(True)

    def _stepped(self) -> bool:
        """Whether the learner takes batches through ``update(batch, step)`` (an :class:`OfflineLearner`,
        or :class:`~dynshift_agents.algorithms.fused_sac.FusedSAC`) rather than only SB3's ``train()``."""
        return hasattr(self.learner, "update")

    def sample(self) -> ReplayBufferSamples | None:
        if not self._stepped():
            return None  # SB3's own train() draws its batch
        return self.replay_buffer.sample(self.config.batch_size)

    def update(self, batch: ReplayBufferSamples | None) -> dict[str, torch.Tensor | float]:
        if batch is None:
            return self._sb3_step()
        return self.learner.update(batch, self.gradient_steps)

    def _sb3_step(self) -> dict[str, float]:
        """One step of the learner's own SB3 ``train()``, and what it logged (SB3's SAC and sb3-contrib's
        TQC, whose ``train(n)`` equals n calls of ``train(1)`` at their default target update interval of 1)."""
        self.learner.train(gradient_steps=1, batch_size=self.config.batch_size)
        return {key.removeprefix("train/"): value for key, value in self.logger.name_to_value.items()
                if key.startswith("train/") and key != "train/n_updates"}

    def train_block(self, steps: int) -> dict[str, float]:
        self.learner._current_progress_remaining = self._progress_remaining
        if self._stepped():
            self.learner.begin_block()
        return super().train_block(steps) | {"train/n_updates": self.gradient_steps}

    def after_block(self) -> None:
        """SB3's counters follow the one step counter (SB3's API and logs read them)."""
        self.learner.num_timesteps = self.learner._n_updates = self.gradient_steps

    def q_values(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The online critics' pessimistic value ``[batch]``: the minimum over the critics, or the
        mean over TQC's quantiles and critics."""
        out = self.learner.policy.critic(obs, actions)
        if isinstance(out, torch.Tensor):  # TQC: [batch, critics, quantiles]
            return out.mean(dim=(1, 2))
        return torch.cat(out, dim=1).min(dim=1).values

    q_on_dataset_actions: ClassVar[bool] = False
    """The guard's mean Q is taken at the batch's own actions (IQL, BCQ: learners whose SB3 actor is
    not the policy the critics value) instead of the actor's."""

    @torch.no_grad()
    def q_mean(self) -> float:
        samples = self.replay_buffer.sample(self.config.batch_size)
        if self.q_on_dataset_actions:
            actions = samples.actions
        else:
            actions = self.learner.policy._predict(samples.observations, deterministic=True)  # SAC's and TD3's
        return float(self.q_values(samples.observations, actions).mean())

    def act(self, policy_obs: np.ndarray, deterministic: bool) -> np.ndarray:
        return self.learner.predict(policy_obs, deterministic=deterministic)[0]

    def parameters(self) -> list[torch.Tensor]:
        return list(self.learner.policy.parameters())

    # -- persistence: SB3's state dicts and tensor variables, as tensors --------------------------------

    def tensors(self) -> dict[str, Any]:
        _, variables = self.learner._get_torch_save_params()
        return {"parameters": self.learner.get_parameters(),
                "variables": {name: _get(self.learner, name).detach().clone() for name in variables}}

    def load_tensors(self, tensors: dict[str, Any]) -> None:
        self.learner.set_parameters(tensors["parameters"], exact_match=True, device=self.device)
        for name, value in tensors["variables"].items():
            with torch.no_grad():
                _get(self.learner, name).copy_(value)

    def json_state(self) -> dict:
        return {"n_updates": self.learner._n_updates}

    def load_json_state(self, state: dict) -> None:
        self.learner._n_updates = state.get("n_updates", 0)
        self.learner.num_timesteps = self.gradient_steps


def _get(obj, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def tanh_mean_log_likelihood(actor, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log N(a; tanh(μ(s)), σ(s)²) of an SB3 SAC actor's mean and log-std, summed over action
    dimensions: the Gaussian policy with a squashed mean that IQL and AWR fit to dataset actions."""
    mean, log_std, _ = actor.get_action_dist_params(obs)
    return torch.distributions.Normal(torch.tanh(mean), log_std.exp()).log_prob(actions).sum(-1)
