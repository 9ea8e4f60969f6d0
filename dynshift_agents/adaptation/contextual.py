"""Contextual task inference for a pre-trained FB model on a test robot (Jeen & Cullen 2024).

A forward-backward model pre-trained on D_train (one robot) returns a policy for any reward through
z. On a robot whose dynamics changed, the same reward is a different task in the old robot's
terms: the test robot cannot make some of the train robot's transitions. Three ways to pick z,
given a small D_test collected on the test robot:

- ``"train"`` (a, plain FB, zero-shot): z = √d · normalise(E_{D_train}[R · B(s')]);
- ``"test"`` (b): z = √d · normalise(E_{D_test}[R · B(s')]), the test robot's own rewards;
- ``"contextual"`` (c, the paper's method): z = √d · normalise(E_{D_train}[(R + ΔR) · B(s')]) with the
  DARA classifiers fitted with D_train as the *source* and D_test as the *target*:
  ΔR = log p(test|s,a,s') − log p(test|s,a) − log p(train|s,a,s') + log p(train|s,a) = −Δr_DARA.

The sign, stated: the paper's slides write the expectation over D_train but say z is inferred from
D_test. The two differ in the sign of ΔR. Over D_train, ΔR is negative exactly where the
train robot makes transitions the test robot would not. Adding it down-weights those transitions,
which is DARA's own relabelling (r ← r − η·Δr with η = 1, source = train). That reading is the
consistent one, and the one built. Over D_test there would be nothing to correct: those transitions
are the test robot's own.
"""

from __future__ import annotations

from typing import Any

import torch

from dynshift_agents.adaptation.dara import DARA, DARAConfig
from dynshift_agents.data.transitions import Transitions

MODES = ("train", "test", "contextual")
"""How z is inferred: (a) D_train's rewards, (b) D_test's rewards, (c) D_train's rewards + ΔR."""


def infer_task(agent, mode: str, train: Transitions, test: Transitions | None = None,
               dara: DARA | None = None, dara_config: DARAConfig | None = None, samples: int | None = None,
               seed: int = 0) -> tuple[torch.Tensor, dict[str, Any]]:
    """Set ``agent``'s z by ``mode`` and return it with a report (the classifiers' accuracies and
    the ΔR distribution for ``"contextual"``). ``dara`` reuses fitted classifiers (source = train,
    target = test); otherwise they are fitted here with ``dara_config`` (η is fixed at 1, the
    paper's z)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode != "train" and test is None:
        raise ValueError(f"mode {mode!r} needs the test robot's data (test=...)")
    if mode == "train":
        return agent.infer_z(train.next_obs, train.rewards, samples=samples, seed=seed), {"mode": mode}
    if mode == "test":
        return agent.infer_z(test.next_obs, test.rewards, samples=samples, seed=seed), {"mode": mode}
    if dara is None:
        dara = DARA(train.obs.shape[1], train.actions.shape[1], dara_config or DARAConfig())
        dara.fit(train, test, seed=seed)
    delta_r = dara.delta_r(train)  # Δr_DARA with the train robot as the source
    augmented = train.rewards - delta_r  # R + ΔR, ΔR = −Δr_DARA
    z = agent.infer_z(train.next_obs, augmented, samples=samples, seed=seed)
    return z, {"mode": mode, "classifiers": dara.report,
               "delta_R": {"mean": float(-delta_r.mean()), "std": float(delta_r.std()),
                           "min": float(-delta_r.max()), "max": float(-delta_r.min())}}


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.dot(a, b) / (a.norm() * b.norm()))

