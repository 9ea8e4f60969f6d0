"""Collect every kind for the given robots at the default sizes and print the docs' dataset table.

    MINARI_DATASETS_PATH=/tmp/dynshift-table python scripts/dataset_table.py halfcheetah hopper

Each row: transitions, episodes, return mean ± std over complete episodes (ended by the env, not by
the dataset's size or a policy switch), the normalised score of that mean (DynShift references, and
D4RL's constants), and the wall time of ``collect`` (collection plus writing). Seed 0. Datasets that
already exist in the store are reused, and their recorded collection time is shown.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from dynshift_envs import ROBOTS
from dynshift_agents.data import KINDS, collect, d4rl_score, normalised_score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("robots", nargs="*", metavar="ROBOT", help=f"{', '.join(ROBOTS)} (default: all)")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    # checked here: argparse (3.11) refuses an empty nargs="*" list with choices, and a list default too
    if unknown := [r for r in args.robots if r not in ROBOTS]:
        parser.error(f"unknown robot {unknown[0]!r}; choose from {', '.join(ROBOTS)}")
    args.robots = args.robots or list(ROBOTS)
    torch.set_num_threads(args.threads)

    print("| robot | kind | transitions | episodes | return (mean ± std) | score (DynShift) | score (D4RL) | collect time |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for robot in args.robots:
        for kind in args.kinds:
            start = time.perf_counter()
            dataset = collect(robot, kind, seed=0, progress=False)
            wall = time.perf_counter() - start
            record = json.loads(dataset.storage.metadata["dynshift"])
            returns, ref = record["episode_returns"], record["references"]
            score = normalised_score(returns["mean"], ref["random"], ref["expert"])
            seconds = wall if wall > 5 else record["collection_seconds"]  # reused: the recorded time
            print(f"| {robot} | {kind} | {dataset.total_steps:,} | {dataset.total_episodes} | "
                  f"{returns['mean']:.1f} ± {returns['std']:.1f} | {score:.1f} | {d4rl_score(robot, returns['mean']):.1f} | "
                  f"{seconds:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
