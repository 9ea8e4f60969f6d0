"""Offline model-based algorithms, each a small difference on :class:`OfflineAgent`."""

from dynshift_agents.algorithms.base import LEARNERS, DivergenceError, OfflineAgent, OfflineConfig
from dynshift_agents.algorithms.augwm import AugWM, AugWMConfig
from dynshift_agents.algorithms.mopo import MOPO, MOPOConfig
from dynshift_agents.algorithms.rambo import RAMBO, RAMBOConfig

ALGORITHMS = {"offline": OfflineAgent, "mopo": MOPO, "augwm": AugWM, "rambo": RAMBO}
"""Algorithm name → class (``dynshift train NAME``)."""

__all__ = ["ALGORITHMS", "AugWM", "AugWMConfig", "DivergenceError", "LEARNERS", "MOPO", "MOPOConfig", "OfflineAgent", "OfflineConfig", "RAMBO",
           "RAMBOConfig"]
