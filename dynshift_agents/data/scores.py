"""Normalised scores: 100 · (R − R_random) / (R_expert − R_random).

Two sets of references: a dataset's own (``ref_min_score`` / ``ref_max_score`` in its metadata; for
DynShift datasets the robot's uniform-random and shipped-expert mean returns at nominal dynamics),
and D4RL's constants, which every paper's tables use.
"""

from __future__ import annotations

import numpy as np

from dynshift_envs import ROBOTS, get_robot

D4RL_REFERENCES = {r.name: {"random": r.d4rl_random, "expert": r.d4rl_expert} for r in ROBOTS.values()}
"""D4RL's reference returns (``d4rl/infos.py``), per robot (from the robot table)."""


def normalised_score(returns, random: float, expert: float) -> np.ndarray | float:
    """100 · (R − random) / (expert − random), elementwise."""
    if expert == random:
        raise ValueError(f"the expert and random references are equal ({expert}); no score can be normalised")
    scores = 100.0 * (np.asarray(returns, dtype=np.float64) - random) / (expert - random)
    return float(scores) if scores.ndim == 0 else scores


def d4rl_score(env: str, returns) -> np.ndarray | float:
    """Normalised score with D4RL's constants for ``env`` (a robot name or DynShift env id)."""
    reference = D4RL_REFERENCES[get_robot(env).name]
    return normalised_score(returns, reference["random"], reference["expert"])


def dataset_score(dataset, returns) -> np.ndarray | float:
    """Normalised score with a Minari dataset's own reference returns (``ref_min_score``/``ref_max_score``)."""
    metadata = dataset.storage.metadata
    if metadata.get("ref_min_score") is None or metadata.get("ref_max_score") is None:
        raise ValueError(f"dataset {dataset.spec.dataset_id!r} records no reference returns; use d4rl_score")
    return normalised_score(returns, metadata["ref_min_score"], metadata["ref_max_score"])
