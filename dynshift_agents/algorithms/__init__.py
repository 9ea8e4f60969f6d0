"""Offline model-based algorithms, each a small difference on :class:`OfflineAgent`."""

from dynshift_agents.algorithms.base import LEARNERS, OfflineAgent, OfflineConfig
from dynshift_agents.algorithms.augwm import AugWM, AugWMConfig
from dynshift_agents.algorithms.mopo import MOPO, MOPOConfig

ALGORITHMS = {"offline": OfflineAgent, "mopo": MOPO, "augwm": AugWM}
"""Algorithm name → class (``dynshift train NAME``)."""

__all__ = ["ALGORITHMS", "AugWM", "AugWMConfig", "LEARNERS", "MOPO", "MOPOConfig", "OfflineAgent", "OfflineConfig"]
