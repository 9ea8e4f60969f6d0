"""Where a study's files live, and what they say: run folders, the diverged mark, finished steps,
complete grids, world-model files. Read by the plan (what is done) and the reports (what to show)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from dynshift_agents.sweep.spec import AlgorithmSpec, GridSpec, SweepSpec

DIVERGED = "diverged"
"""The file a run that diverged leaves in its directory (its last log line): the papers' "—", final,
never retried."""


def slug(dataset_id: str) -> str:
    return dataset_id.replace("/", "__")


def run_dir(spec: SweepSpec, dataset_id: str, algorithm: AlgorithmSpec, seed: int) -> Path:
    return spec.output / slug(dataset_id) / algorithm.directory / f"seed{seed}"


def policy_name(algorithm: AlgorithmSpec, seed: int) -> str:
    """A run's name in grid records (``label-seed<k>``; reports rename it ``label/seed<k>``)."""
    return f"{algorithm.label}-seed{seed}"


def diverged(run: Path) -> bool:
    return (run / DIVERGED).exists()


def trained_steps(run: Path) -> int:
    """Gradient steps in a run's checkpoint (0 without one)."""
    from dynshift_agents.algorithms import describe

    if not (run / "checkpoint" / "agent.json").exists():
        return 0
    return int(describe(run)["gradient_steps"])


def grid_complete(records: Path, name: str, settings: int, episodes: int) -> bool:
    """Every setting of the grid has its ``episodes`` records for policy ``name`` in ``records``."""
    from dynshift_agents.evaluation import read_records

    if not records.exists():
        return False
    counts: dict[int, int] = {}
    for record in read_records(records):
        if record["policy"] == name:
            counts[record["setting_index"]] = counts.get(record["setting_index"], 0) + 1
    return len(counts) == settings and all(n >= episodes for n in counts.values())


def world_model_file(spec: SweepSpec, dataset_id: str, algorithm: str, seed: int) -> tuple[Path, dict[str, Any]]:
    """The cached world model a model-based run uses, and the settings that fit it (precision
    resolved here, so every machine of a cluster writes the file this driver expects)."""
    from dynshift_agents import precision
    from dynshift_agents.algorithms import algorithm_class
    from dynshift_agents.experiment import world_model_path

    config = dataclasses.replace(algorithm_class(algorithm).world_model_config(), **spec.world_model.set)
    config = dataclasses.replace(config, precision=precision.resolve(config.precision))
    settings = dict(spec.world_model.set) | {"precision": config.precision}
    return world_model_path(dataset_id, config, seed), settings


def grids_for(spec: SweepSpec, dataset_id: str, algorithm: AlgorithmSpec) -> list[GridSpec]:
    return [g for g in spec.grids if (g.datasets is None or dataset_id in g.datasets)
            and (g.algorithms is None or algorithm.label in g.algorithms)]
