"""Per-seed summaries of a sweep's runs on one dataset, and Welch's test over seeds against a baseline.

    python scripts/seed_summary.py docs/results/augwm-100k/runs/dynshift__halfcheetah__mixed-v0 --baseline mopo

For every ``ALGORITHM/seedN`` run folder under RUN with an ``eval.json``: the final D4RL score, and for
each ``grid-*/records.jsonl`` the grid average (the mean over settings of each setting's mean return),
the settings with a mean return above ``--above``, and the settings where the run beats the baseline's
run of the same seed. Then, per algorithm, mean ± std over seeds and Welch's p against the baseline
(seeds as the units). The AugWM results page's per-seed table is this script's output.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from dynshift_agents.evaluation import read_records
from dynshift_agents.reports import welch


def per_setting(records_path: Path) -> dict[int, float]:
    returns: dict[int, list[float]] = {}
    for record in read_records(records_path):
        returns.setdefault(record["setting_index"], []).append(record["return"])
    return {index: float(np.mean(values)) for index, values in sorted(returns.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a sweep's runs folder of one dataset (ALGORITHM/seedN/ inside)")
    parser.add_argument("--baseline", default="mopo", help="the algorithm folder compared against (default mopo)")
    parser.add_argument("--above", type=float, default=1000.0, help="the return counted per setting (default 1000)")
    args = parser.parse_args()

    runs = {}  # (algorithm, seed) -> {"score": ..., grid: settings}
    for result in sorted(args.run.glob("*/seed*/eval.json")):
        folder = result.parent
        grids = {g.parent.name.removeprefix("grid-"): per_setting(g) for g in sorted(folder.glob("grid-*/records.jsonl"))}
        runs[(folder.parent.name, int(folder.name.removeprefix("seed")))] = {
            "score": json.loads(result.read_text())["normalised_score"], **grids}
    if not runs:
        raise SystemExit(f"no ALGORITHM/seedN/eval.json under {args.run}")
    summaries: dict[tuple[str, int], dict[str, float]] = {}
    for (algorithm, seed), run in runs.items():
        base = runs.get((args.baseline, seed))
        line = {"score": run["score"]}
        text = f"{algorithm:>14} seed {seed}: score {run['score']:.1f}"
        for grid, settings in ((k, v) for k, v in run.items() if k != "score"):
            line[grid] = float(np.mean(list(settings.values())))
            text += f"; {grid}: average {line[grid]:.0f}, {sum(v > args.above for v in settings.values())} above {args.above:g}"
            if base is not None and algorithm != args.baseline and grid in base:
                text += f", beats {args.baseline} on {sum(settings[i] > base[grid][i] for i in settings)} of {len(settings)}"
        summaries[(algorithm, seed)] = line
        print(text)
    print()
    algorithms = sorted({a for a, _ in summaries})
    for algorithm in algorithms:
        seeds = sorted(s for a, s in summaries if a == algorithm)
        for key in summaries[(algorithm, seeds[0])]:
            values = np.array([summaries[(algorithm, s)][key] for s in seeds])
            base = np.array([summaries[(args.baseline, s)][key] for a, s in summaries if a == args.baseline])
            p = "" if algorithm == args.baseline else f"; Welch's p against {args.baseline} {welch(values, base):.3f}"
            std = values.std(ddof=1) if len(values) > 1 else 0.0
            print(f"{algorithm:>14} {key}: {values.mean():.1f} ± {std:.1f} over seeds {seeds}{p}")


if __name__ == "__main__":
    main()
