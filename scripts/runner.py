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


def shared_world_model(dataset_id: str, algorithm: str, seed: int, settings: list[str] = ()) -> Path:
    """The file of the world model ``algorithm`` uses on ``dataset_id`` with ``seed`` and ``settings``
    (``--set`` pairs): ``dynshift train world-model`` fits it once and caches it under ``$DYNSHIFT_HOME``."""
    import dataclasses

    from dynshift_agents.algorithms import algorithm_class
    from dynshift_agents.cli import parse_overrides
    from dynshift_agents.experiment import world_model_path

    config = dataclasses.replace(algorithm_class(algorithm).world_model_config(), **parse_overrides(list(settings)))
    return world_model_path(dataset_id, config, seed)


def add_budget_options(parser) -> None:
    """Options both reproduction scripts share: CPU-scale config overrides and a shared world model."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every training run (as in dynshift train --set)")
    parser.add_argument("--eval-every", type=int, default=0,
                        help="training runs evaluate 10 episodes every N gradient steps into their logs (learning curves)")
    parser.add_argument("--world-model-seed", type=int,
                        help="fit one world model per dataset with this seed and share it across the runs' seeds "
                             "(default: each run fits its own with the run's seed, as the papers do)")
    parser.add_argument("--world-model-set", action="append", default=[], metavar="KEY=VALUE",
                        help="with --world-model-seed: world-model setting override, e.g. precision=fp32")


def train_command(algorithm: list[str], dataset_id: str, seed: int, out: Path, args, world_model: Path | None) -> list[str]:
    """``dynshift train`` arguments of one run (single thread, no progress bar, the shared options)."""
    command = ["train", *algorithm, "--dataset", dataset_id, "--seed", str(seed), "--out", str(out),
               "--gradient-steps", str(args.gradient_steps), "--no-progress", "--threads", "1"]
    for pair in args.set:
        command += ["--set", pair]
    if getattr(args, "eval_every", 0):
        command += ["--eval-every", str(args.eval_every)]
    if world_model is not None:
        command += ["--world-model", str(world_model)]
    return command


def shared_models(datasets: list[str], algorithms: list[str], args) -> dict[tuple[str, str], Path]:
    """{(dataset, algorithm): world-model file} when one model per dataset is shared across seeds
    (``--world-model-seed``): each distinct file is fitted once, in parallel, before any training run
    needs it; {} otherwise."""
    seed = args.world_model_seed
    if seed is None:
        return {}
    files = {(d, a): shared_world_model(d, a, seed, args.world_model_set) for d in datasets for a in algorithms}
    first = {}  # algorithms with the same model settings share a file: fit it once
    for (d, a), path in files.items():
        first.setdefault(path, (d, a))

    def fit(dataset_id: str, algorithm: str) -> None:
        command = ["train", "world-model", "--dataset", dataset_id, "--for", algorithm, "--seed", str(seed),
                   "--threads", "1"]
        for pair in args.world_model_set:
            command += ["--set", pair]
        run(command, args.out / dataset_id.replace("/", "__") / f"world-model-{algorithm}-seed{seed}.log")

    parallel([lambda d=d, a=a: fit(d, a) for d, a in first.values()], args.jobs)
    return files


def budget_note(args) -> str:
    """The run settings that differ from the defaults, for table captions."""
    notes = [f"--set {pair}" for pair in args.set]
    if args.world_model_seed is not None:
        notes.append(f"one world model per dataset (seed {args.world_model_seed}"
                     f"{''.join(', ' + pair for pair in args.world_model_set)}) shared by all seeds")
    return f" ({'; '.join(notes)})" if notes else ""


def grid_report(args, dataset_id: str, grid_name: str, checkpoints: dict[str, str], records_file: Path,
                compare: tuple[str, str] | None, baselines: list[tuple[str, str]] = ()) -> str:
    """Evaluate ``checkpoints`` (``"<algorithm>/seed<k>"`` → checkpoint dir) over a standard grid
    (resumable records in ``records_file``) and write ``records.csv``, ``table.md`` and, on the mass ×
    damping grid, one heatmap per algorithm on a shared colour scale, under
    ``args.results/<dataset>/<grid>``. Seeds are pooled per algorithm in the table, where ``*`` marks
    p < 0.05 (Welch) between the two of ``compare``; each pair of ``baselines`` (algorithm, baseline)
    adds a paragraph comparing per-seed grid averages. Returns the table."""
    from dynshift_agents import reports
    from dynshift_agents.algorithms import describe
    from dynshift_agents.evaluation import run_grid
    from dynshift_envs import get_grid

    grid = get_grid(grid_name)
    env_id = describe(next(iter(checkpoints.values())))["env_id"]
    records = run_grid(checkpoints, env_id, list(grid.settings), args.episodes, records_file, workers=args.jobs)
    pooled = [r | {"policy": r["policy"].split("/")[0]} for r in records]
    algorithms = list(dict.fromkeys(r["policy"] for r in pooled))
    comparisons = "".join("\n" + reports.seed_comparison(records, pair) + "\n" for pair in baselines
                          if set(pair) <= set(algorithms))
    robot, kind = dataset_id.split("/")[1:3]
    table, _ = reports.write_grid_report(
        records, args.results / dataset_id.replace("/", "__") / grid_name,
        f"{grid.description}; agents trained on {dataset_id} for {args.gradient_steps:,} gradient steps"
        f"{budget_note(args)}; seeds {args.seeds} pooled; {args.episodes} episodes per setting and seed; "
        f"mean ± std of the return", compare, table_records=pooled, appendix=comparisons,
        title=lambda algorithm: f"{algorithm} on {robot} {kind}")
    return table
