"""The ``dynshift`` command line (also ``python -m dynshift_agents``).

    dynshift collect halfcheetah medium                       # dynshift/halfcheetah/medium-v0
    dynshift collect hopper expert --mass 1.5 --size 20000    # dynshift/hopper/expert-mass1p5-v0
    dynshift collect ant random --crippled-legs 3 --d4rl-size
    dynshift datasets                                         # what is collected locally
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_shift_options(parser: argparse.ArgumentParser) -> None:
    """``--mass``, ``--damping``, ``--crippled-legs``, ``--morphology`` and ``--env-kwargs JSON``."""
    group = parser.add_argument_group("dynamics shift (DynShift env keywords)")
    group.add_argument("--mass", type=float, help="multiply every body's mass and inertia")
    group.add_argument("--damping", type=float, help="multiply every joint's damping")
    group.add_argument("--crippled-legs", nargs="+", metavar="LEG",
                       help="Ant: legs 0-3 or their names (front_left_leg, front_right_leg, back_leg, right_back_leg)")
    group.add_argument("--morphology", choices=["default", "big", "small"], help="HalfCheetah leg size")
    group.add_argument("--env-kwargs", type=json.loads, default={}, metavar="JSON",
                       help='any env keywords as a JSON object, e.g. \'{"mass": {"torso": 2.0}}\'')


def shift_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The env keywords the shift options of ``args`` ask for."""
    if not isinstance(args.env_kwargs, dict):
        raise SystemExit(f"--env-kwargs must be a JSON object, got {args.env_kwargs!r}")
    kwargs = dict(args.env_kwargs)
    if args.mass is not None:
        kwargs["mass"] = args.mass
    if args.damping is not None:
        kwargs["damping"] = args.damping
    if args.crippled_legs:
        kwargs["crippled_legs"] = [int(leg) if leg.isdigit() else leg for leg in args.crippled_legs]
    if args.morphology is not None:
        kwargs["morphology"] = args.morphology
    return kwargs


def _collect(args: argparse.Namespace) -> None:
    from dynshift_agents.data import D4RL_SIZES, collect, list_datasets

    size = args.size
    if args.d4rl_size:
        if size is not None:
            raise SystemExit("--size and --d4rl-size exclude each other")
        size = D4RL_SIZES[args.kind]
    dataset = collect(args.env, args.kind, size=size, seed=args.seed, dataset_id=args.dataset_id,
                      env_kwargs=shift_kwargs(args), overwrite=args.overwrite)
    row = next(r for r in list_datasets(dataset.spec.dataset_id) if r["dataset_id"] == dataset.spec.dataset_id)
    record = json.loads(dataset.storage.metadata["dynshift"])
    print(f"{row['dataset_id']}: {row['transitions']} transitions, {row['episodes']} episodes, "
          f"return {row['return_mean']:.1f} ± {row['return_std']:.1f}, collected in {record['collection_seconds']} s")


def _datasets(args: argparse.Namespace) -> None:
    from dynshift_agents.data import datasets_root, list_datasets

    rows = list_datasets(args.prefix)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    if not rows:
        print(f"no datasets in {datasets_root()}; make one with `dynshift collect ENV KIND`")
        return
    print(f"datasets in {datasets_root()}")
    header = f"{'dataset id':<48} {'transitions':>11} {'episodes':>8} {'return mean ± std':>21} {'MB':>7}  dynamics"
    print(header)
    for r in rows:
        ret = f"{r['return_mean']:.1f} ± {r['return_std']:.1f}" if r["return_mean"] is not None else "—"
        print(f"{r['dataset_id']:<48} {r['transitions']:>11} {r['episodes']:>8} {ret:>21} {r['bytes'] / 1e6:>7.1f}  "
              f"{json.dumps(r['dynamics']) if r['dynamics'] else 'nominal'}")


def build_parser() -> argparse.ArgumentParser:
    from dynshift_agents.behaviour import ROBOTS
    from dynshift_agents.data import DEFAULT_SIZES, KINDS

    parser = argparse.ArgumentParser(prog="dynshift", description="Offline RL under changed dynamics.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    collect = commands.add_parser("collect", help="collect a Minari dataset with a shipped behaviour policy",
                                  description="Collect a Minari dataset (hdf5) with a shipped behaviour policy; "
                                              "an interrupted collection resumes when run again.")
    collect.add_argument("env", help=f"{', '.join(ROBOTS)} or a DynShift env id")
    collect.add_argument("kind", choices=KINDS)
    collect.add_argument("--size", type=int, help=f"transitions (defaults: {DEFAULT_SIZES}; mixed: the run's length)")
    collect.add_argument("--d4rl-size", action="store_true", help="D4RL's sizes (1M; medium-expert 2M)")
    collect.add_argument("--seed", type=int, default=0)
    collect.add_argument("--dataset-id", help="default dynshift/<env>/<kind>[-<shift>]-v0")
    collect.add_argument("--overwrite", action="store_true", help="replace an existing dataset of that id")
    add_shift_options(collect)
    collect.set_defaults(run=_collect)

    datasets = commands.add_parser("datasets", help="list local datasets with size, returns and dynamics")
    datasets.add_argument("prefix", nargs="?", help="only ids starting with this, e.g. dynshift/hopper")
    datasets.add_argument("--json", action="store_true")
    datasets.set_defaults(run=_datasets)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (ValueError, FileNotFoundError, FileExistsError, OSError) as error:
        print(f"dynshift {args.command}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
