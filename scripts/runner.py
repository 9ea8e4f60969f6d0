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
