"""Adapting offline data to changed dynamics before any learner sees it (``Transitions → Transitions``)."""

from dynshift_agents.adaptation.dara import DARA, DARAConfig, concatenate

__all__ = ["DARA", "DARAConfig", "concatenate"]
