"""A sweep's reports, from its runs' files: the scores table, learning curves and grid reports.

Written under the spec's ``results``:

- ``scores.md``: per dataset, the data's own D4RL-normalised score and each label's final score
  (``eval.json`` of every seed: mean ± std, and each seed; "—" for a run that diverged, "…" for one
  not evaluated yet, when the reports are written before the sweep has finished: ``--report``);
- ``curves-<dataset>.png`` (a dataset some label trains on): each label's periodic evaluations (seeds as mean ± std) with the data's
  score as a dashed line (when the budget has ``eval_every``);
- ``<dataset>/<grid>/``: ``records.csv``, ``table.md`` (seeds pooled per label, Welch's test between
  the grid's ``compare`` pair, per-seed grid averages for its ``baselines``) and the heatmaps;
- ``dara.md`` (a spec with DARA arms): DARA's table, 10T, 1T, 1T+10S without and with DARA per base
  learner and target, with Welch's test over seeds and the classifiers' accuracies and Δr; with
  ``eval_every``, the same table at every periodic evaluation of the runs (DARA's verdict per budget).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dynshift_agents.sweep.layout import diverged, grids_for, policy_name, run_dir, slug, world_model_file
from dynshift_agents.sweep.spec import AlgorithmSpec, SweepSpec


def outputs(spec: SweepSpec) -> list[Path]:
    """The files :func:`write` writes (the report task's outputs)."""
    files = []
    if spec.reports.scores and spec.evaluation.episodes:
        files.append(spec.results / "scores.md")
    if spec.reports.curves and spec.budget.eval_every:
        files += [spec.results / f"curves-{slug(d.id)}.png" for d in spec.datasets if spec.algorithms_for(d.id)]
    if spec.reports.grids:
        files += [spec.results / slug(d.id) / g.label / "table.md" for d in spec.datasets for g in spec.grids
                  if any(g in grids_for(spec, d.id, a) for a in spec.algorithms_for(d.id))]
    if spec.reports.dara and spec.evaluation.episodes and dara_rows(spec):
        files.append(spec.results / "dara.md")
    return files


def data_score(dataset_id: str) -> float:
    """The D4RL-normalised score of a dataset's own episodes."""
    from dynshift_agents.data import d4rl_score, load_dataset

    record = json.loads(load_dataset(dataset_id).storage.metadata["dynshift"])
    return float(d4rl_score(dataset_id.split("/")[1], record["episode_returns"]["mean"]))


def final_score(spec: SweepSpec, dataset_id: str, algorithm: AlgorithmSpec, seed: int) -> float | str:
    """A run's final normalised score (``eval.json``), "—" if it diverged, "…" if not evaluated yet."""
    run = run_dir(spec, dataset_id, algorithm, seed)
    result = run / "eval.json"
    if diverged(run):
        return "—"
    return float(json.loads(result.read_text())["normalised_score"]) if result.exists() else "…"


def _evaluation_caption(spec: SweepSpec) -> str:
    return (f"{spec.budget.gradient_steps:,} gradient steps, seeds {list(spec.seeds)}; evaluation: "
            f"{spec.evaluation.episodes} episodes at nominal dynamics (seeds {spec.evaluation.seed}–"
            f"{spec.evaluation.seed + spec.evaluation.episodes - 1}), deterministic policy; D4RL-normalised scores; "
            "± is the sample standard deviation over seeds (n − 1)")


def scores_table(spec: SweepSpec) -> str:
    """The final-evaluation table of every dataset × label (seeds pooled)."""
    from dynshift_agents.algorithms import MODEL_BASED
    from dynshift_agents.reports import sample_std

    labels = list(dict.fromkeys(a.label for d in spec.datasets for a in spec.algorithms_for(d.id)))
    final_scores = {(dataset.id, algorithm.label, seed): final_score(spec, dataset.id, algorithm, seed)
                    for dataset in spec.datasets for algorithm in spec.algorithms_for(dataset.id) for seed in spec.seeds}
    finished = "…" not in final_scores.values()
    models = any(a.algorithm in MODEL_BASED for a in spec.algorithms)
    lines = [_evaluation_caption(spec) + "; — is a run that diverged" + ("; … one not evaluated yet (the mean is over the others)."
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
            cells += [f"{np.mean(finite):.1f} ± {sample_std(finite):.1f}" if finite else "—" if "—" in scores else "…",
                      ", ".join(s if isinstance(s, str) else f"{s:.1f}" for s in scores)]
        if models:
            cells.append(holdout_mse(spec, dataset.id))
        lines.append(f"| {dataset.id} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class DARARow:
    """One row of DARA's table: a base learner on a target dataset (1T), the full target dataset it was cut
    from (10T), and the 1T+10S arms without (η = 0) and with DARA (η > 0). A column the spec lacks is None."""

    base: str
    target: str
    full: AlgorithmSpec | None
    full_dataset: str | None
    alone: AlgorithmSpec | None
    union: AlgorithmSpec | None
    dara: AlgorithmSpec
    source: str


def dara_eta(arm: AlgorithmSpec) -> float:
    """A DARA arm's η (its ``dara`` settings, else DARA's default)."""
    from dynshift_agents.adaptation.dara import DARAConfig

    return float(arm.dara.get("eta", DARAConfig.eta))


def dara_rows(spec: SweepSpec) -> list[DARARow]:
    """DARA's table, read off the spec: every DARA arm with η > 0 on each of its target datasets, with its
    arm at η = 0 (same base, config and source) and the base learner alone (same config) on that target and
    on the dataset the target is a subset of."""
    subsets = {d.id: d.subset_of for d in spec.datasets}
    rows = []
    for arm in spec.algorithms:
        if arm.algorithm != "dara" or dara_eta(arm) == 0:
            continue
        for dataset in spec.datasets:
            target = dataset.id
            if arm not in spec.algorithms_for(target):
                continue

            def find(predicate, on):
                return next((a for a in spec.algorithms_for(on) if predicate(a)), None) if on else None

            union = find(lambda a: a.algorithm == "dara" and a.base == arm.base and a.set == arm.set
                         and a.source == arm.source and dara_eta(a) == 0, target)
            plain = lambda a: a.algorithm == arm.base and a.set == arm.set  # noqa: E731
            full_dataset = subsets[target]
            rows.append(DARARow(arm.base, target, find(plain, full_dataset), full_dataset, find(plain, target), union,
                                arm, arm.source))
    return rows


def dara_table(spec: SweepSpec, alpha: float = 0.05) -> str:
    """DARA's table as the paper prints it (10T, 1T, 1T+10S w/o Aug., 1T+10S DARA; ↑/↓ against the column
    to the left), with Welch's test over seeds for DARA against the plain union, the per-seed scores, and
    the classifiers' held-out accuracies and Δr on the source data (``dara.pt`` of each DARA run)."""
    from dynshift_agents import reports
    from dynshift_agents.adaptation.dara import DARA
    from dynshift_agents.experiment import PERIODIC_EVALUATION_SEED

    def scores(algorithm, dataset_id):
        if algorithm is None:
            return None
        return [final_score(spec, dataset_id, algorithm, seed) for seed in spec.seeds]

    def finite(values):
        return [v for v in values or [] if isinstance(v, float)]

    def cell(values, previous):
        if values is None:
            return ""
        if not finite(values):
            return "—" if "—" in values else "…"
        mean = np.mean(finite(values))
        arrow = "" if not finite(previous) else " ↑" if mean > np.mean(finite(previous)) else " ↓"
        return f"{mean:.1f} ± {reports.sample_std(finite(values)):.1f}{arrow}"

    def columns(row):
        """The table's columns of ``row``: name → (algorithm, dataset), None where the spec lacks one."""
        return {"10T": (row.full, row.full_dataset), "1T": (row.alone, row.target),
                "1T+10S w/o Aug.": (row.union, row.target), "1T+10S DARA": (row.dara, row.target)}

    def row_cells(values_by_column):
        """A table row's cells from each column's per-seed values: the columns with their arrows, DARA − w/o
        and Welch's p."""
        cells, previous = [], None
        for values in values_by_column.values():
            cells.append(cell(values, previous))
            previous = values if values is not None else previous
        union, dara = finite(values_by_column["1T+10S w/o Aug."]), finite(values_by_column["1T+10S DARA"])
        difference = f"{round(np.mean(dara) - np.mean(union), 1) + 0.0:+.1f}" if union and dara else ""  # no "-0.0"
        p = reports.welch(np.array(dara), np.array(union)) if len(union) > 1 and len(dara) > 1 else float("nan")
        shown = "" if np.isnan(p) else f"**{p:.3f}**" if p < alpha else f"{p:.3f}"
        return " | ".join(cells) + f" | {difference} | {shown} |"

    rows = dara_rows(spec)
    lines = [_evaluation_caption(spec) + ". ↑/↓: above or below the column to its "
             "left (the paper's convention); 10T: the whole target dataset, 1T: its first part, 10S: the source "
             f"robot's dataset; p: Welch's t-test over seeds, DARA against w/o Aug. (bold: p < {alpha}).", "",
             "| learner | target (1T) | source (10S) | η | 10T | 1T | 1T+10S w/o Aug. | 1T+10S DARA | DARA − w/o | p |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    per_seed = ["| learner | target (1T) | column | " + " | ".join(f"seed {s}" for s in spec.seeds) + " |",
                "|---|---|---|" + "---:|" * len(spec.seeds)]
    classifiers = ["| learner | target (1T) | η | runs | q_sas accuracy | q_sa accuracy | Δr mean ± std | Δr 5–95 % | clipped |",
                   "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    curve = ["| learner | target (1T) | η | gradient steps | 10T | 1T | 1T+10S w/o Aug. | 1T+10S DARA | DARA − w/o | p |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        final = {name: scores(*column) for name, column in columns(row).items()}
        eta = dara_eta(row.dara)
        lines.append(f"| {row.base} | {row.target} | {row.source} | {eta:g} | " + row_cells(final))
        logged = {name: [reports.evaluations(run_dir(spec, dataset, algorithm, seed)) for seed in spec.seeds]
                  if algorithm is not None else None for name, (algorithm, dataset) in columns(row).items()}
        for step in sorted({step for runs in logged.values() for run in runs or [] for step in run}):
            at_step = {name: None if runs is None else [run.get(step, "…") for run in runs] for name, runs in logged.items()}
            curve.append(f"| {row.base} | {row.target} | {eta:g} | {step:,.0f} | " + row_cells(at_step))
        for name, values in final.items():
            line = (f"| {row.base} | {row.target} | {name}{f' (η = {eta:g})' if name == '1T+10S DARA' else ''} | "
                    + " | ".join(v if isinstance(v, str) else f"{v:.1f}" for v in values or []) + " |")
            if values is not None and line not in per_seed:  # rows at several η share their other columns
                per_seed.append(line)
        found = [DARA.load(path).report for seed in spec.seeds
                 if (path := run_dir(spec, row.target, row.dara, seed) / "dara.pt").exists()]
        if found:
            deltas = [r["delta_r"] for r in found]
            classifiers.append(
                f"| {row.base} | {row.target} | {dara_eta(row.dara):g} | {len(found)} | "
                f"{np.mean([r['sas_accuracy'] for r in found]):.3f} | {np.mean([r['sa_accuracy'] for r in found]):.3f} | "
                f"{np.mean([d['mean'] for d in deltas]):.3f} ± {np.mean([d['std'] for d in deltas]):.3f} | "
                f"{np.mean([d['quantiles']['0.05'] for d in deltas]):.2f} … {np.mean([d['quantiles']['0.95'] for d in deltas]):.2f} | "
                f"{np.mean([d['clipped_fraction'] for d in deltas]):.4f} |")
    text = "\n".join(lines) + "\n\nPer seed (final scores):\n\n" + "\n".join(per_seed)
    if len(curve) > 2:
        first, episodes = PERIODIC_EVALUATION_SEED, spec.budget.eval_episodes
        text += ("\n\nThe same table along the learning curve, from each run's periodic evaluations "
                 f"({reports.count(episodes, 'episode')} each, env seeds {first:,}–{first + episodes - 1:,}: other "
                 "episodes than the final evaluation's), mean ± std over the seeds that have reached the step:\n\n"
                 + "\n".join(curve))
    if len(classifiers) > 2:
        text += ("\n\nThe classifiers of the DARA runs (held-out tenth of each domain; Δr on the source data, clipped; "
                 f"means over the {len(spec.seeds)} seeds' classifiers):\n\n" + "\n".join(classifiers))
    return text


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


def seeds_label(spec: SweepSpec, found) -> str:
    """"seeds [0, 1]" for the seeds that have results (``found``: iterables of seeds), with the spec's
    own list beside it while some are not finished: "seeds [0, 1] of [0, 1, 2]"."""
    seeds = sorted(set().union(*map(set, found)))
    return f"seeds {seeds}" + (f" of {list(spec.seeds)}" if seeds != sorted(spec.seeds) else "")


def write(spec: SweepSpec) -> list[Path]:
    """Write every report the spec asks for; returns the files."""
    from dynshift_agents import reports

    spec.results.mkdir(parents=True, exist_ok=True)
    written = []
    if spec.reports.scores and spec.evaluation.episodes:
        path = spec.results / "scores.md"
        path.write_text(scores_table(spec) + "\n")
        written.append(path)
    if spec.reports.dara and spec.evaluation.episodes and dara_rows(spec):
        path = spec.results / "dara.md"
        path.write_text(dara_table(spec) + "\n")
        written.append(path)
    if spec.reports.curves and spec.budget.eval_every:
        for dataset in spec.datasets:
            if not spec.algorithms_for(dataset.id):  # a source dataset only: nothing trains on it alone
                continue
            found = {a.label: [s for s in spec.seeds if reports.evaluations(run_dir(spec, dataset.id, a, s))]
                     for a in spec.algorithms_for(dataset.id)}  # a run that diverged before its first evaluation has none
            runs = {a.label: [run_dir(spec, dataset.id, a, s) for s in found[a.label]]
                    for a in spec.algorithms_for(dataset.id) if found[a.label]}
            path = spec.results / f"curves-{slug(dataset.id)}.png"
            robot, kind = dataset.id.split("/")[1:3]
            lines = {"data": data_score(dataset.id)} | reference_lines(spec, dataset.id)
            reports.learning_curves(runs, path, lines=lines,
                                    title=f"{robot} {kind}, {seeds_label(spec, found.values())}, "
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
                    f"steps; {seeds_label(spec, [[int(r['policy'].rsplit('/seed', 1)[1]) for r in records]])} pooled; "
                    f"{reports.count(grid.episodes, 'episode')} per setting and seed; mean ± std "
                    "of the return", compare, table_records=pooled, appendix=appendix,
                    title=lambda label, robot=robot, kind=kind: f"{label} on {robot} {kind}")
                written += files
    return written

