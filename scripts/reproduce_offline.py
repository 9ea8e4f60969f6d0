"""Offline algorithms at CPU scale: datasets × algorithms × seeds → normalised scores (and grids).

    python scripts/reproduce_offline.py                                   # MOPO, halfcheetah mixed + medium
    python scripts/reproduce_offline.py --algorithms mopo rambo --datasets dynshift/halfcheetah/mixed-v0 \\
        dynshift/halfcheetah/medium-v0 dynshift/hopper/medium-v0 --grid mass-damping

Every step resumes: missing datasets are collected (``dynshift collect``, default size, seed 0);
each (dataset, algorithm, seed) trains with ``dynshift train`` into ``--out/<dataset>/<algorithm>/seed<k>``
(a re-run continues from its checkpoint; the world model of (dataset, seed) is fitted once, cached
and shared by algorithms with the same model settings); finished runs are evaluated once (10
episodes at nominal dynamics, seeds 0..9, cached as ``eval.json``). A run that diverges is
reported as "—" (the papers' convention) with its last good checkpoint kept. With ``--grid``, every
run is also evaluated over that shift grid (seeds pooled per algorithm; table, heatmaps). Tables go
to stdout and to ``--results``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np
from dynshift_agents.algorithms import MODEL_BASED
from runner import (DYNSHIFT, add_budget_options, budget_note, ensure_dataset, grid_report, parallel, run, shared_models,
                    train_command)

DEFAULT_DATASETS = ["dynshift/halfcheetah/mixed-v0", "dynshift/halfcheetah/medium-v0"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithms", nargs="+", default=["mopo"])
    parser.add_argument("--datasets", nargs="+", default=DEFAULT_DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--gradient-steps", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=2, help="parallel single-thread training jobs / grid workers")
    parser.add_argument("--grid", help="also evaluate every run over this grid (e.g. mass-damping)")
    parser.add_argument("--episodes", type=int, default=3, help="grid episodes per setting and seed")
    parser.add_argument("--out", type=Path, default=Path("runs/results/offline"))
    parser.add_argument("--results", type=Path, default=Path("docs/results/offline"))
    add_budget_options(parser)
    args = parser.parse_args()
    for dataset_id in args.datasets:
        ensure_dataset(dataset_id, args.out / "collect.log")
    models = shared_models(args.datasets, [a for a in args.algorithms if a in MODEL_BASED], args)

    def run_dir(dataset_id: str, algorithm: str, seed: int) -> Path:
        return args.out / dataset_id.replace("/", "__") / algorithm / f"seed{seed}"

    def job(dataset_id: str, algorithm: str, seed: int) -> None:
        out = run_dir(dataset_id, algorithm, seed)
        try:
            run(train_command([algorithm], dataset_id, seed, out, args, models.get((dataset_id, algorithm))),
                out / "train.log")
        except RuntimeError:
            if "diverged" not in (out / "train.log").read_text():
                raise
            (out / "diverged").write_text((out / "train.log").read_text().splitlines()[-1] + "\n")
            return
        result = out / "eval.json"
        if not result.exists():
            with result.with_suffix(".tmp").open("w") as f:
                subprocess.run(DYNSHIFT + ["evaluate", str(out / "checkpoint"), "--episodes", "10", "--json"],
                               stdout=f, check=True)
            result.with_suffix(".tmp").replace(result)

    parallel([lambda d=d, a=a, s=s: job(d, a, s) for d in args.datasets for a in args.algorithms for s in args.seeds],
             args.jobs)

    from dynshift_agents.data import d4rl_score, load_dataset
    from dynshift_agents.world_model import WorldModel

    lines = [f"{args.gradient_steps:,} gradient steps, seeds {args.seeds}{budget_note(args)}; evaluation: 10 episodes at nominal "
             f"dynamics (seeds 0–9), deterministic policy; D4RL-normalised scores; — is a run that diverged.", "",
             "| dataset | behaviour data | " + " | ".join(f"{a} (mean ± std) | {a} per seed" for a in args.algorithms)
             + " | world-model holdout MSE (elites) |",
             "|---|---:|" + "---:|---|" * len(args.algorithms) + "---:|"]
    for dataset_id in args.datasets:
        record = json.loads(load_dataset(dataset_id).storage.metadata["dynshift"])
        cells = [f"{d4rl_score(dataset_id.split('/')[1], record['episode_returns']['mean']):.1f}"]
        mses = []
        for algorithm in args.algorithms:
            scores = []
            for seed in args.seeds:
                out = run_dir(dataset_id, algorithm, seed)
                if (out / "diverged").exists():
                    scores.append(None)
                    continue
                scores.append(json.loads((out / "eval.json").read_text())["normalised_score"])
                has_model = (out / "checkpoint" / "world_model.pt").exists()
                if has_model and (algorithm == "mopo" or not mses):
                    model = WorldModel.load(out / "checkpoint" / "world_model.pt")
                    holdout = np.array(model.metadata["fit"]["holdout_mse"])
                    mses.append(float(holdout[model.elite_index.numpy()].mean()))
            finite = [s for s in scores if s is not None]
            summary = f"{np.mean(finite):.1f} ± {np.std(finite):.1f}" if finite else "—"
            cells += [summary, ", ".join("—" if s is None else f"{s:.1f}" for s in scores)]
        cells.append(f"{np.mean(mses):.4f}" if mses else "—")
        lines.append(f"| {dataset_id} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "scores.md").write_text(table + "\n")

    if args.grid:
        for dataset_id in args.datasets:
            checkpoints = {f"{a}/seed{s}": str(run_dir(dataset_id, a, s) / "checkpoint") for a in args.algorithms
                           for s in args.seeds if not (run_dir(dataset_id, a, s) / "diverged").exists()}
            compare = tuple(args.algorithms[:2]) if len(args.algorithms) >= 2 else None
            table = grid_report(args, dataset_id, args.grid, checkpoints,
                                args.out / dataset_id.replace("/", "__") / f"grid-{args.grid}-{'-'.join(args.algorithms)}.jsonl",
                                compare, [compare[::-1]] if compare else [])
            print(f"\n## {dataset_id} on {args.grid}\n\n{table}")


if __name__ == "__main__":
    main()
