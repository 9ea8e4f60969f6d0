"""DARA: dynamics-aware reward augmentation (Liu, Zhang, Wang, ICLR 2022), ``Transitions → Transitions``.

A little data from the *target* robot and a lot from a *source* robot whose dynamics differ. Two
classifiers tell source from target: q_sas on (s, a, s') and q_sa on (s, a). Trained on equal numbers of
rows from each domain, their log-odds estimate density ratios, and

    Δr = log q_sas(src|s,a,s')/q_sas(tgt|s,a,s') − log q_sa(src|s,a)/q_sa(tgt|s,a)
       ≈ log p_src(s'|s,a) − log p_tgt(s'|s,a),

large where the source makes a transition the target would not. Source rewards are relabelled once,
r ← r − η·Δr with Δr clipped to ±``clip``; the result, target ∪ relabelled source, is a dataset any
learner trains on. Target transitions are untouched.

Choices (the paper's code is not public; two independent public codebases, the ODRL benchmark's
``dara.py`` and a relabel-once pipeline from the authors' group, use η = 0.1 and clip Δr to ±10;
their classifiers differ: ODRL 2×256 ReLU trained with the learner, the pipeline 3×256 trained
about 5 000 updates before relabelling once): 2-logit MLP
classifiers trained by cross-entropy on the logits (one softmax — ODRL's double softmax is a known
defect); inputs standardised by the union's statistics, with Gaussian noise of std ``noise_std`` added to
the standardised inputs during training only (DARC's regulariser, in units that mean the same in every
dimension); ``steps`` updates of Adam before relabelling once; a held-out tenth of each domain for the
reported accuracies.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3.common.torch_layers import create_mlp
from torch import nn

from dynshift_agents.data.transitions import Transitions, concatenate

SOURCE, TARGET = 0, 1
"""Class indices of the classifiers' two logits."""


@dataclass
class DARAConfig:
    """DARA's settings."""

    eta: float = 0.1
    """η: weight of the reward change (0.1 in two independent codebases)."""
    clip: float = 10.0
    """Δr is clipped to [−clip, clip]."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden layers of each classifier (ReLU)."""
    learning_rate: float = 3e-4
    steps: int = 5000
    """Classifier updates before relabelling."""
    batch_size: int = 256
    """Rows per domain in each update."""
    noise_std: float = 1.0
    """Std of the Gaussian noise on the standardised inputs, during training only (0: none)."""
    holdout: float = 0.1
    """Fraction of each domain held out for the reported accuracies."""
    model_data: str = "relabelled"
    """Model-based bases (MOPO): the world model is fitted on target ∪ source with the source rewards
    relabelled ("relabelled": the model's rewards carry −η·Δr where the source differs, so the
    rollouts see the change too — the paper's step 4 read literally, MOPO learning from D ∪ D'), or
    with the original rewards ("plain": only the real part of each batch is relabelled). Either way
    the model's dynamics are learnt from both robots' transitions."""

    def __post_init__(self):
        self.hidden = tuple(self.hidden)
        if self.model_data not in ("relabelled", "plain"):
            raise ValueError(f"model_data must be 'relabelled' or 'plain', got {self.model_data!r}")
        if self.eta < 0 or self.clip <= 0 or self.steps < 0 or self.batch_size < 1 or self.noise_std < 0:
            raise ValueError(f"need eta ≥ 0, clip > 0, steps ≥ 0, batch_size ≥ 1, noise_std ≥ 0; got {asdict(self)}")
        if not 0 < self.holdout < 1:
            raise ValueError(f"holdout must be in (0, 1), got {self.holdout}")


