"""Offline model-based RL under dynamics shift: datasets, behaviour policies, world models, agents."""
