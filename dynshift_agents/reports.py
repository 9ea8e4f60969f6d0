"""Evaluation records → summaries, heatmaps and markdown tables with Welch's t-test.

Records are those of :mod:`dynshift_agents.evaluation` (one per episode). A summary row is a
(policy, setting) with the mean, standard deviation and count of its episode returns. Two policies
are compared per setting with Welch's unequal-variance t-test (``scipy.stats.ttest_ind``), and
significant differences (p < ``alpha``) are marked with an asterisk, as in the AugWM paper.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy import stats


def count(n: int, noun: str) -> str:
    """``1 episode``, ``5 episodes``: a number with its noun in the right number (regular plurals)."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def setting_label(setting: dict[str, Any]) -> str:
    """``mass=1.5 damping=0.5``; ``nominal`` for ``{}``."""
    return " ".join(f"{k}={json.dumps(v) if not isinstance(v, (int, float)) else v}" for k, v in setting.items()) or "nominal"


def sample_std(values) -> float:
    """The spread the tables quote as "± std" (over a grid setting's episodes, over seeds, in a curve's
    band): the sample standard deviation (n − 1 in the denominator), 0 for a single value. (A final
    evaluation's ``return_std`` over its episodes stays SB3's population std.)"""
    values = np.asarray(values, dtype=float)
    return float(values.std(ddof=1)) if len(values) > 1 else 0.0


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (policy, setting): ``returns`` and their mean, std and count, in setting order."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["policy"], record["setting_index"]), []).append(record)
    rows = []
    for (policy, index), group in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1])):
        returns = np.array([r["return"] for r in sorted(group, key=lambda r: r["episode"])])
        rows.append({"policy": policy, "setting_index": index, "setting": group[0]["setting"], "returns": returns,
                     "mean": float(returns.mean()), "std": sample_std(returns),
                     "n": len(returns)})
    return rows


def write_csv(records: list[dict[str, Any]], path: str | os.PathLike) -> None:
    """Tidy records as CSV (the setting as JSON in one column)."""
    with Path(path).open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["policy", "env_id", "setting_index", "setting", "episode", "seed",
                                               "return", "length"])
        writer.writeheader()
        for r in sorted(records, key=lambda r: (r["policy"], r["setting_index"], r["episode"])):
            writer.writerow(r | {"setting": json.dumps(r["setting"])})