class DomainClassifier(nn.Module):
    """Standardised inputs → 2 logits (source, target)."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.net = nn.Sequential(*create_mlp(in_dim, 2, list(hidden)))
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def log_odds(self, x: torch.Tensor) -> torch.Tensor:
        """log q(src|x) − log q(tgt|x) (no noise)."""
        logits = self.net(self.standardise(x))
        return logits[:, SOURCE] - logits[:, TARGET]


def _sas(data: Transitions) -> np.ndarray:
    return np.concatenate([data.obs, data.actions, data.next_obs], axis=1).astype(np.float32)


def _sa(data: Transitions) -> np.ndarray:
    return np.concatenate([data.obs, data.actions], axis=1).astype(np.float32)


class DARA:
    """The two classifiers, their training, Δr and the relabelled dataset."""

    def __init__(self, obs_dim: int, action_dim: int, config: DARAConfig | None = None, device: str = "cpu"):
        self.config = config or DARAConfig()
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self.device = device
        """Where the classifiers and their training data live (random draws stay on CPU generators)."""
        self.q_sas = DomainClassifier(2 * obs_dim + action_dim, self.config.hidden)
        self.q_sa = DomainClassifier(obs_dim + action_dim, self.config.hidden)
        self.report: dict[str, Any] = {}

    def fit(self, source: Transitions, target: Transitions, seed: int = 0) -> dict[str, Any]:
        """Train both classifiers, from an initialisation drawn from ``seed``, on source vs target
        transitions; returns (and keeps) a report: held-out accuracies and the distribution of Δr over the
        source rows. The same data and seed give the same classifiers in any process."""
        cfg = self.config
        rng = np.random.default_rng(seed)
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        for layer in [*self.q_sas.modules(), *self.q_sa.modules()]:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()  # initialised from the seed, not from the RNG state at construction
        self.q_sas.to(self.device)
        self.q_sa.to(self.device)
        splits = {}
        for name, data in (("source", source), ("target", target)):
            order = rng.permutation(len(data))
            held = max(1, int(len(data) * cfg.holdout))
            splits[name] = (order[held:], order[:held])
        for classifier, features in ((self.q_sas, _sas), (self.q_sa, _sa)):
            x_src, x_tgt = (torch.as_tensor(features(d), device=self.device) for d in (source, target))
            train_src = x_src[torch.as_tensor(splits["source"][0], device=self.device)]
            train_tgt = x_tgt[torch.as_tensor(splits["target"][0], device=self.device)]
            union = torch.cat([train_src, train_tgt])
            classifier.mean.copy_(union.mean(0))
            classifier.std.copy_(union.std(0).clamp_min(1e-6))
            optimizer = torch.optim.Adam(classifier.parameters(), lr=cfg.learning_rate)
            labels = torch.cat([torch.full((cfg.batch_size,), SOURCE), torch.full((cfg.batch_size,), TARGET)]).to(self.device)
            for _ in range(cfg.steps):
                rows_src = torch.randint(len(train_src), (cfg.batch_size,), generator=generator).to(self.device)
                rows_tgt = torch.randint(len(train_tgt), (cfg.batch_size,), generator=generator).to(self.device)
                x = classifier.standardise(torch.cat([train_src[rows_src], train_tgt[rows_tgt]]))
                if cfg.noise_std:
                    x = x + cfg.noise_std * torch.randn(x.shape, generator=generator).to(self.device)
                loss = F.cross_entropy(classifier.net(x), labels)  # on the logits: one softmax
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        self.report = self._report(source, target, splits)
        return self.report

    @torch.no_grad()
    def _accuracy(self, classifier: DomainClassifier, x_src: np.ndarray, x_tgt: np.ndarray) -> float:
        odds_src = classifier.log_odds(torch.as_tensor(x_src, device=self.device))
        odds_tgt = classifier.log_odds(torch.as_tensor(x_tgt, device=self.device))
        correct = int((odds_src > 0).sum()) + int((odds_tgt <= 0).sum())
        return correct / (len(x_src) + len(x_tgt))

    def _report(self, source: Transitions, target: Transitions, splits) -> dict[str, Any]:
        held_src, held_tgt = splits["source"][1], splits["target"][1]
        delta = self.delta_r(source)
        return {
            "sas_accuracy": self._accuracy(self.q_sas, _sas(source)[held_src], _sas(target)[held_tgt]),
            "sa_accuracy": self._accuracy(self.q_sa, _sa(source)[held_src], _sa(target)[held_tgt]),
            "delta_r": {"mean": float(delta.mean()), "std": float(delta.std()),
                        "quantiles": {str(q): float(np.quantile(delta, q)) for q in (0.05, 0.25, 0.5, 0.75, 0.95)},
                        "clipped_fraction": float(np.mean(np.abs(delta) >= self.config.clip))},
            "source_rows": len(source), "target_rows": len(target), "held_out": [len(held_src), len(held_tgt)],
        }

    @torch.no_grad()
    def delta_r(self, data: Transitions) -> np.ndarray:
        """Δr of each transition, clipped to ±clip (no noise)."""
        sas = self.q_sas.log_odds(torch.as_tensor(_sas(data), device=self.device))
        sa = self.q_sa.log_odds(torch.as_tensor(_sa(data), device=self.device))
        return (sas - sa).clamp(-self.config.clip, self.config.clip).cpu().numpy().astype(np.float64)

    @torch.no_grad()
    def source_probability(self, data: Transitions) -> np.ndarray:
        """q_sa(src | s, a) of each transition (no noise): near 1 or 0 where the two datasets do not overlap."""
        return torch.sigmoid(self.q_sa.log_odds(torch.as_tensor(_sa(data), device=self.device))).cpu().numpy().astype(np.float64)

    def relabel(self, source: Transitions) -> Transitions:
        """The source transitions with r ← r − η·Δr (nothing else changes)."""
        rewards = (source.rewards - self.config.eta * self.delta_r(source)).astype(source.rewards.dtype)
        return dataclasses.replace(source, rewards=rewards)

    def dataset(self, source: Transitions, target: Transitions) -> Transitions:
        """target ∪ relabelled source, target rows first (bit-identical to ``target``)."""
        return concatenate(target, self.relabel(source))

    # -- persistence: tensors read with weights_only=True, the rest JSON -----------------------------

    def save(self, path: str | os.PathLike) -> None:
        path = Path(path)
        payload = {"config": json.dumps(asdict(self.config)), "dims": [self.obs_dim, self.action_dim],
                   "q_sas": self.q_sas.state_dict(), "q_sa": self.q_sa.state_dict(), "report": json.dumps(self.report)}
        tmp = path.with_name(path.name + ".tmp")
        torch.save(payload, tmp)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu") -> "DARA":
        payload = torch.load(path, map_location="cpu", weights_only=True)
        dara = cls(*payload["dims"], DARAConfig(**json.loads(payload["config"])), device=device)
        dara.q_sas.load_state_dict(payload["q_sas"])
        dara.q_sa.load_state_dict(payload["q_sa"])
        dara.q_sas.to(device)
        dara.q_sa.to(device)
        dara.report = json.loads(payload["report"])
        return dara

