"""Models of the behaviour policy that the behaviour-regularised learners (BCQ, BEAR, BRAC-p) fit
first or alongside: a conditional VAE of actions given states (BCQ, BEAR) and a tanh-Gaussian policy
fitted by maximum likelihood (BRAC-p). They know nothing of the learners that use them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from stable_baselines3.common.torch_layers import create_mlp
from torch import nn


def mlp(in_dim: int, out_dim: int, hidden: tuple[int, ...], activation=nn.ReLU) -> nn.Sequential:
    return nn.Sequential(*create_mlp(in_dim, out_dim, list(hidden), activation))


class BehaviourVAE(nn.Module):
    """Conditional VAE of the behaviour policy (BCQ, Fujimoto et al. 2019): an encoder (s, a) → N(μ, σ)
    over a latent of ``latent_dim`` (2·|A| by default), a decoder (s, z) → tanh action; prior samples are
    clipped to ±``max_latent``. Loss: reconstruction MSE + ``kl_weight``·KL, as the original code.
    """

    def __init__(self, obs_dim: int, action_dim: int, hidden: tuple[int, ...] = (750, 750),
                 latent_dim: int | None = None, max_latent: float = 0.5, kl_weight: float = 0.5):
        super().__init__()
        self.latent_dim = latent_dim or 2 * action_dim
        self.max_latent, self.kl_weight = max_latent, kl_weight
        self.encoder = mlp(obs_dim + action_dim, 2 * self.latent_dim, hidden)
        self.decoder = mlp(obs_dim + self.latent_dim, action_dim, hidden)

    def encode(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.encoder(torch.cat([obs, actions], -1)).chunk(2, dim=-1)
        return mean, log_std.clamp(-4, 15).exp()

    def decode_raw(self, obs: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Pre-tanh actions (BEAR's MMD compares these); ``z`` defaults to clipped prior samples."""
        if z is None:
            z = torch.randn(*obs.shape[:-1], self.latent_dim, device=obs.device).clamp(-self.max_latent, self.max_latent)
        return self.decoder(torch.cat([obs, z], -1))

    def decode(self, obs: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        return torch.tanh(self.decode_raw(obs, z))

    def loss(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        mean, std = self.encode(obs, actions)
        z = mean + std * torch.randn_like(std)
        reconstruction = F.mse_loss(self.decode(obs, z), actions)
        kl = -0.5 * (1 + torch.log(std.pow(2)) - mean.pow(2) - std.pow(2)).mean()
        return reconstruction + self.kl_weight * kl
