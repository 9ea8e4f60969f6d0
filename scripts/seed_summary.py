"""Per-seed summaries of sweeps' runs, Welch's test over seeds against a baseline, and the table in
the AugWM paper's form.

    python scripts/seed_summary.py docs/results/augwm-100k/runs/dynshift__halfcheetah__mixed-v0 --baseline mopo
    python scripts/seed_summary.py RUNS... --markdown mass-damping --columns mopo augwm-default augwm-lm

For every ``ALGORITHM/seedN`` run folder under each RUN (a sweep's runs folder of one dataset) with an
``eval.json``: the final D4RL score, and for each ``grid-*/records.jsonl`` the grid average (the mean
over settings of each setting's mean return), the settings with a mean return above ``--above``, and
the settings where the run beats the baseline's run of the same seed and dataset. Then, per dataset
and algorithm, mean ± std over seeds and Welch's p against the baseline (seeds as the units). Several
RUN folders of one dataset (two studies on the same data) are read as one.

``--markdown KEY`` prints, instead, one Markdown table of KEY (``score`` or a grid's name): a row per
dataset, a column per algorithm (``--columns``, in that order; default every algorithm, the baseline
first), each cell mean ± std over seeds (n − 1) with the seed count, bold with a * where Welch's p against the
baseline is below 0.05 (the paper's mark), ↑ or ↓ saying on which side. With ``--by FIELD`` a grid's
row splits by its settings' FIELD (``--markdown cheetah-morphology --by morphology``: big and small;
``--markdown ant-crippled --by crippled_legs``: one leg and two legs, as the paper's second table).
The AugWM results page's tables are this script's output.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from dynshift_agents.evaluation import read_records
from dynshift_agents.reports import sample_std, welch

ALPHA = 0.05


def read_grid(records_path: Path) -> tuple[dict[int, float], dict[int, dict]]:
    """Each setting's mean return and the setting itself, by setting index (one pass over the records)."""
    returns: dict[int, list[float]] = {}
    settings: dict[int, dict] = {}
    for record in read_records(records_path):
        returns.setdefault(record["setting_index"], []).append(record["return"])
        settings[record["setting_index"]] = record.get("setting", {})
    return {index: float(np.mean(values)) for index, values in sorted(returns.items())}, settings


def groups(settings: dict[int, dict], field: str) -> dict[str, list[int]]:
    """Setting indices grouped by ``setting[field]`` (a list by its length: the number of crippled
    legs), labelled ``field = value``; settings without the field are left out."""
    found: dict[str, list[int]] = {}
    for index, setting in sorted(settings.items()):
        if field in setting:
            value = setting[field]
            found.setdefault(f"{field} = {len(value) if isinstance(value, list) else value}", []).append(index)
    return found


def dataset_name(run: Path) -> str:
    """``dynshift__halfcheetah__mixed-v0`` → ``halfcheetah mixed``."""
    parts = run.resolve().name.split("__")
    return " ".join(parts[1:]).removesuffix("-v0") if len(parts) == 3 else run.name


def read_runs(folders: list[Path], by: str | None = None) -> dict[str, dict[tuple[str, int], dict]]:
    """dataset → (algorithm, seed) → {"score": ..., grid name: {setting index: mean return}}; with
    ``by``, also ``grid[field = value]`` for each group of a grid's settings (``groups``)."""
    datasets: dict[str, dict[tuple[str, int], dict]] = {}
    for folder in folders:
        runs = datasets.setdefault(dataset_name(folder), {})
        for result in sorted(folder.glob("*/seed*/eval.json")):
            run = result.parent
            grids = {}
            for records in sorted(run.glob("grid-*/records.jsonl")):
                name = records.parent.name.removeprefix("grid-")
                grids[name], settings = read_grid(records)
                for label, indices in (groups(settings, by) if by else {}).items():
                    grids[f"{name}[{label}]"] = {i: grids[name][i] for i in indices}
            runs[(run.parent.name, int(run.name.removeprefix("seed")))] = {
                "score": json.loads(result.read_text())["normalised_score"], **grids}
    if not any(datasets.values()):
        raise SystemExit(f"no ALGORITHM/seedN/eval.json under {', '.join(map(str, folders))}")
    return datasets


