"""AugWM at CPU scale: MOPO vs AugWM (Default and LM) trained on one robot's data, zero-shot on shifts.

    python scripts/reproduce_augwm.py                          # everything below, resumable
    python scripts/reproduce_augwm.py --studies mass-damping --datasets dynshift/halfcheetah/mixed-v0

Studies (the AugWM paper's tables):

- ``mass-damping``: every dataset of ``--datasets`` (default halfcheetah mixed and medium) × seeds ×
  {MOPO, AugWM-Default (DAS, state only), AugWM-LM (DAS, context inferred online)}, evaluated on the
  full 7×7 mass × damping grid;
- ``ant-crippled``: the same three on ``dynshift/ant/mixed-nocontact-v0`` (Ant observations without
  the 84 contact forces, as MBPO and MOPO use them: with them the ensemble's fit stalls), on every
  one- and two-leg crippled Ant (and the 7×7 grid);
- ``cheetah-morphology``: the HalfCheetah mixed agents on big and small legs.

Per study and dataset it writes, under ``--results`` (default docs/results/augwm): ``records.csv``
(one row per episode), ``table.md`` (mean ± std per setting, seeds pooled, * for p < 0.05 in Welch's
t-test between AugWM-LM and MOPO, and the average over settings) and a heatmap per algorithm.
Training runs go to ``--out`` (default runs/results/augwm) and resume; grid records resume too. With
the same ``--out`` and options as ``reproduce_offline.py``, the MOPO runs are shared, not repeated.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from runner import add_budget_options, ensure_dataset, grid_report, parallel, run, shared_models, train_command

ALGORITHMS = {
    "MOPO": ["mopo"],
    "AugWM-Default": ["augwm", "--set", "augmentation=\"das\"", "--set", "context=false"],
    "AugWM-LM": ["augwm", "--set", "augmentation=\"das\"", "--set", "context=true"],
}
STUDIES = ("mass-damping", "ant-crippled", "cheetah-morphology")
ANT = "dynshift/ant/mixed-nocontact-v0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", nargs="+", default=list(STUDIES), choices=STUDIES)
    parser.add_argument("--datasets", nargs="+", default=["dynshift/halfcheetah/mixed-v0", "dynshift/halfcheetah/medium-v0"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--gradient-steps", type=int, default=100_000)
    parser.add_argument("--episodes", type=int, default=3, help="episodes per grid setting and seed")
    parser.add_argument("--jobs", type=int, default=2, help="parallel single-thread training jobs / grid workers")
    parser.add_argument("--out", type=Path, default=Path("runs/results/augwm"))
    parser.add_argument("--results", type=Path, default=Path("docs/results/augwm"))
    add_budget_options(parser)
    args = parser.parse_args()

    plan: dict[str, list[str]] = {}  # dataset → grids to evaluate on
    if "mass-damping" in args.studies:
        for dataset_id in args.datasets:
            plan.setdefault(dataset_id, []).append("mass-damping")
    if "cheetah-morphology" in args.studies:
        plan.setdefault("dynshift/halfcheetah/mixed-v0", []).append("cheetah-morphology")
    if "ant-crippled" in args.studies:
        plan.setdefault(ANT, []).extend(["ant-crippled", "mass-damping"])

    for dataset_id in plan:
        extra = ["--env-kwargs", json.dumps({"include_cfrc_ext_in_observation": False})] if dataset_id == ANT else []
        ensure_dataset(dataset_id, args.out / "collect.log", extra)
    models = shared_models(list(plan), sorted({command[0] for command in ALGORITHMS.values()}), args)

    def run_dir(dataset_id: str, algorithm: str, seed: int) -> Path:
        # lower-case names: MOPO's runs are reproduce_offline.py's "mopo" runs when both share --out
        return args.out / dataset_id.replace("/", "__") / algorithm.lower() / f"seed{seed}"

    def train(dataset_id: str, algorithm: str, seed: int) -> None:
        out = run_dir(dataset_id, algorithm, seed)
        command = ALGORITHMS[algorithm]
        run(train_command(command, dataset_id, seed, out, args, models.get((dataset_id, command[0]))), out / "train.log")

    parallel([lambda d=d, a=a, s=s: train(d, a, s) for d in plan for a in ALGORITHMS for s in args.seeds], args.jobs)

    for dataset_id, grids in plan.items():
        checkpoints = {f"{a}/seed{s}": str(run_dir(dataset_id, a, s) / "checkpoint") for a in ALGORITHMS for s in args.seeds}
        for grid_name in grids:
            table = grid_report(args, dataset_id, grid_name, checkpoints,
                                args.out / dataset_id.replace("/", "__") / f"grid-{grid_name}-augwm.jsonl",
                                ("AugWM-LM", "MOPO"), [("AugWM-LM", "MOPO"), ("AugWM-Default", "MOPO")])
            print(f"## {dataset_id} on {grid_name}\n\n{table}\n", flush=True)


if __name__ == "__main__":
    main()
