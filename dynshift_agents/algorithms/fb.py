"""FB: forward-backward representations, a behaviour foundation model (Touati & Ollivier 2021;
Touati, Rapin, Ollivier 2023), pre-trained without rewards; the contextual variant for changed
dynamics is Jeen & Cullen 2024.

Three networks: F(s, a, z) with two heads, B(s) and an actor π(s, z). Trained on reward-free
transitions, F(s, a, z)ᵀB(s⁺) approximates the successor measure of π_z relative to the data's
state distribution ρ, M^{π_z}(s, a, ds⁺) ≈ F(s, a, z)ᵀB(s⁺) ρ(ds⁺), so for any reward r the Q of π_z is
F(s, a, z)ᵀ E_ρ[r(s⁺) B(s⁺)] and the policy for r is π(·, z_r) with z_r = √d · normalise(E[r · B(s')])
(:meth:`FB.infer_z`), with no further training.

Each update, on a batch of (s, a, s') and z (half drawn on the sphere of radius √d, half √d ·
normalise(B(s'_perm)) of permuted batch states):

- FB loss (:func:`fb_loss`): M_i = F_i(s, a, z) B(s')ᵀ, a batch × batch matrix per head; target
  M̄ = γ · min_k F̄_k(s', a', z) B̄(s')ᵀ with a' = π(s', z) plus clipped noise and the Polyak targets F̄,
  B̄; loss ½ Σ_i mean_offdiag((M_i − M̄)²) − Σ_i mean(diag M_i).
- Orthonormality of B (:func:`orthonormality_loss`) on C = B(s') B(s')ᵀ: −2 mean(diag C) +
  mean_offdiag(C²).
- Actor: −min_i F_i(s, a_π, z)ᵀ z with a_π = π(s, z) plus clipped noise.

As in the public code, the first hidden layer of F's two branches, of B and of the actor is
Linear → LayerNorm → tanh (``input_layer_norm``; the rest Linear → ReLU).

Deviations, deliberate: terminals are ignored (as in two of the three public implementations, and
since episodes of these robots end by falling, not by reaching a goal); B's output is normalised to
norm √d per state (one public convention); CPU-scale networks by default (:data:`PAPER_SCALE` is the
papers' size, a preset); actions are in [−1, 1] (the env's box rescaled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from dynshift_agents.algorithms.agent import Agent, AgentConfig, optimizer_step
from dynshift_agents.algorithms.behaviour_models import mlp
from dynshift_agents.checks import COUNT, FRACTION, NON_NEGATIVE, POSITIVE, Range, SIZES


@dataclass
class FBConfig(AgentConfig):
    """FB's settings: the public implementations' values, CPU-scale networks and batch."""

    RANGES: ClassVar[dict[str, Range]] = {"z_dim": COUNT, "gamma": Range(0, 1, low_open=True, high_open=True),
                                          "learning_rate": POSITIVE, "tau": Range(0, 1, low_open=True),
                                          "batch_size": Range(2, integer=True), "z_mix_ratio": FRACTION,
                                          "orthonormality_coef": NON_NEGATIVE, "forward_hidden": SIZES,
                                          "forward_embedding": COUNT, "head_hidden": SIZES, "backward_hidden": SIZES,
                                          "actor_hidden": SIZES, "actor_noise": NON_NEGATIVE, "noise_clip": NON_NEGATIVE,
                                          "inference_samples": COUNT}

    absent_from_older_checkpoints: ClassVar[dict[str, Any]] = {"input_layer_norm": False}

    z_dim: int = 50
    """d, the dimension of z and of B (50 in the papers; 100 for walker in one codebase)."""
    gamma: float = 0.98
    learning_rate: float = 1e-4
    """Adam's step for F, B and the actor."""
    tau: float = 0.01
    """Polyak averaging of the target F̄ and B̄."""
    batch_size: int = 256
    """The papers: 512–1024 (the off-diagonal terms compare every pair of the batch)."""
    z_mix_ratio: float = 0.5
    """Fraction of each batch whose z is √d·normalise(B(s')) of permuted batch states, not a random z."""
    orthonormality_coef: float = 1.0
    forward_hidden: tuple[int, ...] = (256,)
    """Hidden layers of F's two input branches, (s, a) and (s, z) (the papers: 1024 → 512)."""
    forward_embedding: int = 128
    """Output width of each of F's branches (the papers: 512)."""
    head_hidden: tuple[int, ...] = (256,)
    """Hidden layers of each of F's two heads (the papers: 1024)."""
    backward_hidden: tuple[int, ...] = (256, 256)
    actor_hidden: tuple[int, ...] = (256, 256)
    actor_noise: float = 0.2
    """Std of the Gaussian noise on the actor's actions in training (truncated at ``noise_clip``)."""
    noise_clip: float = 0.3
    input_layer_norm: bool = True
    """The first hidden layer of F's branches, B and the actor is Linear → LayerNorm → tanh, as in the
    public implementations (their "ntanh"), instead of Linear → ReLU; ``False`` is a plain ReLU MLP."""
    inference_samples: int = 10_000
    """Reward-labelled transitions (drawn from the training data, seeded) behind the z stored after
    training; the papers: 5 000–50 000."""

    def __post_init__(self):
        for name in ("forward_hidden", "head_hidden", "backward_hidden", "actor_hidden"):
            if isinstance(getattr(self, name), list):
                setattr(self, name, tuple(getattr(self, name)))
        super().__post_init__()