def welch(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of Welch's t-test (NaN when either side has fewer than two values or both are constant)."""
    if len(a) < 2 or len(b) < 2 or (np.std(a) == 0 and np.std(b) == 0):
        return float("nan")
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def markdown_table(records: list[dict[str, Any]], compare: tuple[str, str] | None = None, alpha: float = 0.05) -> str:
    """Mean ± std per setting and policy; with ``compare=(a, b)``, the better of the two is marked
    ``*`` where Welch's test gives p < ``alpha``, and a last row averages over settings."""
    rows = summarise(records)
    policies = sorted({r["policy"] for r in rows})
    if compare is not None:
        missing = set(compare) - set(policies)
        if missing:
            raise ValueError(f"cannot compare {sorted(missing)}: policies in the records are {policies}")
    by = {(r["policy"], r["setting_index"]): r for r in rows}
    indices = sorted({r["setting_index"] for r in rows})
    lines = ["| setting | " + " | ".join(policies) + (" | p (Welch) |" if compare else " |"),
             "|---|" + "---:|" * len(policies) + ("---:|" if compare else "")]
    for index in indices:
        cells, marks = [], {}
        if compare:
            a, b = by.get((compare[0], index)), by.get((compare[1], index))
            p = welch(a["returns"], b["returns"]) if a and b else float("nan")
            if p < alpha:
                marks[(compare[0] if a["mean"] > b["mean"] else compare[1])] = "*"
        for policy in policies:
            row = by.get((policy, index))
            spread = f" ± {row['std']:.1f}" if row and row["n"] > 1 else ""
            cells.append(f"{row['mean']:.1f}{spread}{marks.get(policy, '')}" if row else "—")
        setting = next(r["setting"] for r in rows if r["setting_index"] == index)
        p_cell = "—" if not compare or np.isnan(p) else f"{p:.3g}"
        lines.append(f"| {setting_label(setting)} | " + " | ".join(cells) + (f" | {p_cell} |" if compare else " |"))
    # average over settings: per policy, the mean over settings of the per-setting means
    averages = []
    for policy in policies:
        means = [by[(policy, i)]["mean"] for i in indices if (policy, i) in by]
        averages.append(f"**{np.mean(means):.1f}**")
    lines.append("| **average** | " + " | ".join(averages) + (" | |" if compare else " |"))
    return "\n".join(lines)


def seed_averages(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Grid averages per trained policy, for policies named ``ALGORITHM/seedK``: {algorithm: {policy:
    mean over settings of the per-setting mean return}}. Seeds, not episodes, are the independent units
    when asking whether one algorithm beats another."""
    out: dict[str, dict[str, list[float]]] = {}
    for row in summarise(records):
        out.setdefault(row["policy"].split("/")[0], {}).setdefault(row["policy"], []).append(row["mean"])
    return {algorithm: {policy: float(np.mean(means)) for policy, means in policies.items()}
            for algorithm, policies in out.items()}


def seed_comparison(records: list[dict[str, Any]], compare: tuple[str, str]) -> str:
    """A markdown paragraph: each algorithm's grid average per seed, mean ± std over seeds, and
    Welch's p between the two algorithms' per-seed averages."""
    averages = seed_averages(records)
    missing = set(compare) - set(averages)
    if missing:
        raise ValueError(f"cannot compare {sorted(missing)}: algorithms in the records are {sorted(averages)}")
    parts = []
    for algorithm in compare:
        values = np.array(list(averages[algorithm].values()))
        spread = f" ± {sample_std(values):.1f}" if len(values) > 1 else ""
        per_seed = ", ".join(f"{v:.1f}" for v in averages[algorithm].values())
        parts.append(f"{algorithm} {values.mean():.1f}{spread} ({per_seed})")
    p = welch(*(np.array(list(averages[a].values())) for a in compare))
    p_text = "n/a" if np.isnan(p) else f"{p:.3g}"
    return (f"Grid average per trained policy (mean over settings; seeds are the units): {'; '.join(parts)}. "
            f"Welch's p between the two = {p_text}.")


def heatmap(records: list[dict[str, Any]], policy: str, path: str | os.PathLike, title: str | None = None,
            vmin: float | None = None, vmax: float | None = None) -> None:
    """Mean return over the mass × damping grid of one policy, as a PNG (the AugWM paper's figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in summarise(records) if r["policy"] == policy]
    if not rows or not all(set(r["setting"]) == {"mass", "damping"} for r in rows):
        raise ValueError("a heatmap needs settings with exactly 'mass' and 'damping' (the mass-damping grid)")
    masses = sorted({r["setting"]["mass"] for r in rows})
    dampings = sorted({r["setting"]["damping"] for r in rows})
    grid = np.full((len(masses), len(dampings)), np.nan)
    for r in rows:
        grid[masses.index(r["setting"]["mass"]), dampings.index(r["setting"]["damping"])] = r["mean"]
    fig, ax = plt.subplots(figsize=(5.6, 4.6), dpi=120)
    image = ax.imshow(grid, origin="lower", cmap="viridis", vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(dampings)), [f"{d:g}" for d in dampings])
    ax.set_yticks(range(len(masses)), [f"{m:g}" for m in masses])
    ax.set_xlabel("damping multiplier")
    ax.set_ylabel("mass multiplier")
    ax.set_title(title or f"{policy}: mean return")
    for i in range(len(masses)):
        for j in range(len(dampings)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if image.norm(grid[i, j]) < 0.5 else "black")
    fig.colorbar(image, ax=ax, label="return")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_grid_report(records: list[dict[str, Any]], out: str | os.PathLike, caption: str,
                      compare: tuple[str, str] | None = None, table_records: list[dict[str, Any]] | None = None,
                      appendix: str = "", title: Callable[[str], str] | None = None) -> tuple[str, list[Path]]:
    """A grid's report in ``out``: ``records.csv`` (every episode), ``table.md`` (``caption``, the
    table of ``table_records`` — default ``records``, e.g. seeds pooled — with ``*`` for p < 0.05 in
    Welch's test between ``compare``, then ``appendix``) and, when every setting is a mass × damping
    pair, one heatmap per policy on a shared colour scale (``title(policy)`` above each). Returns the
    table and the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shown = records if table_records is None else table_records
    write_csv(records, out / "records.csv")
    table = markdown_table(shown, compare)
    significance = f"; * marks p < 0.05 (Welch) between {compare[0]} and {compare[1]}" if compare else ""
    (out / "table.md").write_text(f"{caption}{significance}.\n\n{table}\n{appendix}")
    written = [out / "records.csv", out / "table.md"]
    if shown and all(set(r["setting"]) == {"mass", "damping"} for r in shown):
        means = [r["mean"] for r in summarise(shown)]
        for policy in dict.fromkeys(r["policy"] for r in shown):
            written.append(out / f"heatmap-{policy}.png")
            heatmap(shown, policy, written[-1], vmin=min(means), vmax=max(means),
                    title=title(policy) if title else None)
    return table, written


def evaluations(run: str | os.PathLike, metric: str = "eval/d4rl_score") -> dict[float, float]:
    """A training run's periodic evaluations (``--eval-every``), read from its ``progress.csv``: {gradient
    step: ``metric``}; empty when the run has none (or no log yet)."""
    path = Path(run) / "progress.csv"
    if not path.exists():
        return {}
    with path.open(newline="") as f:
        return {float(row.get("time/gradient_steps") or row["train/n_updates"]): float(row[metric])
                for row in csv.DictReader(f) if row.get(metric)}


def learning_curves(runs: dict[str, list[str | os.PathLike]], path: str | os.PathLike, metric: str = "eval/d4rl_score",
                    lines: dict[str, float] | None = None, title: str | None = None) -> dict[str, list[tuple]]:
    """Periodic evaluations of training runs against gradient steps, as a PNG: for each label, its runs
    (seeds) as a mean with a ±1 std band, read from each run's ``progress.csv`` (``metric`` rows,
    logged by ``--eval-every``); ``lines`` draws horizontal references (the data's own score, BC's).
    Returns {label: [(step, mean, std, runs), …]}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[str, list[tuple]] = {}
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for label, directories in runs.items():
        by_step: dict[float, list[float]] = {}
        for directory in directories:
            for step, value in evaluations(directory, metric).items():
                by_step.setdefault(step, []).append(value)
        if not by_step:
            raise ValueError(f"no {metric!r} rows in the logs of {label} ({[str(d) for d in directories]}): "
                             "train with --eval-every")
        points = [(s, float(np.mean(v)), sample_std(v), len(v)) for s, v in sorted(by_step.items())]
        curves[label] = points
        steps, means, stds = (np.array([p[i] for p in points]) for i in range(3))
        count = max(p[3] for p in points)
        ax.plot(steps, means, marker="o", markersize=3, label=f"{label} ({count} run{'' if count == 1 else 's'})")
        ax.fill_between(steps, means - stds, means + stds, alpha=0.2)
    for name, value in (lines or {}).items():
        ax.axhline(value, linestyle="--", linewidth=1, color="grey")
        ax.annotate(name, (ax.get_xlim()[0], value), textcoords="offset points", xytext=(4, 3), fontsize=7,
                    color="grey")
    ax.set_xlabel("gradient steps")
    ax.set_ylabel(metric.split("/")[-1].replace("_", " "))
    ax.set_title(title or metric)
    if curves:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return curves

