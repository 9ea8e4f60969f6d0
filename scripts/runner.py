"""Shared by the reproduction scripts: run ``dynshift`` commands as logged subprocesses, a few at a time.

Each job is a subprocess with one torch thread (two single-thread processes use two cores well;
two-thread processes side by side collapse). Every command it runs resumes on its own (``dynshift
collect``, ``train`` and ``grid`` all do), so a reproduction script can simply be run again.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

DYNSHIFT = [sys.executable, "-m", "dynshift_agents"]


def run(arguments: list[str], log: Path) -> None:
    """``dynshift ARGUMENTS``, output appended to ``log``; a failure names the log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f:
        f.write(f"$ dynshift {' '.join(arguments)}\n")
        f.flush()
        result = subprocess.run(DYNSHIFT + arguments, stdout=f, stderr=subprocess.STDOUT)
    if result.returncode:
        raise RuntimeError(f"dynshift {' '.join(arguments)} failed; see {log}")


def parallel(jobs: list[Callable[[], None]], workers: int) -> None:
    """Run the jobs, ``workers`` at a time; the first failure is raised after the others finish."""
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(job) for job in jobs]
    for future in futures:
        future.result()


def ensure_dataset(dataset_id: str, log: Path, extra: list[str] | None = None) -> None:
    """Collect ``dynshift/<robot>/<kind>[-…]-v0`` with default settings unless it is already local."""
    from dynshift_agents.data import list_datasets
    from dynshift_agents.data.catalog import robot_and_kind

    if any(row["dataset_id"] == dataset_id for row in list_datasets(dataset_id)):
        return
    robot, kind = robot_and_kind(dataset_id)
    run(["collect", robot, kind, "--dataset-id", dataset_id, *(extra or [])], log)


def shared_world_model(dataset_id: str, algorithm: str, seed: int, log: Path, settings: list[str] = ()) -> Path:
    """Fit (once; cached under ``$DYNSHIFT_HOME``) the world model ``algorithm`` uses on ``dataset_id``
    with ``seed`` and ``settings`` (KEY=VALUE overrides), and return its file, for runs of every seed
    to share (``dynshift train --world-model``)."""
    import dataclasses
    import json

    from dynshift_agents.algorithms import ALGORITHMS
    from dynshift_agents.experiment import world_model_path

    overrides = {key: json.loads(value) for key, value in (pair.split("=", 1) for pair in settings)}
    config = dataclasses.replace(ALGORITHMS[algorithm].world_model_config(), **overrides)
    command = ["train", "world-model", "--dataset", dataset_id, "--for", algorithm, "--seed", str(seed), "--threads", "1"]
    for pair in settings:
        command += ["--set", pair]
    run(command, log)
    return world_model_path(dataset_id, config, seed)


def add_budget_options(parser) -> None:
    """Options both reproduction scripts share: CPU-scale config overrides and a shared world model."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every training run (as in dynshift train --set)")
    parser.add_argument("--world-model-seed", type=int,
                        help="fit one world model per dataset with this seed and share it across the runs' seeds "
                             "(default: each run fits its own with the run's seed, as the papers do)")
    parser.add_argument("--world-model-set", action="append", default=[], metavar="KEY=VALUE",
                        help="with --world-model-seed: world-model setting override, e.g. fit_bf16=true")


def train_command(algorithm: list[str], dataset_id: str, seed: int, out: Path, args, world_model: Path | None) -> list[str]:
    """``dynshift train`` arguments of one run (single thread, no progress bar, the shared options)."""
    command = ["train", *algorithm, "--dataset", dataset_id, "--seed", str(seed), "--out", str(out),
               "--gradient-steps", str(args.gradient_steps), "--no-progress", "--threads", "1"]
    for pair in args.set:
        command += ["--set", pair]
    if world_model is not None:
        command += ["--world-model", str(world_model)]
    return command


def shared_models(datasets: list[str], algorithms: list[str], args) -> dict:
    """{(dataset, algorithm): world-model file} when one model per dataset is shared across seeds
    (fitted here, in parallel, before any training run needs it); {} otherwise."""
    seed = args.world_model_seed
    if seed is None:
        return {}
    from dynshift_agents.algorithms import ALGORITHMS

    wanted = {(d, a): ALGORITHMS[a].world_model_config() for d in datasets for a in algorithms}
    fits = {}  # one fit per (dataset, model settings), by the first algorithm that needs it
    for (d, a), config in wanted.items():
        fits.setdefault((d, repr(config)), (d, a))
    files = {}

    def fit(dataset_id: str, algorithm: str) -> None:
        files[dataset_id, repr(wanted[dataset_id, algorithm])] = shared_world_model(
            dataset_id, algorithm, seed, args.out / dataset_id.replace("/", "__") / f"world-model-{algorithm}-seed{seed}.log",
            args.world_model_set)

    parallel([lambda d=d, a=a: fit(d, a) for d, a in fits.values()], args.jobs)
    return {(d, a): files[d, repr(config)] for (d, a), config in wanted.items()}


def budget_note(args) -> str:
    """The run settings that differ from the defaults, for table captions."""
    notes = [f"--set {pair}" for pair in args.set]
    if args.world_model_seed is not None:
        notes.append(f"one world model per dataset (seed {args.world_model_seed}"
                     f"{''.join(', ' + pair for pair in args.world_model_set)}) shared by all seeds")
    return f" ({'; '.join(notes)})" if notes else ""