PAPER_SCALE = dict(forward_hidden=(1024,), forward_embedding=512, head_hidden=(1024,), backward_hidden=(256, 256, 256),
                   actor_hidden=(1024, 1024), batch_size=1024)
"""The public implementations' network sizes and batch (``--set`` them for paper-scale runs)."""


def sphere(z: torch.Tensor) -> torch.Tensor:
    """Rows scaled to norm √d."""
    return z * (z.shape[-1] ** 0.5) / z.norm(dim=-1, keepdim=True).clamp_min(1e-8)


def mean_off_diagonal(x: torch.Tensor) -> torch.Tensor:
    """The mean of the off-diagonal entries of the last two (square) dimensions (sum minus trace:
    no boolean indexing, which costs more than the matrix products at these sizes)."""
    n = x.shape[-1]
    return (x.sum((-2, -1)) - x.diagonal(dim1=-2, dim2=-1).sum(-1)) / (n * n - n)


def fb_loss(m: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """½ Σ_i mean_offdiag((M_i − M̄)²) − Σ_i mean(diag M_i) for heads ``m`` [heads, n, n] and the
    (already discounted) target ``target`` [n, n]."""
    return 0.5 * mean_off_diagonal((m - target) ** 2).sum() - m.diagonal(dim1=-2, dim2=-1).mean(-1).sum()


def orthonormality_loss(b: torch.Tensor) -> torch.Tensor:
    """−2 mean(diag C) + mean_offdiag(C²), C = B Bᵀ over a batch of B rows ``b`` [n, d]."""
    c = b @ b.T
    return -2 * c.diagonal().mean() + mean_off_diagonal(c ** 2)


def input_mlp(in_dim: int, out_dim: int, hidden: tuple[int, ...], layer_norm: bool) -> nn.Sequential:
    """An MLP whose first hidden layer is Linear → LayerNorm → tanh when ``layer_norm`` (the public FB
    networks' input layer), the rest Linear → ReLU."""
    if not layer_norm or not hidden:
        return mlp(in_dim, out_dim, hidden)
    return nn.Sequential(nn.Linear(in_dim, hidden[0]), nn.LayerNorm(hidden[0]), nn.Tanh(),
                         *mlp(hidden[0], out_dim, hidden[1:]))


class ForwardBackward(nn.Module):
    """F (two heads) and B; the actor is separate."""

    def __init__(self, obs_dim: int, action_dim: int, config: FBConfig):
        super().__init__()
        d = config.z_dim
        norm = config.input_layer_norm
        self.sa = input_mlp(obs_dim + action_dim, config.forward_embedding, config.forward_hidden, norm)
        self.sz = input_mlp(obs_dim + d, config.forward_embedding, config.forward_hidden, norm)
        self.heads = nn.ModuleList(mlp(2 * config.forward_embedding, d, config.head_hidden) for _ in range(2))
        self.backward_net = input_mlp(obs_dim, d, config.backward_hidden, norm)

    def forward_heads(self, obs: torch.Tensor, actions: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """F_i(s, a, z) for both heads: [2, n, d]."""
        h = torch.cat([torch.relu(self.sa(torch.cat([obs, actions], -1))), torch.relu(self.sz(torch.cat([obs, z], -1)))], -1)
        return torch.stack([head(h) for head in self.heads])

    def backward_rep(self, obs: torch.Tensor) -> torch.Tensor:
        """B(s), on the sphere of radius √d."""
        return sphere(self.backward_net(obs))

    def losses(self, obs, actions, next_obs, next_actions, z, target: "ForwardBackward",
               gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The FB loss against the Polyak ``target`` (``next_actions`` are the policy's at s') and the
        orthonormality loss of B on the batch's next states."""
        with torch.no_grad():
            target_f = target.forward_heads(next_obs, next_actions, z)
            target_b = target.backward_rep(next_obs)
            m_target = gamma * torch.minimum(target_f[0] @ target_b.T, target_f[1] @ target_b.T)
        b = self.backward_rep(next_obs)
        return fb_loss(self.forward_heads(obs, actions, z) @ b.T, m_target), orthonormality_loss(b)


class Actor(nn.Module):
    def __init__(self, obs_dim: int, action_dim: int, config: FBConfig):
        super().__init__()
        self.net = input_mlp(obs_dim + config.z_dim, action_dim, config.actor_hidden, config.input_layer_norm)

    def forward(self, obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(torch.cat([obs, z], -1)))


class FB(Agent, name="fb", config=FBConfig):
    """Forward-backward pre-training on a dataset's transitions (rewards unused), then task inference."""
    config: FBConfig

    def build(self) -> None:
        obs_dim, action_dim = self.encoder.obs_dim, self.action_space.shape[0]
        torch.manual_seed(self.seed)
        self.fb = ForwardBackward(obs_dim, action_dim, self.config).to(self.device)
        self.fb_target = ForwardBackward(obs_dim, action_dim, self.config).to(self.device)
        self.fb_target.load_state_dict(self.fb.state_dict())
        self.fb_target.requires_grad_(False)
        self.actor = Actor(obs_dim, action_dim, self.config).to(self.device)
        self.fb_optimizer = torch.optim.Adam(self.fb.parameters(), lr=self.config.learning_rate)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=self.config.learning_rate)
        self.z = sphere(torch.ones(1, self.config.z_dim, device=self.device))[0]
        """The task the policy acts for (set by :meth:`infer_z`; after training, the data's own reward)."""
        self.low = torch.as_tensor(self.action_space.low, dtype=torch.float32, device=self.device)
        self.high = torch.as_tensor(self.action_space.high, dtype=torch.float32, device=self.device)

    def attach_dataset(self, dataset) -> None:
        super().attach_dataset(dataset)
        self._obs = torch.as_tensor(self.encoder(dataset.obs), device=self.device)
        self._next_obs = torch.as_tensor(self.encoder(dataset.next_obs), device=self.device)
        self._actions = self.unit_actions(dataset.actions)
        self._rewards = torch.as_tensor(dataset.rewards, dtype=torch.float32, device=self.device)

    # -- training -------------------------------------------------------------------------------------

    def sample_z(self, n: int, next_obs: torch.Tensor) -> torch.Tensor:
        """z for a batch: random on the sphere, a ``z_mix_ratio`` share from B of permuted batch states
        (drawn by the agent's CPU generator, so a run's draws do not depend on its device)."""
        z = sphere(torch.randn(n, self.config.z_dim, generator=self.generator)).to(self.device)
        mixed = (torch.rand(n, generator=self.generator) < self.config.z_mix_ratio).to(self.device)
        with torch.no_grad():
            from_b = self.fb.backward_rep(next_obs[torch.randperm(n, generator=self.generator).to(self.device)])
        return torch.where(mixed[:, None], from_b, z)

    def _noisy(self, actions: torch.Tensor) -> torch.Tensor:
        noise = (torch.randn(actions.shape, generator=self.generator) * self.config.actor_noise).to(actions.device)
        return (actions + noise.clamp(-self.config.noise_clip, self.config.noise_clip)).clamp(-1, 1)

    def sample(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """A batch of dataset rows (s, a in [−1, 1], s') and a z for each (:meth:`sample_z`)."""
        rows = torch.randint(len(self._obs), (self.config.batch_size,), generator=self.generator).to(self.device)
        next_obs = self._next_obs[rows]
        return self._obs[rows], self._actions[rows], next_obs, self.sample_z(len(rows), next_obs)

    def update(self, batch) -> dict[str, torch.Tensor]:
        """One FB and one actor update on a batch (actions in [−1, 1])."""
        obs, actions, next_obs, z = batch
        with torch.no_grad():
            next_actions = self._noisy(self.actor(next_obs, z))
        loss_fb, loss_orth = self.fb.losses(obs, actions, next_obs, next_actions, z, self.fb_target, self.config.gamma)
        optimizer_step(self.fb_optimizer, (loss_fb + self.config.orthonormality_coef * loss_orth))
        f_pi = self.fb.forward_heads(obs, self._noisy(self.actor(obs, z)), z)
        q = torch.minimum(*(f_pi * z).sum(-1))
        loss_actor = -q.mean()
        optimizer_step(self.actor_optimizer, loss_actor)
        with torch.no_grad():
            torch._foreach_lerp_(list(self.fb_target.parameters()), list(self.fb.parameters()), self.config.tau)
        return {"fb_loss": loss_fb.detach(), "orthonormality_loss": loss_orth.detach(),
                "actor_loss": loss_actor.detach(), "q_mean": q.detach().mean()}

    def q_mean(self) -> float | None:
        """The last block's mean of min(F₁, F₂)ᵀz at the actor's actions (for the guard)."""
        return getattr(self, "block_means", {}).get("q_mean")

    def after_block(self) -> None:
        """Keep the task the policy acts for current: z inferred from the training data's own rewards
        (so every checkpoint and periodic evaluation acts for the data's task)."""
        self.infer_z(self.dataset.next_obs, self.dataset.rewards, samples=self.config.inference_samples)

    # -- task inference ---------------------------------------------------------------------------------

    @torch.no_grad()
    def infer_z(self, next_obs: np.ndarray, rewards: np.ndarray, samples: int | None = None,
                seed: int = 0) -> torch.Tensor:
        """z = √d · normalise(mean(r · B(s'))) over ``samples`` transitions drawn without replacement
        (all when ``None`` or more than there are); sets the policy's task and returns it."""
        next_obs, rewards = np.asarray(next_obs), np.asarray(rewards, dtype=np.float32)
        if samples is not None and samples < len(rewards):
            rows = np.random.default_rng(seed).choice(len(rewards), samples, replace=False)
            next_obs, rewards = next_obs[rows], rewards[rows]
        self.z = sphere(self.reward_vector(next_obs, rewards)[None])[0]
        return self.z

    @torch.no_grad()
    def reward_vector(self, next_obs: np.ndarray, rewards: np.ndarray) -> torch.Tensor:
        """E[r · B(s')] over the given transitions: the task before it is put on the sphere; the Q of
        π_z for that reward, in reward units, is F(s, a, z)ᵀ of it."""
        b = self.fb.backward_rep(torch.as_tensor(self.encoder(np.asarray(next_obs)), device=self.device))
        return (torch.as_tensor(np.asarray(rewards, dtype=np.float32), device=self.device)[:, None] * b).mean(0)

    def unit_actions(self, actions: np.ndarray) -> torch.Tensor:
        """Env actions rescaled from the action box to [−1, 1] (the actor's and F's action space)."""
        return 2 * (torch.as_tensor(actions, dtype=torch.float32, device=self.device) - self.low) / (self.high - self.low) - 1

    # -- acting and persistence ------------------------------------------------------------------------

    @torch.no_grad()
    def act(self, policy_obs: np.ndarray, deterministic: bool) -> np.ndarray:
        obs = torch.as_tensor(policy_obs, dtype=torch.float32, device=self.device)
        actions = self.actor(obs, self.z.expand(len(obs), -1))
        if not deterministic:
            actions = self._noisy(actions)
        return ((actions + 1) / 2 * (self.high - self.low) + self.low).cpu().numpy()

    def parameters(self) -> list[torch.Tensor]:
        return [*self.fb.parameters(), *self.actor.parameters()]

    def tensors(self) -> dict[str, Any]:
        return {"fb": self.fb.state_dict(), "fb_target": self.fb_target.state_dict(), "actor": self.actor.state_dict(),
                "fb_optimizer": self.fb_optimizer.state_dict(), "actor_optimizer": self.actor_optimizer.state_dict(),
                "z": self.z}

    def load_tensors(self, tensors: dict[str, Any]) -> None:
        self.fb.load_state_dict(tensors["fb"])
        self.fb_target.load_state_dict(tensors["fb_target"])
        self.actor.load_state_dict(tensors["actor"])
        self.fb_optimizer.load_state_dict(tensors["fb_optimizer"])
        self.actor_optimizer.load_state_dict(tensors["actor_optimizer"])
        self.z = tensors["z"].to(self.device)
