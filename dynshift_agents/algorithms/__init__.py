"""Offline model-based algorithms, each a small difference on :class:`OfflineAgent`."""

from dynshift_agents.algorithms.base import LEARNERS, OfflineAgent, OfflineConfig
from dynshift_agents.algorithms.mopo import MOPO, MOPOConfig

ALGORITHMS = {"offline": OfflineAgent, "mopo": MOPO}
"""Algorithm name → class (``dynshift train NAME``)."""

__all__ = ["ALGORITHMS", "LEARNERS", "MOPO", "MOPOConfig", "OfflineAgent", "OfflineConfig"]
