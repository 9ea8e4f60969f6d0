"""MOPO at CPU scale: datasets × seeds, trained in parallel single-thread jobs, evaluated, tabulated.

    python scripts/reproduce_mopo.py                                  # halfcheetah mixed + medium, seeds 0-2
    python scripts/reproduce_mopo.py --datasets dynshift/hopper/medium-v0 --gradient-steps 50000

Every step resumes: missing datasets are collected (``dynshift collect``, default size, seed 0),
each (dataset, seed) trains with ``dynshift train mopo`` into ``--out/<dataset>/seed<k>`` (a re-run
continues from its checkpoint; the world model of (dataset, seed) is fitted once and cached), and
finished runs are evaluated once (10 episodes, nominal dynamics, seeds 0..9; cached as
``eval.json``). The table (markdown) goes to stdout and ``--table``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np
from runner import DYNSHIFT, ensure_dataset, parallel, run

DEFAULT_DATASETS = ["dynshift/halfcheetah/mixed-v0", "dynshift/halfcheetah/medium-v0"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=DEFAULT_DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--gradient-steps", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=2, help="parallel single-thread training jobs")
    parser.add_argument("--out", type=Path, default=Path("runs/results/mopo"))
    parser.add_argument("--table", type=Path, help="also write the markdown table here")
    args = parser.parse_args()
    for dataset_id in args.datasets:
        ensure_dataset(dataset_id, args.out / "collect.log")

    def job(dataset_id: str, seed: int) -> None:
        run_dir = args.out / dataset_id.replace("/", "__") / f"seed{seed}"
        run(["train", "mopo", "--dataset", dataset_id, "--seed", str(seed), "--out", str(run_dir),
                        "--gradient-steps", str(args.gradient_steps), "--no-progress", "--threads", "1"],
            run_dir / "train.log")
        result = run_dir / "eval.json"
        if not result.exists():
            with result.with_suffix(".tmp").open("w") as f:
                subprocess.run(DYNSHIFT + ["evaluate", str(run_dir / "checkpoint"), "--episodes", "10", "--json"],
                               stdout=f, check=True)
            result.with_suffix(".tmp").replace(result)

    parallel([lambda d=d, s=s: job(d, s) for d in args.datasets for s in args.seeds], args.jobs)

    lines = [f"MOPO, {args.gradient_steps:,} gradient steps, seeds {args.seeds}; evaluation: 10 episodes at nominal "
             f"dynamics (seeds 0–9), deterministic policy. Scores are D4RL-normalised.", "",
             "| dataset | MOPO score (mean ± std over seeds) | per seed | behaviour data score | world-model holdout MSE (elites) |",
             "|---|---:|---|---:|---:|"]
    from dynshift_agents.data import d4rl_score, load_dataset
    from dynshift_agents.world_model import WorldModel

    for dataset_id in args.datasets:
        scores, mses = [], []
        for seed in args.seeds:
            run_dir = args.out / dataset_id.replace("/", "__") / f"seed{seed}"
            scores.append(json.loads((run_dir / "eval.json").read_text())["normalised_score"])
            model = WorldModel.load(run_dir / "checkpoint" / "world_model.pt")
            holdout = np.array(model.metadata["fit"]["holdout_mse"])
            mses.append(float(holdout[model.elite_index.numpy()].mean()))
        record = json.loads(load_dataset(dataset_id).storage.metadata["dynshift"])
        behaviour = d4rl_score(dataset_id.split("/")[1], record["episode_returns"]["mean"])
        lines.append(f"| {dataset_id} | {np.mean(scores):.1f} ± {np.std(scores):.1f} | "
                     f"{', '.join(f'{s:.1f}' for s in scores)} | {behaviour:.1f} | {np.mean(mses):.4f} |")
    table = "\n".join(lines)
    print(table)
    if args.table:
        args.table.parent.mkdir(parents=True, exist_ok=True)
        args.table.write_text(table + "\n")


if __name__ == "__main__":
    main()
