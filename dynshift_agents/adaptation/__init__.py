"""Adapting to changed dynamics: DARA relabels offline data before any learner sees it
(``Transitions → Transitions``); contextual inference picks a pre-trained FB policy's task for a test
robot from a little of its data."""

from dynshift_agents.adaptation.contextual import MODES, infer_task
from dynshift_agents.adaptation.dara import DARA, DARAConfig

__all__ = ["DARA", "DARAConfig", "MODES", "infer_task"]
