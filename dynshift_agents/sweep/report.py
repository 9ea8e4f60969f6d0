"""A sweep's reports, from its runs' files: the scores table, learning curves and grid reports.

Written under the spec's ``results``:

- ``scores.md``: per dataset, the data's own D4RL-normalised score and each label's final score
  (``eval.json`` of every seed: mean ± std, and each seed; "—" for a run that diverged, "…" for one
  not evaluated yet, when the reports are written before the sweep has finished: ``--report``);
- ``curves-<dataset>.png``: each label's periodic evaluations (seeds as mean ± std) with the data's
  score as a dashed line (when the budget has ``eval_every``);
- ``<dataset>/<grid>/``: ``records.csv``, ``table.md`` (seeds pooled per label, Welch's test between
  the grid's ``compare`` pair, per-seed grid averages for its ``baselines``) and the heatmaps.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dynshift_agents.sweep.layout import diverged, grids_for, policy_name, run_dir, slug, world_model_file
from dynshift_agents.sweep.spec import SweepSpec


def outputs(spec: SweepSpec) -> list[Path]:
    """The files :func:`write` writes (the report task's outputs)."""
    files = []
    if spec.reports.scores and spec.evaluation.episodes:
        files.append(spec.results / "scores.md")
    if spec.reports.curves and spec.budget.eval_every:
        files += [spec.results / f"curves-{slug(d.id)}.png" for d in spec.datasets]
    if spec.reports.grids:
        files += [spec.results / slug(d.id) / g.label / "table.md" for d in spec.datasets for g in spec.grids
                  if any(g in grids_for(spec, d.id, a) for a in spec.algorithms_for(d.id))]
    return files


def data_score(dataset_id: str) -> float:
    """The D4RL-normalised score of a dataset's own episodes."""
    from dynshift_agents.data import d4rl_score, load_dataset

    record = json.loads(load_dataset(dataset_id).storage.metadata["dynshift"])
    return float(d4rl_score(dataset_id.split("/")[1], record["episode_returns"]["mean"]))


def scores_table(spec: SweepSpec) -> str:
    """The final-evaluation table of every dataset × label (seeds pooled)."""
    from dynshift_agents.algorithms import MODEL_BASED

    labels = list(dict.fromkeys(a.label for d in spec.datasets for a in spec.algorithms_for(d.id)))
    final_scores = {}  # (dataset, label, seed) → the normalised score, "—" (diverged) or "…" (not evaluated yet)
    for dataset in spec.datasets:
        for algorithm in spec.algorithms_for(dataset.id):
            for seed in spec.seeds:
                run = run_dir(spec, dataset.id, algorithm, seed)
                result = run / "eval.json"
                final_scores[dataset.id, algorithm.label, seed] = (
                    "—" if diverged(run) else "…" if not result.exists()
                    else float(json.loads(result.read_text())["normalised_score"]))
    finished = "…" not in final_scores.values()
    models = any(a.algorithm in MODEL_BASED for a in spec.algorithms)
    lines = [f"{spec.budget.gradient_steps:,} gradient steps, seeds {list(spec.seeds)}; evaluation: "
             f"{spec.evaluation.episodes} episodes at nominal dynamics (seeds {spec.evaluation.seed}–"
             f"{spec.evaluation.seed + spec.evaluation.episodes - 1}), deterministic policy; D4RL-normalised scores; "
             "— is a run that diverged" + ("; … one not evaluated yet (the mean is over the others)."
                                            if not finished else "."), "",
             "| dataset | behaviour data | " + " | ".join(f"{label} (mean ± std) | {label} per seed" for label in labels)
             + (" | world-model holdout MSE (elites) |" if models else " |"),
             "|---|---:|" + "---:|---|" * len(labels) + ("---:|" if models else "")]
    for dataset in spec.datasets:
        cells = [f"{data_score(dataset.id):.1f}"]
        by_label = {a.label: a for a in spec.algorithms_for(dataset.id)}
        for label in labels:
            if label not in by_label:
                cells += ["", ""]
                continue
            scores = [final_scores[dataset.id, label, seed] for seed in spec.seeds]
            finite = [s for s in scores if isinstance(s, float)]
            cells += [f"{np.mean(finite):.1f} ± {np.std(finite):.1f}" if finite else "—" if "—" in scores else "…",
                      ", ".join(s if isinstance(s, str) else f"{s:.1f}" for s in scores)]
        if models:
            cells.append(holdout_mse(spec, dataset.id))
        lines.append(f"| {dataset.id} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def holdout_mse(spec: SweepSpec, dataset_id: str) -> str:
    """The mean holdout MSE of the elites of the world models the runs on ``dataset_id`` used (MOPO's
    first when there is one), or "—"."""
    from dynshift_agents.algorithms import MODEL_BASED
    from dynshift_agents.world_model import WorldModel

    model_based = sorted((a for a in spec.algorithms_for(dataset_id) if a.algorithm in MODEL_BASED),
                         key=lambda a: a.algorithm != "mopo")
    if not model_based:
        return "—"
    seeds = [spec.world_model.seed] if spec.world_model.seed is not None else list(spec.seeds)
    mses = []
    for seed in seeds:
        path, _ = world_model_file(spec, dataset_id, model_based[0].algorithm, seed)
        if path.exists():
            model = WorldModel.load(path)
            mses.append(float(np.array(model.metadata["fit"]["holdout_mse"])[model.elite_index.numpy()].mean()))
    return f"{np.mean(mses):.4f}" if mses else "—"


def reference_lines(spec: SweepSpec, dataset_id: str) -> dict[str, float]:
    """The spec's reference lines on ``dataset_id``: each referenced study's label, mean final score
    over the seeds it has evaluated there."""
    from dynshift_agents.sweep.spec import load_spec

    lines = {}
    for path, label in spec.reports.references:
        other = load_spec(path)
        algorithm = next(a for a in other.algorithms if a.label == label)
        if dataset_id not in [d.id for d in other.datasets] or algorithm not in other.algorithms_for(dataset_id):
            continue
        results = [run_dir(other, dataset_id, algorithm, s) / "eval.json" for s in other.seeds]
        scores = [json.loads(r.read_text())["normalised_score"] for r in results if r.exists()]
        if scores:
            lines[f"{label} ({other.name}, {len(scores)} seed{'s' if len(scores) > 1 else ''})"] = float(np.mean(scores))
    return lines


def _evaluated(run: Path, metric: str = "eval/d4rl_score") -> bool:
    """The run's log has at least one periodic evaluation."""
    import csv

    if not (run / "progress.csv").exists():
        return False
    with (run / "progress.csv").open(newline="") as f:
        return any(row.get(metric) for row in csv.DictReader(f))


def grid_records(spec: SweepSpec, dataset_id: str, grid) -> list[dict]:
    """The records of every run of ``dataset_id`` on ``grid``, policies named ``label/seed<k>``."""
    from dynshift_agents.evaluation import read_records

    records = []
    for algorithm in spec.algorithms_for(dataset_id):
        if grid not in grids_for(spec, dataset_id, algorithm):
            continue
        for seed in spec.seeds:
            path = run_dir(spec, dataset_id, algorithm, seed) / f"grid-{grid.label}" / "records.jsonl"
            if path.exists():
                name = policy_name(algorithm, seed)
                records += [r | {"policy": f"{algorithm.label}/seed{seed}"} for r in read_records(path)
                            if r["policy"] == name]
    return records


def write(spec: SweepSpec) -> list[Path]:
    """Write every report the spec asks for; returns the files."""
    from dynshift_agents import reports

    spec.results.mkdir(parents=True, exist_ok=True)
    written = []
    if spec.reports.scores and spec.evaluation.episodes:
        path = spec.results / "scores.md"
        path.write_text(scores_table(spec) + "\n")
        written.append(path)
    if spec.reports.curves and spec.budget.eval_every:
        for dataset in spec.datasets:
            runs = {a.label: [run for s in spec.seeds if _evaluated(run := run_dir(spec, dataset.id, a, s))]
                    for a in spec.algorithms_for(dataset.id)}  # a run that diverged before its first evaluation has none
            runs = {label: found for label, found in runs.items() if found}
            path = spec.results / f"curves-{slug(dataset.id)}.png"
            robot, kind = dataset.id.split("/")[1:3]
            lines = {"data": data_score(dataset.id)} | reference_lines(spec, dataset.id)
            reports.learning_curves(runs, path, lines=lines,
                                    title=f"{robot} {kind}, seeds {list(spec.seeds)}, "
                                          f"{spec.budget.gradient_steps:,} steps")
            written.append(path)
    if spec.reports.grids:
        for dataset in spec.datasets:
            for grid in spec.grids:
                records = grid_records(spec, dataset.id, grid)
                if not records:
                    continue
                pooled = [r | {"policy": r["policy"].split("/")[0]} for r in records]
                labels = set(r["policy"] for r in pooled)
                appendix = "".join("\n" + reports.seed_comparison(records, pair) + "\n" for pair in grid.baselines
                                   if set(pair) <= labels)
                compare = grid.compare if grid.compare and set(grid.compare) <= labels else None
                robot, kind = dataset.id.split("/")[1:3]
                _, files = reports.write_grid_report(
                    records, spec.results / slug(dataset.id) / grid.label,
                    f"{grid.description}; agents trained on {dataset.id} for {spec.budget.gradient_steps:,} gradient "
                    f"steps; seeds {list(spec.seeds)} pooled; {grid.episodes} episodes per setting and seed; mean ± std "
                    "of the return", compare, table_records=pooled, appendix=appendix,
                    title=lambda label, robot=robot, kind=kind: f"{label} on {robot} {kind}")
                written += files
    return written

