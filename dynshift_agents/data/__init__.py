"""Datasets: collect Minari datasets from behaviour policies, load them as flat transitions, score.

- :func:`collect` — ``dynshift collect ENV KIND``: a Minari dataset on the nominal or a shifted robot;
- :func:`first_fraction` — ``dynshift subset ID``: the first tenth of a dataset (DARA's ``1T``);
- :func:`load_transitions` — any local Minari dataset id → :class:`Transitions`;
- :func:`normalised_score`, :func:`d4rl_score`, :func:`dataset_score` — normalised returns;
- :func:`list_datasets` — ``dynshift datasets``: local datasets with size, returns and dynamics.
"""

from dynshift_agents.data.catalog import (
    KINDS,
    DatasetNotFoundError,
    dataset_id_for,
    datasets_root,
    list_datasets,
    load_dataset,
)
from dynshift_agents.data.collection import D4RL_SIZES, DEFAULT_SIZES, POLICY_SOURCES, collect, first_fraction, plan
from dynshift_agents.data.scores import D4RL_REFERENCES, d4rl_score, dataset_score, normalised_score
from dynshift_agents.data.transitions import Transitions, load_transitions

__all__ = [
    "D4RL_REFERENCES", "D4RL_SIZES", "DEFAULT_SIZES", "KINDS", "POLICY_SOURCES", "DatasetNotFoundError", "Transitions", "collect",
    "d4rl_score", "dataset_id_for", "dataset_score", "datasets_root", "first_fraction", "list_datasets", "load_dataset",
    "load_transitions", "normalised_score", "plan",
]
