"""How far the shipped behaviour policies fall on shifted robots: their return along a grid of settings.

    python scripts/behaviour_grid.py hopper --grid experiments/grids/mass-line.json
    python scripts/behaviour_grid.py walker2d --grid mass-damping --policies expert --episodes 3
    python scripts/behaviour_grid.py hopper --shift '{"mass": 1.5}' --grid experiments/grids/mass-line.json

The data's own policy at a shift is the first measure of how much a shift changes a robot (DARA's
source robot is chosen by the return a policy trained on its data keeps on the target,
``experiments/dara-source-shift.toml``). Deterministic actions, episode i reset with seed + i, every
setting × episode in one lockstep batch (``evaluation.evaluate_settings``). Prints one row per setting:
mean ± std of the return per policy, and its ratio to the return at nominal dynamics when the grid has it;
with ``--forward``, also the mean forward reward (``info["reward_forward"]`` summed over an episode: the
return for progress alone, which tells a robot that moves from one that only survives) and the mean
episode length.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from dynshift_agents.behaviour import load_policy, policy_set
from dynshift_agents.evaluation import evaluate_settings
from dynshift_agents.reports import count, sample_std
from dynshift_envs import GRIDS, ROBOTS, load_grid


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("robot", choices=sorted(ROBOTS))
    parser.add_argument("--grid", required=True, help=f"{', '.join(GRIDS)}, or a JSON file with a list of settings")
    parser.add_argument("--policies", nargs="+", default=["medium", "expert"], help="shipped policy names")
    parser.add_argument("--shift", type=json.loads, default=None, metavar="JSON",
                        help="the policy set of a shifted robot (its own policies), e.g. '{\"mass\": 1.5}'")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--forward", action="store_true", help="also print the mean forward reward and length")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        settings = list(load_grid(args.grid).settings)
    except ValueError as error:
        parser.error(str(error))
    env_id = ROBOTS[args.robot].env_id
    print(f"{policy_set(args.robot, args.shift)} on {env_id}: {count(args.episodes, 'episode')} per setting "
          f"(seeds {args.seed}..{args.seed + args.episodes - 1}), return mean ± std (× its return at nominal)")
    columns = {}
    for name in args.policies:
        records = evaluate_settings(load_policy(args.robot, name, args.shift), env_id, settings, args.episodes,
                                    seed=args.seed, name=name, info_keys=("reward_forward",))
        columns[name] = [[r for r in records if r["setting_index"] == i] for i in range(len(settings))]
    nominal = next((i for i, s in enumerate(settings) if all(v == 1.0 for v in s.values())), None)
    print("| setting | " + " | ".join(args.policies) + " |")
    print("|---|" + "---|" * len(args.policies))
    for i, setting in enumerate(settings):
        cells = []
        for name in args.policies:
            returns = np.array([r["return"] for r in columns[name][i]])
            cell = f"{returns.mean():.1f} ± {sample_std(returns):.1f}"
            if nominal is not None:
                cell += f" (× {returns.mean() / np.mean([r['return'] for r in columns[name][nominal]]):.2f})"
            if args.forward:
                cell += (f"; forward {np.mean([r['reward_forward'] for r in columns[name][i]]):.1f}"
                         f" in {np.mean([r['length'] for r in columns[name][i]]):.0f} steps")
            cells.append(cell)
        print(f"| {json.dumps(setting)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