def summarise(runs: dict[tuple[str, int], dict], baseline: str, above: float, out=print) -> dict[tuple[str, int], dict]:
    """Each run's line (score, grid averages); prints one line per run."""
    summaries: dict[tuple[str, int], dict[str, float]] = {}
    for (algorithm, seed), run in sorted(runs.items()):
        base = runs.get((baseline, seed))
        line = {"score": run["score"]}
        text = f"{algorithm:>14} seed {seed}: score {run['score']:.1f}"
        for grid, settings in ((k, v) for k, v in run.items() if k != "score"):
            line[grid] = float(np.mean(list(settings.values())))
            text += f"; {grid}: average {line[grid]:.0f}, {sum(v > above for v in settings.values())} above {above:g}"
            if base is not None and algorithm != baseline and grid in base:
                text += f", beats {baseline} on {sum(settings[i] > base[grid][i] for i in settings)} of {len(settings)}"
        summaries[(algorithm, seed)] = line
        out(text)
    return summaries


def over_seeds(summaries: dict[tuple[str, int], dict], algorithm: str, key: str) -> tuple[list[int], np.ndarray]:
    seeds = sorted(s for a, s in summaries if a == algorithm and key in summaries[(a, s)])
    return seeds, np.array([summaries[(algorithm, s)][key] for s in seeds])


def cell(values: np.ndarray, base: np.ndarray | None, digits: int) -> str:
    """``mean ± std (n)``; bold with * and the side where Welch's p against ``base`` is below ALPHA."""
    if len(values) == 0:
        return "—"
    spread = f" ± {sample_std(values):,.{digits}f}" if len(values) > 1 else ""  # no spread from one seed
    text = f"{values.mean():,.{digits}f}{spread} ({len(values)})".replace(",", " ")
    if base is not None and welch(values, base) < ALPHA:
        return f"**{text} *{'↑' if values.mean() > base.mean() else '↓'}**"
    return text


def markdown(datasets: dict[str, dict], key: str, columns: list[str], baseline: str, above: float) -> str:
    """A row per dataset (per dataset and group of settings where ``key`` has groups: ``key[...]``)."""
    lines = [f"| dataset | {' | '.join(columns)} |", "|---|" + "---:|" * len(columns)]
    for name, runs in datasets.items():
        summaries = summarise(runs, baseline, above, out=lambda _: None)
        found = sorted({k for line in summaries.values() for k in line if k.startswith(f"{key}[")})
        for row in found or [key]:
            _, base = over_seeds(summaries, baseline, row)
            cells = [cell(over_seeds(summaries, c, row)[1], None if c == baseline else base, 1 if row == "score" else 0)
                     for c in columns]
            label = name + (f", {row[len(key) + 1:-1]}" if row != key else "")
            lines.append(f"| {label} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="sweeps' runs folders of one dataset each (ALGORITHM/seedN/ inside)")
    parser.add_argument("--baseline", default="mopo", help="the algorithm folder compared against (default mopo)")
    parser.add_argument("--above", type=float, default=1000.0, help="the return counted per setting (default 1000)")
    parser.add_argument("--markdown", metavar="KEY", help="print one Markdown table of KEY ('score' or a grid's name)")
    parser.add_argument("--columns", nargs="+", help="with --markdown: the algorithm folders, in order")
    parser.add_argument("--by", metavar="FIELD", help="also summarise each grid by groups of its settings' FIELD "
                        "(e.g. morphology: big and small apart; crippled_legs: one leg and two legs apart)")
    args = parser.parse_args()

    datasets = read_runs(args.runs, args.by)
    if args.markdown:
        found = sorted({a for runs in datasets.values() for a, _ in runs})
        columns = args.columns or [args.baseline] + [a for a in found if a != args.baseline]
        unknown = [c for c in columns if c not in found]
        if unknown:
            raise SystemExit(f"--columns {unknown}: not among the algorithms found, {found}")
        keys = {k for runs in datasets.values() for run in runs.values() for k in run}
        if args.markdown not in keys:
            raise SystemExit(f"--markdown {args.markdown!r}: not among {sorted(keys)}")
        print(markdown(datasets, args.markdown, columns, args.baseline, args.above))
        return
    for name, runs in datasets.items():
        if len(datasets) > 1:
            print(f"## {name}")
        summaries = summarise(runs, args.baseline, args.above)
        print()
        for algorithm in sorted({a for a, _ in summaries}):
            first = min(s for a, s in summaries if a == algorithm)
            for key in summaries[(algorithm, first)]:
                seeds, values = over_seeds(summaries, algorithm, key)
                _, base = over_seeds(summaries, args.baseline, key)
                p = "" if algorithm == args.baseline else f"; Welch's p against {args.baseline} {welch(values, base):.3f}"
                print(f"{algorithm:>14} {key}: {values.mean():.1f} ± {sample_std(values):.1f} over seeds {seeds}{p}")


if __name__ == "__main__":
    main()
